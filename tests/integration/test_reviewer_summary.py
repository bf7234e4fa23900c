"""The reviewer sees what they approve: `displayPayload.summary` for every protected type and
operation — a title a person would say, labelled rows with names for ids, no housekeeping, and
no secret anywhere."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from countersign.cli import app as cli
from countersign.cli import out as cli_out
from countersign.config import Settings
from countersign.domain.summary import summary_lines
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import PASSWORD, Principal, TenantFactory, as_user, unique
from tests.integration.receivers import channel_bodies, http_receiver, smtp_receiver
from tests.integration.test_admin_center import signed_in
from tests.maa import POLICIES, REQUESTS, SCOPE_TAGS, Seed, b64, seed

APPS = "/beta/deviceAppManagement/mobileApps"
CHANNELS = "/beta/deviceManagement/notificationChannels"
SCRIPTS = "/beta/deviceManagement/deviceManagementScripts"
HEALTH = "/beta/deviceManagement/deviceHealthScripts"
SHELL = "/beta/deviceManagement/deviceShellScripts"
COMPLIANCE = "/beta/deviceManagement/deviceCompliancePolicies"
CONFIGURATION = "/beta/deviceManagement/configurationPolicies"
CATEGORIES = "/beta/deviceManagement/deviceCategories"
DEVICES = "/beta/deviceManagement/managedDevices"
ROLES = "/beta/deviceManagement/roleDefinitions"
ASSIGNMENTS = "/beta/deviceManagement/roleAssignments"
GRAPH_ROLES = "https://graph.microsoft.com/beta/deviceManagement/roleDefinitions"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HOUSEKEEPING = ("@odata", "etag", "version", "createdDateTime", "lastModifiedDateTime", "None")

PROTECTED = (
    "app",
    "script",
    "role",
    "deviceWipe",
    "deviceRetire",
    "deviceDelete",
    "compliancePolicy",
    "configurationPolicy",
    "tenantConfiguration",
)


def assignments(*targets: tuple[str, str | None, str]) -> dict[str, Any]:
    """Graph's assign body from (target type, its group or None, intent) triples."""
    return {
        "assignments": [
            {
                "target": {"@odata.type": f"#microsoft.graph.{kind}"}
                | ({"groupId": group} if group else {}),
                "intent": intent,
            }
            for kind, group, intent in targets
        ]
    }


@dataclass
class World:
    s: Seed
    alice: Principal
    admins_group: str
    paris: str
    reviewers: str

    def summary(self, request_id: str) -> dict[str, Any]:
        summary: dict[str, Any] = self.s.request(request_id)["displayPayload"]["summary"]
        return summary

    def submit(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Submit, read the summary, and cancel (so the object is free for the next step)."""
        request_id = self.s.submit(method, path, **kwargs)
        summary = self.summary(request_id)
        self.s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})
        return summary

    def assign(self, role: str, groups: list[str], tags: tuple[str, ...] = ("0",)) -> str:
        role_id = self.s.tenant.roles[role]
        made = self.done(
            "POST",
            ASSIGNMENTS,
            json={
                "displayName": unique("assignment"),
                "members": groups,
                "roleScopeTagIds": list(tags),
                "roleDefinition@odata.bind": f"{GRAPH_ROLES}('{role_id}')",
            },
        )
        assignment_id: str = made["id"]
        return assignment_id

    def done(self, method: str, path: str, **kwargs: Any) -> Any:
        """A protected write through the whole flow; returns what completion answered."""
        request_id = self.s.submit(method, path, **kwargs)
        assert self.s.approve(request_id).status_code == 200
        completed = self.s.complete(request_id)
        assert completed.status_code < 300, completed.text
        return completed.json() if completed.content else None


def text(summary: dict[str, Any]) -> str:
    return "\n".join([summary["title"], *summary_lines(summary)])


def clean(summary: dict[str, Any]) -> str:
    """The summary's text, checked for what must never be in it: ids and housekeeping."""
    shown = text(summary)
    for word in HOUSEKEEPING:
        assert word not in shown, (word, shown)
    assert not GUID.search(shown.replace("(no longer exists)", "")), shown
    return shown


@pytest.fixture
def world(tenants: TenantFactory) -> World:
    s = seed(tenants)
    tenant = s.tenant
    upn = f"alice@{tenant.domain}"
    made = tenant.ok(
        "POST",
        "/beta/users",
        json={
            "displayName": "Alice Example",
            "userPrincipalName": upn,
            "accountEnabled": True,
            "passwordProfile": {"password": PASSWORD},
        },
    )
    alice = Principal(made["id"], upn, "")
    admins_group = tenant.group("Intune Administrators")
    tenant.assign("Intune Administrator", [admins_group])
    paris = tenant.scope_tag("Paris")
    reviewers = tenant.group("App reviewers")
    tenant.assign("Multi Admin Approval Approver", [reviewers])
    tenant.add_member(reviewers, alice.id)
    for policy_type in PROTECTED:
        s.activate_policy(policy_type)
    return World(s, alice, admins_group, paris, reviewers)


def _app_body(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.win32LobApp",
        "displayName": "7-Zip",
        "publisher": "Igor Pavlov",
        "fileName": "7z.intunewin",
        "installCommandLine": "7z.exe /S",
        "uninstallCommandLine": "7z.exe /uninstall",
        "roleScopeTagIds": ["0", w.paris],
        **extra,
    }


def _app(w: World, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = w.done("POST", APPS, json=_app_body(w, **extra))
    return created


def test_app_create_edit_assign_delete(world: World) -> None:
    w = world
    created = w.submit("POST", APPS, json=_app_body(w))
    assert created["title"] == "Create app 7-Zip (Windows app (Win32))"
    shown = clean(created)
    for line in (
        "Type: Windows app (Win32)",
        "Name: 7-Zip",
        "Publisher: Igor Pavlov",
        "Install command: 7z.exe /S",
        "Uninstall command: 7z.exe /uninstall",
        "Scope tags: Default, Paris",
        "Featured: No",
    ):
        assert line in shown, (line, shown)

    app = _app(w, displayName="7-Zip 24")
    edited = w.submit(
        "PATCH", f"{APPS}/{app['id']}", json={"installCommandLine": "7z.exe /S /D=C:\\7z"}
    )
    assert edited["title"] == "Change app 7-Zip 24: install command"
    assert summary_lines(edited) == ["Install command: 7z.exe /S → 7z.exe /S /D=C:\\7z"]
    clean(edited)

    group = w.s.tenant.group("Finance laptops")
    excluded = w.s.tenant.group("Kiosks")
    request_id = w.s.submit(
        "POST",
        f"{APPS}/{app['id']}/assign",
        json=assignments(
            ("groupAssignmentTarget", group, "required"),
            ("exclusionGroupAssignmentTarget", excluded, "required"),
        ),
    )
    assigned = w.summary(request_id)
    assert assigned["title"] == "Change assignments of app 7-Zip 24"
    assert summary_lines(assigned) == [
        "Assignments:",
        "  Include group Finance laptops (Required) [added]",
        "  Exclude group Kiosks (Required) [added]",
    ]
    clean(assigned)
    w.s.approve(request_id)
    assert w.s.complete(request_id).status_code < 300
    reassigned = w.submit(
        "POST",
        f"{APPS}/{app['id']}/assign",
        json=assignments(
            ("allLicensedUsersAssignmentTarget", None, "available"),
            ("groupAssignmentTarget", group, "required"),
        ),
    )
    assert summary_lines(reassigned) == [
        "Assignments:",
        "  Include all users (Available) [added]",
        "  Include group Finance laptops (Required)",
        "  Exclude group Kiosks (Required) [removed]",
    ]

    deleted = w.submit("DELETE", f"{APPS}/{_app(w, displayName='Old tool')['id']}")
    assert deleted["title"] == "Delete app Old tool"
    assert summary_lines(deleted) == [
        "Name: Old tool",
        "Type: Windows app (Win32)",
        "Scope tags: Default, Paris",
    ]


def test_script_create_edit_as_decoded_text_and_a_line_diff_and_delete(world: World) -> None:
    w = world
    body = "Remove-Item $env:TEMP\\* -Recurse\nWrite-Host 'done'\n"
    created = w.submit(
        "POST",
        SCRIPTS,
        json={
            "displayName": "Clean temp files",
            "scriptContent": b64(body),
            "fileName": "clean.ps1",
            "runAsAccount": "system",
        },
    )
    assert created["title"] == "Create PowerShell script Clean temp files"
    shown = clean(created)
    assert "Run as: System" in shown and "File name: clean.ps1" in shown
    assert "Script content:\n  Remove-Item $env:TEMP\\* -Recurse\n  Write-Host 'done'" in shown
    assert b64(body) not in shown

    script = w.done(
        "POST",
        SCRIPTS,
        json={"displayName": "Clean temp files", "scriptContent": b64(body), "fileName": "c.ps1"},
    )
    new_body = "Remove-Item $env:TEMP\\* -Recurse -Force\nWrite-Host 'done'\n"
    edited = w.submit("PATCH", f"{SCRIPTS}/{script['id']}", json={"scriptContent": b64(new_body)})
    assert edited["title"] == "Change PowerShell script Clean temp files: script"
    assert edited["content"][0]["diff"] == [
        "@@ -1,2 +1,2 @@",
        "-Remove-Item $env:TEMP\\* -Recurse",
        "+Remove-Item $env:TEMP\\* -Recurse -Force",
        " Write-Host 'done'",
    ]
    clean(edited)

    deleted = w.submit("DELETE", f"{SCRIPTS}/{script['id']}")
    assert deleted["title"] == "Delete PowerShell script Clean temp files"
    assert summary_lines(deleted) == ["Name: Clean temp files", "Scope tags: Default"]


def test_remediation_shell_compliance_configuration_and_category(world: World) -> None:
    w = world
    health = w.submit(
        "POST",
        HEALTH,
        json={
            "displayName": "Fix spooler",
            "detectionScriptContent": b64("Get-Service Spooler"),
            "remediationScriptContent": b64("Restart-Service Spooler"),
        },
    )
    assert health["title"] == "Create remediation script Fix spooler"
    assert [(b["label"], b["text"]) for b in health["content"]] == [
        ("Detection script", "Get-Service Spooler"),
        ("Remediation script", "Restart-Service Spooler"),
    ]
    shell = w.submit(
        "POST",
        SHELL,
        json={
            "displayName": "Brew update",
            "scriptContent": b64("brew update"),
            "fileName": "b.sh",
        },
    )
    assert shell["title"] == "Create macOS shell script Brew update"

    compliance = w.submit(
        "POST",
        COMPLIANCE,
        json={
            "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
            "displayName": "Baseline",
            "passwordRequired": True,
            "passwordMinimumLength": 12,
        },
    )
    assert compliance["title"] == "Create compliance policy Baseline (Windows 10 and later)"
    shown = clean(compliance)
    assert "Require a password: Yes" in shown and "Minimum password length: 12" in shown

    configuration = w.submit(
        "POST",
        CONFIGURATION,
        json={"name": "Edge settings", "platforms": "windows10", "technologies": "mdm"},
    )
    assert configuration["title"] == "Create configuration policy Edge settings"
    shown = clean(configuration)
    assert "Platforms: Windows 10 and later" in shown and "Technologies: MDM" in shown
    assert shown.count("Name: Edge settings") == 1

    category = w.done("POST", CATEGORIES, json={"displayName": "Kiosk"})
    renamed = w.submit("PATCH", f"{CATEGORIES}/{category['id']}", json={"displayName": "Kiosks"})
    assert renamed["title"] == "Change device category Kiosk: name"
    assert summary_lines(renamed) == ["Name: Kiosk → Kiosks"]


def _device(w: World, name: str, upn: str | None, serial: str) -> dict[str, Any]:
    return w.s.tenant.device(
        name,
        serial,
        userPrincipalName=upn,
        complianceState="noncompliant",
        roleScopeTagIds=["0", w.paris],
    )


@pytest.mark.parametrize(("action", "verb"), [("wipe", "Wipe"), ("retire", "Retire")])
def test_device_action_single_and_bulk(world: World, action: str, verb: str) -> None:
    w = world
    one = _device(w, "CONTOSO-PC-002", "alex@contoso.example", "SN-2")
    two = _device(w, "CONTOSO-PC-003", None, "SN-3")
    body = {"keepUserData": True} if action == "wipe" else None
    single = w.submit("POST", f"{DEVICES}/{one['id']}/{action}", json=body)
    assert single["title"] == f"{verb} device CONTOSO-PC-002 (Windows, user alex@contoso.example)"
    shown = clean(single)
    assert (
        "CONTOSO-PC-002, Windows 10.0.22631, alex@contoso.example, serial SN-2, Not compliant, "
        "scope tags Default, Paris"
    ) in shown
    if action == "wipe":
        assert "Keep user data: Yes" in shown

    bulk = w.submit(
        "POST",
        f"{DEVICES}/executeAction",
        json={"actionName": action, "deviceIds": [one["id"], two["id"]]},
    )
    assert bulk["title"] == f"{verb} 2 devices: CONTOSO-PC-002, CONTOSO-PC-003"
    assert [d["name"] for d in bulk["devices"]] == ["CONTOSO-PC-002", "CONTOSO-PC-003"]
    assert bulk["devices"][1]["user"] is None
    shown = clean(bulk)
    assert "Devices (2):" in shown and "CONTOSO-PC-003, Windows 10.0.22631, no user" in shown


def test_device_delete_single_and_bulk(world: World) -> None:
    w = world
    one = _device(w, "CONTOSO-PC-010", "alex@contoso.example", "SN-10")
    two = _device(w, "CONTOSO-PC-011", "bob@contoso.example", "SN-11")
    single = w.submit("DELETE", f"{DEVICES}/{one['id']}")
    assert single["title"] == "Delete device CONTOSO-PC-010 (Windows, user alex@contoso.example)"
    clean(single)
    bulk = w.submit(
        "POST",
        f"{DEVICES}/executeAction",
        json={"actionName": "delete", "deviceIds": [one["id"], two["id"]]},
    )
    assert bulk["title"] == "Delete 2 devices: CONTOSO-PC-010, CONTOSO-PC-011"
    clean(bulk)


def test_membership_add_and_remove(world: World) -> None:
    w = world
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{w.alice.id}"}
    added = w.submit("POST", f"/beta/groups/{w.admins_group}/members/$ref", json=ref)
    upn = w.alice.upn
    assert added["title"] == f"Add user Alice Example ({upn}) to group Intune Administrators"
    assert summary_lines(added) == [
        f"Member added: Alice Example ({upn})",
        "Group: Intune Administrators",
        "What it grants:",
        f"  Alice Example ({upn}) gains: Intune Administrator permissions over scope tag Default",
        f"  Changes the access of: Alice Example ({upn})",
    ]
    clean(added)
    # Removing a member grants nothing, so it is not a request any more (issue 9); its
    # summary is tested on the builder (test_summary_builder.py).


def test_role_assignment_and_role_definition(world: World) -> None:
    w = world
    helpdesk = w.s.tenant.group("Helpdesk")
    role_id = w.s.tenant.roles["Intune Administrator"]
    assignment = w.submit(
        "POST",
        ASSIGNMENTS,
        json={
            "displayName": "Helpdesk admins",
            "members": [helpdesk],
            "roleScopeTagIds": ["0", w.paris],
            "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role_id}')",
        },
    )
    assert assignment["title"] == (
        "Assign role Intune Administrator to group Helpdesk (Helpdesk admins)"
    )
    shown = clean(assignment)
    assert "Member groups: Helpdesk" in shown and "Role: Intune Administrator" in shown
    assert "Scope tags: Default, Paris" in shown

    role = w.submit(
        "POST",
        ROLES,
        json={
            "displayName": "App readers",
            "rolePermissions": [
                {
                    "resourceActions": [
                        {
                            "allowedResourceActions": [
                                "Microsoft.Intune_MobileApps_Read",
                                "Microsoft.Intune_MobileApps_Assign",
                            ]
                        }
                    ]
                }
            ],
        },
    )
    assert role["title"] == "Create role App readers"
    assert "Permissions: Mobile apps: assign, Mobile apps: read" in clean(role)

    tag = w.submit("POST", SCOPE_TAGS, json={"displayName": "Berlin"})
    assert tag["title"] == "Create scope tag Berlin"


def test_role_assignment_edit_and_delete(world: World) -> None:
    w = world
    helpdesk = w.s.tenant.group("Helpdesk")
    assignment_id = w.assign("Read Only Operator", [helpdesk])
    edited = w.submit(
        "PATCH", f"{ASSIGNMENTS}/{assignment_id}", json={"members": [helpdesk, w.admins_group]}
    )
    assert edited["title"].endswith(": members")
    row = edited["rows"][0]
    assert (row["label"], row["added"], row["removed"]) == (
        "Member groups",
        ["Intune Administrators"],
        [],
    )
    assert "Member groups: added Intune Administrators" in clean(edited)
    other = w.assign("Read Only Operator", [helpdesk], ("0", w.paris))
    deleted = w.submit("DELETE", f"{ASSIGNMENTS}/{other}")
    assert deleted["title"].startswith("Delete role assignment assignment-")
    shown = clean(deleted)
    assert "Role: Read Only Operator" in shown and "Member groups: Helpdesk" in shown
    assert "Scope tags: Default, Paris" in shown


def test_access_policy_create_edit_delete_show_who_can_approve(world: World) -> None:
    w = world
    policy_body = {
        "displayName": "Protect Windows apps",
        "policyType": "app",
        "policyPlatform": "windows10AndLater,windows81AndLater,windows10X",
        "approverGroupIds": [w.reviewers],
    }
    created = w.submit("POST", POLICIES, json=policy_body)
    assert created["title"] == "Create access policy Protect Windows apps"
    shown = clean(created)
    assert "Policy type: Apps" in shown
    assert "Platforms: Windows 10 and later, Windows 8.1 and later, Windows 10X" in shown
    assert "Approver groups: App reviewers" in shown
    assert f"Can approve after: Alice Example ({w.alice.upn})" in shown
    assert (
        f"Alice Example ({w.alice.upn}) gains: can approve requests of 'Protect Windows apps'"
    ) in shown

    policy = w.done("POST", POLICIES, json=policy_body)
    edited = w.submit(
        "PATCH", f"{POLICIES}/{policy['id']}", json={"approverGroupIds": [w.s.approvers]}
    )
    assert edited["title"] == "Change access policy Protect Windows apps: approvers"
    shown = clean(edited)
    assert "Approver groups: added Intune Change Approvers; removed App reviewers" in shown
    assert f"Can approve now: Alice Example ({w.alice.upn})" in shown
    assert "Can approve after: admin2 (admin2@" in shown and ", Administrator 1 (admin@" in shown

    deleted = w.submit("DELETE", f"{POLICIES}/{policy['id']}")
    assert deleted["title"] == "Delete access policy Protect Windows apps"
    shown = clean(deleted)
    assert "Approver groups: App reviewers" in shown and "Can approve after: nobody" in shown


def test_user_credentials_never_show_the_password_or_its_hash(world: World) -> None:
    w = world
    secret = "Fresh-Passw0rd-42"
    request_id = w.s.submit(
        "PATCH",
        f"/beta/users/{w.s.admin2.id}",
        json={"passwordProfile": {"password": secret, "forceChangePasswordNextSignIn": True}},
    )
    summary = w.summary(request_id)
    assert summary["title"].startswith("Change user admin2 (admin2@")
    assert summary["title"].endswith(": password")
    admin2 = summary["title"].removeprefix("Change user ").removesuffix(": password")
    assert summary_lines(summary) == [
        "Password: set (hidden)",
        "Must change password at next sign-in: Yes",
        "What it grants:",
        f"  Changes the access of: {admin2}",
        f"  Sets the credentials of: {admin2}",
    ]
    answers = [
        w.s.tenant.call("GET", f"{REQUESTS}/{request_id}").text,
        w.s.tenant.call("GET", REQUESTS).text,
        w.s.tenant.call("GET", "/beta/deviceManagement/auditEvents", params={"$top": "999"}).text,
    ]
    for answer in answers:
        assert secret not in answer and "$argon2" not in answer and "argon2id" not in answer
    assert PASSWORD not in text(summary)


def test_a_rename_or_delete_after_submission_keeps_the_frozen_names(
    world: World, client: Any
) -> None:
    w = world
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{w.alice.id}"}
    request_id = w.s.submit("POST", f"/beta/groups/{w.admins_group}/members/$ref", json=ref)
    frozen = w.summary(request_id)
    w.s.tenant.ok("PATCH", f"/beta/users/{w.alice.id}", json={"displayName": "Alice Renamed"})
    assert w.summary(request_id) == frozen
    assert "Alice Example" in frozen["title"]
    assert frozen["refs"][w.alice.id]["name"] == f"Alice Example ({w.alice.upn})"

    app = _app(w, displayName="Doomed app", roleScopeTagIds=["0"])
    gone = w.s.tenant.group(unique("gone"))
    request_id = w.s.submit(
        "POST",
        f"{APPS}/{app['id']}/assign",
        json=assignments(("groupAssignmentTarget", gone, "required")),
    )
    before = w.summary(request_id)
    w.s.tenant.ok("DELETE", f"/beta/groups/{gone}")
    assert w.summary(request_id) == before


def test_notifications_and_the_list_carry_the_title(world: World) -> None:
    w = world
    request_id = w.s.submit("POST", SCOPE_TAGS, json={"displayName": "Lisbon"})
    listed = w.s.tenant.ok("GET", REQUESTS)["value"]
    mine = next(r for r in listed if r["id"] == request_id)
    assert mine["displayPayload"]["summary"]["title"] == "Create scope tag Lisbon"


def test_every_channel_carries_the_title_and_rows_and_never_a_secret(
    world: World, db: Database, settings: Settings
) -> None:
    w = world
    secret = "Fresh-Passw0rd-42"
    with smtp_receiver() as smtp, http_receiver() as http:
        # Channels are tenant configuration, protected here: each is made through a request.
        for body in channel_bodies(smtp, http):
            w.done("POST", CHANNELS, json=body)
        worker = Worker(db, settings)
        worker.run_once(now=datetime.now(UTC) + timedelta(seconds=1))  # the set-up's messages
        seen = {path: len(http.at(path)) for path in ("/hook", "/slack", "/teams")}
        mailed = len(smtp.messages)
        ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{w.alice.id}"}
        w.s.submit("POST", f"/beta/groups/{w.admins_group}/members/$ref", json=ref)
        w.s.submit(
            "PATCH", f"/beta/users/{w.s.admin2.id}", json={"passwordProfile": {"password": secret}}
        )
        worker.run_once(now=datetime.now(UTC) + timedelta(seconds=2))

    title = f"Add user Alice Example ({w.alice.upn}) to group Intune Administrators"
    new_mail = smtp.messages[mailed:]
    mails = [message.get_payload(decode=True).decode() for _, message in new_mail]
    subjects = [str(message["Subject"]) for _, message in new_mail]
    hooks = [r.json() for r in http.at("/hook")[seen["/hook"] :]]
    slack = [json.dumps(r.json(), ensure_ascii=False) for r in http.at("/slack")[seen["/slack"] :]]
    teams = [json.dumps(r.json(), ensure_ascii=False) for r in http.at("/teams")[seen["/teams"] :]]
    everything = [*mails, *subjects, *map(json.dumps, hooks), *slack, *teams]
    for shown in everything:
        assert secret not in shown and "argon2" not in shown

    def one(channel: list[str], text: str) -> str:
        found = [shown for shown in channel if text in shown]
        assert len(found) == 1, (text, channel)
        return found[0]

    hook_texts = [json.dumps(h, ensure_ascii=False) for h in hooks]
    mail_texts = [m + s for m, s in zip(mails, subjects, strict=True)]
    for channel in (mail_texts, hook_texts, slack, teams):
        membership = one(channel, title)
        assert "Member added" in membership and "Intune Administrators" in membership
        assert "What it grants" in membership
        password = one(channel, "Change user admin2")
        assert "Password" in password and "set (hidden)" in password
    assert "Member added: Alice Example" in one(mail_texts, title)
    assert any(h["summary"]["title"] == title for h in hooks)
    assert "Member added:* Alice Example" in one(slack, title)
    assert '{"title": "Member added", "value": "Alice Example' in one(teams, title)


def test_the_cli_shows_the_title_and_rows(
    world: World, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    w = world
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{w.alice.id}"}
    request_id = w.s.submit("POST", f"/beta/groups/{w.admins_group}/members/$ref", json=ref)
    as_user(monkeypatch, tmp_path, live_server, w.s.admin2)
    runner = CliRunner()
    shown = runner.invoke(cli, ["requests", "show", request_id])
    assert shown.exit_code == 0, shown.output
    title = f"Add user Alice Example ({w.alice.upn}) to group Intune Administrators"
    assert shown.output.splitlines()[0] == title
    assert f"Member added: Alice Example ({w.alice.upn})" in shown.output
    assert "Group: Intune Administrators" in shown.output
    assert "memberId" not in shown.output and w.alice.id not in shown.output
    monkeypatch.setattr(cli_out, "width", 400)  # one table row a line, for the assertion
    listed = runner.invoke(cli, ["requests", "list"])
    assert listed.exit_code == 0, listed.output
    assert title in listed.output and "Create scope tag" not in listed.output


def test_the_request_page_shows_current_names_and_never_a_secret(world: World, app: Any) -> None:
    w = world
    app_row = _app(w, displayName="Doomed app", roleScopeTagIds=["0"])
    gone = w.s.tenant.group("Temporary pilots")
    assign = w.s.submit(
        "POST",
        f"{APPS}/{app_row['id']}/assign",
        json=assignments(("groupAssignmentTarget", gone, "required")),
    )
    w.s.tenant.ok("DELETE", f"/beta/groups/{gone}")
    secret = "Fresh-Passw0rd-42"
    reset = w.s.submit(
        "PATCH", f"/beta/users/{w.s.admin2.id}", json={"passwordProfile": {"password": secret}}
    )
    web = signed_in(app, w.s.admin2.upn)
    page = web.get(f"/admin/requests/{assign}").text
    assert "Include</td><td>group Temporary pilots" in page
    assert '<span class="renamed">(now: no longer exists)</span>' in page
    page = web.get(f"/admin/requests/{reset}").text
    assert "Password</th>" in page and "set (hidden)" in page
    assert secret not in page and "argon2" not in page
    for listing in ("/admin/requests", "/admin"):
        shown = web.get(listing).text
        assert "Change user admin2" in shown and "argon2" not in shown
        assert "Change assignments of app Doomed app" in shown
