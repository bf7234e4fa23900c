"""The admin center's forms and daily pages over HTTP, without a browser (so without any
script): edits send only what changed, errors come back at the field, a password never reaches
a page, wipe options become Graph's wipe body, members with nested groups, navigation by
permission, names instead of ids, and an empty bulk selection answered in place."""

from __future__ import annotations

import base64
import re

from fastapi import FastAPI

from countersign.store.db import Database
from tests.factories import TenantFactory, unique
from tests.integration.test_admin_center import Browser, approver_tenant, protect, signed_in

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
SCRIPTS = "/beta/deviceManagement/deviceManagementScripts"


def test_an_edit_sends_only_what_changed(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    content = "Write-Host 'one'\nWrite-Host 'two'\n"
    script = tenant.ok(
        "POST",
        SCRIPTS,
        json={
            "displayName": unique("Inventory"),
            "fileName": "inventory.ps1",
            "scriptContent": base64.b64encode(content.encode()).decode(),
        },
    )
    web = signed_in(app, tenant.admin.upn)
    form = web.get(f"/admin/scripts/{script['id']}/edit").text
    assert "Write-Host &#39;one&#39;" in form  # the script decoded, as text
    assert f'value="{script["displayName"]}"' in form
    version = re.search(r'name="version" value="(\d+)"', form).group(1)  # type: ignore[union-attr]
    same = {
        "version": version,
        "f_displayName": script["displayName"],
        "f_description": "",
        "f_fileName": "inventory.ps1",
        "f_scriptContent": content.replace("\n", "\r\n"),  # as a browser sends a textarea
        "f_runAsAccount": "system",
        "f_roleScopeTagIds": "0",
        "properties": "{}",
    }
    nothing = web.post(f"/admin/scripts/{script['id']}/edit", {**same, "step": "review"})
    assert nothing.status_code == 200 and "Nothing was changed." in nothing.text
    assert 'id="object-form"' in nothing.text  # in place: the form again, not a dead end
    changed = {**same, "f_description": "Counts the agents"}
    review = web.post(f"/admin/scripts/{script['id']}/edit", {**changed, "step": "review"})
    rows = re.findall(r'<th scope="row">([^<]+)</th>', review.text)
    assert rows == ["Description"], rows
    done = web.post(f"/admin/scripts/{script['id']}/edit", {**changed, "step": "submit"})
    assert done.status_code == 303
    stored = tenant.ok("GET", f"{SCRIPTS}/{script['id']}")
    assert stored["description"] == "Counts the agents"
    assert base64.b64decode(stored["scriptContent"]).decode() == content


def test_a_validation_error_is_shown_at_its_field(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/compliance-policies/new?type=windows10CompliancePolicy")
    response = web.post(
        "/admin/compliance-policies/new",
        {
            "step": "review",
            "odataType": "windows10CompliancePolicy",
            "f_displayName": "Too short",
            "f_passwordMinimumLength": "2",
            "f_roleScopeTagIds": "0",
        },
    )
    assert response.status_code == 200
    error = re.search(r'id="f_passwordMinimumLength-error"[^>]*>([^<]+)<', response.text)
    assert error and "passwordMinimumLength" in error.group(1)
    assert 'value="Too short"' in response.text  # what was typed stays


def test_a_password_is_sealed_between_steps_and_never_shown(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    secret = "Sealed-" + unique("pw")
    upn = f"{unique('casey')}@{tenant.domain}".lower()
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/users/new")
    fields = {"f_displayName": "Casey", "f_userPrincipalName": upn, "f_accountEnabled": "on"}
    review = web.post(
        "/admin/users/new", {**fields, "f_passwordProfile__password": secret, "step": "review"}
    )
    assert secret not in review.text
    assert re.search(r'<th scope="row">password</th><td class="prewrap">set</td>', review.text)
    sealed = re.search(r'name="f_passwordProfile__password_sealed" value="([^"]+)"', review.text)
    assert sealed is not None
    # Another session cannot open it.
    other = signed_in(app, tenant.admin.upn)
    other.get("/admin/users/new")
    refused = other.post(
        "/admin/users/new",
        {**fields, "f_passwordProfile__password_sealed": sealed.group(1), "step": "submit"},
    )
    assert "type it again" in refused.text
    created = web.post(
        "/admin/users/new",
        {**fields, "f_passwordProfile__password_sealed": sealed.group(1), "step": "submit"},
    )
    assert created.status_code == 303
    page = web.follow(created).text
    assert secret not in page
    tenant.sign_in(upn, secret)


def test_wipe_options_are_frozen_as_graphs_wipe_body(tenants: TenantFactory, app: FastAPI) -> None:
    tenant, admin2_upn, approvers = approver_tenant(tenants)
    device = tenant.ok(
        "POST",
        "/beta/deviceManagement/managedDevices",
        json={"deviceName": unique("MAC"), "operatingSystem": "macOS"},
    )["id"]
    protect(tenant, admin2_upn, approvers, "Protect wipes", "deviceWipe")
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/devices")
    confirm = web.post("/admin/devices/action", {"action": "wipe", "device_id": device})
    assert "Wipe options" in confirm.text and "macOS unlock code" in confirm.text
    submitted = web.post(
        "/admin/devices/action",
        {
            "action": "wipe",
            "device_id": device,
            "f_keepEnrollmentData": "on",
            "f_useProtectedWipe": "on",
            "f_macOsUnlockCode": "123456",
            "step": "submit",
            "justification": "Lost on a train",
        },
    )
    wipe_request = submitted.headers["location"].split("?")[0].rsplit("/", 1)[-1]
    frozen = tenant.ok("GET", f"{REQUESTS}/{wipe_request}")["payload"]
    assert frozen["actionName"] == "wipe"
    assert frozen["body"] == {
        "keepEnrollmentData": True,
        "useProtectedWipe": True,
        "macOsUnlockCode": "123456",
    }


def test_an_empty_bulk_selection_is_answered_on_the_list(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/devices")
    response = web.post("/admin/devices/action", {"action": "wipe"})
    assert response.status_code == 200
    assert "Select at least one device first." in response.text
    assert "All devices" in response.text and "Back to Home" not in response.text


def test_members_show_nested_groups_and_remove_applies(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    outer, inner = tenant.group(unique("Outer")), tenant.group(unique("Inner"))
    member = tenant.user(unique("nested"))
    tenant.add_member(inner, member.id)
    tenant.add_member(outer, inner)
    web = signed_in(app, tenant.admin.upn)
    page = web.get(f"/admin/groups/{outer}/members").text
    assert "Group" in page and member.upn in page and "via" in page
    picker = web.get(f"/admin/groups/{outer}/members?q=nested").text
    assert "Add selected" in picker and member.upn in picker  # it can be added directly too
    robot_name = unique("Deploy robot")
    robot = tenant.service_principal(robot_name)
    found = web.get(f"/admin/groups/{outer}/members?q=deploy robot").text
    assert robot_name in found and "Service principal" in found
    added = web.post(
        f"/admin/groups/{outer}/members/add", {"member_id": robot.id, "step": "submit"}
    )
    assert added.headers["location"] == f"/admin/groups/{outer}/members?notice=added"
    assert robot_name in web.get(f"/admin/groups/{outer}/members").text
    web.post(f"/admin/groups/{outer}/members/remove", {"member_id": robot.id, "step": "submit"})
    review = web.post(f"/admin/groups/{outer}/members/remove", {"member_id": inner})
    assert "Review" in review.text and "Business justification" not in review.text
    done = web.post(f"/admin/groups/{outer}/members/remove", {"member_id": inner, "step": "submit"})
    assert done.headers["location"] == f"/admin/groups/{outer}/members?notice=removed"
    members = tenant.ok("GET", f"/beta/groups/{outer}/members")["value"]
    assert members == []


def test_navigation_shows_only_what_the_administrator_may_open(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    role = tenant.ok(
        "POST",
        "/beta/deviceManagement/roleDefinitions",
        json={
            "displayName": unique("Apps reader"),
            "rolePermissions": [
                {
                    "resourceActions": [
                        {"allowedResourceActions": ["Microsoft.Intune_MobileApps_Read"]}
                    ]
                }
            ],
        },
    )
    reader = tenant.user(unique("reader"))
    group = tenant.group(unique("Apps readers"))
    tenant.add_member(group, reader.id)
    tenant.ok(
        "POST",
        "/beta/deviceManagement/roleAssignments",
        json={
            "displayName": "Apps readers",
            "members": [group],
            "roleScopeTagIds": ["0"],
            "roleDefinitionId": role["id"],
        },
    )
    nav = signed_in(app, reader.upn).get("/admin").text.split('<nav class="sidenav"')[1]
    nav = nav.split("</nav>")[0]
    assert 'href="/admin/apps"' in nav
    for hidden in ("devices", "scripts", "users", "audit", "roles", "compliance-policies"):
        assert f'href="/admin/{hidden}"' not in nav, hidden
    full = signed_in(app, tenant.admin.upn).get("/admin").text
    assert 'href="/admin/devices"' in full and 'href="/admin/audit"' in full


def test_role_assignments_show_names_and_types_read_in_words(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant, _, approvers = approver_tenant(tenants)
    tenant.ok(
        "POST",
        "/beta/deviceAppManagement/mobileApps",
        json={
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": "Notes",
            "fileName": "n.intunewin",
            "installCommandLine": "i",
            "uninstallCommandLine": "u",
        },
    )
    web = signed_in(app, tenant.admin.upn)
    listing = web.get("/admin/role-assignments").text
    assert "Multi Admin Approval Approver" in listing and approvers not in listing
    assert "Default" in listing
    apps = web.get("/admin/apps").text
    assert "Windows app (Win32)" in apps and "win32LobApp" not in apps.split("<tbody>")[1]
    assert re.search(r'<time title="[A-Z][a-z]+day \d\d [A-Z][a-z]+ \d{4}, [\d:]+ UTC">', apps)
    found = web.get("/admin/apps?q=not").text
    assert ">Notes</a>" in found and "1 found" in found
    none = web.get("/admin/apps?q=zzz").text
    assert "Nothing matches." in none


def test_role_assignments_are_made_and_edited_with_pickers(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    helpdesk_name, field_name = unique("Helpdesk"), unique("Field staff")
    helpdesk, field = tenant.group(helpdesk_name), tenant.group(field_name)
    role_id = tenant.roles["Help Desk Operator"]
    web = signed_in(app, tenant.admin.upn)
    form = web.get("/admin/role-assignments/new").text
    assert helpdesk_name in form and "Help Desk Operator" in form and "Default" in form
    fields = {
        "f_displayName": "Helpdesk everywhere",
        "f_roleDefinitionId": role_id,
        "f_members": helpdesk,
        "f_roleScopeTagIds": "0",
    }
    review = web.post("/admin/role-assignments/new", {**fields, "step": "review"}).text
    assert f'<td class="prewrap">{helpdesk_name}</td>' in review
    assert (
        '<td class="prewrap">Help Desk Operator</td>' in review
        and helpdesk not in review.split("<form")[0]
    )
    created = web.post("/admin/role-assignments/new", {**fields, "step": "submit"})
    assignment_id = created.headers["location"].split("?")[0].rsplit("/", 1)[-1]
    page = web.get(f"/admin/role-assignments/{assignment_id}").text
    assert helpdesk_name in page and "Help Desk Operator" in page and role_id not in page
    edit = web.get(f"/admin/role-assignments/{assignment_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', edit).group(1)  # type: ignore[union-attr]
    web.client.post(
        f"/admin/role-assignments/{assignment_id}/edit",
        data={
            "csrf_token": web.csrf,
            "version": version,
            "f_displayName": "Helpdesk everywhere",
            "f_description": "",
            "f_members": [helpdesk, field],
            "f_roleScopeTagIds": "0",
            "step": "submit",
        },
    )
    stored = tenant.ok("GET", f"/beta/deviceManagement/roleAssignments/{assignment_id}")
    assert sorted(stored["members"]) == sorted([helpdesk, field])


def test_every_form_and_daily_page_renders_for_the_demo_tenant(app: FastAPI, db: Database) -> None:
    from countersign.services.demo import ensure_demo_tenant
    from countersign.web.forms import FORMS

    demo = ensure_demo_tenant(db)
    web = Browser(app)
    web.get("/admin/sign-in")
    web.post("/admin/sign-in", {"username": demo.administrators[0], "password": demo.password})
    pages = []
    for slug, form in FORMS.items():
        pages += [f"/admin/{slug}/new?type={value}" for value, _ in form.types]
    for slug in ("apps", "scripts", "compliance-policies", "configuration-policies", "groups"):
        listing = web.get(f"/admin/{slug}").text
        first = re.search(rf'href="/admin/{slug}/([0-9a-f-]{{36}})"', listing)
        if first is None:
            continue
        pages.append(f"/admin/{slug}/{first.group(1)}/edit")
        extra = "members" if slug == "groups" else "assignments"
        pages += [f"/admin/{slug}/{first.group(1)}/{extra}", f"/admin/{slug}/{first.group(1)}"]
    pages.append("/admin/devices?q=a&operatingSystem=Windows&complianceState=compliant")
    assert len(pages) > 15
    for path in pages:
        response = web.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "Something went wrong" not in response.text, path
