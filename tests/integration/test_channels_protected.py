"""Notification channels are tenant configuration (issue 15): under a `tenantConfiguration`
access policy, silencing or redirecting a tenant's alerts needs a second administrator."""

from __future__ import annotations

import json

from sqlalchemy import select

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory
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
    assert shown["requiredOperationApprovalPolicyTypes"] == "tenantConfiguration"
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
