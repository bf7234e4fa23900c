"""The reviewer's view in a real browser: a membership change, a bulk wipe and a script edit read
as a person would say them, with names, a device table and a line diff; the raw object stays one
click away; a rename after submission shows beside the frozen name; rejecting needs notes."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, TenantFactory
from tests.maa import Seed, b64, seed

pytestmark = pytest.mark.e2e

DEVICES = "/beta/deviceManagement/managedDevices"
SCRIPTS = "/beta/deviceManagement/deviceManagementScripts"


def approver_page(browser: Browser, base: str, s: Seed) -> Page:
    page = browser.new_context(base_url=base, viewport={"width": 1366, "height": 860}).new_page()
    page.goto("/admin/sign-in")
    page.get_by_label("User name").fill(s.admin2.upn)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def _world(tenants: TenantFactory) -> tuple[Seed, dict[str, Any], str]:
    s = seed(tenants)
    tenant = s.tenant
    alice = tenant.ok(
        "POST",
        "/beta/users",
        json={
            "displayName": "Alice Example",
            "userPrincipalName": f"alice@{tenant.domain}",
            "accountEnabled": True,
        },
    )
    admins = tenant.group("Intune Administrators")
    tenant.assign("Intune Administrator", [admins])
    for policy_type in ("deviceWipe", "script"):
        s.activate_policy(policy_type)
    return s, alice, admins


def test_membership_change_bulk_wipe_and_script_edit(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    s, alice, admins = _world(tenants)
    tenant = s.tenant
    upn = alice["userPrincipalName"]
    membership = s.submit(
        "POST",
        f"/beta/groups/{admins}/members/$ref",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{alice['id']}"},
        justification="Alice joins the Intune team (HR-1234)",
    )
    devices = [
        tenant.device(name, serial, userPrincipalName=user, complianceState=compliance)
        for name, serial, user, compliance in (
            ("CONTOSO-PC-001", "5CG1234ABC", "alex@contoso.example", "compliant"),
            ("CONTOSO-PC-002", "5CG5678DEF", "sam@contoso.example", "noncompliant"),
        )
    ]
    wipe = s.submit(
        "POST",
        f"{DEVICES}/executeAction",
        json={"actionName": "wipe", "deviceIds": [d["id"] for d in devices]},
        justification="Stolen laptops, police report 2026-118",
    )
    old = "Remove-Item $env:TEMP\\* -Recurse\nWrite-Host 'Temp cleaned'\n"
    request_id = s.submit(
        "POST",
        SCRIPTS,
        json={"displayName": "Clean temp files", "scriptContent": b64(old), "fileName": "c.ps1"},
    )
    assert s.approve(request_id).status_code == 200
    script = s.complete(request_id).json()
    new = "Remove-Item $env:TEMP\\* -Recurse -Force\nWrite-Host 'Temp cleaned'\n"
    script_edit = s.submit(
        "PATCH",
        f"{SCRIPTS}/{script['id']}",
        json={"scriptContent": b64(new)},
        justification="Locked files stopped the clean-up",
    )
    # Renamed after submission: the frozen name stays, the current one shows beside it.
    tenant.ok("PATCH", f"/beta/users/{alice['id']}", json={"displayName": "Alice Newname"})

    page = approver_page(browser, live_server, s)
    title = f"Add user Alice Example ({upn}) to group Intune Administrators"
    expect(page.get_by_role("link", name=title).first).to_be_visible()  # Home, waiting for you
    page.get_by_role("link", name=title).first.click()
    expect(page.locator("#request-title")).to_have_text(title)
    rows = page.locator("#summary-rows")
    expect(rows.get_by_role("rowheader", name="Member added")).to_be_visible()
    expect(rows).to_contain_text(f"Alice Example ({upn})")
    expect(rows).to_contain_text(f"(now: Alice Newname ({upn}))")
    expect(page.locator("#renamed-note")).to_be_visible()
    expect(page.locator("#summary-grants")).to_contain_text(
        f"Alice Example ({upn}) gains: Intune Administrator permissions over scope tag Default"
    )
    expect(page.get_by_text("/memberId")).to_be_hidden()
    screenshot(page, "15-request-membership")
    page.get_by_text("Full object before and after").click()
    expect(page.get_by_role("rowheader", name="/memberId")).to_be_visible()

    # Reject without notes: the error is at the field.
    page.get_by_role("button", name="Reject request").click()
    expect(page.locator("#notes-error")).to_have_text("Approver notes are required to reject.")
    expect(page.locator("#notes")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#request-status")).to_have_text("Needs approval")
    assert membership in page.url

    page.goto(f"/admin/requests/{wipe}")
    expect(page.locator("#request-title")).to_have_text(
        "Wipe 2 devices: CONTOSO-PC-001, CONTOSO-PC-002"
    )
    table = page.locator("#summary-devices")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").nth(0)).to_contain_text("CONTOSO-PC-001")
    expect(table.locator("tbody tr").nth(0)).to_contain_text("alex@contoso.example")
    expect(table.locator("tbody tr").nth(0)).to_contain_text("5CG1234ABC")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("Not compliant")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("Default")
    screenshot(page, "16-request-bulk-wipe")

    page.goto(f"/admin/requests/{script_edit}")
    expect(page.locator("#request-title")).to_have_text(
        "Change PowerShell script Clean temp files: script"
    )
    diff = page.locator("pre.linediff")
    expect(diff.locator(".del")).to_have_text("-Remove-Item $env:TEMP\\* -Recurse")
    expect(diff.locator(".ins")).to_have_text("+Remove-Item $env:TEMP\\* -Recurse -Force")
    expect(page.locator("#summary")).not_to_contain_text(b64(new))  # base64: raw object only
    screenshot(page, "17-request-script-edit")

    page.goto("/admin/requests")
    expect(
        page.get_by_role("link", name="Wipe 2 devices: CONTOSO-PC-001, CONTOSO-PC-002")
    ).to_be_visible()
    expect(page.get_by_role("columnheader", name="Time left")).to_be_visible()
