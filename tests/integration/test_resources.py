"""Every operation on every protected object type of SPEC §2, through the API: one suite
parametrised over the types, so a new type gets the same checks."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from countersign.store.db import Database
from tests.factories import Principal, Tenant, TenantFactory, unique


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Case:
    collection: str
    path: str
    body: dict[str, Any]
    platform: str
    name: str = "displayName"
    intent: str | None = None
    assignable: bool = True
    # A role that may change objects of this type (besides Intune Administrator).
    manager: str = "Intune Administrator"
    extra: dict[str, Any] = field(default_factory=dict)

    def new(self, **overrides: Any) -> dict[str, Any]:
        return {self.name: unique(self.collection), **self.body, **overrides}


CASES = [
    Case(
        "mobileApps",
        "/beta/deviceAppManagement/mobileApps",
        {
            "@odata.type": "#microsoft.graph.win32LobApp",
            "publisher": "Contoso",
            "fileName": "setup.intunewin",
            "installCommandLine": "setup.exe /quiet",
            "uninstallCommandLine": "setup.exe /uninstall",
        },
        "windows10AndLater",
        intent="required",
        manager="Application Manager",
    ),
    Case(
        "deviceManagementScripts",
        "/beta/deviceManagement/deviceManagementScripts",
        {"scriptContent": b64("Write-Host 'hello'"), "fileName": "hello.ps1"},
        "notApplicable",
        manager="Policy and Profile Manager",
    ),
    Case(
        "deviceHealthScripts",
        "/beta/deviceManagement/deviceHealthScripts",
        {
            "publisher": "Contoso",
            "detectionScriptContent": b64("exit 1"),
            "remediationScriptContent": b64("exit 0"),
        },
        "notApplicable",
        manager="Policy and Profile Manager",
    ),
    Case(
        "deviceShellScripts",
        "/beta/deviceManagement/deviceShellScripts",
        {"scriptContent": b64("echo hello"), "fileName": "hello.sh", "retryCount": 2},
        "notApplicable",
        manager="Policy and Profile Manager",
    ),
    Case(
        "deviceCompliancePolicies",
        "/beta/deviceManagement/deviceCompliancePolicies",
        {
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "passcodeRequired": True,
            "passcodeMinimumLength": 6,
        },
        "iOSiPadOS",
        manager="Endpoint Security Manager",
    ),
    Case(
        "configurationPolicies",
        "/beta/deviceManagement/configurationPolicies",
        {"platforms": "macOS", "technologies": "mdm", "settings": []},
        "macOS",
        name="name",
        manager="Policy and Profile Manager",
    ),
    Case(
        "deviceCategories",
        "/beta/deviceManagement/deviceCategories",
        {"description": "Laptops of the sales team"},
        "notApplicable",
        assignable=False,
    ),
]
CASE_OF = {case.collection: case for case in CASES}


def post_new(tenant: Tenant, collection: str, body: dict[str, Any]) -> Response:
    """POST a new object to the collection: a fresh name, then `body`."""
    case = CASE_OF[collection]
    return tenant.call("POST", case.path, json={case.name: unique("x"), **body})


cases = pytest.mark.parametrize("case", CASES, ids=[c.collection for c in CASES])


@dataclass
class World:
    """Two tenants and the people every test of this module needs, made once (sign-ins are
    slow by design); each test makes its own objects and looks only at those."""

    tenant: Tenant
    stranger: Tenant
    managers: dict[str, Principal]
    reader: Principal
    nobody: Principal
    default_only: Principal
    sales: str
    sales_admin: Principal


@pytest.fixture(scope="module")
def world(app: FastAPI, db: Database) -> Any:
    with TestClient(app) as client:
        make = TenantFactory(client, db)
        tenant = make()
        sales = tenant.scope_tag(unique("sales"))
        yield World(
            tenant=tenant,
            stranger=make(),
            managers={c.manager: tenant.user(roles=(c.manager,)) for c in CASES},
            reader=tenant.user(roles=("Read Only Operator",)),
            nobody=tenant.user(),
            default_only=tenant.user(roles=("Intune Administrator",), scope_tags=("0",)),
            sales=sales,
            sales_admin=tenant.user(roles=("Intune Administrator",), scope_tags=(sales,)),
        )


def ids(tenant: Tenant, case: Case, who: Principal | None = None) -> set[str]:
    return {i["id"] for i in tenant.ok("GET", case.path, who, params={"$top": "999"})["value"]}


def assign_body(case: Case, group_id: str, exclude: str | None = None) -> dict[str, Any]:
    def one(target_type: str, gid: str | None) -> dict[str, Any]:
        target = {"@odata.type": f"#microsoft.graph.{target_type}"}
        if gid:
            target["groupId"] = gid
        item: dict[str, Any] = {"target": target}
        if case.intent:
            item["intent"] = case.intent
        return item

    items = [one("groupAssignmentTarget", group_id), one("allDevicesAssignmentTarget", None)]
    if exclude:
        items.append(one("exclusionGroupAssignmentTarget", exclude))
    return {"assignments": items}


def create(tenant: Tenant, case: Case, **overrides: Any) -> dict[str, Any]:
    response = tenant.call("POST", case.path, json=case.new(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


@cases
def test_every_operation(world: World, case: Case) -> None:
    tenant, manager = world.tenant, world.managers[case.manager]
    created = tenant.call("POST", case.path, manager, json=case.new())
    assert created.status_code == 201, created.text
    item = created.json()
    assert int(item["version"]) == 1 and item["@odata.etag"] == 'W/"1"'
    assert created.headers["ETag"] == 'W/"1"'
    assert item["roleScopeTagIds"] == ["0"]
    assert item["platform"] == case.platform
    assert item["createdDateTime"] and item["lastModifiedDateTime"]
    url = f"{case.path}/{item['id']}"

    got = tenant.ok("GET", url, manager)
    assert got[case.name] == item[case.name] and int(got["version"]) == 1
    assert item["id"] in ids(tenant, case, manager)
    by_name = {"$filter": f"{case.name} eq '{item[case.name]}' and platform eq '{case.platform}'"}
    assert [i["id"] for i in tenant.ok("GET", case.path, manager, params=by_name)["value"]] == [
        item["id"]
    ]

    patched = tenant.call(
        "PATCH", url, manager, json={case.name: "Renamed", "description": "changed"}
    )
    assert patched.status_code == 204, patched.text
    got = tenant.ok("GET", url, manager)
    assert (got[case.name], got["description"], int(got["version"])) == ("Renamed", "changed", 2)
    assert got["@odata.etag"] == 'W/"2"'

    group_id = tenant.group(unique("targets"))
    excluded = tenant.group(unique("excluded"))
    assigned = tenant.call(
        "POST", f"{url}/assign", manager, json=assign_body(case, group_id, excluded)
    )
    if case.assignable:
        assert assigned.status_code == 204, assigned.text
        assignments = tenant.ok("GET", f"{url}/assignments", manager)["value"]
        targets = {a["target"]["@odata.type"]: a["target"]["groupId"] for a in assignments}
        assert targets == {
            "#microsoft.graph.groupAssignmentTarget": group_id,
            "#microsoft.graph.allDevicesAssignmentTarget": None,
            "#microsoft.graph.exclusionGroupAssignmentTarget": excluded,
        }
        assert all(a.get("intent") == case.intent for a in assignments)
        assert int(tenant.ok("GET", url, manager)["version"]) == 3
        # Assign replaces the set.
        tenant.ok("POST", f"{url}/assign", manager, json={"assignments": []})
        assert tenant.ok("GET", f"{url}/assignments", manager)["value"] == []
    else:
        assert assigned.status_code in (404, 405)

    deleted = tenant.call("DELETE", url, manager)
    assert deleted.status_code == 204, deleted.text
    assert tenant.call("GET", url, manager).status_code == 404
    assert item["id"] not in ids(tenant, case, manager)

    events = tenant.ok(
        "GET",
        "/beta/deviceManagement/auditEvents",
        params={"$filter": f"resources/resourceId eq '{item['id']}'", "$orderby": "sequence"},
    )["value"]
    operations = [e["activityOperationType"] for e in events]
    expected = ["Create", "Update"] + (["Assign", "Assign"] if case.assignable else []) + ["Delete"]
    assert operations == expected
    assert events[0]["actor"]["userId"] == manager.id


@cases
def test_other_tenants_objects_do_not_exist(world: World, case: Case) -> None:
    owner, stranger = world.tenant, world.stranger
    url = f"{case.path}/{create(owner, case)['id']}"
    for method, body in (("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)):
        assert stranger.call(method, url, json=body).status_code == 404, method
    if case.assignable:
        group_id = stranger.group(unique("g"))
        response = stranger.call("POST", f"{url}/assign", json=assign_body(case, group_id))
        assert response.status_code == 404
    assert url.rsplit("/", 1)[1] not in ids(stranger, case)
    assert int(owner.ok("GET", url)["version"]) == 1


@cases
def test_writes_need_the_types_permission(world: World, case: Case) -> None:
    tenant, reader, nobody = world.tenant, world.reader, world.nobody
    item = create(tenant, case)
    url = f"{case.path}/{item['id']}"
    assert tenant.ok("GET", url, reader)["id"] == item["id"]
    assert tenant.call("GET", case.path, nobody).status_code == 403
    assert tenant.call("GET", url, nobody).status_code == 403
    refused = [
        tenant.call("POST", case.path, reader, json=case.new()),
        tenant.call("PATCH", url, reader, json={"description": "x"}),
        tenant.call("DELETE", url, reader),
    ]
    if case.assignable:
        group_id = tenant.group(unique("g"))
        refused.append(
            tenant.call("POST", f"{url}/assign", reader, json=assign_body(case, group_id))
        )
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "Forbidden"
    assert int(tenant.ok("GET", url)["version"]) == 1


@cases
def test_scope_tags_hide_objects(world: World, case: Case) -> None:
    tenant, sales, default_only = world.tenant, world.sales, world.default_only
    hidden = create(tenant, case, roleScopeTagIds=[sales])
    shown = create(tenant, case)
    assert hidden["roleScopeTagIds"] == [sales]
    visible = ids(tenant, case, default_only)
    assert shown["id"] in visible and hidden["id"] not in visible
    url = f"{case.path}/{hidden['id']}"
    assert tenant.call("GET", url, default_only).status_code == 404
    assert tenant.call("PATCH", url, default_only, json={"description": "x"}).status_code == 404
    assert tenant.call("DELETE", url, default_only).status_code == 404
    # Creating an object under a tag the caller does not reach is refused.
    refused = tenant.call("POST", case.path, default_only, json=case.new(roleScopeTagIds=[sales]))
    assert refused.status_code == 403
    # Moving a reachable object to an unreachable tag is refused too.
    moved = tenant.call(
        "PATCH", f"{case.path}/{shown['id']}", default_only, json={"roleScopeTagIds": [sales]}
    )
    assert moved.status_code == 403
    visible = ids(tenant, case, world.sales_admin)
    assert hidden["id"] in visible and shown["id"] not in visible
    assert {hidden["id"], shown["id"]} <= ids(tenant, case)  # the first admin reaches every tag


@cases
def test_invalid_bodies_are_refused_naming_the_field(world: World, case: Case) -> None:
    tenant = world.tenant
    before = ids(tenant, case)

    def refused(body: dict[str, Any], *fragments: str, path: str = case.path) -> None:
        response = tenant.call("POST", path, json=body)
        assert response.status_code == 400, response.text
        message = response.json()["error"]["message"]
        for fragment in fragments:
            assert fragment in message, message

    without_name = case.new()
    del without_name[case.name]
    refused(without_name, case.name)
    refused(case.new(bogusProperty=1), "bogusProperty")
    refused(case.new(**{case.name: "x" * 257}), case.name)
    refused(case.new(description="x" * 1025), "description")
    refused(case.new(roleScopeTagIds=["999"]), "999")
    refused(case.new(**{"@odata.type": "#microsoft.graph.fooBarApp"}), "fooBarApp")
    assert ids(tenant, case) == before

    item = create(tenant, case)
    url = f"{case.path}/{item['id']}"
    patched = tenant.call("PATCH", url, json={"bogusProperty": 1})
    assert patched.status_code == 400 and "bogusProperty" in patched.text
    if case.assignable:
        missing = str(uuid.uuid4())
        refused(assign_body(case, missing), missing, path=f"{url}/assign")
        other = world.stranger.group(unique("elsewhere"))
        refused(assign_body(case, other), other, path=f"{url}/assign")
        unknown_target = {"assignments": [{"target": {"@odata.type": "#microsoft.graph.nope"}}]}
        refused(unknown_target, "nope", path=f"{url}/assign")
    assert int(tenant.ok("GET", url)["version"]) == 1


@cases
def test_stale_if_match_changes_nothing(world: World, case: Case) -> None:
    tenant = world.tenant
    item = create(tenant, case)
    url = f"{case.path}/{item['id']}"
    stale = {"If-Match": 'W/"1"'}
    tenant.ok("PATCH", url, json={"description": "second"}, headers=stale)
    attempts = [
        tenant.call("PATCH", url, json={"description": "lost update"}, headers=stale),
        tenant.call("DELETE", url, headers=stale),
    ]
    if case.assignable:
        group_id = tenant.group(unique("g"))
        attempts.append(
            tenant.call("POST", f"{url}/assign", json=assign_body(case, group_id), headers=stale)
        )
    for response in attempts:
        assert response.status_code == 412, response.text
    got = tenant.ok("GET", url)
    assert (got["description"], int(got["version"])) == ("second", 2)
    assert got.get("assignments", []) == []
    current = {"If-Match": got["@odata.etag"]}
    assert tenant.call("DELETE", url, headers=current).status_code == 204


@pytest.mark.parametrize(
    ("path", "body", "platform"),
    [
        (
            "mobileApps",
            {
                "@odata.type": "#microsoft.graph.iosStoreApp",
                "appStoreUrl": "https://apps.apple.com/x",
            },
            "iOSiPadOS",
        ),
        (
            "mobileApps",
            {
                "@odata.type": "#microsoft.graph.androidManagedStoreApp",
                "appIdentifier": "com.contoso",
            },
            "androidEnterprise",
        ),
        ("mobileApps", {"@odata.type": "#microsoft.graph.macOSDmgApp"}, "macOS"),
        (
            "mobileApps",
            {"@odata.type": "#microsoft.graph.webApp", "appUrl": "https://contoso.example"},
            "notApplicable",
        ),
        (
            "mobileApps",
            {"@odata.type": "#microsoft.graph.winGetApp", "packageIdentifier": "9WZDNCRFJ3TJ"},
            "windows10AndLater",
        ),
        (
            "deviceCompliancePolicies",
            {"@odata.type": "#microsoft.graph.windows10CompliancePolicy"},
            "windows10AndLater",
        ),
        (
            "deviceCompliancePolicies",
            {"@odata.type": "#microsoft.graph.androidWorkProfileCompliancePolicy"},
            "androidEnterprise",
        ),
        (
            "deviceCompliancePolicies",
            {"@odata.type": "#microsoft.graph.macOSCompliancePolicy"},
            "macOS",
        ),
        ("configurationPolicies", {"platforms": "windows10"}, "windows10AndLater"),
        ("configurationPolicies", {"platforms": "iOS"}, "iOSiPadOS"),
    ],
)
def test_platform_follows_the_type(
    world: World, path: str, body: dict[str, Any], platform: str
) -> None:
    response = post_new(world.tenant, path, body)
    assert response.status_code < 300, response.text
    assert response.json()["platform"] == platform


@pytest.mark.parametrize(
    ("collection", "body", "fragment"),
    [
        (
            "mobileApps",
            {"@odata.type": "#microsoft.graph.win32LobApp", "fileName": "a"},
            "installCommandLine",
        ),
        ("mobileApps", {}, "@odata.type"),
        (
            "deviceManagementScripts",
            {"scriptContent": "not base64!", "fileName": "a.ps1"},
            "scriptContent",
        ),
        ("deviceManagementScripts", {"fileName": "a.ps1"}, "scriptContent"),
        (
            "deviceManagementScripts",
            {"scriptContent": b64("x"), "fileName": "a.ps1", "runAsAccount": "root"},
            "runAsAccount",
        ),
        (
            "deviceShellScripts",
            {"scriptContent": b64("x"), "fileName": "a.sh", "retryCount": 99},
            "retryCount",
        ),
        (
            "deviceCompliancePolicies",
            {
                "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
                "passwordMinimumLength": 2,
            },
            "passwordMinimumLength",
        ),
        ("configurationPolicies", {"platforms": "beos"}, "platforms"),
    ],
)
def test_type_specific_validation(
    world: World, collection: str, body: dict[str, Any], fragment: str
) -> None:
    response = post_new(world.tenant, collection, body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_patch_cannot_change_the_type_or_platform(world: World) -> None:
    tenant = world.tenant
    apps = CASES[0]
    app = create(tenant, apps)
    response = tenant.call(
        "PATCH",
        f"{apps.path}/{app['id']}",
        json={"@odata.type": "#microsoft.graph.iosStoreApp"},
    )
    assert response.status_code == 400 and "@odata.type" in response.text
    configuration = CASE_OF["configurationPolicies"]
    policy = create(tenant, configuration)
    response = tenant.call(
        "PATCH", f"{configuration.path}/{policy['id']}", json={"platforms": "windows10"}
    )
    assert response.status_code == 400 and "platforms" in response.text


def test_demo_tenant_has_apps_scripts_policies_and_devices(db: Database) -> None:
    from sqlalchemy import func, select

    from countersign.services.demo import ensure_demo_tenant
    from countersign.store import tables as t

    made = ensure_demo_tenant(db)
    with db.read() as session:
        counts = dict(
            session.execute(
                select(t.Resource.collection, func.count())
                .where(t.Resource.tenant_id == made.tenant_id)
                .group_by(t.Resource.collection)
            ).all()
        )
        platforms = set(
            session.scalars(
                select(t.Resource.platform).where(
                    t.Resource.tenant_id == made.tenant_id, t.Resource.collection == "mobileApps"
                )
            )
        )
        devices = session.scalar(
            select(func.count())
            .select_from(t.ManagedDevice)
            .where(t.ManagedDevice.tenant_id == made.tenant_id)
        )
    wanted = {"mobileApps": 2, "deviceManagementScripts": 1, "deviceHealthScripts": 1}
    assert all(counts.get(name, 0) >= n for name, n in wanted.items()), counts
    assert counts.get("deviceCompliancePolicies", 0) >= 1
    assert {"windows10AndLater", "iOSiPadOS"} <= platforms
    assert devices is not None and devices >= 5
