"""The transactional outbox: notifications are written as rows in the transaction of the event
they announce, and delivered after commit by `countersign worker` (notify/dispatcher.py).

`enqueue` only writes rows, never does I/O, so a dead channel can never block, slow down or roll
back an approval: if the approval transaction commits, its messages exist; if it rolls back,
they never did.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.store import tables as t
from countersign.store.db import (
    Database,
    EnabledChannel,
    load_enabled_channels,
    locked_directory_version,
)

EVENTS = frozenset(
    {
        "submitted",
        "approved",
        "rejected",
        "cancelled",
        "completed",
        "expired",
        "reminder",
        "completionFailed",
    }
)
# Not sent for approval requests; `sendTestMessage` uses it.
TEST_EVENT = "test"

PENDING, DELIVERING, DELIVERED, DEAD = "pending", "delivering", "delivered", "dead"

# The fields of the operationApprovalRequest a message needs (the rest, e.g. `payload`, stays
# out of the outbox: it may be large and nobody reads it in a notification).
_REQUEST_FIELDS = (
    "id",
    "status",
    "requestor",
    "approver",
    "requestDateTime",
    "requestJustification",
    "approvalJustification",
    "expirationDateTime",
    "payloadId",
    "payloadName",
    "payloadType",
    "payloadOperation",
    "actionName",
    "requiredOperationApprovalPolicyTypes",
)


def enqueue(
    session: Session,
    *,
    tenant_id: str,
    event: str,
    request: dict[str, Any],
    recipient_ids: list[str],
    now: datetime,
) -> None:
    """Write one outbox message per enabled channel of the tenant that takes `event`.

    Call inside the transaction of the transition. `request` is the operationApprovalRequest's
    Graph JSON; `recipient_ids` are user or service-principal ids. E-mail addresses (a user's
    `mail`, else its userPrincipalName) are resolved now, so the message goes where the
    directory said at the time of the event. With no channels configured it writes nothing.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    channels = _channels(session, tenant_id, event)
    if not channels:
        return
    recipients = resolve_recipients(session, tenant_id, recipient_ids)
    content = request_content(event, request)
    for channel in channels:
        if channel.kind == "email" and not any(r["address"] for r in recipients):
            continue  # nobody with an address: an e-mail would have no recipient
        session.add(
            t.OutboxMessage(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                channel_id=channel.id,
                event=event,
                approval_request_id=request.get("id"),
                recipients=recipients,
                content=content,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_date_time=now,
            )
        )


def request_content(event: str, request: dict[str, Any]) -> dict[str, Any]:
    """The channel-neutral content of a message about `request` (formatted at delivery)."""
    fields = {key: request.get(key) for key in _REQUEST_FIELDS}
    display = request.get("displayPayload") or {}
    # The reviewer's summary (services/summary.py): what every channel shows people.
    return {
        "event": event,
        "request": fields,
        "diff": display.get("diff"),
        "summary": display.get("summary"),
    }


def resolve_recipients(
    session: Session, tenant_id: str, principal_ids: list[str]
) -> list[dict[str, Any]]:
    """[{id, displayName, address}] in the order given, duplicates dropped; service principals
    and unknown ids get no address."""
    ids = list(dict.fromkeys(principal_ids))
    if not ids:
        return []
    users = {
        user.id: user
        for user in session.scalars(
            select(t.User).where(t.User.tenant_id == tenant_id, t.User.id.in_(ids))
        )
    }
    apps: dict[str, str] = {
        sp.id: sp.display_name
        for sp in session.scalars(
            select(t.ServicePrincipal).where(
                t.ServicePrincipal.tenant_id == tenant_id, t.ServicePrincipal.id.in_(ids)
            )
        )
    }
    resolved: list[dict[str, Any]] = []
    for principal_id in ids:
        user = users.get(principal_id)
        if user is not None:
            address = user.mail or user.user_principal_name
            resolved.append({"id": user.id, "displayName": user.display_name, "address": address})
        else:
            resolved.append(
                {"id": principal_id, "displayName": apps.get(principal_id), "address": None}
            )
    return resolved


def _channels(session: Session, tenant_id: str, event: str) -> list[EnabledChannel]:
    """The tenant's enabled channels that take `event`, in creation order. From the per-process
    cache keyed by the tenant's directory version (every channel change bumps it), read under
    the tenant lock this transaction's audit entry took when it has one."""
    db = Database.of(session)
    version = locked_directory_version(session, tenant_id)
    if db is not None and version is None:
        version = session.scalar(select(t.Tenant.directory_version).where(t.Tenant.id == tenant_id))
    if db is None or version is None:
        channels = load_enabled_channels(session, tenant_id)
    else:
        channels = db.enabled_channels(session, tenant_id, version)
    return [c for c in channels if c.takes(event)]


def request_from_row(row: t.ApprovalRequest) -> dict[str, Any]:
    """The Graph fields a notification needs, read from a stored request (for the worker's
    expiry and reminder messages; the engine passes its own full Graph JSON)."""

    def identity(kind: str | None, principal_id: str | None, name: str | None) -> Any:
        if principal_id is None:
            return None
        key = "application" if kind == "servicePrincipal" else "user"
        return {key: {"id": principal_id, "displayName": name}}

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": row.id,
        "status": row.status,
        "requestor": identity(row.requestor_type, row.requestor_id, row.requestor_name),
        "approver": identity(row.approver_type, row.approver_id, row.approver_name),
        "requestDateTime": iso(row.request_date_time),
        "requestJustification": row.request_justification,
        "approvalJustification": row.approval_justification,
        "expirationDateTime": iso(row.expiration_date_time),
        "payloadId": row.payload_id,
        "payloadName": row.payload_name,
        "payloadType": row.payload_type,
        "payloadOperation": row.payload_operation,
        "actionName": row.action_name,
        "requiredOperationApprovalPolicyTypes": [row.policy_type],
        "displayPayload": row.display_payload,
    }
