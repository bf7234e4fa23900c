"""Each approval use case (services/submit_change.py, approve_request.py, reject_request.py,
cancel_request.py, complete_request.py) driven through the in-memory unit of work of
tests/unit/fakes.py: what it stores, audits and sends, and that a refused action leaves no trace
except the audited refusal or expiry it must commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from countersign.domain import approval as a
from countersign.domain.errors import Conflict, Forbidden, NotEligibleToApprove, ValidationFailed
from countersign.domain.permissions import APPROVAL_FOR_MAA, MOBILE_APPS_READ
from countersign.domain.protection import protection_for
from countersign.domain.rbac import DirectorySnapshot, RoleAssignment
from countersign.domain.request import Status
from countersign.services.approve_request import approve_request
from countersign.services.cancel_request import cancel_approval, cancel_my_request
from countersign.services.changes import Change
from countersign.services.complete_request import complete_request
from countersign.services.reject_request import reject_request
from countersign.services.submit_change import create_request
from countersign.services.unit_of_work import UnitOfWork, transaction
from tests.unit.fakes import FakeUnitOfWork, caller, plan_for

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
CHANGE = Change("mobileApps", "Update", "app-1", {"displayName": "Contoso app 2"})
LOCK = ("t1", "mobileApps:app-1")

DIRECTORY = DirectorySnapshot(
    version=1,
    members={"approvers": frozenset({"ann", "bob", "cat"})},
    security_groups=frozenset({"approvers"}),
    role_permissions={"approver": frozenset({APPROVAL_FOR_MAA, MOBILE_APPS_READ})},
    assignments=(
        RoleAssignment("ra", "Approvers", "approver", frozenset({"approvers"}), frozenset({"0"})),
    ),
    enabled_users=frozenset({"ann", "bob", "cat", "req"}),
)
REQUESTER = caller(DIRECTORY, "req")
ANN, BOB = caller(DIRECTORY, "ann"), caller(DIRECTORY, "bob")


def submit(
    uow: FakeUnitOfWork, *, quorum: int = 1, auto_complete: bool = False, now: datetime = NOW
) -> str:
    policy = a.ActivePolicy(
        "p1",
        "Apps",
        "app",
        frozenset({a.NOT_APPLICABLE}),
        ("approvers",),
        approvals_required=quorum,
        auto_complete=auto_complete,
    )
    plan = plan_for(CHANGE)
    protection = protection_for(
        (policy,),
        caller_id=REQUESTER.id,
        collection=CHANGE.collection,
        policy_type=plan.policy_type,
        platform=plan.platform,
        before=plan.before,
        after=plan.after,
    )
    assert protection is not None

    def work(unit: UnitOfWork) -> str:
        return create_request(unit, REQUESTER, CHANGE, plan, protection, "needed", now).id

    return transaction(uow, work)


def status(uow: FakeUnitOfWork, request_id: str) -> str:
    return str(uow.stored.requests[request_id]["status"])


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(DIRECTORY)


@pytest.fixture
def pending(uow: FakeUnitOfWork) -> str:
    return submit(uow)


@pytest.fixture
def approved(uow: FakeUnitOfWork, pending: str) -> str:
    approve_request(uow, ANN, pending, None, NOW)
    return pending


# -- submit ---------------------------------------------------------------------------------------


def test_submit_freezes_the_change_locks_the_object_and_tells_the_eligible_approvers(
    uow: FakeUnitOfWork,
) -> None:
    request_id = submit(uow)
    stored = uow.stored.requests[request_id]
    assert stored["status"] == Status.NEEDS_APPROVAL
    assert stored["expiration_date_time"] == NOW + timedelta(days=30)
    assert stored["payload"]["change"]["body"] == CHANGE.body
    assert uow.stored.locks == {LOCK: request_id}
    assert uow.stored.audit == [(request_id, "Submit", "success")]
    # The requester is never told to approve their own request.
    assert uow.stored.outbox == [(request_id, "submitted", ["ann", "bob", "cat"])]


def test_a_second_submit_on_a_locked_object_is_refused_and_writes_nothing(
    uow: FakeUnitOfWork, pending: str
) -> None:
    before = (dict(uow.stored.requests), list(uow.stored.audit), list(uow.stored.outbox))
    with pytest.raises(Conflict, match="already exists") as refused:
        submit(uow)
    assert refused.value.reason == f"lockedBy:{pending}"
    assert (uow.stored.requests, uow.stored.audit, uow.stored.outbox) == before


def test_a_lock_held_by_a_request_whose_time_is_up_is_freed_by_expiring_it(
    uow: FakeUnitOfWork, pending: str
) -> None:
    later = NOW + timedelta(days=31)
    second = submit(uow, now=later)
    assert status(uow, pending) == Status.EXPIRED
    assert uow.stored.locks == {LOCK: second}
    assert (pending, "Expire", "success") in uow.stored.audit


# -- approve --------------------------------------------------------------------------------------


def test_approve_records_the_decision_and_tells_the_requester(
    uow: FakeUnitOfWork, pending: str
) -> None:
    body = approve_request(uow, ANN, pending, "looks right", LATER)
    assert body["status"] == Status.APPROVED == status(uow, pending)
    assert body["approver"] == {"user": {"id": "ann", "displayName": "Ann"}}
    assert uow.stored.decisions == {(pending, "ann"): ("approve", "looks right")}
    assert uow.stored.audit[-1] == (pending, "Approve", "success")
    assert uow.stored.outbox[-1] == (pending, "approved", ["req"])
    assert uow.stored.locks == {LOCK: pending}  # approved still holds the object


def test_a_quorum_needs_that_many_distinct_approvers(uow: FakeUnitOfWork) -> None:
    request_id = submit(uow, quorum=2)
    assert approve_request(uow, ANN, request_id, None, LATER)["status"] == Status.NEEDS_APPROVAL
    with pytest.raises(Conflict) as again:
        approve_request(uow, ANN, request_id, None, LATER)
    assert again.value.reason == "alreadyApproved"
    assert approve_request(uow, BOB, request_id, None, LATER)["status"] == Status.APPROVED
    assert set(uow.stored.decisions) == {(request_id, "ann"), (request_id, "bob")}
    assert [event for _, event, _ in uow.stored.outbox] == ["submitted", "approved"]


@pytest.mark.parametrize(
    ("who", "reason"),
    [("req", "approverIsRequester"), ("cat-outsider", "approverIsDisabled")],
)
def test_an_ineligible_approver_is_refused_and_only_the_refusal_is_recorded(
    uow: FakeUnitOfWork, pending: str, who: str, reason: str
) -> None:
    with pytest.raises(NotEligibleToApprove) as refused:
        approve_request(uow, caller(DIRECTORY, who), pending, None, LATER)
    assert refused.value.reason == reason
    assert status(uow, pending) == Status.NEEDS_APPROVAL
    assert uow.stored.decisions == {}
    assert uow.stored.audit[-1] == (pending, "Approve (refused)", "failure")  # committed
    assert [event for _, event, _ in uow.stored.outbox] == ["submitted"]


def test_approving_an_auto_complete_request_applies_the_change_at_once(
    uow: FakeUnitOfWork,
) -> None:
    request_id = submit(uow, auto_complete=True)
    assert approve_request(uow, ANN, request_id, None, LATER)["status"] == Status.COMPLETED
    assert uow.stored.applied == [(request_id, CHANGE)]
    assert uow.stored.locks == {}


# -- reject and cancel ----------------------------------------------------------------------------


def test_reject_needs_a_note_and_ends_the_request(uow: FakeUnitOfWork, pending: str) -> None:
    with pytest.raises(ValidationFailed, match="required to reject"):
        reject_request(uow, ANN, pending, "  ", LATER)
    assert status(uow, pending) == Status.NEEDS_APPROVAL
    assert reject_request(uow, ANN, pending, "not now", LATER)["status"] == Status.REJECTED
    assert uow.stored.decisions == {(pending, "ann"): ("reject", "not now")}
    assert uow.stored.locks == {}
    assert uow.stored.outbox[-1] == (pending, "rejected", ["req"])


def test_only_the_requester_cancels_their_request(uow: FakeUnitOfWork, pending: str) -> None:
    with pytest.raises(Forbidden):
        cancel_my_request(uow, ANN, pending, LATER)
    assert status(uow, pending) == Status.NEEDS_APPROVAL
    assert cancel_my_request(uow, REQUESTER, pending, LATER)["status"] == Status.CANCELLED
    assert uow.stored.locks == {}
    assert uow.stored.audit[-1] == (pending, "Cancel", "success")


def test_an_approver_cancels_an_approval_not_yet_completed(
    uow: FakeUnitOfWork, pending: str, approved: str
) -> None:
    with pytest.raises(NotEligibleToApprove):
        cancel_approval(uow, REQUESTER, approved, None, LATER)
    assert cancel_approval(uow, BOB, approved, "wait", LATER)["status"] == Status.CANCELLED
    assert uow.stored.requests[approved]["approval_justification"] == "wait"
    with pytest.raises(Conflict):  # cancelled is final
        cancel_approval(uow, BOB, approved, None, LATER)


# -- complete -------------------------------------------------------------------------------------


def test_complete_applies_the_frozen_change_and_frees_the_object(
    uow: FakeUnitOfWork, approved: str
) -> None:
    result = complete_request(uow, REQUESTER, approved, LATER)
    assert result.target_id == "new-object"
    assert status(uow, approved) == Status.COMPLETED
    assert uow.stored.requests[approved]["completed_date_time"] == LATER
    assert uow.stored.applied == [(approved, CHANGE)]
    assert uow.stored.locks == {}
    assert uow.stored.outbox[-1] == (approved, "completed", ["req"])


def test_complete_is_the_requesters_and_needs_an_approved_request(
    uow: FakeUnitOfWork, pending: str
) -> None:
    with pytest.raises(Conflict, match="only an approved request"):
        complete_request(uow, REQUESTER, pending, LATER)
    approve_request(uow, ANN, pending, None, LATER)
    with pytest.raises(Forbidden, match="Only the requester"):
        complete_request(uow, ANN, pending, LATER)
    assert uow.stored.applied == []


def test_a_replay_that_differs_from_the_approved_change_is_refused(
    uow: FakeUnitOfWork, approved: str
) -> None:
    other = Change("mobileApps", "Update", "app-1", {"displayName": "Something else"})
    with pytest.raises(Forbidden) as refused:
        complete_request(uow, REQUESTER, approved, LATER, replay=other)
    assert refused.value.reason == "payloadMismatch"
    assert uow.stored.applied == [] and status(uow, approved) == Status.APPROVED
    # The identical operation, keys in another order, completes it.
    same = Change("mobileApps", "Update", "app-1", dict(CHANGE.body))
    complete_request(uow, REQUESTER, approved, LATER, replay=same)
    assert status(uow, approved) == Status.COMPLETED


def test_complete_refuses_when_the_object_moved_since_submission(
    uow: FakeUnitOfWork, approved: str
) -> None:
    uow.versions = {"app-1": 2}
    with pytest.raises(Conflict) as refused:
        complete_request(uow, REQUESTER, approved, LATER)
    assert refused.value.reason == "objectChanged"
    assert uow.stored.applied == [] and status(uow, approved) == Status.APPROVED


# -- expiry on action and stale state ------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda uow, r, now: approve_request(uow, ANN, r, None, now),
        lambda uow, r, now: reject_request(uow, ANN, r, "no", now),
        lambda uow, r, now: cancel_my_request(uow, REQUESTER, r, now),
    ],
    ids=["approve", "reject", "cancel"],
)
def test_an_action_on_a_request_whose_time_is_up_expires_it(
    uow: FakeUnitOfWork, pending: str, action: object
) -> None:
    expires = uow.stored.requests[pending]["expiration_date_time"]
    with pytest.raises(Conflict) as refused:
        action(uow, pending, expires)  # type: ignore[operator]
    assert refused.value.reason == "requestExpired"
    assert status(uow, pending) == Status.EXPIRED  # committed, though the action failed
    assert uow.stored.locks == {}
    assert uow.stored.audit[-1] == (pending, "Expire", "success")
    assert uow.stored.outbox[-1] == (pending, "expired", ["req"])
    assert uow.stored.decisions == {}


def test_complete_after_expiry_expires_the_approved_request(
    uow: FakeUnitOfWork, approved: str
) -> None:
    expires = uow.stored.requests[approved]["expiration_date_time"]
    with pytest.raises(Conflict, match="expired"):
        complete_request(uow, REQUESTER, approved, expires + timedelta(seconds=1))
    assert status(uow, approved) == Status.EXPIRED and uow.stored.applied == []


def test_a_status_changed_behind_the_use_cases_back_fails_the_compare_and_set(
    uow: FakeUnitOfWork, pending: str
) -> None:
    loaded = uow.get_request

    def stale(tenant_id: str, request_id: str, *, for_update: bool = False) -> object:
        row = loaded(tenant_id, request_id, for_update=for_update)
        uow.stored.requests[request_id]["status"] = Status.CANCELLED
        return row

    uow.get_request = stale  # type: ignore[method-assign,assignment]
    with pytest.raises(Conflict, match="changed meanwhile"):
        approve_request(uow, ANN, pending, None, LATER)
    assert uow.stored.decisions == {}
    assert [activity for _, activity, _ in uow.stored.audit] == ["Submit"]
