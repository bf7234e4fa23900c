"""Scheduled completion (issue 17): the requester names a `scheduledCompletionDateTime`; once the
request is approved and that time has come, `countersign worker` completes it -- the change is
re-planned then, exactly as the requester's own completion would be.

It runs once, by one worker of any number: the worker claims a request by clearing its
schedule with a compare-and-set (`UPDATE ... WHERE status = 'approved' AND
scheduled_completion_date_time <= now`), in the transaction that completes it; a second worker's
UPDATE matches nothing (on PostgreSQL it waits on the first's row lock, then finds the schedule
gone; SQLite serialises the writers). A completion that fails (the object changed, a change
freeze, the requester disabled) leaves the request approved, is audited, and tells the
requester (`completionFailed`); a crash before the commit leaves the schedule for the next
cycle, since nothing was completed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime
from sqlalchemy import CursorResult, select, update

from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, DomainError, ValidationFailed
from countersign.domain.request import ACTIVE, Status
from countersign.services.changes import GraphBody, iso, parse_body
from countersign.services.complete_request import complete_locked
from countersign.services.request_json import request_json
from countersign.services.transitions import aggregate_of, expire_if_due
from countersign.services.unit_of_work import (
    CommitThenRaise,
    SqlUnitOfWork,
    UnitOfWork,
    sql_transaction,
    transaction,
)
from countersign.store import tables as t
from countersign.store.db import Database

FAILED_ACTIVITY = "Scheduled completion (failed)"
R = t.ApprovalRequest


class ScheduleBody(GraphBody):
    # null: no scheduled completion (the requester completes it).
    scheduled_completion_date_time: AwareDatetime | None


def schedule_completion(
    store: Database | UnitOfWork,
    caller: Caller,
    request_id: str,
    body: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The requester sets (or clears) when the worker completes the request once approved:
    in the future, and before the request expires."""
    when = parse_body(ScheduleBody, body).scheduled_completion_date_time

    def work(uow: UnitOfWork) -> dict[str, Any]:
        row = uow.get_request(caller.tenant_id, request_id, for_update=True)
        request = aggregate_of(row)
        request.require_requester(caller.id, "schedule its completion")
        expire_if_due(uow, row, request, now)
        if request.status not in ACTIVE:
            raise Conflict(
                f"The request is {request.status}; it can no longer be scheduled.",
                reason=f"status:{request.status}",
            )
        # While it waits for approval, the approval may come at any time up to the lifetime's
        # end; once approved, the completion window's end is the request's expiry.
        last = row.expiration_date_time
        if request.status == Status.NEEDS_APPROVAL and row.lifetime_end_date_time:
            last = row.lifetime_end_date_time
        if when is not None and not now < when < last:
            raise ValidationFailed(
                "Property 'scheduledCompletionDateTime' must be in the future and before "
                f"{iso(last)}, when the request expires.",
                target="scheduledCompletionDateTime",
            )
        uow.touch(row, now, scheduled_completion_date_time=when)
        uow.audit(
            row,
            caller,
            "Schedule completion",
            now,
            after={"status": row.status, "scheduledCompletionDateTime": iso(when)},
        )
        return request_json(row, now)

    return transaction(store, work)


def complete_scheduled_requests(db: Database, now: datetime, batch: int = 100) -> int:
    """Complete every approved request whose scheduled completion has come, one transaction
    each; returns how many were completed."""
    with db.read() as session:
        due = session.scalars(
            select(R.id)
            .where(R.status == Status.APPROVED, R.scheduled_completion_date_time <= now)
            .order_by(R.scheduled_completion_date_time, R.id)
            .limit(batch)
        ).all()
    completed = 0
    for request_id in due:

        def work(uow: SqlUnitOfWork, request_id: str = request_id) -> bool:
            return _complete(uow, request_id, now)

        completed += sql_transaction(db, work)
    return completed


def _complete(uow: SqlUnitOfWork, request_id: str, now: datetime) -> bool:
    claimed = cast(
        CursorResult[Any],
        uow.session.execute(
            update(R)
            .where(
                R.id == request_id,
                R.status == Status.APPROVED,
                R.scheduled_completion_date_time <= now,
            )
            .values(scheduled_completion_date_time=None)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if claimed != 1:
        return False  # another worker claimed it, or the request moved on
    row = uow.session.scalars(
        select(R).where(R.id == request_id).execution_options(populate_existing=True)
    ).one()
    savepoint = uow.session.begin_nested()
    try:
        complete_locked(uow, uow.requester_of(row), row, now, replay=None)
    except CommitThenRaise:
        savepoint.commit()  # it expired meanwhile: the expiry (audited, notified) stands
        return False
    except DomainError as error:
        savepoint.rollback()
        uow.audit(
            row,
            None,
            FAILED_ACTIVITY,
            now,
            result="failure",
            after={"status": row.status, "reason": error.reason, "message": error.message},
        )
        uow.notify(row, "completionFailed", [row.requestor_id], now)
        return False
    savepoint.commit()
    return True
