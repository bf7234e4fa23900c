"""The operationApprovalRequest's lifecycle: its statuses, the moves between them, and expiry.

Pure values. This is the only place that says what the statuses are, which moves are legal, and
when an active request has expired; the SQL twin of the expiry rule (for filters and counts) is
`services/queries.py: status_is`, and tests/integration/test_request_status_sql.py checks
that they agree.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """operationApprovalRequestStatus."""

    NEEDS_APPROVAL = "needsApproval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    EXPIRED = "expired"


# Active: the request still holds its objects' locks and can still move.
ACTIVE: frozenset[Status] = frozenset({Status.NEEDS_APPROVAL, Status.APPROVED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEEDS_APPROVAL: frozenset(
        {Status.APPROVED, Status.REJECTED, Status.CANCELLED, Status.EXPIRED}
    ),
    Status.APPROVED: frozenset({Status.COMPLETED, Status.CANCELLED, Status.EXPIRED}),
    Status.REJECTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.COMPLETED: frozenset(),
    Status.EXPIRED: frozenset(),
}


def can_move(current: str, target: str) -> bool:
    """Whether `current -> target` is a drawn transition (unknown statuses: never)."""
    if current not in Status.__members__.values():
        return False
    return target in TRANSITIONS[Status(current)]


def is_due(expires: datetime, now: datetime) -> bool:
    """A request's time is up from its expiration instant on (inclusive)."""
    return now >= expires


def expiry_due(stored: str, expires: datetime, now: datetime) -> bool:
    """Whether a request stored as `stored` has expired without the store knowing yet: it is
    still active and its time is up. Reads report it `expired`; an action on it expires it."""
    return stored in ACTIVE and is_due(expires, now)


def effective_status(stored: str, expires: datetime, now: datetime) -> str:
    """The status every reader reports: an active request whose time is up is `expired`,
    whether or not the sweeper has written that yet."""
    return Status.EXPIRED if expiry_due(stored, expires, now) else stored


def is_active(stored: str, expires: datetime, now: datetime) -> bool:
    """Active as read now: stored active and not yet due."""
    return effective_status(stored, expires, now) in ACTIVE


def quorum_reached(approvals: int, required: int) -> bool:
    """Enough approvers have approved (a policy asks for at least one)."""
    return approvals >= max(required, 1)
