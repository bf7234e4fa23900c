"""Idempotent submission: a retried submit answers with the request the first one made.

A client whose `403 ApprovalRequired` answer was lost (a dropped connection, a proxy timeout)
sends the same write again. When that write carries a key -- `Idempotency-Key`, or Graph's
`client-request-id` (SDKs send one per call and keep it on retries) -- the same caller, the same
key and the same operation (method, path, canonical body) within `KEY_LIFETIME` answer the same
`ApprovalRequired` with the same `x-msft-approval-code`, instead of making a second request for
approvers to puzzle over. The same key with another operation is a 409 naming the first request.

Enforced by the database: `submission_keys` has a unique index on (tenant, caller, key). Under
concurrency the key is claimed after taking the tenant row's lock (the lock every audit writer
of the tenant takes anyway, so it adds no new ordering): concurrent submits of one key take
turns, and each one after the first finds the first's row, committed, and answers with its
request. The unique index is the backstop should any path skip the lock.

Only submissions that become requests use the key; unprotected writes apply at once as before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, ValidationFailed
from countersign.services.changes import Change, canonical_json
from countersign.services.complete_request import same_change
from countersign.store import tables as t
from countersign.store.db import lock_tenant

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 128


def fingerprint(change: Change) -> str:
    """What "the same operation" means: method and path (collection, operation, target, action,
    If-Match) and the body as canonical JSON -- without a new password, which is never stored
    in a fast hash (the request keeps it as an Argon2id hash; `_same_as_request` checks it)."""
    canonical = change.canonical()
    body = canonical["body"]
    profile = body.get("passwordProfile") if isinstance(body, dict) else None
    if isinstance(profile, dict) and "password" in profile:
        unsecret = {k: v for k, v in profile.items() if k != "password"}
        canonical = {**canonical, "body": {**body, "passwordProfile": unsecret}}
    return hashlib.sha256(canonical_json(canonical).encode()).hexdigest()


def _same_as_request(session: Session, request_id: str, change: Change) -> bool:
    """The change is the one the request froze, secrets included (a password against its
    frozen hash)."""
    row = session.get(t.ApprovalRequest, request_id)
    if row is None:
        return False
    return same_change(Change.from_canonical(row.payload["change"]), change)


def submit_once(
    session: Session,
    caller: Caller,
    change: Change,
    key: str | None,
    now: datetime,
    create: Callable[[], str],
) -> str:
    """The id of the request for this submission: made now by `create()`, or the one an
    earlier submission with the same key made. Without a key, simply `create()`."""
    if key is None or not key.strip():
        return create()
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"The idempotency key (Idempotency-Key or client-request-id) is longer than "
            f"{MAX_KEY_LENGTH} characters."
        )
    # Concurrent submits of one key take turns here; see the module docstring.
    lock_tenant(session, caller.tenant_id)
    k = t.SubmissionKey
    mine = (k.tenant_id == caller.tenant_id, k.caller_id == caller.id, k.key == key)
    earlier = session.execute(select(k).where(*mine)).scalar_one_or_none()
    if earlier is not None and earlier.created_date_time > now - KEY_LIFETIME:
        if earlier.fingerprint != fingerprint(change) or not _same_as_request(
            session, earlier.request_id, change
        ):
            raise Conflict(
                f"The key '{key}' was already used for another operation, which made request "
                f"{earlier.request_id}; send a new key for a different change.",
                reason=f"idempotencyKeyReused:{earlier.request_id}",
            )
        return earlier.request_id
    if earlier is not None:  # older than the key's lifetime: the key is free again
        session.execute(delete(k).where(k.id == earlier.id))
    request_id = create()
    session.add(
        t.SubmissionKey(
            id=str(uuid.uuid4()),
            tenant_id=caller.tenant_id,
            caller_id=caller.id,
            key=key,
            fingerprint=fingerprint(change),
            request_id=request_id,
            created_date_time=now,
        )
    )
    session.flush()
    return request_id
