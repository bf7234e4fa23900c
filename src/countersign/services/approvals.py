"""Approval requests (operationApprovalRequest): submission, approve, reject, cancel, complete.

Every transition runs in one write transaction that (1) locks the request row (FOR UPDATE on
PostgreSQL; SQLite write transactions are already serialised by BEGIN IMMEDIATE), (2) re-checks
the status and the expiry against the clock, (3) moves the status with a compare-and-set UPDATE,
and (4) writes the audit entry and the outbox messages. Two approvers, approve against cancel,
complete against expiry: exactly one wins; the loser gets 409.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from countersign.auth.tokens import TokenClaims
from countersign.domain import approval as a
from countersign.domain import guards, resource_types
from countersign.domain import request as lifecycle
from countersign.domain.actors import Caller
from countersign.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotEligibleToApprove,
    NotFound,
    ValidationFailed,
)
from countersign.domain.rbac import DirectorySnapshot
from countersign.domain.request import Status
from countersign.metrics import observe_time_to_approval
from countersign.notify import outbox
from countersign.services import audit
from countersign.services.catalog import apply_change, plan_change
from countersign.services.changes import Change, Plan, Result, canonical_json, iso
from countersign.services.handlers import directory
from countersign.services.identity import caller_as_of, resolve_caller
from countersign.services.summary import build_summary
from countersign.store import tables as t
from countersign.store.db import Database, current_snapshot, load_snapshot

MAX_JUSTIFICATION = 1024
LOCKED_MESSAGE = "An active Approval Request already exists for this entity."
NOT_ELIGIBLE = "Requesting user does not have proper permissions to approve"

# -- reading ---------------------------------------------------------------------------------


def effective_status(row: t.ApprovalRequest, now: datetime) -> str:
    """Expiry is exact on every read, whether or not the sweeper has run."""
    return lifecycle.effective_status(row.status, row.expiration_date_time, now)


def _identity(
    principal_id: str | None, principal_type: str | None, name: str | None
) -> dict[str, Any] | None:
    if principal_id is None:
        return None
    key = "application" if principal_type == "servicePrincipal" else "user"
    return {key: {"id": principal_id, "displayName": name}}


def request_json(
    row: t.ApprovalRequest, now: datetime, decisions: list[t.ApprovalDecision] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.operationApprovalRequest",
        "id": row.id,
        "requestDateTime": iso(row.request_date_time),
        "expirationDateTime": iso(row.expiration_date_time),
        "lastModifiedDateTime": iso(row.last_modified_date_time),
        "requestor": _identity(row.requestor_id, row.requestor_type, row.requestor_name),
        "approver": _identity(row.approver_id, row.approver_type, row.approver_name),
        "status": effective_status(row, now),
        "requestJustification": row.request_justification,
        "approvalJustification": row.approval_justification,
        "requiredOperationApprovalPolicyTypes": row.policy_type,
        "payloadId": row.payload_id,
        "payloadType": row.payload_type,
        "payloadName": row.payload_name,
        "payloadOperation": row.payload_operation,
        "actionName": row.action_name,
        "payload": public_change(row.payload.get("change")),
        "displayPayload": row.display_payload,
        "approvalsRequired": row.approvals_required,
        "autoComplete": row.auto_complete,
        "policyIds": list(row.policy_ids),
        "completedDateTime": iso(row.completed_date_time),
    }
    if decisions is not None:
        body["approvals"] = [
            {
                "approver": {"user": {"id": d.approver_id, "displayName": d.approver_name}},
                "decision": d.decision,
                "justification": d.justification,
                "decidedDateTime": iso(d.decided_date_time),
            }
            for d in sorted(decisions, key=lambda d: d.decided_date_time)
        ]
    return body


def decisions_of(session: Session, request_id: str) -> list[t.ApprovalDecision]:
    return list(
        session.scalars(
            select(t.ApprovalDecision).where(t.ApprovalDecision.request_id == request_id)
        )
    )


def get_request(
    session: Session, tenant_id: str, request_id: str, *, for_update: bool = False
) -> t.ApprovalRequest:
    query = select(t.ApprovalRequest).where(
        t.ApprovalRequest.id == request_id, t.ApprovalRequest.tenant_id == tenant_id
    )
    if for_update:
        # Locked, and read fresh under the lock even if the session already holds the row.
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Approval request '{request_id}' does not exist.")
    return row


def approvers_of(row: t.ApprovalRequest) -> a.Approvers:
    return a.Approvers.from_json(row.payload["approvers"])


def approval_blocker(
    session: Session, db: Database, caller: Caller, row: t.ApprovalRequest
) -> a.Refusal | None:
    """None when `caller` may approve or reject `row` now, else the check that fails."""
    snapshot = current_snapshot(session, db, caller.tenant_id)
    return a.approval_blocker(
        snapshot, caller.id, caller.is_user, row.requestor_id, approvers_of(row)
    )


def eligible_approver_ids(
    session: Session, snapshot: DirectorySnapshot, row: t.ApprovalRequest
) -> list[str]:
    return a.eligible_approvers(snapshot, row.requestor_id, approvers_of(row))


# -- protection: does a planned change need approval? ---------------------------------------


@dataclass(frozen=True)
class Protection:
    policy_type: str
    policies: tuple[a.ActivePolicy, ...]
    approvers: a.Approvers
    approvals_required: int
    auto_complete: bool
    lifetime_days: int | None
    # What the change does to who can do what, when it touches the directory.
    access_change: guards.AccessChange | None = None


def protection_for(snapshot: DirectorySnapshot, change: Change, plan: Plan) -> Protection | None:
    """The approval a planned change needs from the tenant's active policies, or None."""
    everyone_with_permission = a.Approvers((), None)
    if plan.policy_type == a.ACCESS_POLICY_TYPE:
        return Protection(a.ACCESS_POLICY_TYPE, (), everyone_with_permission, 1, False, None)
    if plan.policy_type is None:
        return None
    policies = tuple(a.covering(snapshot.policies, plan.policy_type, plan.platform))
    if not policies:
        return None
    groups = tuple(dict.fromkeys(g for policy in policies for g in policy.approver_group_ids))
    lifetimes = [
        policy.request_lifetime_days for policy in policies if policy.request_lifetime_days
    ]
    return Protection(
        policy_type=plan.policy_type,
        policies=policies,
        approvers=a.Approvers(
            groups,
            resource_types.approver_read_permission(change.collection),
            a.object_tag_sets(plan.before, plan.after),
        ),
        approvals_required=max(policy.approvals_required for policy in policies),
        # Auto-complete only when every covering policy asks for it.
        auto_complete=all(policy.auto_complete for policy in policies),
        lifetime_days=min(lifetimes) if lifetimes else None,
    )


def decode_justification(header: str | None) -> str:
    """x-msft-approval-justification carries the justification as base64."""
    if header is None:
        raise ValidationFailed(
            "Header 'x-msft-approval-justification' is required to request approval",
            reason="justificationMissing",
        )
    try:
        text = base64.b64decode(header.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            "Header 'x-msft-approval-justification' must be the justification "
            "encoded as base64 (UTF-8).",
            reason="justificationNotBase64",
        ) from None
    return check_justification(text)


def check_justification(
    text: str | None, *, required: bool = True, field: str = "justification"
) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationFailed(
            f"A {field} is required (1 to {MAX_JUSTIFICATION} characters).",
            reason="justificationMissing",
        )
    if len(text) > MAX_JUSTIFICATION:
        raise ValidationFailed(
            f"The {field} has {len(text)} characters; at most {MAX_JUSTIFICATION} are allowed.",
            reason="justificationTooLong",
        )
    return text


# -- the directory guards (SPEC §4 rule 10, §9) ------------------------------------------------


def directory_effect(
    session: Session, tenant_id: str, requester_id: str, before: DirectorySnapshot
) -> guards.AccessChange | None:
    """The effect of the change just applied in this transaction on who can do what, or None
    when it left the directory as it was (its version did not move). Refuses a change that
    would lock the tenant out of its approvals."""
    session.flush()
    version = session.scalar(select(t.Tenant.directory_version).where(t.Tenant.id == tenant_id))
    if version == before.version:
        return None
    after = load_snapshot(session, tenant_id, version=-1)
    locked_out = guards.lockout(after, requester_id)
    if locked_out is not None:
        raise ValidationFailed(locked_out, reason="approverLockout")
    return guards.access_change(before, after)


def simulate(
    session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
) -> guards.AccessChange | None:
    """Apply the change on a savepoint, judge its effect on the directory, and undo it: refuse
    at submission what completion would refuse, and learn whom the change is about."""
    savepoint = session.begin_nested()
    try:
        apply_change(session, caller, change, dataclasses.replace(plan), now)
        return directory_effect(session, caller.tenant_id, caller.id, caller.snapshot)
    finally:
        savepoint.rollback()


def guarded(protection: Protection | None, effect: guards.AccessChange | None) -> Protection | None:
    """The protection a change needs once its effect on the directory is known: a change that
    grants access, or sets the credentials of a principal holding an Intune permission, is a
    `role` request that holders of the approval permission approve; and the principals a change
    is about are never its approvers."""
    if effect is None:
        return protection
    if protection is None:
        if not effect.needs_approval:
            return None
        protection = Protection("role", (), a.Approvers((), None), 1, False, None)
    excluded = tuple(sorted(set(protection.approvers.excluded_ids) | effect.subjects))
    return dataclasses.replace(
        protection,
        approvers=dataclasses.replace(protection.approvers, excluded_ids=excluded),
        access_change=effect,
    )


# -- transactions that must commit before they fail ------------------------------------------


class _CommitThenRaise(Exception):
    """Raised inside a transaction whose writes (an audit entry, an expiry) must persist."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


T = TypeVar("T")


def run_transition(db: Database, work: Callable[[Session], T]) -> T:
    failure: DomainError | None = None
    with db.write() as session:
        try:
            return work(session)
        except _CommitThenRaise as deferred:
            failure = deferred.error
    assert failure is not None
    raise failure


def _move(
    session: Session,
    row: t.ApprovalRequest,
    expected: str,
    target: str,
    now: datetime,
    **values: Any,
) -> None:
    """Compare-and-set on the status: the UPDATE matches only while the status is still
    `expected`, so of two racing transitions exactly one changes the row."""
    if not lifecycle.can_move(expected, target):
        raise Conflict(f"A request that is {expected} cannot become {target}.")
    moved = cast(
        CursorResult[Any],
        session.execute(
            update(t.ApprovalRequest)
            .where(t.ApprovalRequest.id == row.id, t.ApprovalRequest.status == expected)
            .values(status=target, last_modified_date_time=now, **values)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if moved != 1:
        raise Conflict(f"The request changed meanwhile; it is no longer {expected}.")
    if target not in lifecycle.ACTIVE:
        session.execute(delete(t.RequestLock).where(t.RequestLock.request_id == row.id))
    _mirror(row, status=target, last_modified_date_time=now, **values)


def _mirror(row: t.ApprovalRequest, **values: Any) -> None:
    """Show on the loaded row what an UPDATE just wrote, without marking it dirty."""
    for name, value in values.items():
        set_committed_value(row, name, value)


def _audit(
    session: Session,
    row: t.ApprovalRequest,
    actor: Caller | None,
    activity: str,
    now: datetime,
    result: str = "success",
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        tenant_id=row.tenant_id,
        actor=actor,
        actor_name=None if actor else "countersign",
        activity=f"{activity} operationApprovalRequest",
        activity_type=activity,
        category="MultiAdminApproval",
        target_type=row.payload_type,
        target_id=row.payload_id,
        target_name=row.payload_name,
        approval_request_id=row.id,
        result=result,
        after=after or {"status": row.status},
        now=now,
    )


def _notify(
    session: Session, row: t.ApprovalRequest, event: str, recipients: list[str], now: datetime
) -> None:
    outbox.enqueue(
        session,
        tenant_id=row.tenant_id,
        event=event,
        request=request_json(row, now),
        recipient_ids=recipients,
        now=now,
    )


def aggregate_of(row: t.ApprovalRequest) -> lifecycle.ApprovalRequest:
    """The domain's view of a loaded request row (approve adds the decisions it reads)."""
    return lifecycle.ApprovalRequest(
        id=row.id,
        status=Status(row.status),
        requestor_id=row.requestor_id,
        expires=row.expiration_date_time,
        approvals_required=row.approvals_required,
    )


def _save(
    session: Session,
    row: t.ApprovalRequest,
    request: lifecycle.ApprovalRequest,
    now: datetime,
    **values: Any,
) -> None:
    """Persist the moves the aggregate recorded, each a compare-and-set (see `_move`)."""
    for event in request.events:
        _move(session, row, event.before, event.after, now, **values)
    request.events.clear()


def _expire_if_due(
    session: Session, row: t.ApprovalRequest, request: lifecycle.ApprovalRequest, now: datetime
) -> None:
    """An action on a request whose time is up expires it (committed) and fails with 409."""
    if request.expire(now):
        _save(session, row, request, now)
        _audit(session, row, None, "Expire", now)
        _notify(session, row, "expired", [row.requestor_id], now)
        raise _CommitThenRaise(
            Conflict(
                f"The request expired at {iso(row.expiration_date_time)}; submit a new one.",
                reason="requestExpired",
            )
        )


# -- submission --------------------------------------------------------------------------------


def create_request(
    session: Session,
    caller: Caller,
    change: Change,
    plan: Plan,
    protection: Protection,
    justification: str,
    now: datetime,
) -> t.ApprovalRequest:
    """Freeze a planned change as a request in `needsApproval` (SPEC §4 rules 1-3)."""
    frozen = frozen_change(change).canonical()
    access_change = protection.access_change.to_json() if protection.access_change else None
    lifetime = protection.lifetime_days or session.scalar(
        select(t.Tenant.request_lifetime_days).where(t.Tenant.id == caller.tenant_id)
    )
    assert lifetime is not None
    request = lifecycle.ApprovalRequest.submit(
        str(uuid.uuid4()),
        caller.id,
        now,
        timedelta(days=lifetime),
        protection.approvals_required,
    )
    before, after = plan.before, plan.after
    row = t.ApprovalRequest(
        id=request.id,
        tenant_id=caller.tenant_id,
        status=request.status,
        request_date_time=now,
        expiration_date_time=request.expires,
        last_modified_date_time=now,
        requestor_id=caller.id,
        requestor_type=caller.type,
        requestor_name=caller.display_name,
        request_justification=justification,
        policy_type=protection.policy_type,
        policy_ids=[policy.id for policy in protection.policies],
        approvals_required=request.approvals_required,
        auto_complete=protection.auto_complete,
        payload_id=change.target_id,
        payload_type=plan.entity_type,
        payload_name=plan.target_name[:256],
        payload_operation=change.operation,
        action_name=change.action_name,
        payload={
            "change": frozen,
            "versions": plan.versions,
            "approvers": protection.approvers.to_json(),
            "accessChange": access_change,
        },
        display_payload={
            "before": before,
            "after": after,
            "diff": a.json_diff(before or {}, after or {}),
            "accessChange": access_change,
            "summary": build_summary(session, caller, change, plan, access_change),
        },
        entity_keys=list(plan.entity_keys),
    )
    session.add(row)
    session.flush()
    _lock_entities(session, caller.tenant_id, row, now)
    _audit(
        session,
        row,
        caller,
        "Submit",
        now,
        after={
            "status": row.status,
            "justification": justification,
            "change": public_change(frozen),
        },
    )
    _notify(session, row, "submitted", eligible_approver_ids(session, caller.snapshot, row), now)
    return row


def check_unlocked(session: Session, tenant_id: str, keys: Iterable[str], now: datetime) -> None:
    """409 when an active request holds any of the objects."""
    keys = list(keys)
    if not keys:
        return
    holders = session.scalars(
        select(t.ApprovalRequest)
        .join(t.RequestLock, t.RequestLock.request_id == t.ApprovalRequest.id)
        .where(t.RequestLock.tenant_id == tenant_id, t.RequestLock.entity_key.in_(keys))
    ).all()
    for holder in holders:
        if effective_status(holder, now) in lifecycle.ACTIVE:
            raise Conflict(LOCKED_MESSAGE, reason=f"lockedBy:{holder.id}")


def _lock_entities(session: Session, tenant_id: str, row: t.ApprovalRequest, now: datetime) -> None:
    """One active request per object (rule 3), enforced by the request_locks primary key."""
    for key in row.entity_keys:
        holder = session.execute(
            select(t.ApprovalRequest)
            .join(t.RequestLock, t.RequestLock.request_id == t.ApprovalRequest.id)
            .where(t.RequestLock.tenant_id == tenant_id, t.RequestLock.entity_key == key)
            .with_for_update()
        ).scalar_one_or_none()
        if holder is not None and effective_status(holder, now) == Status.EXPIRED:
            _move(session, holder, holder.status, Status.EXPIRED, now)  # frees its locks
            _audit(session, holder, None, "Expire", now)
            _notify(session, holder, "expired", [holder.requestor_id], now)
        elif holder is not None:
            raise Conflict(LOCKED_MESSAGE, reason=f"lockedBy:{holder.id}")
        try:
            with session.begin_nested():
                session.add(t.RequestLock(tenant_id=tenant_id, entity_key=key, request_id=row.id))
        except IntegrityError:
            # Another transaction locked the entity between our read and our insert.
            raise Conflict(LOCKED_MESSAGE, reason="lockedConcurrently") from None


# -- approve, reject, cancel -----------------------------------------------------------------


def _require_eligible(
    session: Session,
    db: Database,
    caller: Caller,
    row: t.ApprovalRequest,
    activity: str,
    now: datetime,
) -> None:
    refusal = approval_blocker(session, db, caller, row)
    if refusal is not None:
        _audit(
            session,
            row,
            caller,
            f"{activity} (refused)",
            now,
            result="failure",
            after={"reason": refusal.reason},
        )
        raise _CommitThenRaise(NotEligibleToApprove(refusal.reason))


def _lock_in_status(
    session: Session,
    caller: Caller,
    request_id: str,
    expected: Status,
    action: str,
    now: datetime,
) -> tuple[t.ApprovalRequest, lifecycle.ApprovalRequest]:
    """The request, row-locked, expired now if its time is up, and in the `expected` status."""
    row = get_request(session, caller.tenant_id, request_id, for_update=True)
    request = aggregate_of(row)
    _expire_if_due(session, row, request, now)
    request.require_status(expected, action)
    return row, request


def approve_request(
    db: Database, caller: Caller, request_id: str, justification: str | None, now: datetime
) -> dict[str, Any]:
    notes = check_justification(justification, required=False, field="approver note")

    def work(session: Session) -> dict[str, Any]:
        row, request = _lock_in_status(
            session, caller, request_id, Status.NEEDS_APPROVAL, "be approved", now
        )
        _require_eligible(session, db, caller, row, "Approve", now)
        # The request row is locked (above), so no other decision on it can be written
        # between this read and the insert; the primary key would refuse a second one anyway.
        decided = session.execute(
            select(t.ApprovalDecision.approver_id, t.ApprovalDecision.decision).where(
                t.ApprovalDecision.request_id == row.id
            )
        ).all()
        request.decisions = tuple((approver_id, decision) for approver_id, decision in decided)
        reached = request.approve(caller.id)
        session.execute(
            insert(t.ApprovalDecision).values(
                request_id=row.id,
                approver_id=caller.id,
                tenant_id=row.tenant_id,
                approver_name=caller.display_name,
                decision="approve",
                justification=notes or None,
                decided_date_time=now,
            )
        )
        approvals = request.approvals
        identity = {
            "approver_id": caller.id,
            "approver_type": caller.type,
            "approver_name": caller.display_name,
            "approval_justification": notes or row.approval_justification,
        }
        if reached:
            _save(session, row, request, now, **identity)
            _audit(
                session,
                row,
                caller,
                "Approve",
                now,
                after={"status": row.status, "approvals": approvals, "notes": notes},
            )
            observe_time_to_approval((now - row.request_date_time).total_seconds())
            if row.auto_complete:
                requester = _requester_caller(session, db, row)
                complete_locked(session, db, requester, row, now, replay=None)
            else:
                _notify(session, row, "approved", [row.requestor_id], now)
        else:
            session.execute(
                update(t.ApprovalRequest)
                .where(t.ApprovalRequest.id == row.id)
                .values(last_modified_date_time=now, **identity)
                .execution_options(synchronize_session=False)
            )
            _mirror(row, last_modified_date_time=now, **identity)
            _audit(
                session,
                row,
                caller,
                "Approve",
                now,
                after={
                    "status": row.status,
                    "approvals": approvals,
                    "approvalsRequired": row.approvals_required,
                    "notes": notes,
                },
            )
        return request_json(row, now)

    return run_transition(db, work)


def reject_request(
    db: Database, caller: Caller, request_id: str, justification: str | None, now: datetime
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        row, request = _lock_in_status(
            session, caller, request_id, Status.NEEDS_APPROVAL, "be rejected", now
        )
        _require_eligible(session, db, caller, row, "Reject", now)
        notes = check_justification(justification, field="approver note (required to reject)")
        request.reject(caller.id)
        session.merge(
            t.ApprovalDecision(
                request_id=row.id,
                approver_id=caller.id,
                tenant_id=row.tenant_id,
                approver_name=caller.display_name,
                decision="reject",
                justification=notes,
                decided_date_time=now,
            )
        )
        _save(
            session,
            row,
            request,
            now,
            approver_id=caller.id,
            approver_type=caller.type,
            approver_name=caller.display_name,
            approval_justification=notes,
        )
        _audit(session, row, caller, "Reject", now, after={"status": row.status, "notes": notes})
        _notify(session, row, "rejected", [row.requestor_id], now)
        return request_json(row, now)

    return run_transition(db, work)


def cancel_approval(
    db: Database, caller: Caller, request_id: str, justification: str | None, now: datetime
) -> dict[str, Any]:
    """An eligible approver withdraws an approval that the requester has not completed yet."""
    notes = check_justification(justification, required=False, field="approver note")

    def work(session: Session) -> dict[str, Any]:
        row, request = _lock_in_status(
            session, caller, request_id, Status.APPROVED, "have its approval cancelled", now
        )
        _require_eligible(session, db, caller, row, "Cancel approval", now)
        request.cancel_approval()
        _save(
            session,
            row,
            request,
            now,
            approval_justification=notes or row.approval_justification,
        )
        _audit(
            session,
            row,
            caller,
            "Cancel approval",
            now,
            after={"status": row.status, "notes": notes},
        )
        _notify(session, row, "cancelled", [row.requestor_id], now)
        return request_json(row, now)

    return run_transition(db, work)


def cancel_my_request(
    db: Database, caller: Caller, request_id: str, now: datetime
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        row = get_request(session, caller.tenant_id, request_id, for_update=True)
        request = aggregate_of(row)
        request.require_requester(caller.id, "cancel their request")
        _expire_if_due(session, row, request, now)
        request.cancel(caller.id)
        _save(session, row, request, now)
        _audit(session, row, caller, "Cancel", now)
        _notify(session, row, "cancelled", [row.requestor_id], now)
        return request_json(row, now)

    return run_transition(db, work)


# -- completion --------------------------------------------------------------------------------


def complete_request(
    db: Database, caller: Caller, request_id: str, now: datetime, replay: Change | None = None
) -> Result:
    """The requester completes an approved request: the frozen change is applied and the request
    marked completed in one transaction, never one without the other (rule 6)."""

    def work(session: Session) -> Result:
        row = get_request(session, caller.tenant_id, request_id, for_update=True)
        return complete_locked(session, db, caller, row, now, replay)

    return run_transition(db, work)


def complete_locked(
    session: Session,
    db: Database,
    caller: Caller,
    row: t.ApprovalRequest,
    now: datetime,
    replay: Change | None,
) -> Result:
    request = aggregate_of(row)
    request.require_requester(caller.id, "complete the request")
    frozen = Change.from_canonical(row.payload["change"])
    if replay is not None and not same_change(frozen, replay):
        raise Forbidden(
            "The replayed operation differs from the one that was approved "
            "(method, path and body must be identical).",
            reason="payloadMismatch",
        )
    _expire_if_due(session, row, request, now)
    # Checked (and the move recorded) before anything is planned; persisted after the apply.
    request.complete(caller.id, replayed=replay is not None)
    # Under the tenant's lock, nothing else changes the directory before this commits: the
    # snapshot the effect is judged against is the one the change is applied to.
    audit.lock_chain(session, caller.tenant_id)
    requester = caller_as_of(session, db, caller)
    plan = plan_change(session, requester, dataclasses.replace(frozen, expected_version=None), now)
    frozen_versions = {k: int(v) for k, v in row.payload.get("versions", {}).items()}
    if plan.versions != frozen_versions:
        raise Conflict(
            "The object changed after the request was submitted, so the approved "
            "change no longer applies as reviewed. Cancel the request and submit "
            "it again.",
            reason="objectChanged",
        )
    result = apply_change(session, requester, frozen, plan, now, approval_request_id=row.id)
    effect = directory_effect(session, caller.tenant_id, caller.id, requester.snapshot)
    approved = guards.AccessChange.from_json(row.payload.get("accessChange"))
    existing = [policy.id for policy in requester.snapshot.policies]
    if effect is not None and effect.exceeds(approved, existing):
        raise Conflict(
            "The directory changed after the request was submitted: completing it now would "
            "grant access or set credentials that the approvers did not see. Cancel the "
            "request and submit it again.",
            reason="accessChanged",
        )
    _save(
        session,
        row,
        request,
        now,
        completed_date_time=now,
        payload_id=row.payload_id or result.target_id,
    )
    _audit(session, row, requester, "Complete", now)
    _notify(session, row, "completed", [row.requestor_id], now)
    return result


def frozen_change(change: Change) -> Change:
    """The change as an approval request keeps it: secrets (a new password) only as hashes."""
    if change.collection != "users":
        return change
    return dataclasses.replace(change, body=directory.freeze_secrets(change.body))


def public_change(frozen: dict[str, Any] | None) -> dict[str, Any] | None:
    """The frozen change as anyone may read it: a pending password is never shown, not even as
    its hash (rule 10); a notification channel's secret (which completion must apply, so it is
    frozen in clear) is write-only, shown as ***."""
    if not frozen:
        return frozen
    body = frozen.get("body") or {}
    if frozen.get("collection") == "notificationChannels" and body.get("secret"):
        return {**frozen, "body": {**body, "secret": "***"}}
    if frozen.get("collection") != "users":
        return frozen
    return {**frozen, "body": directory.hide_secrets(body)}


def same_change(frozen: Change, replay: Change) -> bool:
    """Identical operation: bodies compared as canonical JSON (key order, spacing irrelevant),
    a frozen password hash against the replayed password."""
    targets = (
        frozen.collection,
        frozen.operation,
        frozen.target_id,
        frozen.action_name,
        sorted(frozen.target_ids),
    )
    replayed = (
        replay.collection,
        replay.operation,
        replay.target_id,
        replay.action_name,
        sorted(replay.target_ids),
    )
    if targets != replayed:
        return False
    if frozen.collection == "users":
        return directory.same_secrets(frozen.body, replay.body)
    return canonical_json(frozen.body) == canonical_json(replay.body)


def _requester_caller(session: Session, db: Database, row: t.ApprovalRequest) -> Caller:
    return resolve_caller(
        session, db, TokenClaims(row.tenant_id, row.requestor_id, row.requestor_type)
    )


# -- Graph functions ---------------------------------------------------------------------------


def retrieve_request_status(
    session: Session, caller: Caller, entity_id: str, entity_type: str, now: datetime
) -> dict[str, Any]:
    name = entity_type.rsplit(".", 1)[-1].lstrip("#")
    collection = resource_types.COLLECTIONS_BY_GRAPH_TYPE.get(name)
    if collection is None:
        raise ValidationFailed(
            f"'{entity_type}' is not an entity type Countersign protects.", target="entityType"
        )
    holder = session.execute(
        select(t.ApprovalRequest)
        .join(t.RequestLock, t.RequestLock.request_id == t.ApprovalRequest.id)
        .where(
            t.RequestLock.tenant_id == caller.tenant_id,
            t.RequestLock.entity_key == resource_types.lock_key(collection, entity_id),
        )
    ).scalar_one_or_none()
    if holder is None or effective_status(holder, now) not in lifecycle.ACTIVE:
        return {
            "requestId": None,
            "requestExpirationDateTime": None,
            "requestStatus": None,
            "entityLocked": False,
        }
    return {
        "requestId": holder.id,
        "requestExpirationDateTime": iso(holder.expiration_date_time),
        "requestStatus": effective_status(holder, now),
        "entityLocked": True,
    }
