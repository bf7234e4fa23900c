"""Reject a request: an eligible approver's note (required) ends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from countersign.domain.actors import Caller
from countersign.domain.justification import check_justification
from countersign.domain.request import Status
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


def reject_request(
    store: Database | UnitOfWork,
    caller: Caller,
    request_id: str,
    justification: str | None,
    now: datetime,
) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        row, request = load_in_status(
            uow, caller, request_id, Status.NEEDS_APPROVAL, "be rejected", now
        )
        # One reject, by an approver of the current stage, rejects the request.
        stage = require_eligible(uow, caller, row, "Reject", now, uow.decisions(row.id))
        notes = check_justification(justification, field="approver note (required to reject)")
        request.reject(caller.id)
        uow.record_decision(decision(row, caller, "reject", notes, now, stage))
        save(uow, row, request, now, **approver_fields(caller, notes))
        uow.audit(row, caller, "Reject", now, after={"status": row.status, "notes": notes})
        uow.notify(row, "rejected", [row.requestor_id], now)
        return request_json(row, now)

    return transaction(store, work)
