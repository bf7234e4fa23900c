"""The operationApprovalRequest's lifecycle: its statuses, the moves between them, and expiry.

Pure values (the `ApprovalRequest` aggregate at the end moves one request and records events).
This is the only place that says what the statuses are, which moves are legal, and
when an active request has expired; the SQL twin of the expiry rule (for filters and counts) is
`services/queries.py: status_is`, and tests/integration/test_request_status_sql.py checks
that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from countersign.domain.errors import Conflict, Forbidden


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


# -- the aggregate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """An event: the request moved from `before` to `after` (the store writes it as a
    compare-and-set on `before`)."""

    before: Status
    after: Status


@dataclass
class ApprovalRequest:
    """One request's lifecycle on plain values. Each method checks the rule it owns, raises a
    domain error when the move is not allowed, and records a `Moved` event when it is; the
    service persists the events, writes the audit entry and the outbox messages.

    Who may approve (the directory) is domain/approval.py's `approval_blocker`; services call
    it between `require_status` and `approve`/`reject`/`cancel_approval`."""

    id: str
    status: Status
    requestor_id: str
    expires: datetime
    approvals_required: int = 1
    # (approver id, "approve" | "reject") for each decision already recorded.
    decisions: tuple[tuple[str, str], ...] = ()
    # A request with stages (domain/policy_rules.py) is approved stage by stage: the service
    # gives the current stage's quorum and decisions, and whether it is the last stage.
    final_stage: bool = True
    events: list[Moved] = field(default_factory=list)

    @classmethod
    def submit(
        cls,
        request_id: str,
        requestor_id: str,
        now: datetime,
        lifetime: timedelta,
        approvals_required: int = 1,
    ) -> ApprovalRequest:
        """A new request waits for approval until `now + lifetime`."""
        return cls(
            request_id, Status.NEEDS_APPROVAL, requestor_id, now + lifetime, approvals_required
        )

    def status_at(self, now: datetime) -> str:
        return effective_status(self.status, self.expires, now)

    def expire(self, now: datetime) -> bool:
        """Expire the request if its time is up while it is active; True when it did."""
        if not expiry_due(self.status, self.expires, now):
            return False
        self._move(Status.EXPIRED)
        return True

    def require_status(self, expected: Status, action: str) -> None:
        if self.status != expected:
            raise Conflict(
                f"The request is {self.status}; only a request that is {expected} can {action}.",
                reason=f"status:{self.status}",
            )

    def require_requester(self, actor_id: str, action: str) -> None:
        if actor_id != self.requestor_id:
            raise Forbidden(f"Only the requester can {action}.", reason="notRequester")

    def approve(self, approver_id: str) -> bool:
        """Record one approval; True when it reaches the (stage's) quorum. The request is
        approved when that completes its final stage."""
        self.require_status(Status.NEEDS_APPROVAL, "be approved")
        if any(decided_by == approver_id for decided_by, _ in self.decisions):
            raise Conflict(
                "You have already approved this request; another approver must.",
                reason="alreadyApproved",
            )
        self.decisions = (*self.decisions, (approver_id, "approve"))
        if quorum_reached(self.approvals, self.approvals_required):
            if self.final_stage:
                self._move(Status.APPROVED)
            return True
        return False

    @property
    def approvals(self) -> int:
        return sum(1 for _, decision in self.decisions if decision == "approve")

    def reject(self, approver_id: str) -> None:
        self.require_status(Status.NEEDS_APPROVAL, "be rejected")
        self.decisions = (*self.decisions, (approver_id, "reject"))
        self._move(Status.REJECTED)

    def cancel_approval(self) -> None:
        """An approver withdraws an approval the requester has not completed yet."""
        self.require_status(Status.APPROVED, "have its approval cancelled")
        self._move(Status.CANCELLED)

    def cancel(self, actor_id: str) -> None:
        """The requester cancels a request that is still active."""
        self.require_requester(actor_id, "cancel their request")
        if self.status not in ACTIVE:
            raise Conflict(
                f"The request is {self.status}; it can no longer be cancelled.",
                reason=f"status:{self.status}",
            )
        self._move(Status.CANCELLED)

    def complete(self, actor_id: str, *, replayed: bool = False) -> None:
        """The requester completes an approved request. A replayed operation on a request that
        is not approved is refused as Intune does (Forbidden); the complete action is a
        Conflict, the status having moved under the caller."""
        self.require_requester(actor_id, "complete the request")
        if self.status != Status.APPROVED:
            error = Forbidden if replayed else Conflict
            raise error(
                f"The request is {self.status}; only an approved request can be completed.",
                reason=f"status:{self.status}",
            )
        self._move(Status.COMPLETED)

    def _move(self, target: Status) -> None:
        if not can_move(self.status, target):
            raise Conflict(f"A request that is {self.status} cannot become {target}.")
        self.events.append(Moved(self.status, target))
        self.status = target
