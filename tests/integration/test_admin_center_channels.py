"""Tenant administration > Notifications in the admin center (issue 6): channels added, edited,
tested and deleted through the forms, over the same services as the API."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, unique
from tests.integration.receivers import http_receiver
from tests.integration.test_admin_center import Browser, signed_in

PAGE = "/admin/tenant/notifications"
CHANNELS = "/beta/deviceManagement/notificationChannels"
SECRET = "web-form-secret-0123456789abcdef"


def add_webhook(web: Browser, name: str, url: str, secret: str = SECRET) -> object:
    web.get(f"{PAGE}/new?kind=webhook")
    return web.post(
        f"{PAGE}/new?kind=webhook",
        {"displayName": name, "enabled": "true", "url": url, "secret": secret},
    )


@pytest.fixture()
def tenant(tenants: TenantFactory) -> Tenant:
    return tenants()


@pytest.fixture()
def web(app: FastAPI, tenant: Tenant) -> Browser:
    """The tenant's first administrator, signed in to the admin center."""
    return signed_in(app, tenant.admin.upn)


def webhook_channel(web: Browser, db: Database, tenant_id: str, name: str) -> str:
    """A webhook added through the form; its id."""
    assert add_webhook(web, name, "https://hooks.example/cs").status_code == 303
    return channel_id(db, tenant_id, name)


def channel_id(db: Database, tenant_id: str, name: str) -> str:
    with db.read() as session:
        found = session.scalar(
            select(t.NotificationChannel.id).where(
                t.NotificationChannel.tenant_id == tenant_id,
                t.NotificationChannel.display_name == name,
            )
        )
    assert found is not None, name
    return found


def test_webhook_added_through_the_form_is_listed_without_its_secret_and_tested(
    tenant: Tenant, web: Browser, db: Database
) -> None:
    home = web.get("/admin")
    assert f'href="{PAGE}"' in home.text  # linked from the navigation
    form = web.get(f"{PAGE}/new?kind=webhook")
    for field in ("displayName", "url", "secret"):
        assert f'<label for="{field}"' in form.text and f'id="{field}"' in form.text
    name = unique("Ops hook")
    with http_receiver() as receiver:
        added = add_webhook(web, name, receiver.url + "/hook")
        listed = web.follow(added)
        assert listed.status_code == 200 and "Channel added." in listed.text
        assert name in listed.text and SECRET not in listed.text
        assert "http://127.0.0.1:" in listed.text and "/hook" not in listed.text  # host only
        # The same channel the API sees, secret kept for delivery but never shown.
        (api_channel,) = tenant.ok("GET", CHANNELS)["value"]
        assert api_channel["displayName"] == name and api_channel["hasSecret"] is True
        assert SECRET not in str(api_channel)

        cid = channel_id(db, tenant.id, name)
        tested = web.post(f"{PAGE}/{cid}/test")
        assert tested.status_code == 200
        assert "Test message delivered." in tested.text
    (delivery,) = receiver.at("/hook")
    assert delivery.json()["event"] == "test"
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-countersign-signature"] == f"sha256={expected}"
    with db.read() as session:
        activities = session.scalars(
            select(t.AuditEvent.activity).where(t.AuditEvent.tenant_id == tenant.id)
        ).all()
        assert "Create notificationChannel" in activities


def test_a_failing_receiver_shows_the_channels_error(
    tenant: Tenant, web: Browser, db: Database
) -> None:
    with http_receiver() as receiver:
        receiver.script["/broken"] = [503]
        web.get(f"{PAGE}/new?kind=teams")
        added = web.post(
            f"{PAGE}/new?kind=teams",
            {"displayName": "Teams", "enabled": "true", "url": receiver.url + "/broken"},
        )
        assert added.status_code == 303, added.text
        cid = channel_id(db, tenant.id, "Teams")
        web.get(PAGE)
        tested = web.post(f"{PAGE}/{cid}/test")
    assert tested.status_code == 200
    assert re.search(r'role="alert">Test message not delivered: HTTP 503', tested.text)
    assert len(receiver.at("/broken")) == 1


def test_the_services_rules_show_on_the_form_and_secrets_survive_an_edit(
    tenant: Tenant, web: Browser, db: Database
) -> None:
    short = add_webhook(web, "Short", "https://hooks.example/cs", secret="too-short")
    assert short.status_code == 400 and "at least 16 characters" in short.text
    assert "too-short" not in short.text  # a typed secret is not sent back either
    assert tenant.ok("GET", CHANNELS)["value"] == []

    cid = webhook_channel(web, db, tenant.id, "Hook")
    edit = web.get(f"{PAGE}/{cid}/edit")
    assert SECRET not in edit.text and 'value="https://hooks.example/cs"' in edit.text
    version = re.search(r'name="version" value="(\d+)"', edit.text)
    assert version is not None
    saved = web.post(
        f"{PAGE}/{cid}/edit",
        {"version": version.group(1), "displayName": "Renamed", "url": "https://hooks.example/cs"},
    )
    assert saved.status_code == 303, saved.text
    with db.read() as session:
        channel = session.get(t.NotificationChannel, cid)
        assert channel is not None
        assert channel.display_name == "Renamed" and channel.secret == SECRET
        assert channel.enabled is False  # the checkbox was left unticked

    web.get(PAGE)
    enabled = web.post(f"{PAGE}/{cid}/enabled", {"enabled": "true"})
    assert "Channel enabled." in web.follow(enabled).text
    assert tenant.ok("GET", f"{CHANNELS}/{cid}")["enabled"] is True


def test_an_smtp_channel_has_its_own_fields(tenant: Tenant, web: Browser, db: Database) -> None:
    form = web.get(f"{PAGE}/new?kind=email")
    for field in ("smtpHost", "smtpPort", "smtpSecurity", "smtpUsername", "secret", "fromAddress"):
        assert f'<label for="{field}"' in form.text
    added = web.post(
        f"{PAGE}/new?kind=email",
        {
            "displayName": "Mail",
            "enabled": "true",
            "smtpHost": "smtp.example",
            "smtpPort": "587",
            "smtpSecurity": "starttls",
            "smtpUsername": "cs",
            "secret": "smtp-password",
            "fromAddress": "countersign@contoso.example",
            "toAddresses": "ops@contoso.example\nsec@contoso.example",
        },
    )
    assert added.status_code == 303, added.text
    listed = web.follow(added).text
    assert "smtp.example:587, STARTTLS, from countersign@contoso.example" in listed
    assert "smtp-password" not in listed
    (channel,) = tenant.ok("GET", CHANNELS)["value"]
    assert channel["smtpPort"] == 587
    assert channel["toAddresses"] == ["ops@contoso.example", "sec@contoso.example"]


def test_delete_goes_through_a_confirmation(tenant: Tenant, web: Browser, db: Database) -> None:
    cid = webhook_channel(web, db, tenant.id, "Doomed")
    confirm = web.get(f"{PAGE}/{cid}/delete")
    assert confirm.status_code == 200 and "Delete Doomed" in confirm.text
    deleted = web.post(f"{PAGE}/{cid}/delete")
    assert "Channel deleted." in web.follow(deleted).text
    assert tenant.ok("GET", CHANNELS)["value"] == []


def test_a_post_without_csrf_is_refused(tenant: Tenant, web: Browser) -> None:
    web.get(f"{PAGE}/new?kind=slack")
    refused = web.post(
        f"{PAGE}/new?kind=slack",
        {"displayName": "Slack", "enabled": "true", "url": "https://hooks.slack.example/x"},
        csrf=False,
    )
    assert refused.status_code == 403 and "security token" in refused.text
    assert tenant.ok("GET", CHANNELS)["value"] == []


def test_a_read_only_user_sees_the_list_but_cannot_add_test_or_delete(
    tenants: TenantFactory, app: FastAPI, db: Database
) -> None:
    tenant = tenants()
    admin = signed_in(app, tenant.admin.upn)
    cid = webhook_channel(admin, db, tenant.id, "<b>Hook</b>")
    reader = tenant.user(roles=("Read Only Operator",))
    web = signed_in(app, reader.upn)
    page = web.get(PAGE)
    assert page.status_code == 200
    assert "&lt;b&gt;Hook&lt;/b&gt;" in page.text and "<b>Hook</b>" not in page.text
    assert "new?kind=" not in page.text and "Send test message" not in page.text
    assert web.get(f"{PAGE}/new?kind=webhook").status_code == 403
    refused = web.post(
        f"{PAGE}/new?kind=webhook",
        {"displayName": "Mine", "url": "https://hooks.example/x", "secret": SECRET},
    )
    assert refused.status_code == 403 and "Organization_Update" in refused.text
    assert web.post(f"{PAGE}/{cid}/test").status_code == 403
    assert web.post(f"{PAGE}/{cid}/delete").status_code == 403
    assert [c["id"] for c in tenant.ok("GET", CHANNELS)["value"]] == [cid]

    nobody = signed_in(app, tenant.user().upn)  # no role at all: not even the list
    assert nobody.get(PAGE).status_code == 403
