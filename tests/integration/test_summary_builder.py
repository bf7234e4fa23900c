"""`build_summary` on planned changes the gate does not (yet) protect, and "what it grants" from
a hand-built access-change description (the four-eyes check's output, wired in elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from countersign.domain import permissions as p
from countersign.domain.summary import summary_lines
from countersign.services.catalog import plan_change
from countersign.services.changes import ACTION, CREATE, DELETE, UPDATE, Change
from countersign.services.demo import caller_for
from countersign.services.summary import build_summary
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, TenantFactory
from tests.maa import seed


def summarise(
    db: Database, tenant_id: str, user_id: str, change: Change, access: Any = None
) -> dict[str, Any]:
    caller = caller_for(db, tenant_id, user_id)
    with db.read() as session:
        plan = plan_change(session, caller, change, datetime.now(UTC))
        return build_summary(session, caller, change, plan, access_change=access)


def test_what_it_grants_names_the_principal_the_role_the_tags_and_the_policies(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    tenant = s.tenant
    alice = tenant.ok(
        "POST",
        "/beta/users",
        json={"displayName": "Alice Example", "userPrincipalName": f"alice@{tenant.domain}"},
    )
    admins = tenant.group("Intune Administrators")
    paris = tenant.scope_tag("Paris")
    apps = s.activate_policy("app")
    with db.read() as session:
        role = session.get(t.RoleDefinition, tenant.roles["Intune Administrator"])
        assert role is not None
        administrator = sorted(role.permissions)
    access = {
        "gains": [
            {
                "principalId": alice["id"],
                "permissions": [
                    {"permission": permission, "scopeTagIds": ["*"]} for permission in administrator
                ]
                + [
                    {"permission": p.APPROVAL_FOR_MAA, "scopeTagIds": ["0", paris]},
                    {"permission": p.MOBILE_APPS_READ, "scopeTagIds": ["0", paris]},
                ],
                "approvalPolicyIds": [apps],
            }
        ],
        "subjects": [alice["id"]],
        "credentials": [],
    }
    change = Change(
        "groups",
        ACTION,
        admins,
        {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{alice['id']}"},
        action_name="addMember",
    )
    summary = summarise(db, tenant.id, tenant.admin.id, change, access)
    upn = alice["userPrincipalName"]
    assert summary["grants"] == [
        f"Alice Example ({upn}) gains: Intune Administrator permissions over all scope tags; "
        "Approval for Multi Admin Approval, Mobile apps: read over scope tags Default, Paris; "
        "can approve requests of 'Protect app'",
        f"Changes the access of: Alice Example ({upn})",
    ]
    assert "What it grants:" in summary_lines(summary)
    gone = "6f1c2f5e-0000-4000-8000-000000000000"
    unknown = summarise(
        db, tenant.id, tenant.admin.id, change, {"gains": [], "credentials": [gone]}
    )
    assert unknown["grants"] == [f"Sets the credentials of: {gone} (no longer exists)"]


def test_user_create_and_delete_and_service_principal_secrets(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    upn = f"bob@{tenant.domain}"
    create = Change(
        "users",
        CREATE,
        body={
            "displayName": "Bob Builder",
            "userPrincipalName": upn,
            "accountEnabled": True,
            "passwordProfile": {"password": PASSWORD},
        },
    )
    created = summarise(db, tenant.id, tenant.admin.id, create)
    assert created["title"] == f"Create user Bob Builder ({upn})"
    assert summary_lines(created) == [
        "Name: Bob Builder",
        f"User principal name: {upn}",
        "Account enabled: Yes",
        "Password: set (hidden)",
    ]
    bob = tenant.ok("POST", "/beta/users", json=create.body)
    deleted = summarise(db, tenant.id, tenant.admin.id, Change("users", DELETE, bob["id"]))
    assert deleted["title"] == f"Delete user Bob Builder ({upn})"
    renamed = summarise(
        db,
        tenant.id,
        tenant.admin.id,
        Change("users", UPDATE, bob["id"], {"userPrincipalName": f"robert@{tenant.domain}"}),
    )
    assert renamed["title"] == f"Change user Bob Builder ({upn}): user principal name"
    assert summary_lines(renamed) == [f"User principal name: {upn} → robert@{tenant.domain}"]

    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": "Deploy bot"})
    secret = summarise(
        db,
        tenant.id,
        tenant.admin.id,
        Change(
            "servicePrincipals",
            ACTION,
            sp["id"],
            {"passwordCredential": {"displayName": "CI"}},
            action_name="addPassword",
        ),
    )
    assert secret["title"] == "Add a secret to service principal Deploy bot"
    assert summary_lines(secret) == ["Secret: set (hidden)", "Description: CI"]
    for summary in (created, deleted, renamed, secret):
        assert PASSWORD not in str(summary) and "argon2" not in str(summary)


def test_removing_a_member(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    group = tenant.group("Helpdesk")
    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": "Deploy bot"})
    tenant.add_member(group, sp["id"])
    change = Change(
        "groups",
        ACTION,
        group,
        {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{sp['id']}"},
        action_name="removeMember",
    )
    summary = summarise(db, tenant.id, tenant.admin.id, change)
    assert summary["title"] == "Remove service principal Deploy bot from group Helpdesk"
    assert summary_lines(summary) == [
        "Member removed: Deploy bot (removed)",
        "Group: Helpdesk",
    ]


def test_the_remaining_types_and_operations(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    pilots = tenant.group("Pilots")
    berlin = tenant.scope_tag("Berlin")
    admin = tenant.admin.id

    def of(change: Change) -> tuple[str, list[str]]:
        summary = summarise(db, tenant.id, admin, change)
        shown = "\n".join([summary["title"], *summary_lines(summary)])
        for word in ("@odata", "etag", "Version:", "createdDateTime", "lastModifiedDateTime"):
            assert word not in shown, shown
        return summary["title"], summary_lines(summary)

    role = tenant.ok(
        "POST",
        "/beta/deviceManagement/roleDefinitions",
        json={
            "displayName": "App readers",
            "rolePermissions": [
                {"resourceActions": [{"allowedResourceActions": [p.MOBILE_APPS_READ]}]}
            ],
        },
    )
    edited = Change(
        "roleDefinitions",
        UPDATE,
        role["id"],
        {
            "rolePermissions": [
                {"resourceActions": [{"allowedResourceActions": [p.MOBILE_APPS_ASSIGN]}]}
            ]
        },
    )
    assert of(edited) == (
        "Change role App readers: permissions",
        ["Permissions: added Mobile apps: assign; removed Mobile apps: read"],
    )
    assert of(Change("roleDefinitions", DELETE, role["id"])) == (
        "Delete role App readers",
        ["Name: App readers", "Scope tags: Default"],
    )
    assert of(Change("roleScopeTags", UPDATE, berlin, {"displayName": "Berlin office"})) == (
        "Change scope tag Berlin: name",
        ["Name: Berlin → Berlin office"],
    )
    assert of(Change("roleScopeTags", DELETE, berlin))[0] == "Delete scope tag Berlin"

    compliance = tenant.ok(
        "POST",
        "/beta/deviceManagement/deviceCompliancePolicies",
        json={
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "iOS baseline",
            "osMinimumVersion": "16.0",
        },
    )
    collection = "deviceCompliancePolicies"
    assert of(Change(collection, UPDATE, compliance["id"], {"osMinimumVersion": "17.0"})) == (
        "Change compliance policy iOS baseline: minimum OS version",
        ["Minimum OS version: 16.0 → 17.0"],
    )
    target = {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": pilots}
    assert of(
        Change(collection, "Assign", compliance["id"], {"assignments": [{"target": target}]})
    ) == (
        "Change assignments of compliance policy iOS baseline",
        ["Assignments:", "  Exclude group Pilots [added]"],
    )
    assert of(Change(collection, DELETE, compliance["id"])) == (
        "Delete compliance policy iOS baseline",
        ["Name: iOS baseline", "Type: iOS/iPadOS", "Scope tags: Default"],
    )

    configuration = tenant.ok(
        "POST",
        "/beta/deviceManagement/configurationPolicies",
        json={"name": "Edge", "platforms": "windows10", "description": "Browser"},
    )
    assert of(
        Change("configurationPolicies", UPDATE, configuration["id"], {"description": "Edge"})
    ) == ("Change configuration policy Edge: description", ["Description: Browser → Edge"])
    assert of(Change("configurationPolicies", DELETE, configuration["id"]))[1] == [
        "Name: Edge",
        "Description: Browser",
        "Scope tags: Default",
    ]

    script = tenant.ok(
        "POST",
        "/beta/deviceManagement/deviceManagementScripts",
        json={
            "displayName": "Inventory",
            "scriptContent": "R2V0LUNvbXB1dGVySW5mbw==",
            "fileName": "i.ps1",
        },
    )
    include = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": pilots}
    assert of(
        Change(
            "deviceManagementScripts",
            "Assign",
            script["id"],
            {"deviceManagementScriptAssignments": [{"target": include}]},
        )
    ) == (
        "Change assignments of PowerShell script Inventory",
        ["Assignments:", "  Include group Pilots [added]"],
    )

    assert of(Change("deviceCategories", CREATE, body={"displayName": "Kiosk"})) == (
        "Create device category Kiosk",
        ["Name: Kiosk", "Scope tags: Default"],
    )
    category = tenant.ok(
        "POST", "/beta/deviceManagement/deviceCategories", json={"displayName": "Lab"}
    )
    assert of(Change("deviceCategories", DELETE, category["id"]))[0] == "Delete device category Lab"

    group = of(
        Change(
            "groups",
            CREATE,
            body={
                "displayName": "Contractors",
                "members@odata.bind": [
                    f"https://graph.microsoft.com/v1.0/directoryObjects/{tenant.admin.id}"
                ],
            },
        )
    )
    assert group == (
        "Create group Contractors",
        [
            "Name: Contractors",
            "Security group: Yes",
            "Mail-enabled: No",
            f"Members: Administrator 1 ({tenant.admin.upn})",
        ],
    )


def test_a_notification_channel_shows_where_it_delivers_never_its_secret_or_token(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    token = "T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
    change = Change(
        "notificationChannels",
        CREATE,
        body={
            "displayName": "Ops",
            "channelType": "webhook",
            "url": f"https://hooks.example.com/services/{token}",
            "secret": "s3cret-key-for-hmac-0123456789",
        },
    )
    summary = summarise(db, tenant.id, tenant.admin.id, change)
    shown = "\n".join([summary["title"], *summary_lines(summary)])
    assert summary["title"] == "Create notification channel Ops"
    assert "Channel type: Webhook" in shown and "URL: https://hooks.example.com/…" in shown
    assert "Secret: set (hidden)" in shown
    assert token not in shown and "s3cret" not in shown
