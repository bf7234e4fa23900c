"""Notification channels are tenant configuration (issue 15): under a `tenantConfiguration`
access policy, silencing or redirecting a tenant's alerts needs a second administrator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from countersign.config import Settings
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import TenantFactory
from tests.integration.receivers import http_receiver
from tests.maa import b64, seed

CHANNELS = "/beta/deviceManagement/notificationChannels"
SECRET = "a-webhook-secret-of-some-length"


def test_disabling_a_channel_under_a_tenant_configuration_policy_is_a_request(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    hook = s.tenant.ok(
        "POST",
        CHANNELS,
        json={
            "displayName": "Alerts",
            "channelType": "webhook",
            "url": "https://hooks.example/cs",
            "secret": SECRET,
        },
    )
    s.activate_policy("tenantConfiguration")
    path = f"{CHANNELS}/{hook['id']}"
    bare = s.tenant.call("PATCH", path, s.admin1, json={"enabled": False})
    assert bare.status_code == 400 and "x-msft-approval-justification" in bare.text
    request_id = s.submit("PATCH", path, json={"enabled": False})
    assert s.tenant.ok("GET", path)["enabled"] is True  # nothing changed yet
    again = s.tenant.call(
        "DELETE", path, s.admin1, headers={"x-msft-approval-justification": b64("Quiet")}
    )
    assert again.status_code == 409  # the channel is locked by the active request
    assert s.approve(request_id, s.admin2).status_code == 200
    assert s.complete(request_id).status_code in (200, 204)
    assert s.tenant.ok("GET", path)["enabled"] is False


def test_a_protected_channel_create_keeps_its_secret_out_of_sight(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("tenantConfiguration")
    body = {
        "displayName": "Approved hook",
        "channelType": "webhook",
        "url": "https://hooks.example/approved",
        "secret": SECRET,
    }
    request_id = s.submit("POST", CHANNELS, json=body)
    shown = s.request(request_id)
    assert shown["requiredOperationApprovalPolicyTypes"] == ["tenantConfiguration"]
    assert SECRET not in json.dumps(shown)
    assert s.approve(request_id, s.admin2).status_code == 200
    completed = s.complete(request_id)
    assert completed.status_code == 201, completed.text
    assert completed.json()["hasSecret"] is True
    with db.read() as session:
        channel = session.get(t.NotificationChannel, completed.json()["id"])
        assert channel is not None and channel.secret == SECRET  # applied in full
        audit = session.scalars(
            select(t.AuditEvent).where(t.AuditEvent.tenant_id == s.tenant.id)
        ).all()
    assert SECRET not in json.dumps([[e.before, e.after] for e in audit], default=str)


def _hook(tenant: Any, url: str, name: str = "Alerts") -> dict[str, Any]:
    body = {"displayName": name, "channelType": "webhook", "url": url, "secret": SECRET}
    created: dict[str, Any] = tenant.ok("POST", CHANNELS, json=body)
    return created


def _deliver_due(db: Database, settings: Settings) -> None:
    Worker(db, settings).run_once(datetime.now(UTC) + timedelta(seconds=1))


@pytest.mark.parametrize("silence", ["disable", "delete"])
def test_the_last_enabled_channel_says_goodbye_to_every_approver_before_it_goes(
    tenants: TenantFactory, db: Database, settings: Settings, silence: str
) -> None:
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    with http_receiver() as receiver:
        hook = _hook(s.tenant, receiver.url + "/last")
        path = f"{CHANNELS}/{hook['id']}"
        if silence == "disable":
            s.tenant.ok("PATCH", path, s.admin2, json={"enabled": False})
        else:
            s.tenant.ok("DELETE", path, s.admin2)
        _deliver_due(db, settings)
        farewells = [r for r in receiver.at("/last") if r.json()["event"] == "channelRemoved"]
    (farewell,) = farewells
    recipients = {r["id"] for r in farewell.json()["recipients"]}
    assert recipients == {s.admin1.id, s.admin2.id}  # both hold the approval permission
    assert "last enabled notification channel" in farewell.json()["text"]
    with db.read() as session:
        activities = session.scalars(
            select(t.AuditEvent.activity).where(t.AuditEvent.tenant_id == s.tenant.id)
        ).all()
    expected = "disabled" if silence == "disable" else "deleted"
    assert f"Notify approvers: last notification channel {expected}" in activities


def test_no_goodbye_while_another_channel_stays_or_without_policies(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    quiet = tenants()  # no access policy: nothing to warn about
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    with http_receiver() as receiver:
        lone = _hook(quiet, receiver.url + "/quiet")
        quiet.ok("DELETE", f"{CHANNELS}/{lone['id']}")
        first = _hook(s.tenant, receiver.url + "/first", "First")
        _hook(s.tenant, receiver.url + "/second", "Second")
        s.tenant.ok("DELETE", f"{CHANNELS}/{first['id']}")
        _deliver_due(db, settings)
        sent = [r.json()["event"] for r in receiver.received]
    assert "channelRemoved" not in sent


def test_the_admin_center_asks_for_a_justification_and_submits_channel_changes(
    tenants: TenantFactory, app: FastAPI, db: Database
) -> None:
    from tests.integration.test_admin_center import signed_in

    s = seed(tenants)
    hook = _hook(s.tenant, "https://hooks.example/web")
    s.activate_policy("tenantConfiguration")
    page = "/admin/tenant/notifications"
    web = signed_in(app, s.admin1.upn)
    form = web.get(f"{page}/new?kind=webhook")
    assert 'name="justification"' in form.text and "Submit for approval" in form.text

    asked = web.post(f"{page}/{hook['id']}/enabled", {"enabled": "false"})
    assert asked.status_code == 200 and 'name="justification"' in asked.text
    submitted = web.post(
        f"{page}/{hook['id']}/enabled",
        {"enabled": "false", "version": str(hook["version"]), "justification": "Too noisy"},
    )
    assert submitted.status_code == 303
    request_id = submitted.headers["location"].split("/admin/requests/")[1].split("?")[0]
    assert s.request(request_id)["status"] == "needsApproval"
    assert s.tenant.ok("GET", f"{CHANNELS}/{hook['id']}")["enabled"] is True

    confirm = web.get(f"{page}/{hook['id']}/delete")
    assert 'name="justification"' in confirm.text
