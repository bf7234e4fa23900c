"""Managed devices: import (API and CSV), wipe, retire, check-in, delete, bulk actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from countersign.services.catalog import plan_change
from countersign.services.changes import ACTION, Change
from countersign.services.demo import caller_for
from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, unique

DEVICES = "/beta/deviceManagement/managedDevices"


def device(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"deviceName": unique("PC"), "operatingSystem": "Windows", "osVersion": "10.0.22631"}
    created: dict[str, Any] = tenant.ok("POST", DEVICES, json={**body, **fields})
    return created


def test_import_read_and_list(tenants: TenantFactory) -> None:
    tenant = tenants()
    made = device(
        tenant,
        serialNumber="SN-1",
        userPrincipalName="alex@contoso.example",
        complianceState="compliant",
        lastSyncDateTime="2026-01-02T03:04:05Z",
    )
    assert made["managementState"] == "managed" and made["deviceActionResults"] == []
    assert made["version"] == 1 and made["roleScopeTagIds"] == ["0"]
    got = tenant.ok("GET", f"{DEVICES}/{made['id']}")
    assert (got["serialNumber"], got["lastSyncDateTime"]) == ("SN-1", "2026-01-02T03:04:05Z")
    listed = tenant.ok("GET", DEVICES, params={"$filter": "complianceState eq 'compliant'"})
    assert [d["id"] for d in listed["value"]] == [made["id"]]
    for body, field in (
        ({"operatingSystem": "Windows"}, "deviceName"),
        ({"deviceName": "x", "operatingSystem": "BeOS"}, "operatingSystem"),
        ({"deviceName": "x", "operatingSystem": "iOS", "colour": "red"}, "colour"),
    ):
        refused = tenant.call("POST", DEVICES, json=body)
        assert refused.status_code == 400 and field in refused.json()["error"]["message"]


def test_wipe_then_check_in(tenants: TenantFactory) -> None:
    tenant = tenants()
    made = device(tenant)
    url = f"{DEVICES}/{made['id']}"
    wiped = tenant.call("POST", f"{url}/wipe", json={"keepUserData": False})
    assert wiped.status_code == 204, wiped.text
    got = tenant.ok("GET", url)
    assert got["managementState"] == "wipePending" and got["version"] == 2
    [result] = got["deviceActionResults"]
    assert (result["actionName"], result["actionState"]) == ("wipe", "pending")
    assert result["startDateTime"] and result["lastUpdatedDateTime"]
    again = tenant.call("POST", f"{url}/retire")
    assert again.status_code == 409
    assert tenant.call("POST", f"{url}/wipe", json={"bogus": 1}).status_code == 400

    assert tenant.call("POST", f"{url}/syncDevice").status_code == 204
    # `wiped` is Countersign's member after unknownFutureValue (Graph's evolvable enums).
    got = tenant.ok("GET", url, headers={"Prefer": "include-unknown-enum-members"})
    assert got["managementState"] == "wiped" and got["version"] == 3
    assert tenant.ok("GET", url)["managementState"] == "unknownFutureValue"
    assert got["deviceActionResults"][0]["actionState"] == "done"
    assert got["lastSyncDateTime"] is not None
    # A check-in with nothing pending changes no version (approval requests stay valid).
    tenant.ok("POST", f"{url}/syncDevice")
    assert tenant.ok("GET", url)["version"] == 3


def test_retire_then_check_in_then_delete(tenants: TenantFactory) -> None:
    tenant = tenants()
    url = f"{DEVICES}/{device(tenant)['id']}"
    assert tenant.call("POST", f"{url}/retire", headers={"If-Match": 'W/"9"'}).status_code == 412
    assert tenant.ok("GET", url)["managementState"] == "managed"
    tenant.ok("POST", f"{url}/retire", headers={"If-Match": 'W/"1"'})
    assert tenant.ok("GET", url)["managementState"] == "retirePending"
    tenant.ok("POST", f"{url}/syncDevice")
    assert (
        tenant.ok("GET", url, headers={"Prefer": "include-unknown-enum-members"})["managementState"]
        == "retired"
    )
    assert tenant.call("DELETE", url).status_code == 204
    assert tenant.call("GET", url).status_code == 404
    activities = [
        e["activity"]
        for e in tenant.ok(
            "GET",
            "/beta/deviceManagement/auditEvents",
            params={"$filter": "category eq 'Device'", "$orderby": "sequence"},
        )["value"]
    ]
    assert activities == [
        "Create managedDevice",
        "retire managedDevice",
        "syncDevice managedDevice",
        "Delete managedDevice",
    ]


def test_bulk_action_reports_each_device(tenants: TenantFactory) -> None:
    tenant = tenants()
    first, second, gone = device(tenant), device(tenant), device(tenant)
    tenant.ok("POST", f"{DEVICES}/{gone['id']}/retire")
    elsewhere = device(tenants())
    missing = str(uuid.uuid4())
    result = tenant.ok(
        "POST",
        f"{DEVICES}/executeAction",
        json={
            "actionName": "wipe",
            "deviceIds": [first["id"], second["id"], gone["id"], elsewhere["id"], missing],
        },
    )
    assert result["@odata.type"] == "#microsoft.graph.bulkManagedDeviceActionResult"
    assert sorted(result["successfulDeviceIds"]) == sorted([first["id"], second["id"]])
    assert result["notSupportedDeviceIds"] == [gone["id"]]
    assert sorted(result["notFoundDeviceIds"]) == sorted([elsewhere["id"], missing])
    assert result["failedDeviceIds"] == []
    for made in (first, second):
        assert tenant.ok("GET", f"{DEVICES}/{made['id']}")["managementState"] == "wipePending"

    deleted = tenant.ok(
        "POST",
        f"{DEVICES}/executeAction",
        json={"actionName": "delete", "deviceIds": [first["id"], second["id"]]},
    )
    assert sorted(deleted["successfulDeviceIds"]) == sorted([first["id"], second["id"]])
    assert tenant.call("GET", f"{DEVICES}/{first['id']}").status_code == 404
    for body in (
        {"actionName": "syncDevice", "deviceIds": [gone["id"]]},
        {"actionName": "wipe", "deviceIds": []},
        {"actionName": "wipe"},
    ):
        assert tenant.call("POST", f"{DEVICES}/executeAction", json=body).status_code == 400


def test_bulk_plan_locks_and_versions_every_device(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    ids = [device(tenant)["id"] for _ in range(3)]
    caller = caller_for(db, tenant.id, tenant.admin.id)
    change = Change("managedDevices", ACTION, action_name="retire", target_ids=tuple(ids))
    with db.read() as session:
        plan = plan_change(session, caller, change, datetime.now(UTC))
    assert (plan.entity_type, plan.policy_type, plan.platform) == (
        "managedDevice",
        "deviceRetire",
        "notApplicable",
    )
    assert sorted(plan.entity_keys) == sorted(f"managedDevices:{i}" for i in ids)
    assert plan.versions == dict.fromkeys(ids, 1)
    assert plan.after is not None
    assert {d["managementState"] for d in plan.after["value"]} == {"retirePending"}


def test_remote_tasks_need_their_permissions(tenants: TenantFactory) -> None:
    tenant = tenants()
    sales = tenant.scope_tag(unique("sales"))
    made, hidden = device(tenant), device(tenant, roleScopeTagIds=[sales])
    url = f"{DEVICES}/{made['id']}"
    help_desk = tenant.user(roles=("Help Desk Operator",))  # may retire and sync, not wipe
    assert tenant.call("POST", f"{url}/wipe", help_desk).status_code == 403
    assert tenant.call("DELETE", url, help_desk).status_code == 403
    assert (
        tenant.call(
            "POST", DEVICES, help_desk, json={"deviceName": "x", "operatingSystem": "iOS"}
        ).status_code
        == 403
    )
    refused = tenant.ok(
        "POST",
        f"{DEVICES}/executeAction",
        help_desk,
        json={"actionName": "retire", "deviceIds": [made["id"], hidden["id"]]},
    )
    assert refused["successfulDeviceIds"] == [made["id"]]
    assert refused["notFoundDeviceIds"] == [hidden["id"]]  # out of its scope tags: hidden
    assert (
        tenant.call(
            "POST",
            f"{DEVICES}/executeAction",
            help_desk,
            json={"actionName": "wipe", "deviceIds": [made["id"]]},
        ).status_code
        == 403
    )
    listed = tenant.ok("GET", DEVICES, help_desk)["value"]
    assert [d["id"] for d in listed] == [made["id"]]
    assert tenant.call("GET", f"{DEVICES}/{hidden['id']}", help_desk).status_code == 404
    assert tenant.call("POST", f"{DEVICES}/{hidden['id']}/syncDevice", help_desk).status_code == 404
    stranger = tenants()
    assert stranger.call("GET", url).status_code == 404
    assert stranger.call("POST", f"{url}/wipe").status_code == 404


def test_csv_import(tenants: TenantFactory, import_devices: Any) -> None:
    tenant = tenants()
    sales = tenant.scope_tag(unique("sales"))
    result = import_devices(
        "deviceName,operatingSystem,osVersion,serialNumber,userPrincipalName,complianceState,"
        "lastSyncDateTime,roleScopeTagIds\n"
        "PC-1,Windows,10.0.22631,SN1,alex@contoso.example,compliant,2026-01-01T00:00:00Z,0\n"
        f"MAC-1,macOS,14.5,SN2,,noncompliant,,0;{sales}\n"
        "PHONE-1,iOS,17.5,,,,,\n",
        tenant.id,
    )
    assert result.exit_code == 0, result.output
    assert "imported 3" in result.output
    listed = {d["deviceName"]: d for d in tenant.ok("GET", DEVICES)["value"]}
    assert set(listed) == {"PC-1", "MAC-1", "PHONE-1"}
    assert listed["MAC-1"]["roleScopeTagIds"] == ["0", sales]
    assert listed["PC-1"]["complianceState"] == "compliant"


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ("A,Windows,\nB,Solaris,\nC,iOS,\n", 3, "operatingSystem"),
        ("A,Windows,\nB,iOS,\n,iOS,\n", 4, "deviceName"),
        ("A,Windows,\nB,iOS,999\n", 3, "999"),
        ("A,Windows,,extra\n", 2, "more cells"),
    ],
)
def test_csv_with_a_bad_row_imports_nothing(
    tenants: TenantFactory,
    import_devices: Any,
    rows: str,
    line: int,
    fragment: str,
) -> None:
    tenant = tenants()
    result = import_devices("deviceName,operatingSystem,roleScopeTagIds\n" + rows, tenant.id)
    output = " ".join(result.output.split())  # Rich wraps long lines
    assert result.exit_code == 2
    assert f"Line {line}:" in output and fragment in output, output
    assert "Nothing was imported" in output
    assert tenant.ok("GET", DEVICES)["value"] == []


def test_csv_with_an_unknown_column_is_refused(tenants: TenantFactory, import_devices: Any) -> None:
    tenant = tenants()
    result = import_devices("deviceName,operatingSystem,colour\nA,Windows,red\n", tenant.id)
    assert result.exit_code == 2 and "colour" in result.output
