"""What the write path keeps between statements and between requests, and why it stays correct:
the enabled channels and the callers cached per process by directory version (every channel or
account change bumps it), and the audit chain's head carried from one entry to the next
within a transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.notify import outbox
from countersign.services import audit
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, Tenant, TenantFactory, count_rows

CHANNELS = "/beta/deviceManagement/notificationChannels"


def messages(db: Database, tenant: Tenant) -> int:
    return count_rows(db, t.OutboxMessage, t.OutboxMessage.tenant_id == tenant.id)


def announce(db: Database, tenant: Tenant, *, with_audit_entry: bool) -> None:
    """A transition's notification, written as `db`'s process would; the services write the
    audit entry first (reading the directory version under the tenant lock), the reminder
    sweep does not."""
    now = datetime.now(UTC)
    with db.write() as session:
        if with_audit_entry:
            audit.record(
                session,
                tenant_id=tenant.id,
                actor=None,
                actor_name="countersign",
                activity="Test",
                activity_type="Test",
                category="Test",
                now=now,
            )
        outbox.enqueue(
            session,
            tenant_id=tenant.id,
            event="approved",
            request={"id": None, "status": "approved"},
            recipient_ids=[tenant.admin.id],
            now=now,
        )


def test_a_channel_change_reaches_the_channel_list_another_process_cached(
    tenants: TenantFactory, database_url: str
) -> None:
    tenant = tenants()
    other = Database(database_url)  # a second server process, with its own caches
    try:
        for with_audit_entry in (True, False):
            before = messages(other, tenant)
            announce(other, tenant, with_audit_entry=with_audit_entry)  # caches: no channels
            assert messages(other, tenant) == before

            channel = tenant.ok(
                "POST",
                CHANNELS,
                json={
                    "displayName": "Hook",
                    "channelType": "webhook",
                    "url": "https://hooks.example/cs",
                    "secret": "s3cret-key-for-hmac-0123456789",
                },
            )
            announce(other, tenant, with_audit_entry=with_audit_entry)
            assert messages(other, tenant) == before + 1

            tenant.ok("PATCH", f"{CHANNELS}/{channel['id']}", json={"events": ["rejected"]})
            announce(other, tenant, with_audit_entry=with_audit_entry)
            assert messages(other, tenant) == before + 1

            tenant.ok("PATCH", f"{CHANNELS}/{channel['id']}", json={"events": []})
            announce(other, tenant, with_audit_entry=with_audit_entry)
            assert messages(other, tenant) == before + 2

            tenant.ok("PATCH", f"{CHANNELS}/{channel['id']}", json={"enabled": False})
            announce(other, tenant, with_audit_entry=with_audit_entry)
            assert messages(other, tenant) == before + 2

            tenant.ok("DELETE", f"{CHANNELS}/{channel['id']}")  # its messages go with it
            announce(other, tenant, with_audit_entry=with_audit_entry)
            assert messages(other, tenant) == before
    finally:
        other.dispose()


def test_entries_of_one_transaction_continue_the_chain_and_a_rolled_back_savepoint_does_not_fork_it(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()

    def entry(session: Session, activity: str) -> None:
        audit.record(
            session,
            tenant_id=tenant.id,
            actor=None,
            actor_name="countersign",
            activity=activity,
            activity_type=activity,
            category="Test",
        )

    with db.write() as session:
        loaded = session.get(t.Tenant, tenant.id)
        assert loaded is not None
        first = loaded.audit_sequence
        entry(session, "One")
        entry(session, "Two")
        savepoint = session.begin_nested()
        entry(session, "Undone")
        savepoint.rollback()
        entry(session, "Three")
        # A tenant loaded before the entries shows the chain as it now is.
        assert loaded.audit_sequence == first + 3
        assert audit.verify_chain(session, tenant.id) is None
    with db.read() as session:
        activities = session.scalars(
            select(t.AuditEvent.activity)
            .where(t.AuditEvent.tenant_id == tenant.id, t.AuditEvent.sequence > first)
            .order_by(t.AuditEvent.sequence)
        ).all()
        assert activities == ["One", "Two", "Three"]
        assert audit.verify_chain(session, tenant.id) is None


def test_a_caller_another_process_resolved_is_resolved_again_once_the_account_changes(
    tenants: TenantFactory, settings: Settings, database_url: str
) -> None:
    """Each process keeps the callers it resolved by directory version (one statement a request
    instead of a transaction); a change to the account, made by another process, still counts
    on the next request."""
    tenant = tenants()
    user = tenant.user(roles=("Read Only Operator",))
    other_db = Database(database_url)
    try:
        with TestClient(create_app(settings, other_db)) as other:

            def me() -> Response:
                return other.get("/beta/me", headers=user.headers)

            assert me().json()["displayName"] == user.upn.split("@")[0]
            tenant.ok("PATCH", f"/beta/users/{user.id}", json={"displayName": "Renamed"})
            assert me().json()["displayName"] == "Renamed"
            tenant.ok("PATCH", f"/beta/users/{user.id}", json={"accountEnabled": False})
            assert me().status_code == 401
            tenant.ok("PATCH", f"/beta/users/{user.id}", json={"accountEnabled": True})
            # Re-enabling revoked the token too (a takeover property): a fresh one works.
            assert me().status_code == 401
            fresh = tenant.sign_in(user.upn, PASSWORD)
            assert other.get("/beta/me", headers=fresh.headers).status_code == 200
    finally:
        other_db.dispose()


def test_what_a_process_derived_at_a_directory_version_is_used_at_that_version_only(
    database_url: str,
) -> None:
    """Kept per tenant at one version (a newer one replaces all that was kept at the older, so
    no old snapshot outlives it); a value read at a version older than the one kept is
    dropped, not kept in its place."""
    db = Database(database_url)
    try:
        db.remember("tenant", ("a",), 1, "a at 1")
        assert db.remembered("tenant", ("a",), 1) == "a at 1"
        db.remember("tenant", ("b",), 2, "b at 2")
        assert db.remembered("tenant", ("a",), 1) is None
        assert db.remembered("tenant", ("b",), 2) == "b at 2"
        db.remember("tenant", ("a",), 1, "a at 1, read late")
        assert db.remembered("tenant", ("a",), 1) is None
        assert db.remembered("tenant", ("b",), 2) == "b at 2"
        assert db.remembered("other tenant", ("b",), 2) is None
    finally:
        db.dispose()
