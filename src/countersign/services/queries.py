"""Reading approval requests: the SQL twin of the expiry rule, who may see which requests, the
request lists, and the approvable operations -- shared by the API and the admin center, so both
answer the same question the same way.

`status_is` is domain/request.py's `effective_status` written as SQL;
tests/integration/test_request_status_sql.py checks that the two agree for every status and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from countersign.domain import approval as a
from countersign.domain import eligibility, policy_rules, resource_types
from countersign.domain import permissions as p
from countersign.domain import request as lifecycle
from countersign.domain.actors import Caller
from countersign.domain.errors import NotFound, ValidationFailed
from countersign.domain.request import Status
from countersign.services.changes import iso
from countersign.services.request_json import effective_status
from countersign.services.transitions import decision_blocker
from countersign.services.unit_of_work import get_request
from countersign.store import tables as t
from countersign.store.db import Database, current_snapshot

R = t.ApprovalRequest


def status_is(status: str, now: datetime) -> ColumnElement[bool]:
    """SQL for `effective_status(row, now) == status`: stored status plus the clock."""
    due = R.expiration_date_time <= now  # lifecycle.is_due: due from the instant on
    if status == Status.EXPIRED:
        return or_(R.status == Status.EXPIRED, and_(R.status.in_(lifecycle.ACTIVE), due))
    if status in lifecycle.ACTIVE:
        return and_(R.status == status, ~due)
    match: ColumnElement[bool] = R.status == status
    return match


def is_active(now: datetime) -> ColumnElement[bool]:
    """SQL for `lifecycle.is_active(row, now)`: stored active and not yet due."""
    return and_(R.status.in_(lifecycle.ACTIVE), R.expiration_date_time > now)


# -- who sees which requests ------------------------------------------------------------------


def can_see_all_requests(caller: Caller) -> bool:
    """Listing (and reading) every request of the tenant needs the approval permission; without
    it one sees one's own requests only."""
    return caller.access.has(p.APPROVAL_FOR_MAA)


def tenant_requests(tenant_id: str) -> Select[Any]:
    return select(R).where(R.tenant_id == tenant_id)


def visible_requests(caller: Caller, *, mine: bool) -> Select[Any]:
    """The requests a list shows: one's own (`mine`, or without the approval permission), else
    all of the tenant's."""
    query = tenant_requests(caller.tenant_id)
    if mine or not can_see_all_requests(caller):
        query = query.where(R.requestor_id == caller.id)
    return query


def visible_request(session: Session, caller: Caller, request_id: str) -> t.ApprovalRequest:
    """One request, if the caller may see it (a request one may not see does not exist)."""
    row = get_request(session, caller.tenant_id, request_id)
    if row.requestor_id != caller.id and not can_see_all_requests(caller):
        raise NotFound(f"Approval request '{request_id}' does not exist.")
    return row


def decisions_of(session: Session, request_id: str) -> list[t.ApprovalDecision]:
    return list(
        session.scalars(
            select(t.ApprovalDecision).where(t.ApprovalDecision.request_id == request_id)
        )
    )


def my_request(session: Session, caller: Caller, request_id: str) -> t.ApprovalRequest:
    """retrieveMyRequestById: only one of the caller's own requests, whatever else they see."""
    row = visible_request(session, caller, request_id)
    if row.requestor_id != caller.id:
        raise NotFound(f"Approval request '{request_id}' is not one of your requests.")
    return row


# -- waiting for me -----------------------------------------------------------------------------


def awaiting_decision(caller: Caller, now: datetime) -> Select[Any]:
    """Requests of the caller's tenant that still need approval and are someone else's."""
    return tenant_requests(caller.tenant_id).where(
        status_is(Status.NEEDS_APPROVAL, now), R.requestor_id != caller.id
    )


def waiting_for(
    session: Session, db: Database, caller: Caller, now: datetime, *, limit: int | None = None
) -> list[t.ApprovalRequest]:
    """Requests the caller may approve or reject now (newest first): one query for the
    candidates and one for the directory snapshot, then `approval_blocker` on each in memory --
    the same answer as asking `approval_blocker` (below) row by row."""
    snapshot = current_snapshot(session, db, caller.tenant_id)
    if not eligibility.may_approve_anything(snapshot, caller.id, caller.is_user):
        return []
    rows = session.scalars(
        awaiting_decision(caller, now).order_by(R.request_date_time.desc(), R.id).limit(limit)
    ).all()
    own = _own_stages(session, caller)
    return [
        row
        for row in rows
        if decision_blocker(snapshot, caller, row, row.current_stage or 0, own.get(row.id, []))
        is None
    ]


def _own_stages(session: Session, caller: Caller) -> dict[str, list[int]]:
    """The stages the caller decided in, by request (one person decides in one stage)."""
    d = t.ApprovalDecision
    decided: dict[str, list[int]] = {}
    for request_id, stage in session.execute(
        select(d.request_id, d.stage).where(
            d.tenant_id == caller.tenant_id, d.approver_id == caller.id
        )
    ):
        decided.setdefault(request_id, []).append(stage)
    return decided


def waiting_count(session: Session, db: Database, caller: Caller, now: datetime) -> int:
    """How many requests wait for the caller (the header's count), as `waiting_for` answers,
    reading only each candidate's requester and frozen approvers, not the whole row."""
    snapshot = current_snapshot(session, db, caller.tenant_id)
    if not eligibility.may_approve_anything(snapshot, caller.id, caller.is_user):
        return 0
    candidates = session.execute(
        awaiting_decision(caller, now).with_only_columns(
            R.id,
            R.requestor_id,
            R.payload["approvers"],
            R.stages,
            R.current_stage,
            R.approvals_required,
        )
    ).all()
    own = _own_stages(session, caller)
    count = 0
    for request_id, requestor_id, stored, stages, current, required in candidates:
        approvers = eligibility.Approvers.from_json(stored)
        refusal = policy_rules.decision_blocker(
            snapshot,
            caller.id,
            caller.is_user,
            requestor_id,
            approvers,
            policy_rules.stages_from(stages, approvers.group_ids, required),
            waiting=True,
            current=current or 0,
            own_stages=own.get(request_id, []),
        )
        count += refusal is None
    return count


def approval_blocker(
    session: Session, db: Database, caller: Caller, row: t.ApprovalRequest
) -> eligibility.Refusal | None:
    """None when `caller` may approve or reject `row` now (in its current stage), else the
    check that fails."""
    snapshot = current_snapshot(session, db, caller.tenant_id)
    d = t.ApprovalDecision
    own = session.scalars(
        select(d.stage).where(d.request_id == row.id, d.approver_id == caller.id)
    ).all()
    return decision_blocker(snapshot, caller, row, row.current_stage or 0, list(own))


# -- what can be protected ----------------------------------------------------------------------


def approvable_operations(caller: Caller) -> list[tuple[str, str]]:
    """retrieveApprovableOperations: every (policy type, platform) an access policy can cover."""
    caller.require(p.ROLES_READ)
    pairs: list[tuple[str, str]] = []
    for policy_type, has_platforms in a.POLICY_TYPES.items():
        platforms = [*a.NON_WINDOWS, *a.WINDOWS] if has_platforms else [a.NOT_APPLICABLE]
        pairs.extend((policy_type, platform) for platform in platforms)
    return pairs


def operations_requiring_approval(caller: Caller) -> list[tuple[str, str]]:
    """retrieveOperationsRequiringApproval: the pairs the tenant's active policies cover, and
    access policies themselves (always protected)."""
    caller.require(p.ROLES_READ)
    pairs = {(a.ACCESS_POLICY_TYPE, a.NOT_APPLICABLE)}
    for policy in caller.snapshot.policies:
        pairs.update((policy.policy_type, platform) for platform in policy.platforms)
    return sorted(pairs)


def retrieve_request_status(
    session: Session, caller: Caller, entity_id: str, entity_type: str, now: datetime
) -> dict[str, Any]:
    """retrieveRequestStatus: whether an active request locks the object, and which."""
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
