"""What every transition of a request shares: the aggregate read from its row, the moves it
recorded saved as compare-and-set updates, expiry on action, and the approver check with its
audited refusal. The use cases (approve_request.py, reject_request.py, cancel_request.py,
complete_request.py) are each a few lines on top of these."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from countersign.domain import eligibility, policy_rules
from countersign.domain import request as lifecycle
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, NotEligibleToApprove
from countersign.domain.rbac import DirectorySnapshot
from countersign.domain.request import Status
from countersign.services.changes import iso
from countersign.services.request_json import stages_of
from countersign.services.unit_of_work import CommitThenRaise, UnitOfWork
from countersign.store import tables as t


def aggregate_of(row: t.ApprovalRequest) -> lifecycle.ApprovalRequest:
    """The domain's view of a loaded request row (approve adds the decisions it reads)."""
    return lifecycle.ApprovalRequest(
        id=row.id,
        status=Status(row.status),
        requestor_id=row.requestor_id,
        expires=row.expiration_date_time,
        approvals_required=row.approvals_required,
    )


def approvers_of(row: t.ApprovalRequest) -> eligibility.Approvers:
    return eligibility.Approvers.from_json(row.payload["approvers"])


def stage_approvers(row: t.ApprovalRequest, stage: policy_rules.Stage) -> eligibility.Approvers:
    """Who may decide in one stage: the request's approvers, with that stage's groups."""
    return dataclasses.replace(approvers_of(row), group_ids=stage.approver_group_ids)


def decision_blocker(
    snapshot: DirectorySnapshot,
    caller: Caller,
    row: t.ApprovalRequest,
    current: int,
    own_stages: Sequence[int],
) -> eligibility.Refusal | None:
    """None when `caller` may decide `row` now (its stage `current`), else why not."""
    return policy_rules.decision_blocker(
        snapshot,
        caller.id,
        caller.is_user,
        row.requestor_id,
        approvers_of(row),
        stages_of(row),
        waiting=row.status == Status.NEEDS_APPROVAL,
        current=current,
        own_stages=own_stages,
    )


def save(
    uow: UnitOfWork,
    row: t.ApprovalRequest,
    request: lifecycle.ApprovalRequest,
    now: datetime,
    **values: Any,
) -> None:
    """Persist the moves the aggregate recorded, each a compare-and-set (`UnitOfWork.move`)."""
    for event in request.events:
        uow.move(row, event.before, event.after, now, **values)
    request.events.clear()


def expire_if_due(
    uow: UnitOfWork, row: t.ApprovalRequest, request: lifecycle.ApprovalRequest, now: datetime
) -> None:
    """An action on a request whose time is up expires it (committed) and fails with 409."""
    if request.expire(now):
        record_expiry(uow, row, request, now)
        raise CommitThenRaise(
            Conflict(
                f"The request expired at {iso(row.expiration_date_time)}; submit a new one.",
                reason="requestExpired",
            )
        )


def record_expiry(
    uow: UnitOfWork, row: t.ApprovalRequest, request: lifecycle.ApprovalRequest, now: datetime
) -> None:
    """Save an expiry the aggregate recorded, audit it and tell the requester."""
    save(uow, row, request, now)
    uow.audit(row, None, "Expire", now)
    uow.notify(row, "expired", [row.requestor_id], now)


def load_in_status(
    uow: UnitOfWork, caller: Caller, request_id: str, expected: Status, action: str, now: datetime
) -> tuple[t.ApprovalRequest, lifecycle.ApprovalRequest]:
    """The request, row-locked, expired now if its time is up, and in the `expected` status."""
    row = uow.get_request(caller.tenant_id, request_id, for_update=True)
    request = aggregate_of(row)
    expire_if_due(uow, row, request, now)
    request.require_status(expected, action)
    return row, request


def require_eligible(
    uow: UnitOfWork,
    caller: Caller,
    row: t.ApprovalRequest,
    activity: str,
    now: datetime,
    decisions: Sequence[policy_rules.Decision] = (),
) -> int:
    """Refuse (and audit the refusal, committed) unless `caller` may decide `row` now; returns
    the stage the caller decides in. A request waiting for approval is decided stage by stage
    (domain/policy_rules.py: stage_blocker); an approved one by an approver of any stage."""
    current = policy_rules.current_stage(stages_of(row), decisions)
    own = [d.stage for d in decisions if d.approver_id == caller.id]
    refusal = decision_blocker(uow.snapshot(caller.tenant_id), caller, row, current, own)
    if refusal is not None:
        uow.audit(
            row,
            caller,
            f"{activity} (refused)",
            now,
            result="failure",
            after={"reason": refusal.reason},
        )
        raise CommitThenRaise(NotEligibleToApprove(refusal.reason))
    return current


def decision(
    row: t.ApprovalRequest,
    caller: Caller,
    verdict: str,
    notes: str | None,
    now: datetime,
    stage: int = 0,
) -> t.ApprovalDecision:
    return t.ApprovalDecision(
        stage=stage,
        request_id=row.id,
        approver_id=caller.id,
        tenant_id=row.tenant_id,
        approver_name=caller.display_name,
        decision=verdict,
        justification=notes,
        decided_date_time=now,
    )


def approved_fields(row: t.ApprovalRequest, now: datetime) -> dict[str, Any]:
    """What approval changes besides the status: the stage, and the expiry, now counted by the
    completion window from this moment (domain/policy_rules.py), never past the lifetime."""
    end = row.lifetime_end_date_time or row.expiration_date_time
    submitted = row.request_date_time
    return {
        "current_stage": len(stages_of(row)),
        "expiration_date_time": policy_rules.completion_deadline(
            submitted, end - submitted, now, row.completion_window_hours
        ),
    }


def approver_fields(caller: Caller, notes: str | None) -> dict[str, Any]:
    """The request's `approver` and `approvalJustification` after `caller` decided it."""
    return {
        "approver_id": caller.id,
        "approver_type": caller.type,
        "approver_name": caller.display_name,
        "approval_justification": notes,
    }
