"""The expiry sweeper: due requests become `expired` in the database, in bulk.

Reads are already exact (the engine computes the status from `expirationDateTime` on every
read); the sweeper makes the stored status catch up, frees the objects the requests locked,
writes the audit entry of each expiry and tells each requester.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from countersign.domain.request import Status
from countersign.notify import outbox
from countersign.services.queries import expiry_due
from countersign.services.unit_of_work import SqlUnitOfWork
from countersign.store import tables as t
from countersign.store.db import Database


def expire_due_requests(db: Database, now: datetime, batch: int = 500) -> int:
    """Expire every request still needsApproval/approved whose expiry has come; one
    transaction per batch. Returns how many were expired."""
    total = 0
    r = t.ApprovalRequest
    while True:
        with db.write() as session:
            # SKIP LOCKED (PostgreSQL): a request an approver is approving right now is left for
            # the next sweep instead of making the sweeper wait on it.
            candidates = session.scalars(
                select(r.id)
                .where(expiry_due(now))
                .order_by(r.expiration_date_time, r.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not candidates:
                return total
            # Conditional on the status, so a request that an approve/complete/cancel moved
            # out of needsApproval/approved first is left alone (that transition won).
            expired = session.scalars(
                update(r)
                .where(r.id.in_(candidates), expiry_due(now))
                .values(status=Status.EXPIRED, last_modified_date_time=now)
                .returning(r.id),
                execution_options={"synchronize_session": False},
            ).all()
            if not expired:
                return total
            session.execute(
                delete(t.RequestLock).where(t.RequestLock.request_id.in_(expired)),
                execution_options={"synchronize_session": False},
            )
            rows = session.scalars(
                select(r).where(r.id.in_(expired)).order_by(r.tenant_id, r.id)
            ).all()
            uow = SqlUnitOfWork(db, session)
            for row in rows:
                uow.audit(row, None, "Expire", now)
                outbox.enqueue(
                    session,
                    tenant_id=row.tenant_id,
                    event="expired",
                    request=outbox.request_from_row(row),
                    recipient_ids=[row.requestor_id],
                    now=now,
                )
            total += len(expired)
        if len(candidates) < batch:
            return total
