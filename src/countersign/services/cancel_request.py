"""Cancel a request: the requester withdraws an active one (`cancel_my_request`), or an
eligible approver withdraws an approval the requester has not completed (`cancel_approval`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from countersign.domain.actors import Caller
from countersign.domain.justification import check_justification
from countersign.domain.request import Status
from countersign.services.request_json import request_json
from countersign.services.transitions import (
    aggregate_of,
    expire_if_due,
    load_in_status,
    require_eligible,
    save,
)
from countersign.services.unit_of_work import UnitOfWork, transaction
from countersign.store.db import Database


def cancel_approval(
    store: Database | UnitOfWork,
    caller: Caller,
    request_id: str,
    justification: str | None,
    now: datetime,
) -> dict[str, Any]:
    """An eligible approver withdraws an approval that the requester has not completed yet."""
    notes = check_justification(justification, required=False, field="approver note")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        row, request = load_in_status(
            uow, caller, request_id, Status.APPROVED, "have its approval cancelled", now
        )
        require_eligible(uow, caller, row, "Cancel approval", now)
        request.cancel_approval()
        save(uow, row, request, now, approval_justification=notes or row.approval_justification)
        uow.audit(row, caller, "Cancel approval", now, after={"status": row.status, "notes": notes})
        uow.notify(row, "cancelled", [row.requestor_id], now)
        return request_json(row, now)

    return transaction(store, work)


def cancel_my_request(
    store: Database | UnitOfWork, caller: Caller, request_id: str, now: datetime
) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        row = uow.get_request(caller.tenant_id, request_id, for_update=True)
        request = aggregate_of(row)
        request.require_requester(caller.id, "cancel their request")
        expire_if_due(uow, row, request, now)
        request.cancel(caller.id)
        save(uow, row, request, now)
        uow.audit(row, caller, "Cancel", now)
        uow.notify(row, "cancelled", [row.requestor_id], now)
        return request_json(row, now)

    return transaction(store, work)
