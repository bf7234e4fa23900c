"""Stale state: every transition of a request, run on a row whose status was changed behind the
service's back after the service read it, answers 409 and leaves no trace -- no decision row,
no audit entry, no outbox message, no applied change. Only the compare-and-set on the status
(`UPDATE ... WHERE status = :expected` in services/unit_of_work.py `SqlUnitOfWork.move`) can
catch this: the service's own status check has already passed on the stale row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from countersign.services import unit_of_work
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, unique
from tests.maa import REQUESTS, SCOPE_TAGS, Seed, seed


def changed_behind_the_back(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """The next time a service locks a request row, its status moves to `status` in the same
    transaction, after the row was read (the loaded object still shows the old status)."""
    original = unit_of_work.get_request

    def stale(
        session: Session, tenant_id: str, request_id: str, *, for_update: bool = False
    ) -> Any:
        row = original(session, tenant_id, request_id, for_update=for_update)
        if for_update:
            session.execute(
                update(t.ApprovalRequest)
                .where(t.ApprovalRequest.id == row.id)
                .values(status=status)
                .execution_options(synchronize_session=False)
            )
        return row

    monkeypatch.setattr(unit_of_work, "get_request", stale)


def traces(db: Database, s: Seed, request_id: str) -> tuple[Any, ...]:
    with db.read() as session:
        decisions = session.scalar(
            select(func.count())
            .select_from(t.ApprovalDecision)
            .where(t.ApprovalDecision.request_id == request_id)
        )
        audit = session.scalar(select(t.Tenant.audit_sequence).where(t.Tenant.id == s.tenant.id))
        outbox = session.scalar(
            select(func.count())
            .select_from(t.OutboxMessage)
            .where(t.OutboxMessage.tenant_id == s.tenant.id)
        )
        status = session.scalar(
            select(t.ApprovalRequest.status).where(t.ApprovalRequest.id == request_id)
        )
        tags = session.scalar(
            select(func.count())
            .select_from(t.RoleScopeTag)
            .where(t.RoleScopeTag.tenant_id == s.tenant.id)
        )
    return decisions, audit, outbox, status, tags


def _approve(s: Seed, request_id: str) -> Any:
    return s.approve(request_id)


def _reject(s: Seed, request_id: str) -> Any:
    return s.tenant.call(
        "POST", f"{REQUESTS}/{request_id}/reject", s.admin2, json={"justification": "no"}
    )


def _cancel_approval(s: Seed, request_id: str) -> Any:
    return s.tenant.call(
        "POST", f"{REQUESTS}/{request_id}/cancelApproval", s.admin2, json={"justification": "x"}
    )


def _cancel_my_request(s: Seed, request_id: str) -> Any:
    return s.tenant.call("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})


def _complete(s: Seed, request_id: str) -> Any:
    return s.complete(request_id)


# transition, whether the request must be approved first, the status it is moved to meanwhile
CASES: list[tuple[Callable[[Seed, str], Any], bool, str]] = [
    (_approve, False, "cancelled"),
    (_reject, False, "cancelled"),
    (_cancel_my_request, False, "rejected"),
    (_cancel_approval, True, "completed"),
    (_cancel_my_request, True, "cancelled"),
    (_complete, True, "cancelled"),
]


@pytest.mark.parametrize(
    ("transition", "approved", "meanwhile"),
    CASES,
    ids=[f"{c[0].__name__.strip('_')}-{'approved' if c[1] else 'pending'}" for c in CASES],
)
def test_a_transition_on_a_stale_request_is_refused_and_leaves_no_trace(
    tenants: TenantFactory,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    transition: Callable[[Seed, str], Any],
    approved: bool,
    meanwhile: str,
) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": unique("stale")})
    if approved:
        assert s.approve(request_id).status_code == 200
    before = traces(db, s, request_id)
    changed_behind_the_back(monkeypatch, meanwhile)
    response = transition(s, request_id)
    assert response.status_code == 409, response.text
    assert traces(db, s, request_id) == before
