"""The seed's story in a real browser: an access policy for Apps is created, approved with notes
and completed; a protected script is deleted through a request; nobody approves their own
request; a form without its CSRF token is refused; a justification is shown as text."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, Principal, Tenant, TenantFactory, unique

pytestmark = pytest.mark.e2e

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
CONSOLE_ERRORS: list[str] = []


def sign_in(browser: Browser, base: str, upn: str, shot: str | None = None) -> Page:
    page = browser.new_context(base_url=base, viewport={"width": 1366, "height": 860}).new_page()
    # A console error would be a page script failing or the CSP refusing something.
    page.on("console", lambda m: CONSOLE_ERRORS.append(m.text) if m.type == "error" else None)
    page.goto("/admin/sign-in")
    page.get_by_label("User name").fill(upn)
    page.get_by_label("Password").fill(PASSWORD)
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def seed_tenant(tenants: TenantFactory) -> tuple[Tenant, Principal, str]:
    """Administrators 1 and 2 and an *Intune Change Approvers* group on a role assignment."""
    tenant = tenants()
    admin2 = tenant.user(unique("admin2"), roles=("Intune Administrator",))
    approvers_name = unique("Intune Change Approvers")
    approvers = tenant.group(approvers_name)
    tenant.add_member(approvers, tenant.admin.id)
    tenant.add_member(approvers, admin2.id)
    tenant.assign("Multi Admin Approval Approver", [approvers])
    return tenant, admin2, approvers_name


def protect_through_api(tenant: Tenant, admin2: Principal, policy: dict[str, Any]) -> None:
    """Create an access policy by the API's handshake (set-up for the browser part)."""
    response = tenant.call(
        "POST",
        "/beta/deviceManagement/operationApprovalPolicies",
        headers={"x-msft-approval-justification": base64.b64encode(b"set-up").decode()},
        json=policy,
    )
    assert response.status_code == 403, response.text
    request_id = response.headers["x-msft-approval-code"]
    tenant.ok("POST", f"{REQUESTS}/{request_id}/approve", admin2, json={"justification": "ok"})
    tenant.ok("POST", f"{REQUESTS}/{request_id}/complete")


def test_the_seed_story_in_the_browser(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant, admin2, approvers_name = seed_tenant(tenants)
    approvers_id = tenant.groups[approvers_name]
    script_name = unique("Legacy cleanup")
    script = tenant.ok(
        "POST",
        "/beta/deviceManagement/deviceManagementScripts",
        json={
            "displayName": script_name,
            "description": "Removes old agents",
            "fileName": "cleanup.ps1",
            "scriptContent": base64.b64encode(b"Remove-Item C:\\old -Recurse").decode(),
        },
    )
    for n, system in enumerate(("Windows", "iOS", "macOS")):
        tenant.ok(
            "POST",
            "/beta/deviceManagement/managedDevices",
            json={
                "deviceName": f"CONTOSO-{system.upper()}-{n + 1:02d}",
                "operatingSystem": system,
                "osVersion": "10.0" if system == "Windows" else "17.4",
                "userPrincipalName": tenant.admin.upn,
                "complianceState": "compliant",
            },
        )
    protect_through_api(
        tenant,
        admin2,
        {
            "displayName": "Protect scripts",
            "policyType": "script",
            "policyPlatform": "notApplicable",
            "approverGroupIds": [approvers_id],
        },
    )

    # -- administrator 1 creates an access policy for Apps -----------------------------------
    admin1 = sign_in(browser, live_server, tenant.admin.upn, shot="01-sign-in")
    screenshot(admin1, "02-home")
    admin1.get_by_role("link", name="Multi Admin Approval").click()
    expect(admin1.get_by_role("heading", name="Multi Admin Approval")).to_be_visible()
    admin1.get_by_role("link", name="+ Create").click()
    admin1.get_by_label("Name").fill("Protect apps")
    admin1.get_by_label("Description").fill("Four eyes on every app change")
    admin1.locator("#next").click()
    admin1.get_by_label("Scripts (all platforms)").check()
    admin1.locator("#next").click()
    # Scripts apply to all platforms: the platform choices are greyed out.
    expect(admin1.locator("input[name=platform][value=windows]")).to_be_disabled()
    admin1.get_by_role("button", name="2. Policy type").click()
    admin1.get_by_label("Apps", exact=True).check()
    admin1.locator("#next").click()
    expect(admin1.locator("input[name=platform][value=windows]")).to_be_enabled()
    admin1.locator("input[name=platform][value=windows]").check()
    screenshot(admin1, "03-wizard-platforms")
    admin1.locator("#next").click()
    admin1.locator("#next").click()  # Scope and exclusions: none, every app is protected
    admin1.get_by_label(approvers_name).check()
    admin1.locator("#next").click()
    expect(admin1.get_by_role("heading", name="Review + submit for approval")).to_be_visible()
    justification = "<script>window.pwned = true</script> Protect app changes, per the audit"
    admin1.locator("#justification").fill(justification)
    screenshot(admin1, "04-wizard-review")
    admin1.get_by_role("button", name="Submit for approval").click()

    expect(admin1.locator("#request-status")).to_have_text("Needs approval")
    policy_request = admin1.url.split("?")[0]
    # The justification is shown as text, never run.
    expect(admin1.locator("#request-justification")).to_have_text(justification)
    assert admin1.evaluate("() => window.pwned === undefined")
    # Administrator 1 cannot approve their own request.
    expect(admin1.locator("#approve")).to_have_count(0)
    expect(admin1.locator("#cannot-approve")).to_contain_text("You are the requester")
    screenshot(admin1, "05-request-requester-view")

    # -- administrator 2 approves it with notes ----------------------------------------------
    approver = sign_in(browser, live_server, admin2.upn)
    expect(approver.locator("#waiting-count .badge")).to_have_text("1")
    approver.get_by_role("link", name="Multi Admin Approval").click()
    approver.get_by_role("link", name="All requests").click()
    expect(approver.locator(".status.s-needsApproval").first).to_be_visible()
    screenshot(approver, "06-all-requests")
    approver.get_by_role("link", name="Create access policy Protect apps").click()
    screenshot(approver, "07-request-approver-view")
    approver.get_by_label("Approver notes").fill("Checked with the change board")
    approver.get_by_role("button", name="Approve request").click()
    expect(approver.locator("#request-status")).to_have_text("Approved")
    expect(approver.get_by_text("Checked with the change board")).to_be_visible()

    # -- administrator 1 completes it --------------------------------------------------------
    admin1.goto(policy_request)
    expect(admin1.locator("#request-status")).to_have_text("Approved")
    expect(admin1.get_by_text("Checked with the change board")).to_be_visible()
    admin1.get_by_role("button", name="Complete request").click()
    expect(admin1.locator("#request-status")).to_have_text("Completed")
    admin1.get_by_role("link", name="Access policies").click()
    expect(admin1.get_by_role("link", name="Protect apps")).to_be_visible()
    expect(admin1.get_by_role("cell", name="Windows only")).to_be_visible()
    screenshot(admin1, "08-access-policies")

    # -- administrator 1 deletes a protected script with a justification ---------------------
    admin1.get_by_role("link", name="Scripts and remediations").click()
    screenshot(admin1, "09-scripts")
    admin1.get_by_role("link", name=script_name).click()
    admin1.get_by_role("link", name="Delete").click()
    expect(admin1.get_by_role("heading", name="Review + submit for approval")).to_be_visible()
    admin1.locator("#justification").fill("The agent is gone from every device")
    screenshot(admin1, "10-delete-script-review")
    admin1.get_by_role("button", name="Submit for approval").click()
    expect(admin1.locator("#request-status")).to_have_text("Needs approval")
    delete_request = admin1.url.split("?")[0]
    admin1.goto(f"/admin/scripts/{script['id']}")
    expect(admin1.get_by_text("An approval request for this script is open")).to_be_visible()

    approver.get_by_role("link", name="Waiting for me").click()
    approver.get_by_role("link", name=f"Delete PowerShell script {script_name}").click()
    # The summary says what goes; the raw object is one click away.
    expect(approver.locator("#request-title")).to_have_text(
        f"Delete PowerShell script {script_name}"
    )
    expect(approver.get_by_role("rowheader", name="/displayName")).to_be_hidden()
    approver.get_by_text("Full object before and after").click()
    expect(approver.get_by_role("rowheader", name="/displayName")).to_be_visible()
    approver.get_by_role("button", name="Approve request").click()
    expect(approver.locator("#request-status")).to_have_text("Approved")

    admin1.goto(delete_request)
    admin1.get_by_role("button", name="Complete request").click()
    expect(admin1.locator("#request-status")).to_have_text("Completed")
    admin1.get_by_role("link", name="Scripts and remediations").click()
    expect(admin1.get_by_role("link", name=script_name)).to_have_count(0)
    gone = tenant.call("GET", f"/beta/deviceManagement/deviceManagementScripts/{script['id']}")
    assert gone.status_code == 404

    admin1.goto("/admin/requests/mine")
    screenshot(admin1, "11-my-requests")
    admin1.get_by_role("link", name="Devices").click()
    screenshot(admin1, "12-devices")
    admin1.get_by_role("link", name="Audit log").click()
    screenshot(admin1, "13-audit-log")
    # htmx filters: choosing a status reloads the list in place.
    admin1.goto("/admin/requests")
    admin1.get_by_label("Status").select_option("completed")
    expect(admin1.locator(".status.s-completed")).to_have_count(3)
    expect(admin1.locator(".status.s-needsApproval")).to_have_count(0)
    expect(admin1).to_have_url(re.compile(r"status=completed"))
    assert CONSOLE_ERRORS == []


def test_a_form_without_its_csrf_token_is_refused(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant = tenants()
    page = sign_in(browser, live_server, tenant.admin.upn)
    page.goto("/admin/groups")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/admin/groups/new';
                for (const [name, value] of [['displayName', 'forged'], ['step', 'submit']]) {
                    const input = document.createElement('input');
                    input.name = name; input.value = value; form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }"""
        )
    response = navigation.value
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Request refused")).to_be_visible()
    page.goto("/admin/groups")
    expect(page.get_by_role("link", name="forged")).to_have_count(0)


def test_bulk_device_action_applies_at_once_when_unprotected(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant = tenants()
    names = [unique("LAPTOP") for _ in range(2)]
    for name in names:
        tenant.ok(
            "POST",
            "/beta/deviceManagement/managedDevices",
            json={"deviceName": name, "operatingSystem": "Windows"},
        )
    page = sign_in(browser, live_server, tenant.admin.upn)
    page.get_by_role("link", name="Devices").click()
    for name in names:
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Retire", exact=True).click()
    expect(page.get_by_role("heading", name="Retire 2 devices")).to_be_visible()
    expect(page.locator("#justification")).to_have_count(0)  # no policy: no approval step
    page.get_by_role("button", name="Retire", exact=True).click()
    expect(page.get_by_text("Done.")).to_be_visible()
    expect(page.get_by_role("cell", name="retirePending")).to_have_count(2)
