"""Approve a request (SPEC §4 rules 4-5): an eligible approver's decision in the request's
current stage; at the last stage's quorum the request is approved -- its expiry moved to the
end of its completion window -- and completed at once when its policies auto-complete (not
during a change freeze)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from countersign.domain.actors import Caller
from countersign.domain.eligibility import eligible_approvers
from countersign.domain.justification import check_justification
from countersign.domain.policy_rules import freeze_at
from countersign.domain.request import Status
from countersign.metrics import observe_time_to_approval
from countersign.services.complete_request import complete_locked
from countersign.services.request_json import request_json, stages_of
from countersign.services.transitions import (
    approved_fields,
    approver_fields,
    decision,
    load_in_status,
    require_eligible,
    save,
    stage_approvers,
)
from countersign.services.unit_of_work import UnitOfWork, transaction
from countersign.store.db import Database


def approve_request(
    store: Database | UnitOfWork,
    caller: Caller,
    request_id: str,
    justification: str | None,
    now: datetime,
) -> dict[str, Any]:
    notes = check_justification(justification, required=False, field="approver note")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        row, request = load_in_status(
            uow, caller, request_id, Status.NEEDS_APPROVAL, "be approved", now
        )
        # The request row is locked (FOR UPDATE; BEGIN IMMEDIATE on SQLite), so the decisions
        # read here are every decision there is: two approvers racing across stages take turns.
        decided = uow.decisions(row.id)
        stage = require_eligible(uow, caller, row, "Approve", now, decided)
        stages = stages_of(row)
        # The aggregate decides the current stage: its quorum, its decisions, whether it is last.
        request.decisions = tuple((d.approver_id, d.decision) for d in decided if d.stage == stage)
        request.approvals_required = stages[stage].approvals_required
        request.final_stage = stage == len(stages) - 1
        stage_done = request.approve(caller.id)
        reached = request.status == Status.APPROVED
        uow.record_decision(decision(row, caller, "approve", notes or None, now, stage))
        fields = approver_fields(caller, notes or row.approval_justification)
        after: dict[str, Any] = {"approvals": request.approvals}
        if len(stages) > 1:
            after["stage"] = stage + 1
        if reached:
            save(uow, row, request, now, **fields, **approved_fields(row, now))
        else:
            if stage_done:
                fields["current_stage"] = stage + 1
            uow.touch(row, now, **fields)
            after["approvalsRequired"] = stages[stage].approvals_required
        uow.audit(
            row, caller, "Approve", now, after={"status": row.status, **after, "notes": notes}
        )
        if not reached:
            if stage_done:  # the next stage's approvers are asked now
                approvers = eligible_approvers(
                    uow.snapshot(row.tenant_id),
                    row.requestor_id,
                    stage_approvers(row, stages[stage + 1]),
                )
                uow.notify(row, "submitted", approvers, now)
            return request_json(row, now)
        observe_time_to_approval((now - row.request_date_time).total_seconds())
        if row.auto_complete and freeze_at(uow.freeze_windows(row.tenant_id), now) is None:
            complete_locked(uow, uow.requester_of(row), row, now, replay=None)
        else:  # (during a change freeze the requester completes it once the freeze is over)
            uow.notify(row, "approved", [row.requestor_id], now)
        return request_json(row, now)

    return transaction(store, work)
