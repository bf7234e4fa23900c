"""domain/request.py on plain values: the statuses, every transition (legal and illegal),
expiry as every reader sees it, and the quorum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from countersign.domain import request as lifecycle
from countersign.domain.request import ACTIVE, TRANSITIONS, Status

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
