"""Daily work in the admin center, in a real browser: apps, scripts and compliance policies
created with their forms under protective policies and approved; an edit that changes one field;
a member added to the approver group from its Members page (the seed's troubleshooting fix),
who then approves; an app assigned as required; a password that never reaches a page; device
search and a bulk action that stays disabled with nothing selected."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_admin_center_story import protect_through_api, seed_tenant
from tests.factories import PASSWORD, Principal, Tenant, TenantFactory, unique

pytestmark = pytest.mark.e2e

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
APPS = "/beta/deviceAppManagement/mobileApps"
WINDOWS = "windows10AndLater,windows81AndLater,windows10X"
CONSOLE_ERRORS: list[str] = []  # a page script failing, or the CSP refusing something


def sign_in(browser: Browser, base: str, upn: str, width: int = 1366) -> Page:
    page = browser.new_context(base_url=base, viewport={"width": width, "height": 860}).new_page()
    page.on("console", lambda m: CONSOLE_ERRORS.append(m.text) if m.type == "error" else None)
    page.goto("/admin/sign-in")
    page.get_by_label("User name", exact=True).fill(upn)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def submit_for_approval(page: Page, justification: str) -> str:
    """On a Review step: the protected last step, a justification, submit; the request's id."""
    expect(page.get_by_role("heading", name="Review + submit for approval")).to_be_visible()
    page.locator("#justification").fill(justification)
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#request-status")).to_have_text("Needs approval")
    return page.url.split("?")[0].rsplit("/", 1)[-1]


def approve_in_browser(approver: Page, request_id: str) -> None:
    approver.goto(f"/admin/requests/{request_id}")
    approver.get_by_role("button", name="Approve request").click()
    expect(approver.locator("#request-status")).to_have_text("Approved")


def complete_in_browser(page: Page, request_id: str) -> None:
    page.goto(f"/admin/requests/{request_id}")
    page.get_by_role("button", name="Complete request").click()
    expect(page.locator("#request-status")).to_have_text("Completed")


def protected_tenant(tenants: TenantFactory) -> tuple[Tenant, Principal, str]:
    tenant, admin2, approvers_name = seed_tenant(tenants)
    protect(tenant, admin2, approvers_name)
    return tenant, admin2, approvers_name


def protect(tenant: Tenant, admin2: Principal, approvers_name: str) -> None:
    """Access policies for Windows apps, scripts and Windows compliance policies."""
    approvers = tenant.groups[approvers_name]
    for policy_type, platform in (
        ("app", WINDOWS),
        ("script", "notApplicable"),
        ("compliancePolicy", WINDOWS),
    ):
        protect_through_api(
            tenant,
            admin2,
            {
                "displayName": f"Protect {policy_type}",
                "policyType": policy_type,
                "policyPlatform": platform,
                "approverGroupIds": [approvers],
            },
        )


def only(tenant: Tenant, path: str, name: str) -> dict[str, Any]:
    found = [o for o in tenant.ok("GET", path)["value"] if o["displayName"] == name]
    assert len(found) == 1, found
    return found[0]


def test_forms_create_under_approval_and_an_edit_changes_one_field(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant, admin2, _ = protected_tenant(tenants)
    admin1 = sign_in(browser, live_server, tenant.admin.upn)
    approver = sign_in(browser, live_server, admin2.upn)

    # -- a Win32 app -----------------------------------------------------------------------
    app_name = unique("Contoso VPN")
    admin1.get_by_role("link", name="Apps", exact=True).click()
    admin1.get_by_role("link", name="+ Create").click()
    screenshot(admin1, "15-app-type-picker")
    admin1.get_by_role("link", name="Windows app (Win32)").click()
    expect(admin1.get_by_role("heading", name="Create Windows app (Win32)")).to_be_visible()
    admin1.get_by_label("Name", exact=True).fill(app_name)
    admin1.get_by_label("Publisher", exact=True).fill("Contoso")
    admin1.get_by_label("App package file", exact=True).fill("vpn.intunewin")
    admin1.get_by_label("Install command", exact=True).fill("setup.exe /quiet")
    admin1.get_by_label("Uninstall command", exact=True).fill("setup.exe /uninstall /quiet")
    admin1.get_by_label("Show this as a featured app in the Company Portal", exact=True).check()
    screenshot(admin1, "16-app-form")
    admin1.locator("#next").click()
    expect(admin1.locator("#review")).to_contain_text("setup.exe /quiet")
    screenshot(admin1, "17-app-review")
    app_request = submit_for_approval(admin1, "New VPN client for the field team")

    # A required field left empty is named at the field, on the form itself.
    admin1.goto("/admin/apps/new?type=win32LobApp")
    admin1.get_by_label("Name", exact=True).fill(unique("No publisher"))
    admin1.get_by_label("App package file", exact=True).fill("x.intunewin")
    admin1.get_by_label("Install command", exact=True).fill("x")
    admin1.get_by_label("Uninstall command", exact=True).fill("x")
    admin1.locator("#f_publisher").evaluate("e => e.removeAttribute('required')")
    admin1.locator("#next").click()
    expect(admin1.locator("#f_publisher-error")).to_have_text("Publisher is required.")

    # -- a PowerShell script from a file ---------------------------------------------------
    script_name = unique("Clean temp")
    content = "Remove-Item $env:TEMP\\* -Recurse -Force\nWrite-Host 'done'\n"
    admin1.get_by_role("link", name="Scripts and remediations").click()
    admin1.get_by_role("link", name="+ Create").click()
    admin1.get_by_label("Name", exact=True).fill(script_name)
    admin1.get_by_label("Script file name", exact=True).fill("clean-temp.ps1")
    admin1.locator("#f_scriptContent_file").set_input_files(
        files=[{"name": "clean-temp.ps1", "mimeType": "text/plain", "buffer": content.encode()}]
    )
    screenshot(admin1, "18-script-form")
    admin1.locator("#next").click()
    expect(admin1.locator("#review")).to_contain_text("Write-Host 'done'")  # decoded, as text
    script_request = submit_for_approval(admin1, "Free disk space on kiosks")

    # -- a Windows compliance policy -------------------------------------------------------
    policy_name = unique("Windows baseline")
    admin1.get_by_role("link", name="Compliance").click()
    admin1.get_by_role("link", name="+ Create").click()
    admin1.get_by_role("link", name="Windows 10 and later").click()
    admin1.get_by_label("Name", exact=True).fill(policy_name)
    admin1.get_by_label("Require a password to unlock devices", exact=True).check()
    admin1.get_by_label("Minimum password length", exact=True).fill("12")
    admin1.get_by_label("Minimum OS version", exact=True).fill("10.0.19045")
    admin1.get_by_label("Require encryption of data storage", exact=True).check()
    screenshot(admin1, "19-compliance-form")
    admin1.locator("#next").click()
    policy_request = submit_for_approval(admin1, "Baseline for every Windows device")

    for request_id in (app_request, script_request, policy_request):
        approve_in_browser(approver, request_id)
        complete_in_browser(admin1, request_id)

    app = only(tenant, APPS, app_name)
    assert app["@odata.type"] == "#microsoft.graph.win32LobApp"
    assert (app["publisher"], app["fileName"], app["isFeatured"]) == (
        "Contoso",
        "vpn.intunewin",
        True,
    )
    assert app["installCommandLine"] == "setup.exe /quiet"
    assert app["uninstallCommandLine"] == "setup.exe /uninstall /quiet"
    script = only(tenant, "/beta/deviceManagement/deviceManagementScripts", script_name)
    assert base64.b64decode(script["scriptContent"]).decode() == content
    assert script["fileName"] == "clean-temp.ps1" and script["runAsAccount"] == "system"
    policy = only(tenant, "/beta/deviceManagement/deviceCompliancePolicies", policy_name)
    assert policy["@odata.type"] == "#microsoft.graph.windows10CompliancePolicy"
    assert (policy["passwordRequired"], policy["passwordMinimumLength"]) == (True, 12)
    assert (policy["osMinimumVersion"], policy["storageRequireEncryption"]) == ("10.0.19045", True)

    # -- edit one field: the request changes only that field --------------------------------
    admin1.goto(f"/admin/apps/{app['id']}")
    expect(admin1.get_by_text("Windows app (Win32)")).to_be_visible()
    admin1.get_by_role("link", name="Edit").click()
    expect(admin1.get_by_label("Publisher", exact=True)).to_have_value("Contoso")  # current values
    expect(admin1.get_by_label("Install command", exact=True)).to_have_value("setup.exe /quiet")
    admin1.get_by_label("Publisher", exact=True).fill("Fabrikam")
    admin1.locator("#next").click()
    expect(admin1.locator("#review")).to_contain_text("Contoso → Fabrikam")
    screenshot(admin1, "20-edit-review")
    edit_request = submit_for_approval(admin1, "The publisher was renamed")
    frozen = tenant.ok("GET", f"{REQUESTS}/{edit_request}")["payload"]
    assert frozen["operation"] == "Update" and frozen["body"] == {"publisher": "Fabrikam"}

    # The app is held by the request: Edit and Delete are disabled, with the reason and a link.
    admin1.goto(f"/admin/apps/{app['id']}")
    expect(admin1.locator("#edit")).to_have_attribute("aria-disabled", "true")
    expect(admin1.locator("#delete")).to_have_attribute("aria-disabled", "true")
    expect(admin1.locator("#held-reason a")).to_have_attribute(
        "href", f"/admin/requests/{edit_request}"
    )
    screenshot(admin1, "21-held-object")
    # Cancel request asks first.
    admin1.goto(f"/admin/requests/{edit_request}")
    admin1.get_by_role("link", name="Cancel request").click()
    expect(admin1.get_by_role("heading", name="Cancel this request?")).to_be_visible()
    screenshot(admin1, "22-cancel-confirm")
    admin1.get_by_role("button", name="Yes, cancel the request").click()
    expect(admin1.locator("#request-status")).to_have_text("Cancelled")
    assert CONSOLE_ERRORS == []


def test_add_a_member_to_the_approver_group_then_they_approve(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant, admin2, approvers_name = seed_tenant(tenants)
    admin3_name = unique("admin3")
    # Made before any policy: afterwards, granting a role is itself a request (four eyes).
    admin3 = tenant.user(admin3_name, roles=("Intune Administrator",))
    protect(tenant, admin2, approvers_name)
    admin1 = sign_in(browser, live_server, tenant.admin.upn)
    approver = sign_in(browser, live_server, admin2.upn)

    admin1.get_by_role("link", name="Groups and users").click()
    admin1.get_by_role("link", name="Groups", exact=True).click()
    admin1.get_by_role("link", name=approvers_name).click()
    admin1.get_by_role("link", name="Members").click()
    expect(admin1.locator("#members")).to_contain_text(tenant.admin.upn)
    expect(admin1.locator("#members")).to_contain_text("User")
    admin1.get_by_label("Search users, groups and service principals", exact=True).fill(admin3_name)
    admin1.get_by_role("button", name="Search").click()
    admin1.get_by_label(admin3_name).check()
    screenshot(admin1, "23-member-picker")
    admin1.get_by_role("button", name="Add selected").click()
    request_id = submit_for_approval(admin1, "A third approver for the holidays")
    approve_in_browser(approver, request_id)
    complete_in_browser(admin1, request_id)
    admin1.goto(f"/admin/groups/{tenant.groups[approvers_name]}/members")
    expect(admin1.locator("#members")).to_contain_text(admin3.upn)
    screenshot(admin1, "24-group-members")

    # The new member approves a protected change: the seed's fix worked.
    script = tenant.call(
        "POST",
        "/beta/deviceManagement/deviceManagementScripts",
        headers={"x-msft-approval-justification": base64.b64encode(b"new script").decode()},
        json={
            "displayName": unique("Inventory"),
            "fileName": "inventory.ps1",
            "scriptContent": base64.b64encode(b"Get-ComputerInfo").decode(),
        },
    )
    assert script.status_code == 403, script.text
    third = sign_in(browser, live_server, admin3.upn)
    approve_in_browser(third, script.headers["x-msft-approval-code"])


def test_assign_an_app_as_required_through_approval(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant, admin2, approvers_name = seed_tenant(tenants)
    app = tenant.ok(
        "POST",
        APPS,
        json={
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": unique("Contoso Notes"),
            "publisher": "Contoso",
            "fileName": "notes.intunewin",
            "installCommandLine": "setup.exe /quiet",
            "uninstallCommandLine": "setup.exe /uninstall",
        },
    )
    sales_name = unique("Sales laptops")
    sales = tenant.group(sales_name)
    protect_through_api(
        tenant,
        admin2,
        {
            "displayName": "Protect Windows apps",
            "policyType": "app",
            "policyPlatform": WINDOWS,
            "approverGroupIds": [tenant.groups[approvers_name]],
        },
    )
    admin1 = sign_in(browser, live_server, tenant.admin.upn)
    admin1.goto(f"/admin/apps/{app['id']}")
    admin1.get_by_role("link", name="Assignments").click()
    admin1.get_by_label(sales_name).select_option("required")
    screenshot(admin1, "25-assignments")
    admin1.locator("#next").click()
    expect(admin1.locator("#review")).to_contain_text("Include: Required")
    request_id = submit_for_approval(admin1, "Sales needs the notes app")
    tenant.ok("POST", f"{REQUESTS}/{request_id}/approve", admin2, json={"justification": "ok"})
    complete_in_browser(admin1, request_id)
    stored = tenant.ok("GET", f"{APPS}/{app['id']}")["assignments"]
    assert [(a["intent"], a["target"]["groupId"]) for a in stored] == [("required", sales)]
    admin1.goto(f"/admin/apps/{app['id']}/assignments")
    expect(admin1.locator("#current-assignments")).to_contain_text(sales_name)


def test_a_password_never_reaches_a_page(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant = tenants()
    secret = "Unseen-" + unique("pw")
    name = unique("Alex")
    upn = f"{name}@{tenant.domain}".lower()
    page = sign_in(browser, live_server, tenant.admin.upn)
    seen: list[str] = []

    def look() -> None:
        seen.append(page.content())
        seen.append(page.inner_text("body"))

    page.goto("/admin/users/new")
    page.get_by_label("Display name", exact=True).fill(name)
    page.get_by_label("User principal name", exact=True).fill(upn)
    page.get_by_label("Password", exact=True).fill(secret)
    page.locator("#next").click()
    expect(page.locator("#review")).to_contain_text("password")
    expect(page.get_by_role("row", name="password set")).to_be_visible()
    look()
    screenshot(page, "26-user-review")
    page.get_by_role("button", name="Create").click()
    look()
    user_url = page.url.split("?")[0]
    page.goto(f"{user_url}/edit")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    look()
    # A too-short password comes back at the field, still not echoed.
    page.get_by_label("Password", exact=True).fill("short")
    page.locator("#next").click()
    expect(page.locator("#f_passwordProfile__password-error")).to_be_visible()
    look()
    page.goto("/admin/users")
    look()
    page.goto("/admin/audit")
    look()
    assert len(seen) == 12 and all(secret not in text for text in seen)
    assert all('value="short"' not in text for text in seen)
    tenant.sign_in(upn, secret)  # and it was set


def test_device_search_wipe_options_and_bulk_needs_a_selection(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant = tenants()
    serial = unique("SN").upper()
    for n, system in enumerate(("Windows", "macOS", "iOS")):
        tenant.ok(
            "POST",
            "/beta/deviceManagement/managedDevices",
            json={
                "deviceName": f"{system.upper()}-{n:02d}-{serial[-6:]}",
                "operatingSystem": system,
                "serialNumber": serial if n == 1 else unique("OTHER").upper(),
                "userPrincipalName": tenant.admin.upn,
            },
        )
    page = sign_in(browser, live_server, tenant.admin.upn)
    page.get_by_role("link", name="Devices").click()
    for action in ("Wipe", "Retire", "Delete"):
        expect(page.get_by_role("button", name=action, exact=True)).to_be_disabled()
    page.get_by_label("Search by name, serial number or user", exact=True).fill(serial)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q="))
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("macOS")
    screenshot(page, "27-devices-search")
    page.locator("tbody input[type=checkbox]").check()
    expect(page.get_by_role("button", name="Wipe", exact=True)).to_be_enabled()
    page.get_by_role("button", name="Wipe", exact=True).click()
    page.get_by_label(re.compile("keep enrollment state")).check()
    page.get_by_label(re.compile("macOS unlock code")).fill("123456")
    screenshot(page, "28-wipe-options")
    page.get_by_role("button", name="Wipe", exact=True).click()
    expect(page.get_by_text("Done.")).to_be_visible()
    expect(page.get_by_role("cell", name="wipePending")).to_have_count(1)

    # From 360 px wide, the navigation folds behind a Menu button.
    narrow = sign_in(browser, live_server, tenant.admin.upn, width=360)
    expect(narrow.locator(".sidenav")).to_be_hidden()
    narrow.get_by_text("Menu").click()
    expect(narrow.get_by_role("link", name="Devices")).to_be_visible()
    screenshot(narrow, "29-narrow-menu")
    narrow.get_by_role("link", name="Devices").click()
    assert narrow.evaluate("() => document.documentElement.scrollWidth") <= 360
