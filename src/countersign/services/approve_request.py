"""Approve a request (SPEC §4 rules 4-5): an eligible approver's decision; at the quorum the
request is approved, and completed at once when its policies auto-complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from countersign.domain.actors import Caller
from countersign.domain.justification import check_justification
from countersign.domain.request import Status
from countersign.metrics import observe_time_to_approval
from countersign.services.complete_request import complete_locked
from countersign.services.request_json import request_json
from countersign.services.transitions import (
    approver_fields,
    decision,
    load_in_status,
    require_eligible,
    save,
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
        require_eligible(uow, caller, row, "Approve", now)
        request.decisions = tuple(uow.decisions(row.id))
        reached = request.approve(caller.id)
        uow.record_decision(decision(row, caller, "approve", notes or None, now))
        fields = approver_fields(caller, notes or row.approval_justification)
        after: dict[str, Any] = {"approvals": request.approvals}
        if reached:
            save(uow, row, request, now, **fields)
        else:
            uow.touch(row, now, **fields)
            after["approvalsRequired"] = row.approvals_required
        uow.audit(
            row, caller, "Approve", now, after={"status": row.status, **after, "notes": notes}
        )
        if not reached:
            return request_json(row, now)
        observe_time_to_approval((now - row.request_date_time).total_seconds())
        if row.auto_complete:
            complete_locked(uow, uow.requester_of(row), row, now, replay=None)
        else:
            uow.notify(row, "approved", [row.requestor_id], now)
        return request_json(row, now)

    return transaction(store, work)
