"""The tamper-evident audit log: entries hash-chained per tenant, written in the change's
own transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.util import identity_key

from countersign.domain.actors import Caller
from countersign.store import tables as t
from countersign.store.db import remember_locked_directory_version

GENESIS_HASH = "0" * 64

# Fields covered by the hash, in a fixed order.
HASHED_FIELDS = (
    "id",
    "tenant_id",
    "sequence",
    "activity_date_time",
    "actor_id",
    "actor_name",
    "actor_type",
    "activity",
    "activity_type",
    "category",
    "target_type",
    "target_id",
    "target_name",
    "before",
    "after",
    "correlation_id",
    "approval_request_id",
    "result",
)


def entry_hash(row: t.AuditEvent, previous_hash: str) -> str:
    return _hash({name: getattr(row, name) for name in HASHED_FIELDS}, previous_hash)


def _hash(fields: Mapping[str, Any], previous_hash: str) -> str:
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["activity_date_time"] = fields["activity_date_time"].astimezone(UTC).isoformat()
    document["previous_hash"] = previous_hash
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    tenant_id: str,
    actor: Caller | None,
    activity: str,
    activity_type: str,
    category: str,
    target_type: str | None = None,
    target_id: str | None = None,
    target_name: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    approval_request_id: str | None = None,
    result: str = "success",
    actor_name: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Append an entry to the tenant's chain; returns the entry's id. Locks the tenant row until
    commit, so concurrent writers of one tenant take turns and the chain never forks.

    FOR NO KEY UPDATE (key_share) on PostgreSQL: the foreign-key checks of rows inserted earlier
    in the same transactions hold KEY SHARE locks on the tenant row, which a plain FOR UPDATE
    would wait on, deadlocking two writers of one tenant.

    The first entry of a transaction reads the chain's head under that lock; later entries of
    the same transaction continue from the head this one wrote (the lock is still held), so a
    transaction pays the locked read once. The entry and the head are written with single
    statements rather than through the ORM's unit of work (the log is append-only)."""
    head = _locked_head(session, tenant_id)
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "sequence": head.sequence + 1,
        "activity_date_time": now or datetime.now(UTC),
        "actor_id": actor.id if actor else None,
        "actor_name": actor.display_name if actor else actor_name,
        "actor_type": actor.type if actor else "system",
        "activity": activity,
        "activity_type": activity_type,
        "category": category,
        "target_type": target_type,
        "target_id": target_id,
        "target_name": target_name,
        "before": _jsonable(before),
        "after": _jsonable(after),
        "correlation_id": correlation_id or (actor.correlation_id if actor else None),
        "approval_request_id": approval_request_id,
        "result": result,
    }
    entry = _hash(fields, head.hash)
    session.execute(insert(t.AuditEvent).values(**fields, previous_hash=head.hash, hash=entry))
    session.execute(
        update(t.Tenant)
        .where(t.Tenant.id == tenant_id)
        .values(audit_sequence=fields["sequence"], audit_head_hash=entry)
        .execution_options(synchronize_session=False)
    )
    head.sequence, head.hash = fields["sequence"], entry
    # A tenant object loaded earlier in the session reloads these on its next access.
    loaded = session.identity_map.get(identity_key(t.Tenant, tenant_id))
    if loaded is not None:
        session.expire(loaded, ["audit_sequence", "audit_head_hash"])
    return str(fields["id"])


def lock_chain(session: Session, tenant_id: str) -> None:
    """Take the tenant's lock now (every write takes it for its audit entry anyway): until this
    transaction ends, no other one changes the tenant's directory or chain."""
    _locked_head(session, tenant_id)


@dataclass
class _Head:
    sequence: int
    hash: str


_HEADS = "countersign.audit_heads"


def _locked_head(session: Session, tenant_id: str) -> _Head:
    """The chain's head as of this transaction, read under the tenant row's lock the first time."""
    heads: dict[str, _Head] = session.info.setdefault(_HEADS, {})
    head = heads.get(tenant_id)
    if head is None:
        sequence, head_hash, directory_version = session.execute(
            select(t.Tenant.audit_sequence, t.Tenant.audit_head_hash, t.Tenant.directory_version)
            .where(t.Tenant.id == tenant_id)
            .with_for_update(key_share=True)
        ).one()
        head = heads[tenant_id] = _Head(sequence, head_hash)
        # Read under the lock every directory or channel change also takes (they write audit
        # entries too): current until this transaction ends (notify/outbox.py uses it).
        remember_locked_directory_version(session, tenant_id, directory_version)
    return head


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction: SessionTransaction) -> None:
    """The heads (and the lock behind them) last only for the transaction that read them. Also
    dropped when a savepoint ends: a rolled-back savepoint undoes the head's update and, on
    PostgreSQL, releases a lock first taken inside it. (Not on the end of the ORM's internal
    flush transactions, which are neither.)"""
    if transaction.nested or transaction.parent is None:
        session.info.pop(_HEADS, None)


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


@dataclass(frozen=True)
class BrokenLink:
    tenant_id: str
    sequence: int
    event_id: str | None
    problem: str


def verify_chain(session: Session, tenant_id: str) -> BrokenLink | None:
    """The first broken link of a tenant's chain, or None when it is intact. An entry with a
    value that does not parse (a bad date, broken JSON) is a broken link, named by sequence."""
    tenant = session.get(t.Tenant, tenant_id)
    if tenant is None:
        return BrokenLink(tenant_id, 0, None, "tenant not found")
    try:
        return _verify_entries(tenant, _events(session, tenant_id), _Progress())
    except ValueError:
        # The failing value spoils the whole batch it arrives in: read again one entry at a
        # time, so the entries before it are checked and the unreadable one is named.
        progress = _Progress()
        try:
            return _verify_entries(tenant, _events(session, tenant_id, batch=1), progress)
        except ValueError as exc:
            return _unreadable(session, tenant_id, progress.expected_sequence, exc)


@dataclass
class _Progress:
    previous_hash: str = GENESIS_HASH
    expected_sequence: int = 1


def _verify_entries(
    tenant: t.Tenant, rows: Iterator[t.AuditEvent], progress: _Progress
) -> BrokenLink | None:
    tenant_id = tenant.id
    for row in rows:
        previous_hash, expected_sequence = progress.previous_hash, progress.expected_sequence
        if row.sequence != expected_sequence:
            return BrokenLink(
                tenant_id,
                expected_sequence,
                row.id,
                f"entry {expected_sequence} is missing (next is {row.sequence})",
            )
        if row.previous_hash != previous_hash:
            return BrokenLink(
                tenant_id, row.sequence, row.id, "previous-hash does not match the entry before"
            )
        if entry_hash(row, previous_hash) != row.hash:
            return BrokenLink(tenant_id, row.sequence, row.id, "entry content was altered")
        progress.previous_hash, progress.expected_sequence = row.hash, expected_sequence + 1
    previous_hash, expected_sequence = progress.previous_hash, progress.expected_sequence
    if tenant.audit_sequence != expected_sequence - 1 or tenant.audit_head_hash != previous_hash:
        return BrokenLink(
            tenant_id,
            expected_sequence,
            None,
            f"chain ends at entry {expected_sequence - 1} but the tenant recorded "
            f"{tenant.audit_sequence} entries",
        )
    return None


def _unreadable(session: Session, tenant_id: str, from_sequence: int, exc: Exception) -> BrokenLink:
    """The first entry from `from_sequence` on, named by its sequence and id (columns that
    always parse), as a broken link: its stored content cannot have been written by us."""
    first = session.execute(
        select(t.AuditEvent.sequence, t.AuditEvent.id)
        .where(t.AuditEvent.tenant_id == tenant_id, t.AuditEvent.sequence >= from_sequence)
        .order_by(t.AuditEvent.sequence)
        .limit(1)
    ).first()
    detail = " ".join(str(exc).split())[:200]
    sequence, event_id = (first[0], first[1]) if first else (from_sequence, None)
    return BrokenLink(tenant_id, sequence, event_id, f"entry {sequence} cannot be read ({detail})")


def _events(session: Session, tenant_id: str, batch: int = 1000) -> Iterator[t.AuditEvent]:
    query = (
        select(t.AuditEvent)
        .where(t.AuditEvent.tenant_id == tenant_id)
        .order_by(t.AuditEvent.sequence)
        .execution_options(yield_per=batch)
    )
    # Closed even when the caller stops early (verify at a broken link): on PostgreSQL this is
    # a server-side cursor, which must not be left open.
    with session.scalars(query) as rows:
        yield from rows


def event_json(row: t.AuditEvent) -> dict[str, Any]:
    """Graph's auditEvent shape, with the chain fields as Countersign extensions."""
    is_app = row.actor_type == "servicePrincipal"
    modified = [
        {
            "displayName": key,
            "oldValue": _text((row.before or {}).get(key)),
            "newValue": _text((row.after or {}).get(key)),
        }
        for key in sorted(set(row.before or {}) | set(row.after or {}))
        if (row.before or {}).get(key) != (row.after or {}).get(key)
    ]
    return {
        "@odata.type": "#microsoft.graph.auditEvent",
        "id": row.id,
        "displayName": row.activity,
        "componentName": row.category,
        "activity": row.activity,
        "activityDateTime": row.activity_date_time.astimezone(UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "activityType": row.activity_type,
        "activityOperationType": row.activity_type.split(" ", 1)[0],
        "activityResult": row.result,
        "correlationId": row.correlation_id,
        "category": row.category,
        "actor": {
            "@odata.type": "microsoft.graph.auditActor",
            "auditActorType": "Application" if is_app else ("ItPro" if row.actor_id else "System"),
            "userId": None if is_app else row.actor_id,
            "userPrincipalName": None if is_app else row.actor_name,
            "applicationId": row.actor_id if is_app else None,
            "applicationDisplayName": row.actor_name if is_app else None,
            "servicePrincipalName": row.actor_name if is_app else None,
        },
        "resources": [
            {
                "@odata.type": "microsoft.graph.auditResource",
                "displayName": row.target_name,
                "type": row.target_type,
                "auditResourceType": row.target_type,
                "resourceId": row.target_id,
                "modifiedProperties": modified,
            }
        ]
        if row.target_type
        else [],
        "approvalRequestId": row.approval_request_id,
        "sequence": row.sequence,
        "previousHash": row.previous_hash,
        "hash": row.hash,
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
