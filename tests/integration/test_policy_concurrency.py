"""Staged approvals and scheduled completions under real concurrency, on the real database
(SQLite file, or PostgreSQL when COUNTERSIGN_TEST_DATABASE_URL names a server)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from countersign.config import Settings
from countersign.domain.errors import DomainError
from countersign.services.approve_request import approve_request
from countersign.services.demo import caller_for
from countersign.services.schedule_completion import FAILED_ACTIVITY
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import Principal, TenantFactory, count_rows
from tests.integration.test_approval_races import race
from tests.integration.test_notifications import webhook
from tests.maa import REQUESTS, Seed, seed

APPS = "/beta/deviceAppManagement/mobileApps"
SETTINGS = "/beta/deviceManagement/multiAdminApprovalSettings"


def web_app(name: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.webApp",
        "displayName": name,
        "appUrl": "https://x.example",
    }


def reason(result: Any) -> str:
    return str(getattr(result, "reason", None)) if isinstance(result, DomainError) else "ok"


def staged(
    s: Seed, leads: int, officers: int
) -> tuple[list[Principal], list[Principal], Principal]:
    """Stage 1: `leads` team leads, 2 approvals; stage 2: `officers` security officers, 1
    approval; `both` is in both groups."""
    team = s.tenant.group("Team leads")
    security = s.tenant.group("Security")
    s.tenant.assign("Multi Admin Approval Approver", [team, security])
    lead = [s.tenant.user(f"lead{n}", groups=(team,)) for n in range(leads)]
    officer = [s.tenant.user(f"officer{n}", groups=(security,)) for n in range(officers)]
    both = s.tenant.user("both", groups=(team, security))
    s.activate_policy(
        "app",
        approvers=[team, security],
        stages=[
            {"approverGroupIds": [team], "approvalsRequired": 2},
            {"approverGroupIds": [security], "approvalsRequired": 1},
        ],
    )
    return lead, officer, both


def stage_counts(db: Database, request_id: str) -> Counter[int]:
    d = t.ApprovalDecision
    with db.read() as session:
        return Counter(session.scalars(select(d.stage).where(d.request_id == request_id)).all())


def test_concurrent_approvals_across_stages(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    lead, officer, both = staged(s, leads=4, officers=3)
    now = datetime.now(UTC)
    for _ in range(2):
        request_id = s.submit("POST", APPS, json=web_app("Raced"))
        # Everyone at once, `both` twice: stage 1 takes exactly two; stage 2 at most one, and
        # only after stage 1 (else stageNotReached); nobody decides twice.
        people = [*lead, *officer, both, both]
        callers = [caller_for(db, s.tenant.id, p.id) for p in people]
        results = race(
            *[(lambda c=c, r=request_id: approve_request(db, c, r, None, now)) for c in callers]
        )
        counts = stage_counts(db, request_id)
        assert counts[0] == 2 and counts[1] <= 1, (counts, [reason(r) for r in results])
        assert sum(1 for r in results if not isinstance(r, DomainError)) == counts[0] + counts[1]
        assert set(map(reason, results)) <= {
            "ok",
            "stageNotReached",
            "stagePassed",
            "decidedInAnotherStage",
            "alreadyApproved",
            "status:approved",
            "None",  # a Conflict without a reason: the compare-and-set lost
        }
        status = s.request(request_id)["status"]
        assert status == ("approved" if counts[1] == 1 else "needsApproval")
        if status == "needsApproval":
            # The officers race for stage 2: exactly one approves it.
            rest = [caller_for(db, s.tenant.id, p.id) for p in officer]
            results = race(
                *[(lambda c=c, r=request_id: approve_request(db, c, r, None, now)) for c in rest]
            )
            assert sum(1 for r in results if not isinstance(r, DomainError)) == 1
            assert stage_counts(db, request_id)[1] == 1
        assert s.request(request_id)["status"] == "approved"
        s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})


# -- scheduled completion ------------------------------------------------------------------------


def schedule(s: Seed, request_id: str, when: datetime) -> Any:
    return s.tenant.call(
        "POST",
        f"{REQUESTS}/{request_id}/scheduleCompletion",
        json={"scheduledCompletionDateTime": when.isoformat()},
    )


def audit_count(db: Database, request_id: str, activity_type: str) -> int:
    a = t.AuditEvent
    return count_rows(db, a, a.approval_request_id == request_id, a.activity_type == activity_type)


def apps_named(db: Database, tenant_id: str, name: str) -> int:
    r = t.Resource
    return count_rows(db, r, r.tenant_id == tenant_id, r.display_name == name)


def test_a_scheduled_completion_runs_once_by_one_of_two_workers_at_its_time(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    request_id = s.submit("POST", APPS, json=web_app("Night change"))
    at = datetime.now(UTC) + timedelta(hours=3)
    assert schedule(s, request_id, at).status_code == 200
    assert s.request(request_id)["scheduledCompletionDateTime"] is not None
    assert s.approve(request_id).status_code == 200
    workers = [Worker(db, settings), Worker(db, settings)]
    for worker in workers:
        worker.run_once(now=at - timedelta(seconds=1))
    assert s.request(request_id)["status"] == "approved"  # not before its time
    barrier = threading.Barrier(2)

    def cycle(worker: Worker) -> int:
        barrier.wait()
        return worker.run_once(now=at).completed

    done: list[int] = []
    threads = [threading.Thread(target=lambda w=w: done.append(cycle(w))) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(done) == [0, 1]
    assert s.request(request_id)["status"] == "completed"
    assert audit_count(db, request_id, "Complete") == 1
    assert apps_named(db, s.tenant.id, "Night change") == 1
    for worker in workers:
        assert worker.run_once(now=at + timedelta(minutes=1)).completed == 0


def test_a_scheduled_completion_that_fails_leaves_it_approved_and_tells_the_requester(
    tenants: TenantFactory, db: Database, settings: Settings
) -> None:
    s = seed(tenants)
    webhook(s.tenant, "http://127.0.0.1:9/hook", events=["completionFailed"])
    s.activate_policy("app")
    request_id = s.submit("POST", APPS, json=web_app("Frozen night"))
    at = datetime.now(UTC) + timedelta(hours=3)
    assert schedule(s, request_id, at).status_code == 200
    assert s.approve(request_id).status_code == 200
    window = {
        "startDateTime": (at - timedelta(hours=1)).isoformat(),
        "endDateTime": (at + timedelta(hours=1)).isoformat(),
        "reason": "Quarter close",
    }
    s.tenant.ok("PATCH", SETTINGS, json={"changeFreezeWindows": [window]})
    Worker(db, settings).run_once(now=at)
    request = s.request(request_id)
    assert request["status"] == "approved" and request["scheduledCompletionDateTime"] is None
    assert audit_count(db, request_id, FAILED_ACTIVITY) == 1
    with db.read() as session:
        told = session.execute(
            select(t.OutboxMessage.event, t.OutboxMessage.recipients).where(
                t.OutboxMessage.approval_request_id == request_id,
                t.OutboxMessage.event == "completionFailed",
            )
        ).all()
    assert [[r["id"] for r in recipients] for _, recipients in told] == [[s.admin1.id]]
    assert apps_named(db, s.tenant.id, "Frozen night") == 0
    Worker(db, settings).run_once(now=at + timedelta(minutes=5))  # it ran once: no retry
    assert audit_count(db, request_id, FAILED_ACTIVITY) == 1


def test_a_schedule_must_be_the_requesters_and_within_the_lifetime(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    request_id = s.submit("POST", APPS, json=web_app("Later"))
    now = datetime.now(UTC)
    assert schedule(s, request_id, now - timedelta(minutes=1)).status_code == 400
    assert schedule(s, request_id, now + timedelta(days=400)).status_code == 400
    other = s.tenant.call(
        "POST",
        f"{REQUESTS}/{request_id}/scheduleCompletion",
        s.admin2,
        json={"scheduledCompletionDateTime": (now + timedelta(hours=1)).isoformat()},
    )
    assert other.status_code == 403
    assert s.request(request_id)["scheduledCompletionDateTime"] is None
