"""The gate every write passes, from every interface: it decides from the tenant's active access
policies whether a change needs approval, and runs the approval handshake (SPEC §5):

1. a protected write without approval headers -> 400;
2. with `x-msft-approval-justification` (base64) -> a request in needsApproval, and
   ApprovalRequired (403) carrying its id for `x-msft-approval-code`;
3. the identical replay with `x-msft-approval-code` after approval -> applied, request completed.

Unprotected writes apply at once. The active policies come from the directory snapshot cached
per tenant version, so deciding costs no query beyond reading that version number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countersign.domain.actors import Caller
from countersign.domain.errors import ApprovalRequired, Conflict, ValidationFailed
from countersign.services import approvals, directory
from countersign.services.changes import Change, Result, apply_change, plan_change
from countersign.services.identity import caller_as_of
from countersign.store.db import Database

log = logging.getLogger("countersign.gate")


@dataclass(frozen=True)
class ApprovalHeaders:
    justification: str | None = None  # base64, as sent in x-msft-approval-justification
    approval_code: str | None = None  # a request id, as sent in x-msft-approval-code

    @classmethod
    def from_request(cls, headers: Mapping[str, str]) -> ApprovalHeaders:
        return cls(
            headers.get("x-msft-approval-justification"), headers.get("x-msft-approval-code")
        )


def needs_approval(db: Database, caller: Caller, change: Change, now: datetime) -> bool:
    """Whether `change` would become an approval request (for the admin center's last step)."""
    with db.read() as session:
        caller = caller_as_of(session, db, caller)
        plan = plan_change(session, caller, change, now)
        return approvals.protection_for(caller.snapshot, change, plan) is not None


def execute(
    db: Database, caller: Caller, change: Change, headers: ApprovalHeaders, now: datetime
) -> Result:
    if change.collection == "users" and directory.carries_password_hash(change.body):
        # Only a frozen approval request carries a hash; callers send passwords.
        raise ValidationFailed(
            "Property 'passwordProfile.passwordHash' does not exist on this type."
        )

    def work(session: Session) -> Result | str:
        current = caller_as_of(session, db, caller)
        plan = plan_change(session, current, change, now)
        protection = approvals.protection_for(current.snapshot, change, plan)
        if protection is None:
            if plan.policy_type is not None:
                # An object an active request names is locked for every write of its kind,
                # protected or not (the request's completion would refuse anyway).
                approvals.check_unlocked(session, current.tenant_id, plan.entity_keys, now)
            result = apply_change(session, current, change, plan, now)
            approvals.check_no_lockout(session, current.tenant_id, current.id, change)
            return result
        if headers.approval_code:
            row = approvals.get_request(
                session, current.tenant_id, headers.approval_code.strip(), for_update=True
            )
            return approvals.complete_locked(session, db, current, row, now, replay=change)
        justification = approvals.decode_justification(headers.justification)
        request = approvals.create_request(
            session, current, change, plan, protection, justification, now
        )
        return request.id

    try:
        outcome = approvals.run_transition(db, work)
    except IntegrityError:
        log.warning("a write lost a race on a database constraint", exc_info=True)
        # A uniqueness the database enforces (a sign-in name, a lock, an id) was taken by a
        # concurrent change between our checks and our commit: nothing was applied.
        raise Conflict(
            "The change conflicts with another change made at the same time; nothing was "
            "applied. Try again.",
            reason="concurrentChange",
        ) from None
    if isinstance(outcome, str):  # committed: the request exists; tell the caller where it is
        raise ApprovalRequired(
            outcome,
            "This operation is protected by multi admin approval. An approval request was "
            f"created; after it is approved, complete it or replay the same operation with "
            f"the header x-msft-approval-code: {outcome}",
        )
    return outcome
