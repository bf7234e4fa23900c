"""The tenant's multi admin approval settings (`/beta/deviceManagement/multiAdminApprovalSettings`):
the reminder window per tenant as the worker applies it, the request lifetime, permission,
bounds, audit, and protection by a tenantConfiguration access policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from countersign.config import Settings
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import TenantFactory
from tests.integration.receivers import http_receiver
from tests.integration.test_notifications import (
    delete_channels,
    insert_request,
    messages_of,
    webhook,
)
from tests.maa import REQUESTS, b64, seed

SETTINGS = "/beta/deviceManagement/multiAdminApprovalSettings"


def test_each_tenant_is_reminded_within_its_own_window(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    wide, default, narrow = tenants(), tenants(), tenants()
    wide.ok("PATCH", SETTINGS, json={"reminderHoursBeforeExpiry": 48})
    narrow.ok("PATCH", SETTINGS, json={"reminderHoursBeforeExpiry": 24})
    assert settings.reminder_hours_before_expiry == 24  # the server's default, for `default`
    now = datetime.now(UTC)
    with http_receiver() as http:
        requests = {}
        for name, tenant in (("wide", wide), ("default", default), ("narrow", narrow)):
            webhook(tenant, f"{http.url}/{name}", events=["reminder"])
            requests[name] = insert_request(
                db, tenant, requestor_id=tenant.admin.id, expires=now + timedelta(hours=47)
            )

        def approvers(_session: Any, _db: Any, row: t.ApprovalRequest) -> list[str]:
            return [row.requestor_id]

        Worker(db, settings, approvers=approvers).run_once(now=now)
        (reminder,) = http.at("/wide")
        assert http.at("/default") == [] and http.at("/narrow") == []
        # 23 hours later the 24-hour tenants' requests are due too; the wide one is not resent.
        Worker(db, settings, approvers=approvers).run_once(now=now + timedelta(hours=23, minutes=1))
        assert len(http.at("/wide")) == 1
        assert len(http.at("/default")) == 1 and len(http.at("/narrow")) == 1
    body = reminder.json()
    assert body["event"] == "reminder" and body["request"]["id"] == requests["wide"]
    for name in requests:
        assert [m.event for m in messages_of(db, requests[name])] == ["reminder"]
    for tenant in (wide, default, narrow):
        delete_channels(tenant)


def test_reading_and_changing_the_settings_is_audited(tenants: TenantFactory) -> None:
    tenant = tenants()
    current = tenant.ok("GET", SETTINGS)
    assert current["requestLifetimeInDays"] == 30 and current["reminderHoursBeforeExpiry"] is None
    assert current["id"] == tenant.id and current["version"] == 1

    response = tenant.call(
        "PATCH",
        SETTINGS,
        json={"reminderHoursBeforeExpiry": 72, "requestLifetimeInDays": 10},
        headers={"If-Match": current["@odata.etag"]},
    )
    assert response.status_code == 204, response.text
    changed = tenant.ok("GET", SETTINGS)
    assert changed["reminderHoursBeforeExpiry"] == 72 and changed["requestLifetimeInDays"] == 10
    assert changed["version"] == 2
    stale = tenant.call(
        "PATCH",
        SETTINGS,
        json={"reminderHoursBeforeExpiry": 12},
        headers={"If-Match": current["@odata.etag"]},
    )
    assert stale.status_code == 412
    tenant.ok("PATCH", SETTINGS, json={"reminderHoursBeforeExpiry": None})  # back to the default
    assert tenant.ok("GET", SETTINGS)["reminderHoursBeforeExpiry"] is None

    with tenants.db.read() as session:
        entries = session.scalars(
            select(t.AuditEvent)
            .where(
                t.AuditEvent.tenant_id == tenant.id,
                t.AuditEvent.activity == "Update multiAdminApprovalSettings",
            )
            .order_by(t.AuditEvent.sequence)
        ).all()
        assert len(entries) == 2
        first = entries[0]
        assert first.actor_id == tenant.admin.id and first.category == "MultiAdminApproval"
        assert first.before is not None and first.after is not None
        assert first.before["reminderHoursBeforeExpiry"] is None
        assert first.after["reminderHoursBeforeExpiry"] == 72
        assert first.after["requestLifetimeInDays"] == 10


def test_changing_the_settings_needs_the_approval_permission(tenants: TenantFactory) -> None:
    tenant = tenants()
    reader = tenant.user(roles=("Read Only Operator",))
    manager = tenant.user(roles=("Policy and Profile Manager",))
    approver = tenant.user(roles=("Multi Admin Approval Approver",))
    assert tenant.ok("GET", SETTINGS, reader)["requestLifetimeInDays"] == 30
    for who in (reader, manager):
        refused = tenant.call("PATCH", SETTINGS, who, json={"reminderHoursBeforeExpiry": 48})
        assert refused.status_code == 403
        assert "ApprovalForMultiAdminApproval" in refused.json()["error"]["message"]
    assert tenant.call("GET", SETTINGS, headers={"Authorization": ""}).status_code == 401
    response = tenant.call("PATCH", SETTINGS, approver, json={"reminderHoursBeforeExpiry": 48})
    assert response.status_code == 204, response.text
    assert tenant.ok("GET", SETTINGS)["reminderHoursBeforeExpiry"] == 48


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reminderHoursBeforeExpiry": 0},
        {"reminderHoursBeforeExpiry": 2161},
        {"reminderHoursBeforeExpiry": 24.5},
        {"reminderHoursBeforeExpiry": "24"},
        {"reminderHoursBeforeExpiry": True},
        {"requestLifetimeInDays": 0},
        {"requestLifetimeInDays": 91},
        {"requestLifetimeInDays": None},
        {"reminderHours": 24},
        {"id": "x", "reminderHoursBeforeExpiry": 24},
    ],
)
def test_out_of_bounds_settings_are_refused(tenants: TenantFactory, body: dict[str, Any]) -> None:
    tenant = tenants()
    refused = tenant.call("PATCH", SETTINGS, json=body)
    assert refused.status_code == 400, refused.text
    assert tenant.ok("GET", SETTINGS)["version"] == 1


def test_bounds_are_inclusive(tenants: TenantFactory) -> None:
    tenant = tenants()
    for hours, days in ((1, 1), (2160, 90)):
        tenant.ok(
            "PATCH",
            SETTINGS,
            json={"reminderHoursBeforeExpiry": hours, "requestLifetimeInDays": days},
        )
        current = tenant.ok("GET", SETTINGS)
        assert (current["reminderHoursBeforeExpiry"], current["requestLifetimeInDays"]) == (
            hours,
            days,
        )


def test_a_tenant_configuration_policy_puts_the_settings_behind_approval(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    s.activate_policy("tenantConfiguration")
    plain = s.tenant.call("PATCH", SETTINGS, json={"requestLifetimeInDays": 5})
    assert plain.status_code == 400  # protected: a justification is needed
    request_id = s.submit("PATCH", SETTINGS, json={"requestLifetimeInDays": 5})
    request = s.request(request_id)
    assert request["requiredOperationApprovalPolicyTypes"] == ["tenantConfiguration"]
    assert request["payloadType"] == "multiAdminApprovalSettings"
    assert request["payloadId"] == s.tenant.id
    assert request["displayPayload"]["after"]["requestLifetimeInDays"] == 5
    assert s.tenant.ok("GET", SETTINGS)["requestLifetimeInDays"] == 30  # not yet
    # One active request at a time may change the settings.
    second = s.tenant.call(
        "PATCH",
        SETTINGS,
        json={"requestLifetimeInDays": 7},
        headers={"x-msft-approval-justification": b64("Another change")},
    )
    assert second.status_code == 409, second.text
    assert s.approve(request_id).status_code == 200
    completed = s.complete(request_id)
    assert completed.status_code in (200, 204), completed.text
    assert s.tenant.ok("GET", SETTINGS)["requestLifetimeInDays"] == 5
    assert s.tenant.ok("GET", f"{REQUESTS}/{request_id}")["status"] == "completed"


def test_the_tenant_lifetime_sets_the_expiry_of_new_requests(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.tenant.ok("PATCH", SETTINGS, json={"requestLifetimeInDays": 3})
    s.activate_policy("tenantConfiguration")  # the policy names no lifetime of its own
    request_id = s.submit("PATCH", SETTINGS, json={"reminderHoursBeforeExpiry": 12})
    request = s.request(request_id)
    requested = datetime.fromisoformat(request["requestDateTime"])
    expires = datetime.fromisoformat(request["expirationDateTime"])
    assert expires - requested == timedelta(days=3)
