"""A two-stage access policy in a real browser: the wizard offers scope tags, exclusions and
stages; a request under it is approved by a team lead (stage 1), refused to a security officer
before that, then approved by the officer (stage 2); the request page shows each stage with who
decided."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, TenantFactory
from tests.maa import seed

pytestmark = pytest.mark.e2e

APPS = "/beta/deviceAppManagement/mobileApps"


def signed_in(browser: Browser, base: str, upn: str) -> Page:
    page = browser.new_context(base_url=base, viewport={"width": 1366, "height": 860}).new_page()
    page.goto("/admin/sign-in")
    page.get_by_label("User name").fill(upn)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def test_a_two_stage_request_walked_in_the_browser(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    s = seed(tenants)
    tenant = s.tenant
    security = tenant.group("Security")
    tenant.assign("Multi Admin Approval Approver", [security])
    officer = tenant.user("officer", groups=(security,))
    tenant.user("officer2", groups=(security,))
    tenant.scope_tag("Finance")
    tenant.service_principal("Build robot")

    # The wizard, as administrator 1: basics, type, platforms, scope, two stages, review.
    admin1 = signed_in(browser, live_server, s.admin1.upn)
    admin1.goto("/admin/access-policies/new")
    admin1.get_by_label("Name").fill("Two-stage apps")
    admin1.get_by_label("Approval window").fill("48")
    admin1.locator("#next").click()
    admin1.get_by_label("Apps").check()
    admin1.locator("#next").click()
    admin1.get_by_label("Non-Windows only").check()
    admin1.locator("#next").click()
    expect(admin1.get_by_text("Scope: protect only objects with these scope tags")).to_be_visible()
    expect(admin1.get_by_label("Finance")).to_be_visible()
    expect(admin1.get_by_label("Build robot")).to_be_visible()
    admin1.locator("#next").click()
    admin1.locator(f'input[name="approverGroupIds"][value="{s.approvers}"]').check()
    admin1.locator("#add-stage").click()
    expect(admin1.get_by_text("Stage 2: approvers: add groups")).to_be_visible()
    admin1.locator(f'input[name="stage2GroupIds"][value="{security}"]').check()
    admin1.locator("#next").click()
    expect(admin1.get_by_role("row", name="Stage 2")).to_contain_text("Security")
    screenshot(admin1, "staged-01-wizard-review")
    admin1.get_by_label("Business justification").fill("Two pairs of eyes, in order")
    admin1.locator("#submit").click()
    expect(admin1.locator("#request-status")).to_have_text("Needs approval")
    policy_request = admin1.url.split("?")[0].rsplit("/", 1)[-1]
    assert s.approve(policy_request).status_code == 200
    assert s.complete(policy_request).status_code == 201

    request_id = s.submit(
        "POST",
        APPS,
        json={
            "@odata.type": "#microsoft.graph.iosStoreApp",
            "displayName": "Expenses",
            "appStoreUrl": "https://apps.apple.com/app/expenses",
        },
    )
    url = f"/admin/requests/{request_id}"

    # The security officer cannot decide before stage 1 has.
    early = signed_in(browser, live_server, officer.upn)
    early.goto(url)
    expect(early.locator("#stage-1")).to_contain_text("Deciding now")
    expect(early.locator("#stage-2")).to_contain_text("Waiting for the stages before it")
    expect(early.locator("#approve")).to_have_count(0)
    expect(early.get_by_text("stage 1 must be approved first")).to_be_visible()

    lead = signed_in(browser, live_server, s.admin2.upn)
    lead.goto(url)
    lead.get_by_label("Approver notes").fill("Team lead: fine")
    lead.locator("#approve").click()
    expect(lead.locator("#stage-1")).to_contain_text("Approved")
    expect(lead.locator("#stage-1")).to_contain_text("admin2 approved")
    expect(lead.locator("#request-status")).to_have_text("Needs approval")
    expect(lead.locator("#approve")).to_have_count(0)  # one person, one stage

    early.goto(url)
    expect(early.locator("#stage-2")).to_contain_text("Deciding now")
    early.locator("#approve").click()
    expect(early.locator("#request-status")).to_have_text("Approved")
    expect(early.locator("#stage-2")).to_contain_text("officer approved")
    expect(early.locator("#applied-policies")).to_have_text("Two-stage apps")
    screenshot(early, "staged-02-request-approved")
