"""Tenant administration > Notifications in a real browser: a webhook channel is added through
its form and *Send test message* shows the channel's answer in place (htmx), then without a
working receiver, its error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_admin_center_story import sign_in
from tests.factories import TenantFactory
from tests.integration.receivers import http_receiver

pytestmark = pytest.mark.e2e


def test_add_a_webhook_and_send_a_test_message(
    tenants: TenantFactory, live_server: str, browser: Browser
) -> None:
    tenant = tenants()
    page = sign_in(browser, live_server, tenant.admin.upn)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with http_receiver() as receiver:
        receiver.script["/down"] = [503]
        page.get_by_role("link", name="Notifications").click()
        expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
        for name, path in (("Ops webhook", "/hook"), ("Broken webhook", "/down")):
            page.get_by_role("link", name="+ Webhook").click()
            page.get_by_label("Name").fill(name)
            page.get_by_label("URL").fill(receiver.url + path)
            page.get_by_label("Signing secret").fill("a-signing-secret-0123456789")
            page.get_by_role("button", name="Add").click()
            expect(page.get_by_text("Channel added.")).to_be_visible()
        page.get_by_role("button", name="Send test message on Ops webhook").click()
        expect(page.get_by_text("Test message delivered.")).to_be_visible()
        page.get_by_role("button", name="Send test message on Broken webhook").click()
        expect(page.get_by_text("Test message not delivered: HTTP 503")).to_be_visible()
        # Swapped in place by htmx: the first answer is still on the page.
        expect(page.get_by_text("Test message delivered.")).to_be_visible()
        screenshot(page, "14-notification-channels")
    assert len(receiver.at("/hook")) == 1
    assert errors == []
