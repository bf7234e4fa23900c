"""Reminders: a request still waiting for approval a set time before it expires gets one
"reminder" notification to its eligible approvers. The time is the tenant's
`reminderHoursBeforeExpiry` (services/handlers/tenant_settings.py), else the server's
`Settings.reminder_hours_before_expiry` (24 hours by default)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from countersign.domain.eligibility import eligible_approvers
from countersign.domain.request import Status
from countersign.notify import outbox
from countersign.services import queries
from countersign.services.request_json import stages_of
from countersign.services.transitions import stage_approvers
from countersign.store import tables as t
from countersign.store.db import Database, current_snapshot

log = logging.getLogger("countersign.worker")

# (session, database, request row) -> ids of the principals who may approve it now.
ApproverLookup = Callable[[Session, Database, t.ApprovalRequest], list[str]]


def engine_approvers(session: Session, db: Database, row: t.ApprovalRequest) -> list[str]:
    """Eligible approvers as the approval engine computes them, as of this transaction: those
    of the stage deciding now (domain/policy_rules.py)."""
    snapshot = current_snapshot(session, db, row.tenant_id)
    stages = stages_of(row)
    stage = stages[min(row.current_stage or 0, len(stages) - 1)]
    return eligible_approvers(snapshot, row.requestor_id, stage_approvers(row, stage))


def _approvers_or_none(
    session: Session, db: Database, row: t.ApprovalRequest, approvers: ApproverLookup
) -> list[str]:
    """The approvers of `row`; none (logged) if they cannot be worked out, so that one bad
    request never stops the reminders of the others (a savepoint keeps the transaction usable)."""
    try:
        with session.begin_nested():
            return approvers(session, db, row)
    except Exception:
        log.exception("reminder: approvers of request %s unknown", row.id)
        return []


def send_reminders(
    db: Database,
    now: datetime,
    before: timedelta,
    batch: int = 500,
    approvers: ApproverLookup = engine_approvers,
) -> int:
    """Enqueue one reminder for each request that is needsApproval, expires within its tenant's
    reminder window (`before` for tenants without one) and has had none. Returns how many
    requests were reminded about."""
    r = t.ApprovalRequest
    with db.write() as session:
        # One query per distinct window (a handful), each over the tenants that have it, so
        # the batch only ever holds requests that are due.
        windows = session.scalars(select(t.Tenant.reminder_hours_before_expiry).distinct()).all()
        due: list[str] = []
        for hours in sorted(windows, key=lambda h: -1 if h is None else h):
            if len(due) >= batch:
                break
            tenant_window = t.Tenant.reminder_hours_before_expiry
            tenants = select(t.Tenant.id).where(
                tenant_window.is_(None) if hours is None else tenant_window == hours
            )
            window = before if hours is None else timedelta(hours=hours)
            due += session.scalars(
                select(r.id)
                .where(
                    r.tenant_id.in_(tenants),
                    queries.status_is(Status.NEEDS_APPROVAL, now),
                    r.reminder_sent.is_(False),
                    r.expiration_date_time <= now + window,
                )
                .order_by(r.expiration_date_time, r.id)
                .limit(batch - len(due))
                .with_for_update(skip_locked=True)
            ).all()
        # Conditional, so two workers never both remind about one request.
        reminded = (
            session.scalars(
                update(r)
                .where(r.id.in_(due), r.reminder_sent.is_(False), r.status == Status.NEEDS_APPROVAL)
                .values(reminder_sent=True)
                .returning(r.id),
                execution_options={"synchronize_session": False},
            ).all()
            if due
            else []
        )
        for row in session.scalars(select(r).where(r.id.in_(reminded)).order_by(r.id)).all():
            outbox.enqueue(
                session,
                tenant_id=row.tenant_id,
                event="reminder",
                request=outbox.request_from_row(row),
                recipient_ids=_approvers_or_none(session, db, row, approvers),
                now=now,
            )
    return len(reminded)
