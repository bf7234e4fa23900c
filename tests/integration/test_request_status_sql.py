"""services/queries.py `status_is` / `is_active` (SQL) agree with domain/request.py
`effective_status` / `is_active` (Python) for every stored status and every time around the
expiry instant, on the test database (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from countersign.domain import request as lifecycle
from countersign.domain.request import Status
from countersign.services import queries
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, unique
from tests.maa import SCOPE_TAGS, seed

OFFSETS = [
    timedelta(days=-3),
    timedelta(seconds=-1),
    timedelta(microseconds=-1),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(seconds=1),
    timedelta(days=3),
]


def test_the_sql_status_agrees_with_the_domain_for_every_status_and_time(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": unique("sql")})
    R = t.ApprovalRequest
    expires = datetime(2030, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)
    disagreements = []
    for stored in Status:
        with db.write() as session:
            session.execute(
                update(R)
                .where(R.id == request_id)
                .values(status=stored, expiration_date_time=expires)
                .execution_options(synchronize_session=False)
            )
        with db.read() as session:
            for offset in OFFSETS:
                now = expires + offset
                python = lifecycle.effective_status(stored, expires, now)
                for asked in Status:
                    sql = session.scalar(
                        select(queries.status_is(asked, now)).where(R.id == request_id)
                    )
                    if bool(sql) != (python == asked):
                        disagreements.append((stored, offset, asked, sql))
                active = session.scalar(select(queries.is_active(now)).where(R.id == request_id))
                if bool(active) != lifecycle.is_active(stored, expires, now):
                    disagreements.append((stored, offset, "active", active))
    assert disagreements == []
