"""Notifications (issue 6): channels through the API, the outbox, the worker's delivery with
retries and dead letters, exactly-once delivery under two racing workers, the expiry sweeper,
reminders, /metrics and JSON logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from countersign.config import Settings
from countersign.logs import JsonFormatter, request_id_var
from countersign.metrics import REGISTRY, observe_time_to_approval
from countersign.notify import outbox
from countersign.notify.dispatcher import Dispatcher
from countersign.services.expire_requests import expire_due_requests
from countersign.services.remind_requests import send_reminders
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import Tenant, TenantFactory
from tests.integration.receivers import (
    WEBHOOK_SECRET,
    HttpReceiver,
    channel_bodies,
    http_receiver,
    smtp_receiver,
)

CHANNELS = "/beta/deviceManagement/notificationChannels"
SECRET = WEBHOOK_SECRET


def insert_request(
    db: Database,
    tenant: Tenant,
    *,
    requestor_id: str | None = None,
    status: str = "needsApproval",
    expires: datetime,
    name: str | None = None,
    lock: bool = True,
) -> str:
    """An approval request row, written through the session (the engine's API is in flux);
    requested by the tenant's administrator unless `requestor_id` names another."""
    requestor_id = requestor_id or tenant.admin.id
    request_id = str(uuid.uuid4())
    payload_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with db.write() as session:
        requestor = session.get(t.User, requestor_id)
        session.add(
            t.ApprovalRequest(
                id=request_id,
                tenant_id=tenant.id,
                status=status,
                request_date_time=now - timedelta(days=1),
                expiration_date_time=expires,
                last_modified_date_time=now,
                requestor_id=requestor_id,
                requestor_type="user",
                requestor_name=requestor.display_name if requestor else "someone",
                request_justification="Ship the VPN client to finance",
                policy_type="app",
                policy_ids=[],
                payload_id=payload_id,
                payload_type="mobileApp",
                payload_name=name or f"VPN client {payload_id[:6]}",
                payload_operation="Create",
                payload={"change": {}},
                display_payload={"before": None, "after": {}, "diff": []},
                entity_keys=[f"mobileApps:{payload_id}"],
            )
        )
        session.flush()
        if lock:
            session.add(
                t.RequestLock(
                    tenant_id=tenant.id,
                    entity_key=f"mobileApps:{payload_id}",
                    request_id=request_id,
                )
            )
    return request_id


def enqueue_for(db: Database, request_id: str, event: str, recipient_ids: list[str]) -> None:
    with db.write() as session:
        row = session.get(t.ApprovalRequest, request_id)
        assert row is not None
        outbox.enqueue(
            session,
            tenant_id=row.tenant_id,
            event=event,
            request=outbox.request_from_row(row),
            recipient_ids=recipient_ids,
            now=datetime.now(UTC),
        )


def messages_of(db: Database, request_id: str) -> list[t.OutboxMessage]:
    with db.read() as session:
        return list(
            session.scalars(
                select(t.OutboxMessage).where(t.OutboxMessage.approval_request_id == request_id)
            )
        )


def webhook(tenant: Tenant, url: str, **extra: Any) -> dict[str, Any]:
    body = {"displayName": "Hook", "channelType": "webhook", "url": url, "secret": SECRET, **extra}
    created: dict[str, Any] = tenant.ok("POST", CHANNELS, json=body)
    return created


def scripted_webhook(
    db: Database, tenant: Tenant, http: HttpReceiver, path: str, statuses: list[int]
) -> str:
    """A webhook at `path` of a receiver answering `statuses` in turn; a request to send it."""
    http.script[path] = statuses
    webhook(tenant, http.url + path)
    return insert_request(db, tenant, expires=later(86400 * 30))


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def delete_channels(tenant: Tenant) -> None:
    for channel in tenant.ok("GET", CHANNELS)["value"]:
        tenant.ok("DELETE", f"{CHANNELS}/{channel['id']}")


# -- channels API --------------------------------------------------------------------------


def test_channel_secrets_are_write_only_and_changes_need_organization_update(
    tenants: TenantFactory,
) -> None:
    tenant = tenants()
    created = webhook(tenant, "https://hooks.example/countersign")
    assert "secret" not in created and created["hasSecret"] is True
    listed = tenant.ok("GET", CHANNELS)["value"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert SECRET not in json.dumps(listed)
    tenant.ok("PATCH", f"{CHANNELS}/{created['id']}", json={"displayName": "Renamed"})
    assert tenant.ok("GET", f"{CHANNELS}/{created['id']}")["displayName"] == "Renamed"
    with tenants.db.read() as session:
        audit = session.scalars(
            select(t.AuditEvent).where(t.AuditEvent.tenant_id == tenant.id)
        ).all()
        assert [e.activity for e in audit].count("Create notificationChannel") == 1
        assert SECRET not in json.dumps([[e.before, e.after] for e in audit], default=str)

    refused = tenant.call(
        "POST",
        CHANNELS,
        json={"displayName": "No secret", "channelType": "webhook", "url": "https://x.example"},
    )
    assert refused.status_code == 400 and "secret" in refused.json()["error"]["message"]
    reader = tenant.user(roles=("Read Only Operator",))
    assert tenant.call("GET", CHANNELS, reader).status_code == 200
    assert (
        tenant.call(
            "POST",
            CHANNELS,
            reader,
            json={"displayName": "x", "channelType": "slack", "url": "https://x.example"},
        ).status_code
        == 403
    )
    assert tenant.call("DELETE", f"{CHANNELS}/{created['id']}", reader).status_code == 403
    tenant.ok("DELETE", f"{CHANNELS}/{created['id']}")
    assert tenant.ok("GET", CHANNELS)["value"] == []


def test_send_test_message_reports_what_the_channel_answered(tenants: TenantFactory) -> None:
    tenant = tenants()
    with http_receiver() as receiver:
        receiver.script["/broken"] = [503]
        good = webhook(tenant, receiver.url + "/hook")
        bad = tenant.ok(
            "POST",
            CHANNELS,
            json={"displayName": "Teams", "channelType": "teams", "url": receiver.url + "/broken"},
        )
        tenant.ok("POST", f"{CHANNELS}/{good['id']}/sendTestMessage")
        failed = tenant.call("POST", f"{CHANNELS}/{bad['id']}/sendTestMessage")
    assert failed.status_code == 502 and "503" in failed.json()["error"]["message"]
    (test,) = receiver.at("/hook")
    assert (
        test.headers["x-countersign-signature"]
        == "sha256=" + hmac.new(SECRET.encode(), test.body, hashlib.sha256).hexdigest()
    )
    assert test.json()["event"] == "test"


# -- delivery ------------------------------------------------------------------------------


def test_smtp_webhook_slack_and_teams_receive_the_right_message(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    tenant = tenants()
    approver = tenant.user("approver-one")
    with smtp_receiver() as smtp, http_receiver() as http:
        for body in channel_bodies(smtp, http):
            tenant.ok("POST", CHANNELS, json=body)
        request_id = insert_request(db, tenant, expires=later(30 * 86400), name="VPN client")
        enqueue_for(db, request_id, "submitted", [approver.id])
        assert len(messages_of(db, request_id)) == 4  # one per channel, nothing sent yet
        assert http.received == [] and smtp.messages == []

        Worker(db, settings).run_once(now=later(1))

    link = f"http://testserver/admin/requests/{request_id}"
    (recipients, mail), *others = smtp.messages
    assert others == [] and recipients == [approver.upn]
    assert "VPN client" in mail["Subject"] and mail["To"] == approver.upn
    text = mail.get_payload(decode=True).decode()
    for expected in (
        "Create mobileApp 'VPN client'",
        "Administrator 1",
        "Ship the VPN client",
        link,
    ):
        assert expected in text

    (hook,) = http.at("/hook")
    expected_signature = hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-countersign-signature"] == f"sha256={expected_signature}"
    body = hook.json()
    assert body["event"] == "submitted" and body["link"] == link
    assert body["request"]["requestJustification"] == "Ship the VPN client to finance"
    assert body["request"]["expirationDateTime"]
    assert body["recipients"][0]["id"] == approver.id
    assert hook.headers["x-countersign-delivery"] == body["deliveryId"]

    (slack,) = http.at("/slack")
    assert "VPN client" in slack.json()["text"] and link in json.dumps(slack.json()["blocks"])
    (teams,) = http.at("/teams")
    attachment = teams.json()["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["actions"][0]["url"] == link
    assert all(m.status == "delivered" for m in messages_of(db, request_id))


def test_a_flaky_receiver_gets_the_message_once_on_the_third_try(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    tenant = tenants()
    fast = settings.model_copy(update={"outbox_backoff_seconds": 30.0, "outbox_max_attempts": 5})
    with http_receiver() as http:
        request_id = scripted_webhook(db, tenant, http, "/flaky", [500, 500, 200])
        enqueue_for(db, request_id, "approved", [tenant.admin.id])
        worker = Worker(db, fast)
        start = later(1)
        worker.run_once(now=start)  # attempt 1: 500, next try in 30 s
        worker.run_once(now=start + timedelta(seconds=10))  # not due yet
        assert len(http.at("/flaky")) == 1
        worker.run_once(now=start + timedelta(seconds=31))  # attempt 2: 500, next in 60 s
        worker.run_once(now=start + timedelta(seconds=60))  # not due yet
        assert len(http.at("/flaky")) == 2
        worker.run_once(now=start + timedelta(seconds=92))  # attempt 3: 200
        worker.run_once(now=start + timedelta(days=1))
    assert [r.status for r in http.at("/flaky")] == [500, 500, 200]
    (message,) = messages_of(db, request_id)
    assert message.status == "delivered" and message.attempts == 3


def test_a_dead_receiver_ends_dead_lettered_and_the_approval_stands(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    tenant = tenants()
    strict = settings.model_copy(update={"outbox_backoff_seconds": 1.0, "outbox_max_attempts": 3})
    with http_receiver() as http:
        request_id = scripted_webhook(db, tenant, http, "/down", [500])
        # The approval and its notification commit together; delivery happens after.
        with db.write() as session:
            row = session.get(t.ApprovalRequest, request_id)
            assert row is not None
            row.status = "approved"
            outbox.enqueue(
                session,
                tenant_id=tenant.id,
                event="approved",
                request=outbox.request_from_row(row),
                recipient_ids=[tenant.admin.id],
                now=datetime.now(UTC),
            )
        worker = Worker(db, strict)
        for minute in range(1, 6):
            worker.run_once(now=later(60 * minute))
    assert len(http.at("/down")) == 3
    (message,) = messages_of(db, request_id)
    assert message.status == "dead" and "HTTP 500" in (message.last_error or "")
    with db.read() as session:
        assert session.get(t.ApprovalRequest, request_id).status == "approved"  # type: ignore[union-attr]
    # The tenant keeps working: more approvals, more notifications, still only outbox rows.
    other = insert_request(db, tenant, expires=later(86400 * 30))
    enqueue_for(db, other, "submitted", [tenant.admin.id])
    assert [m.status for m in messages_of(db, other)] == ["pending"]
    delete_channels(tenant)


def test_two_racing_workers_deliver_each_message_exactly_once(
    tenants: TenantFactory, database_url: str, db: Database, settings: Settings
) -> None:
    tenant = tenants()
    with http_receiver() as http:
        webhook(tenant, http.url + "/race")
        ids = []
        for _ in range(30):
            request_id = insert_request(db, tenant, expires=later(86400 * 30), lock=False)
            enqueue_for(db, request_id, "submitted", [tenant.admin.id])
            ids.append(request_id)
        now = later(1)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def work() -> None:
            own = Database(database_url)  # its own engine and connections, like a process
            try:
                dispatcher = Dispatcher(own, settings)
                barrier.wait()
                while dispatcher.run_once(now).handled:
                    pass
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    delivered = [r.json()["deliveryId"] for r in http.at("/race")]
    assert len(delivered) == len(set(delivered)) == 30
    for request_id in ids:
        assert [m.status for m in messages_of(db, request_id)] == ["delivered"]
    delete_channels(tenant)


def test_stopping_the_worker_finishes_the_message_in_hand_and_hands_back_the_rest(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    tenant = tenants()
    channel = webhook(tenant, "http://127.0.0.1:9/never")
    ids = [insert_request(db, tenant, expires=later(86400 * 30), lock=False) for _ in range(3)]
    for request_id in ids:
        enqueue_for(db, request_id, "submitted", [tenant.admin.id])
    stop = threading.Event()
    sent: list[str] = []

    def deliver(_channel: Any, message: Any) -> None:
        sent.append(message.id)
        stop.set()  # SIGTERM arrives while the first message is being delivered

    dispatcher = Dispatcher(db, settings, deliver=deliver, stop=stop)
    result = dispatcher.run_once(later(1))
    assert len(sent) == 1 and result.delivered == 1 and result.released >= 2
    with db.read() as session:
        rows = session.scalars(
            select(t.OutboxMessage).where(t.OutboxMessage.channel_id == channel["id"])
        ).all()
    assert sorted(m.status for m in rows) == ["delivered", "pending", "pending"]
    assert all(m.attempts == 0 for m in rows if m.status == "pending")
    delete_channels(tenant)


# -- expiry and reminders ------------------------------------------------------------------


def test_the_sweeper_expires_due_requests_and_leaves_the_others(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    with http_receiver() as http:
        webhook(tenant, http.url + "/expired", events=["expired"])
        now = datetime.now(UTC)
        due_waiting = insert_request(db, tenant, expires=now - timedelta(minutes=1))
        due_approved = insert_request(db, tenant, status="approved", expires=now)
        not_due = insert_request(db, tenant, expires=now + timedelta(minutes=1))
        finished = insert_request(
            db,
            tenant,
            status="completed",
            expires=now - timedelta(days=1),
            lock=False,
        )

        assert expire_due_requests(db, now, batch=1) >= 2  # several batches
        assert expire_due_requests(db, now) == 0
    with db.read() as session:
        status = {
            r.id: r.status
            for r in session.scalars(
                select(t.ApprovalRequest).where(t.ApprovalRequest.tenant_id == tenant.id)
            )
        }
        locked = set(
            session.scalars(
                select(t.RequestLock.request_id).where(t.RequestLock.tenant_id == tenant.id)
            )
        )
        audited = list(
            session.scalars(
                select(t.AuditEvent.approval_request_id).where(
                    t.AuditEvent.tenant_id == tenant.id,
                    t.AuditEvent.activity == "Expire operationApprovalRequest",
                )
            )
        )
    assert status == {
        due_waiting: "expired",
        due_approved: "expired",
        not_due: "needsApproval",
        finished: "completed",
    }
    assert locked == {not_due}
    assert sorted(audited) == sorted([due_waiting, due_approved])
    for request_id in (due_waiting, due_approved):
        (message,) = messages_of(db, request_id)
        assert message.event == "expired" and message.recipients[0]["id"] == tenant.admin.id
    delete_channels(tenant)


def test_one_reminder_goes_to_the_approvers_before_expiry(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    approver = tenant.user("reminded-approver")
    with http_receiver() as http:
        webhook(tenant, http.url + "/remind", events=["reminder"])
        now = datetime.now(UTC)
        soon = insert_request(db, tenant, expires=now + timedelta(hours=12))
        later_on = insert_request(db, tenant, expires=now + timedelta(hours=48))

        def approvers(_session: Any, _db: Any, row: t.ApprovalRequest) -> list[str]:
            return [approver.id] if row.tenant_id == tenant.id else []

        assert send_reminders(db, now, timedelta(hours=24), approvers=approvers) >= 1
        assert send_reminders(db, now, timedelta(hours=24), approvers=approvers) == 0
    (message,) = messages_of(db, soon)
    assert message.event == "reminder" and message.recipients[0]["id"] == approver.id
    assert messages_of(db, later_on) == []
    delete_channels(tenant)


# -- operations ----------------------------------------------------------------------------


def test_metrics_are_public_and_count_what_matters(tenants: TenantFactory) -> None:
    tenant = tenants()
    tenant.ok("GET", CHANNELS)
    observe_time_to_approval(90)
    response = tenant.client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    for name in (
        'countersign_approval_requests{status="needsApproval"}',
        'countersign_outbox_messages{status="dead"}',
        "countersign_outbox_depth",
        "countersign_time_to_approval_seconds_count",
        "countersign_notification_delivery_failures_total",
        'countersign_http_request_duration_seconds_count{method="GET",route="/beta/deviceManagement/notificationChannels",status="200"}',
    ):
        assert name in text, name
    assert (REGISTRY.get_sample_value("countersign_time_to_approval_seconds_count") or 0) >= 1


def test_logs_are_one_json_object_per_line_with_the_request_id() -> None:
    record = logging.LogRecord(
        "countersign.test", logging.INFO, __file__, 1, "hello %s", ("world",), None
    )
    record.channel_id = "abc"
    token = request_id_var.set("req-123")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    document = json.loads(line)
    assert "\n" not in line
    assert document["message"] == "hello world" and document["requestId"] == "req-123"
    assert document["channel_id"] == "abc" and document["level"] == "info"


@pytest.mark.parametrize("event", sorted(outbox.EVENTS))
def test_without_channels_enqueue_writes_nothing(
    tenants: TenantFactory, db: Database, event: str
) -> None:
    tenant = tenants()
    request_id = insert_request(db, tenant, expires=later(3600))
    enqueue_for(db, request_id, event, [tenant.admin.id])
    assert messages_of(db, request_id) == []


def test_a_request_whose_approvers_cannot_be_found_does_not_stop_the_reminders(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    webhook(tenant, "http://127.0.0.1:9/unused", events=["reminder"])
    now = datetime.now(UTC)
    first = insert_request(db, tenant, expires=now + timedelta(hours=1))
    second = insert_request(db, tenant, expires=now + timedelta(hours=2))

    def approvers(_session: Any, _db: Any, row: t.ApprovalRequest) -> list[str]:
        if row.id == first:
            raise KeyError("approvers")
        return [tenant.admin.id]

    assert send_reminders(db, now, timedelta(hours=24), approvers=approvers) >= 2
    (broken,) = messages_of(db, first)
    (fine,) = messages_of(db, second)
    assert broken.recipients == [] and fine.recipients[0]["id"] == tenant.admin.id
    delete_channels(tenant)
