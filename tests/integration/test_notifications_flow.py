"""Notifications driven by the approval engine through the API handshake: who gets what, and a
dead channel never stops approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from countersign.config import Settings
from countersign.metrics import REGISTRY
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import TenantFactory
from tests.integration.receivers import http_receiver
from tests.maa import SCOPE_TAGS, seed

CHANNELS = "/beta/deviceManagement/notificationChannels"
SECRET = "flow-secret-0123456789abcdef"


def test_the_handshake_notifies_approvers_then_the_requester_while_a_dead_channel_fails_alone(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    approvals_before = REGISTRY.get_sample_value("countersign_time_to_approval_seconds_count") or 0
    with http_receiver() as http:
        http.script["/down"] = [500]
        for path in ("/up", "/down"):
            s.tenant.ok(
                "POST",
                CHANNELS,
                json={
                    "displayName": path,
                    "channelType": "webhook",
                    "url": http.url + path,
                    "secret": SECRET,
                },
            )
        request_id = s.submit(
            "POST", SCOPE_TAGS, json={"displayName": "Lisbon"}, justification="Lisbon office opens"
        )
        assert s.approve(request_id).status_code == 200
        completed = s.complete(request_id)
        assert completed.status_code == 201, completed.text
        worker = Worker(db, settings.model_copy(update={"outbox_max_attempts": 2}))
        worker.run_once(now=datetime.now(UTC) + timedelta(seconds=1))
        worker.run_once(now=datetime.now(UTC) + timedelta(hours=2))

    up = [r.json() for r in http.at("/up")]
    by_event = {body["event"]: body for body in up if body["request"]["id"] == request_id}
    assert set(by_event) == {"submitted", "approved", "completed"}
    assert [r["id"] for r in by_event["submitted"]["recipients"]] == [s.admin2.id]
    assert [r["id"] for r in by_event["approved"]["recipients"]] == [s.admin1.id]
    assert by_event["submitted"]["request"]["requestJustification"] == "Lisbon office opens"
    assert by_event["approved"]["request"]["approvalJustification"] == "Looks right"
    assert s.request(request_id)["status"] == "completed"
    with db.read() as session:
        dead = session.scalars(
            select(t.OutboxMessage.status).where(
                t.OutboxMessage.approval_request_id == request_id,
                t.OutboxMessage.status == "dead",
            )
        ).all()
    assert len(dead) == 3  # the dead channel's three messages, and nothing else touched
    after = REGISTRY.get_sample_value("countersign_time_to_approval_seconds_count") or 0
    assert after >= approvals_before + 1


def test_a_reminder_reaches_the_engines_eligible_approvers_once(
    tenants: TenantFactory, db: Database
) -> None:
    from countersign.services.remind_requests import send_reminders

    s = seed(tenants)
    s.activate_policy("role")
    with http_receiver() as http:
        s.tenant.ok(
            "POST",
            CHANNELS,
            json={
                "displayName": "Reminders",
                "channelType": "slack",
                "url": http.url + "/slack",
                "events": ["reminder"],
            },
        )
        request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Porto"})
        expires = datetime.fromisoformat(s.request(request_id)["expirationDateTime"])
        almost = expires - timedelta(hours=12)
        assert send_reminders(db, almost, timedelta(hours=24)) >= 1
        assert send_reminders(db, almost, timedelta(hours=24)) == 0
    with db.read() as session:
        (message,) = session.scalars(
            select(t.OutboxMessage).where(t.OutboxMessage.approval_request_id == request_id)
        ).all()
    assert message.event == "reminder"
    assert [r["id"] for r in message.recipients] == [s.admin2.id]
