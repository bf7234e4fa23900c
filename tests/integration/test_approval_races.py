"""Races between real threads on the real database (SQLite file or PostgreSQL): every status
transition and the one-active-request rule hold under concurrency (SPEC §4 rules 3 and 8)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from countersign.domain.errors import DomainError
from countersign.services.approve_request import approve_request
from countersign.services.cancel_request import cancel_my_request
from countersign.services.changes import CREATE, UPDATE, Change
from countersign.services.complete_request import complete_request
from countersign.services.demo import caller_for
from countersign.services.gate import ApprovalHeaders, Submitted, execute
from countersign.services.reject_request import reject_request
from countersign.services.unit_of_work import get_request
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, TenantFactory, count_rows, unique
from tests.maa import SCOPE_TAGS, Seed, b64, seed


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at once; returns each one's result or the DomainError it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except DomainError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def outcomes(results: list[Any]) -> Counter[str]:
    return Counter(
        type(r).__name__ if isinstance(r, DomainError | Submitted) else "ok" for r in results
    )


def approvers(s: Seed, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        name = unique("approver")
        user = s.tenant.ok(
            "POST",
            "/beta/users",
            json={
                "displayName": name,
                "userPrincipalName": f"{name}@{s.tenant.domain}",
                "passwordProfile": {"password": PASSWORD},
            },
        )
        s.tenant.add_member(s.approvers, user["id"])
        ids.append(user["id"])
    return ids


def test_twenty_approvers_with_a_quorum_of_two(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    crowd = approvers(s, 20)
    s.activate_policy("role", approvalsRequired=2)
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Contended"})
    now = datetime.now(UTC)
    callers = [caller_for(db, s.tenant.id, user_id) for user_id in crowd]
    results = race(*[(lambda c=c: approve_request(db, c, request_id, "ok", now)) for c in callers])
    assert outcomes(results) == {"ok": 2, "Conflict": 18}
    assert count_rows(db, t.ApprovalDecision, t.ApprovalDecision.request_id == request_id) == 2
    with db.read() as session:
        assert get_request(session, s.tenant.id, request_id).status == "approved"


def test_approve_against_cancel_leaves_a_consistent_request(
    tenants: TenantFactory, db: Database
) -> None:
    """The requester may cancel an approved request too, so both may succeed in that order; in
    every interleaving the request ends cancelled, unlocked, and never half of each."""
    s = seed(tenants)
    tag = s.tenant.scope_tag("Raced")
    s.activate_policy("role")
    now = datetime.now(UTC)
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    for _ in range(3):
        request_id = s.submit("PATCH", f"{SCOPE_TAGS}/{tag}", json={"description": unique("d")})
        approve, cancel = race(
            lambda r=request_id: approve_request(db, admin2, r, None, now),
            lambda r=request_id: cancel_my_request(db, admin1, r, now),
        )
        assert not isinstance(cancel, DomainError)
        assert isinstance(approve, dict) or type(approve).__name__ == "Conflict"
        assert s.request(request_id)["status"] == "cancelled"
        assert s.request_status(tag, "roleScopeTag")["entityLocked"] is False


def test_complete_against_cancel_exactly_one_wins(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    now = datetime.now(UTC)
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    for _ in range(3):
        name = unique("race")
        request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": name})
        assert s.approve(request_id).status_code == 200
        results = race(
            lambda r=request_id: complete_request(db, admin1, r, now),
            lambda r=request_id: cancel_my_request(db, admin1, r, now),
        )
        assert outcomes(results) == {"ok": 1, "Conflict": 1}, results
        created = s.tenant.ok("GET", SCOPE_TAGS, params={"$filter": f"displayName eq '{name}'"})
        status = s.request(request_id)["status"]
        assert (status, len(created["value"])) in (("completed", 1), ("cancelled", 0))


def test_approve_against_reject_exactly_one_wins(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    [other] = approvers(s, 1)
    s.activate_policy("role")
    now = datetime.now(UTC)
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    third = caller_for(db, s.tenant.id, other)
    for _ in range(3):
        request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": unique("race")})
        results = race(
            lambda r=request_id: approve_request(db, admin2, r, None, now),
            lambda r=request_id: reject_request(db, third, r, "no", now),
        )
        assert outcomes(results) == {"ok": 1, "Conflict": 1}, results
        status = s.request(request_id)["status"]
        assert status == ("approved" if isinstance(results[0], dict) else "rejected")


def test_two_completions_apply_the_change_once(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    name = unique("once")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": name})
    assert s.approve(request_id).status_code == 200
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    now = datetime.now(UTC)
    replay = Change("roleScopeTags", CREATE, body={"displayName": name})
    results = race(
        lambda r=request_id: complete_request(db, admin1, r, now),
        lambda: execute(db, admin1, replay, ApprovalHeaders(approval_code=request_id), now),
        lambda r=request_id: complete_request(db, admin1, r, now),
    )
    assert outcomes(results)["ok"] == 1, results
    tags = s.tenant.ok("GET", SCOPE_TAGS, params={"$filter": f"displayName eq '{name}'"})["value"]
    assert len(tags) == 1
    applied = count_rows(
        db,
        t.AuditEvent,
        t.AuditEvent.approval_request_id == request_id,
        t.AuditEvent.activity == "Create roleScopeTag",
    )
    assert applied == 1


def test_two_submissions_for_one_object_one_conflicts(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    tag = s.tenant.scope_tag("Contested")
    s.activate_policy("role")
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    now = datetime.now(UTC)
    headers = ApprovalHeaders(justification=b64("mine"))
    results = race(
        *[
            (
                lambda c=c, i=i: execute(
                    db,
                    c,
                    Change("roleScopeTags", UPDATE, tag, {"description": str(i)}),
                    headers,
                    now,
                )
            )
            for i, c in enumerate([admin1, admin2, admin1, admin2])
        ]
    )
    assert outcomes(results) == {"Submitted": 1, "Conflict": 3}, results
    locks = count_rows(
        db,
        t.RequestLock,
        t.RequestLock.tenant_id == s.tenant.id,
        t.RequestLock.entity_key == f"roleScopeTags:{tag}",
    )
    assert locks == 1


def test_concurrent_submissions_in_one_tenant_all_land_in_one_audit_chain(
    tenants: TenantFactory, db: Database
) -> None:
    """Creates lock nothing, so they run side by side; each still gets its own place in the
    tenant's hash chain (the tenant row is read fresh under its lock)."""
    s = seed(tenants)
    s.activate_policy("role")
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    now = datetime.now(UTC)
    headers = ApprovalHeaders(justification=b64("many"))
    results = race(
        *[
            (
                lambda i=i: execute(
                    db,
                    admin1,
                    Change("roleScopeTags", CREATE, body={"displayName": f"T{i}"}),
                    headers,
                    now,
                )
            )
            for i in range(8)
        ]
    )
    assert outcomes(results) == {"Submitted": 8}, results
    from countersign.services.audit import verify_chain

    with db.read() as session:
        assert verify_chain(session, s.tenant.id) is None
