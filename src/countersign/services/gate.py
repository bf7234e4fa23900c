"""The gate every write passes, from every interface: it decides from the tenant's active access
policies whether a change needs approval, and runs the approval handshake (SPEC §5):

1. a protected write without approval headers -> 400;
2. with `x-msft-approval-justification` (base64) -> a request in needsApproval, and
   ApprovalRequired (403) carrying its id for `x-msft-approval-code`;
3. the identical replay with `x-msft-approval-code` after approval -> applied, request completed.

`execute` says what happened as a value (`Applied` or `Submitted`); the interfaces turn it into
their own answer (the API's 403 ApprovalRequired, the admin center's request page).

Unprotected writes apply at once. The active policies come from the directory snapshot cached
per tenant version, so deciding costs no query beyond reading that version number.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countersign.domain import guards
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, ValidationFailed
from countersign.domain.justification import decode_justification
from countersign.domain.protection import Protection, coverage, guarded, protection_for
from countersign.services import audit, submissions
from countersign.services.catalog import apply_change, handler_for, plan_change
from countersign.services.changes import Change, Plan, Result
from countersign.services.complete_request import complete_locked
from countersign.services.handlers import directory
from countersign.services.identity import caller_as_of
from countersign.services.submit_change import check_unlocked, create_request
from countersign.services.unit_of_work import SqlUnitOfWork, directory_effect, sql_transaction
from countersign.store.db import Database

log = logging.getLogger("countersign.gate")
EXCLUDED_ACTIVITY = "Applied without approval (excluded application)"


@dataclass(frozen=True)
class Applied:
    """The change took effect (unprotected, or the approved replay of a request)."""

    result: Result


@dataclass(frozen=True)
class Submitted:
    """The change became an approval request in needsApproval; nothing was applied."""

    request_id: str

    @property
    def message(self) -> str:
        # Public scripts read the id out of this text with a regular expression.
        return (
            "This operation is protected by multi admin approval. An approval request was "
            f"created with id {self.request_id}; after it is approved, complete it or replay "
            f"the same operation with the header x-msft-approval-code: {self.request_id}"
        )


Outcome = Applied | Submitted


@dataclass(frozen=True)
class ApprovalHeaders:
    justification: str | None = None  # base64, as sent in x-msft-approval-justification
    approval_code: str | None = None  # a request id, as sent in x-msft-approval-code
    # Idempotency-Key, else Graph's client-request-id: a retried submit answers with the same
    # request (services/submissions.py).
    idempotency_key: str | None = None

    @classmethod
    def from_request(cls, headers: Mapping[str, str]) -> ApprovalHeaders:
        return cls(
            headers.get("x-msft-approval-justification"),
            headers.get("x-msft-approval-code"),
            headers.get("idempotency-key") or headers.get("client-request-id"),
        )


def needs_approval(db: Database, caller: Caller, change: Change, now: datetime) -> bool:
    """Whether `change` would become an approval request (for the admin center's last step)."""
    with db.write() as session:
        protection = _decide(session, db, caller, change, now)[2]
        session.rollback()  # a question only: whatever was tried is undone
        return protection is not None


def _decide(
    session: Session, db: Database, caller: Caller, change: Change, now: datetime
) -> tuple[Caller, Plan, Protection | None, Result | None]:
    """Plan the change and decide whether it needs approval; an unprotected change is applied
    here (its Result returned), in the caller's transaction.

    Once any access policy is active, a change to the directory is judged by its effect (SPEC
    §4 rule 10): an unprotected change is applied on a savepoint and compared, before and
    after, for every principal; one that grants access or sets a privileged principal's
    credentials is undone and becomes a request. Both sides of that comparison are read under
    the tenant's lock, so no concurrent change can slip between them."""
    current = caller_as_of(session, db, caller)
    plan = plan_change(session, current, change, now)
    protection = _protection(current, change, plan)
    judged = protection is None or handler_for(change.collection).changes_access
    if not current.snapshot.policies or not judged:
        if protection is None:
            _check_unlocked(SqlUnitOfWork(db, session), current, plan, now)
            return current, plan, None, apply_change(session, current, change, plan, now)
        return current, plan, protection, None
    audit.lock_chain(session, current.tenant_id)
    locked = caller_as_of(session, db, current)
    if locked.snapshot is not current.snapshot:  # the directory moved since the plan
        current, plan = locked, plan_change(session, locked, change, now)
        protection = _protection(current, change, plan)
    if protection is not None:
        effect = _simulate(session, current, change, plan, now)
        return current, plan, guarded(protection, effect), None
    savepoint = session.begin_nested()
    result = apply_change(session, current, change, plan, now)
    effect = directory_effect(session, current.tenant_id, current.id, current.snapshot)
    protection = guarded(None, effect)
    if protection is None:
        _check_unlocked(SqlUnitOfWork(db, session), current, plan, now)
        savepoint.commit()
        return current, plan, None, result
    savepoint.rollback()
    return current, plan, protection, None


def _protection(caller: Caller, change: Change, plan: Plan) -> Protection | None:
    return protection_for(
        caller.snapshot.policies,
        collection=change.collection,
        policy_type=plan.policy_type,
        **_facts(caller, plan),
    )


def _facts(caller: Caller, plan: Plan) -> dict[str, Any]:
    """What decides which policies cover a planned change, besides its type."""
    return {
        "caller_id": caller.id,
        "platform": plan.platform,
        "before": plan.before,
        "after": plan.after,
    }


def _audit_exclusion(
    session: Session, caller: Caller, plan: Plan, result: Result, now: datetime
) -> None:
    """A write that policies would have intercepted but for excluding the calling application
    (domain/policy_rules.py) is audited as applied without approval, naming them."""
    if plan.policy_type is None:
        return
    excluded = coverage(
        caller.snapshot.policies, policy_type=plan.policy_type, **_facts(caller, plan)
    ).excluded_by
    if not excluded:
        return
    audit.record(
        session,
        tenant_id=caller.tenant_id,
        actor=caller,
        activity=f"{EXCLUDED_ACTIVITY} {plan.entity_type}",
        activity_type=EXCLUDED_ACTIVITY,
        category="MultiAdminApproval",
        target_type=plan.entity_type,
        target_id=result.target_id,
        target_name=plan.target_name,
        after={"reason": "excludedApplication", "policyIds": [p.id for p in excluded]},
        now=now,
    )


def _simulate(
    session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
) -> guards.AccessChange | None:
    """Apply the change on a savepoint, judge its effect on the directory, and undo it: refuse
    at submission what completion would refuse, and learn whom the change is about."""
    savepoint = session.begin_nested()
    try:
        apply_change(session, caller, change, dataclasses.replace(plan), now)
        return directory_effect(session, caller.tenant_id, caller.id, caller.snapshot)
    finally:
        savepoint.rollback()


def _check_unlocked(uow: SqlUnitOfWork, caller: Caller, plan: Plan, now: datetime) -> None:
    """An object an active request names is locked for every write of its kind, protected or
    not (the request's completion would refuse anyway). Checked once the write is known to
    apply at once: a retried submission of a request's own change answers as the first did."""
    if plan.policy_type is not None:
        check_unlocked(uow, caller.tenant_id, plan.entity_keys, now)


def execute(
    db: Database, caller: Caller, change: Change, headers: ApprovalHeaders, now: datetime
) -> Outcome:
    """Run one write through the gate: applied at once, submitted as a request, or (with an
    approval code) the approved request completed."""
    if change.collection == "users" and directory.carries_password_hash(change.body):
        # Only a frozen approval request carries a hash; callers send passwords.
        raise ValidationFailed(
            "Property 'passwordProfile.passwordHash' does not exist on this type."
        )

    def work(uow: SqlUnitOfWork) -> Outcome:
        if headers.approval_code:
            # The replay of an approved request: completion compares it with the frozen change
            # and plans that once; nothing else is decided here.
            code = headers.approval_code.strip()
            row = uow.get_request(caller.tenant_id, code, for_update=True)
            return Applied(complete_locked(uow, caller, row, now, replay=change))
        current, plan, protection, result = _decide(uow.session, db, caller, change, now)
        if protection is None:
            assert result is not None
            _audit_exclusion(uow.session, current, plan, result, now)
            return Applied(result)
        justification = decode_justification(headers.justification)
        request_id = submissions.submit_once(
            uow.session,
            current,
            change,
            headers.idempotency_key,
            now,
            lambda: create_request(uow, current, change, plan, protection, justification, now).id,
        )
        return Submitted(request_id)

    try:
        return sql_transaction(db, work)
    except IntegrityError:
        log.warning("a write lost a race on a database constraint", exc_info=True)
        # A uniqueness the database enforces (a sign-in name, a lock, an id) was taken by a
        # concurrent change between our checks and our commit: nothing was applied.
        raise Conflict(
            "The change conflicts with another change made at the same time; nothing was "
            "applied. Try again.",
            reason="concurrentChange",
        ) from None
