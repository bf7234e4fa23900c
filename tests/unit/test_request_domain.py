"""domain/request.py on plain values: the statuses, every transition (legal and illegal),
expiry as every reader sees it, the quorum, and the ApprovalRequest aggregate's every action
from every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from countersign.domain import request as lifecycle
from countersign.domain.errors import Conflict, Forbidden
from countersign.domain.request import ACTIVE, TRANSITIONS, Moved, Status
from countersign.domain.request import ApprovalRequest as Request

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

LEGAL = {
    (Status.NEEDS_APPROVAL, Status.APPROVED),
    (Status.NEEDS_APPROVAL, Status.REJECTED),
    (Status.NEEDS_APPROVAL, Status.CANCELLED),
    (Status.NEEDS_APPROVAL, Status.EXPIRED),
    (Status.APPROVED, Status.COMPLETED),
    (Status.APPROVED, Status.CANCELLED),
    (Status.APPROVED, Status.EXPIRED),
}
PAIRS = [(current, target) for current in Status for target in Status]


def test_the_statuses_are_graphs_operation_approval_request_status() -> None:
    assert [s.value for s in Status] == [
        "needsApproval",
        "approved",
        "rejected",
        "cancelled",
        "completed",
        "expired",
    ]
    assert frozenset({Status.NEEDS_APPROVAL, Status.APPROVED}) == ACTIVE
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{c}->{t}" for c, t in PAIRS])
def test_only_the_drawn_transitions_are_legal(current: Status, target: Status) -> None:
    assert lifecycle.can_move(current, target) is ((current, target) in LEGAL)
    # The plain strings stored in the database move the same way.
    assert lifecycle.can_move(current.value, target.value) is ((current, target) in LEGAL)


def test_never_applied_without_approval_and_terminal_statuses_never_move() -> None:
    assert not lifecycle.can_move(Status.NEEDS_APPROVAL, Status.COMPLETED)
    for terminal in set(Status) - ACTIVE:
        assert TRANSITIONS[terminal] == frozenset()


def test_an_unknown_status_never_moves() -> None:
    assert not lifecycle.can_move("pendingApproval", Status.APPROVED)
    assert not lifecycle.can_move(Status.NEEDS_APPROVAL, "pendingApproval")


OFFSETS = [timedelta(days=-1), timedelta(seconds=-1), timedelta(0), timedelta(seconds=1)]


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("offset", OFFSETS, ids=str)
def test_an_active_request_reads_expired_from_its_expiry_instant_on(
    status: Status, offset: timedelta
) -> None:
    expires = NOW + offset
    due = expires <= NOW
    expected = Status.EXPIRED if status in ACTIVE and due else status
    assert lifecycle.effective_status(status, expires, NOW) == expected
    assert lifecycle.expiry_due(status, expires, NOW) is (status in ACTIVE and due)
    assert lifecycle.is_active(status, expires, NOW) is (status in ACTIVE and not due)


def test_expiry_is_inclusive_of_the_instant() -> None:
    assert lifecycle.is_due(NOW, NOW)
    assert not lifecycle.is_due(NOW + timedelta(microseconds=1), NOW)


def test_a_terminal_status_is_reported_as_stored_even_after_expiry() -> None:
    for status in set(Status) - ACTIVE:
        assert lifecycle.effective_status(status, NOW - timedelta(days=30), NOW) == status


@pytest.mark.parametrize(
    ("approvals", "required", "reached"),
    [(0, 1, False), (1, 1, True), (1, 2, False), (2, 2, True), (3, 2, True), (1, 0, True)],
)
def test_the_quorum(approvals: int, required: int, reached: bool) -> None:
    assert lifecycle.quorum_reached(approvals, required) is reached


# -- the aggregate ----------------------------------------------------------------------------

REQUESTER, APPROVER, OTHER = "ann", "bob", "cat"


def request_in(status: Status, required: int = 1, expires: datetime | None = None) -> Request:
    return Request("r1", status, REQUESTER, expires or NOW + timedelta(days=1), required)


def test_submit_waits_for_approval_for_its_lifetime() -> None:
    request = Request.submit("r1", REQUESTER, NOW, timedelta(days=2), approvals_required=2)
    assert request.status == Status.NEEDS_APPROVAL
    assert request.expires == NOW + timedelta(days=2)
    assert request.approvals_required == 2 and request.events == []


def test_approve_moves_to_approved_at_the_quorum() -> None:
    request = request_in(Status.NEEDS_APPROVAL)
    assert request.approve(APPROVER) is True
    assert request.status == Status.APPROVED
    assert request.events == [Moved(Status.NEEDS_APPROVAL, Status.APPROVED)]


def test_approve_below_the_quorum_records_the_decision_only() -> None:
    request = request_in(Status.NEEDS_APPROVAL, required=2)
    assert request.approve(APPROVER) is False
    assert request.status == Status.NEEDS_APPROVAL and request.events == []
    assert request.approve(OTHER) is True
    assert request.events == [Moved(Status.NEEDS_APPROVAL, Status.APPROVED)]


def test_one_approver_counts_once() -> None:
    request = request_in(Status.NEEDS_APPROVAL, required=2)
    request.approve(APPROVER)
    with pytest.raises(Conflict) as refused:
        request.approve(APPROVER)
    assert refused.value.reason == "alreadyApproved"
    assert request.approvals == 1


def test_reject_moves_to_rejected() -> None:
    request = request_in(Status.NEEDS_APPROVAL)
    request.reject(APPROVER)
    assert request.events == [Moved(Status.NEEDS_APPROVAL, Status.REJECTED)]


def test_cancel_approval_moves_an_approved_request_to_cancelled() -> None:
    request = request_in(Status.APPROVED)
    request.cancel_approval()
    assert request.events == [Moved(Status.APPROVED, Status.CANCELLED)]


@pytest.mark.parametrize("status", sorted(ACTIVE))
def test_the_requester_cancels_an_active_request(status: Status) -> None:
    request = request_in(status)
    request.cancel(REQUESTER)
    assert request.events == [Moved(status, Status.CANCELLED)]


def test_only_the_requester_cancels_or_completes() -> None:
    for act in (lambda r: r.cancel(APPROVER), lambda r: r.complete(APPROVER)):
        request = request_in(Status.APPROVED)
        with pytest.raises(Forbidden) as refused:
            act(request)
        assert refused.value.reason == "notRequester" and request.events == []


def test_complete_moves_an_approved_request_to_completed() -> None:
    request = request_in(Status.APPROVED)
    request.complete(REQUESTER)
    assert request.events == [Moved(Status.APPROVED, Status.COMPLETED)]


ACTIONS = {
    "approve": (lambda r: r.approve(APPROVER), {Status.NEEDS_APPROVAL}, Conflict),
    "reject": (lambda r: r.reject(APPROVER), {Status.NEEDS_APPROVAL}, Conflict),
    "cancel_approval": (lambda r: r.cancel_approval(), {Status.APPROVED}, Conflict),
    "cancel": (lambda r: r.cancel(REQUESTER), set(ACTIVE), Conflict),
    "complete": (lambda r: r.complete(REQUESTER), {Status.APPROVED}, Conflict),
    "replayed complete": (
        lambda r: r.complete(REQUESTER, replayed=True),
        {Status.APPROVED},
        Forbidden,
    ),
}
ILLEGAL = [
    (name, status)
    for name, (_, legal, _) in ACTIONS.items()
    for status in Status
    if status not in legal
]


@pytest.mark.parametrize(("action", "status"), ILLEGAL, ids=[f"{a}-{s}" for a, s in ILLEGAL])
def test_an_action_from_the_wrong_status_is_refused_and_moves_nothing(
    action: str, status: Status
) -> None:
    act, _, error = ACTIONS[action]
    request = request_in(status)
    with pytest.raises(error) as refused:
        act(request)
    assert refused.value.reason == f"status:{status}"
    assert request.status == status and request.events == [] and request.decisions == ()


@pytest.mark.parametrize("status", list(Status))
def test_expire_moves_an_active_request_once_its_time_is_up(status: Status) -> None:
    request = request_in(status, expires=NOW)
    assert request.expire(NOW - timedelta(seconds=1)) is False
    assert request.events == []
    expired = request.expire(NOW)
    assert expired is (status in ACTIVE)
    assert request.events == ([Moved(status, Status.EXPIRED)] if expired else [])
    assert request.status_at(NOW) == (Status.EXPIRED if status in ACTIVE else status)
    assert request.expire(NOW) is False  # once


def test_the_aggregate_moves_only_along_the_drawn_transitions() -> None:
    request = request_in(Status.COMPLETED)
    with pytest.raises(Conflict):
        request._move(Status.APPROVED)
