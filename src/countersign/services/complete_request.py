"""Complete an approved request (SPEC §4 rule 6): the requester applies the frozen change --
through the complete action, or by replaying the identical operation with
`x-msft-approval-code` -- and the request is marked completed in the same transaction, never
one without the other. Refused when the object or the directory moved since submission, and
while a change freeze is open."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from countersign.domain import guards
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, Forbidden
from countersign.domain.policy_rules import freeze_at
from countersign.services.changes import Change, Result, canonical_json, iso
from countersign.services.handlers import directory
from countersign.services.transitions import aggregate_of, expire_if_due, save
from countersign.services.unit_of_work import UnitOfWork, transaction
from countersign.store import tables as t
from countersign.store.db import Database


def complete_request(
    store: Database | UnitOfWork,
    caller: Caller,
    request_id: str,
    now: datetime,
    replay: Change | None = None,
) -> Result:
    """The requester completes an approved request."""

    def work(uow: UnitOfWork) -> Result:
        row = uow.get_request(caller.tenant_id, request_id, for_update=True)
        return complete_locked(uow, caller, row, now, replay)

    return transaction(store, work)


def complete_locked(
    uow: UnitOfWork,
    caller: Caller,
    row: t.ApprovalRequest,
    now: datetime,
    replay: Change | None,
) -> Result:
    """`complete_request` on a request row already locked in this transaction."""
    request = aggregate_of(row)
    request.require_requester(caller.id, "complete the request")
    frozen = Change.from_canonical(row.payload["change"])
    if replay is not None and not same_change(frozen, replay):
        raise Forbidden(
            "The replayed operation differs from the one that was approved "
            "(method, path and body must be identical).",
            reason="payloadMismatch",
        )
    expire_if_due(uow, row, request, now)
    # Checked (and the move recorded) before anything is planned; persisted after the apply.
    request.complete(caller.id, replayed=replay is not None)
    require_no_freeze(uow, row.tenant_id, now)
    # Under the tenant's lock, nothing else changes the directory before this commits: the
    # snapshot the effect is judged against is the one the change is applied to.
    uow.lock_chain(caller.tenant_id)
    requester = uow.caller_as_of(caller)
    plan = uow.plan(requester, dataclasses.replace(frozen, expected_version=None), now)
    frozen_versions = {k: int(v) for k, v in row.payload.get("versions", {}).items()}
    if plan.versions != frozen_versions:
        raise Conflict(
            "The object changed after the request was submitted, so the approved "
            "change no longer applies as reviewed. Cancel the request and submit "
            "it again.",
            reason="objectChanged",
        )
    result = uow.apply(requester, frozen, plan, now, row.id)
    effect = uow.directory_effect(caller.tenant_id, caller.id, requester.snapshot)
    approved = guards.AccessChange.from_json(row.payload.get("accessChange"))
    existing = [policy.id for policy in requester.snapshot.policies]
    if effect is not None and effect.exceeds(approved, existing):
        raise Conflict(
            "The directory changed after the request was submitted: completing it now would "
            "grant access or set credentials that the approvers did not see. Cancel the "
            "request and submit it again.",
            reason="accessChanged",
        )
    save(
        uow,
        row,
        request,
        now,
        completed_date_time=now,
        payload_id=row.payload_id or result.target_id,
    )
    uow.audit(row, requester, "Complete", now)
    uow.notify(row, "completed", [row.requestor_id], now)
    return result


def require_no_freeze(uow: UnitOfWork, tenant_id: str, now: datetime) -> None:
    """No protected request completes while a change-freeze window is open (the tenant's
    settings; domain/policy_rules.py): 409 naming the window, the request stays approved."""
    window = freeze_at(uow.freeze_windows(tenant_id), now)
    if window is not None:
        raise Conflict(
            f"A change freeze is in effect from {iso(window.start)} until {iso(window.end)} "
            f"({window.reason}); the request stays approved and can be completed after it.",
            reason="changeFreeze",
        )


def same_change(frozen: Change, replay: Change) -> bool:
    """Identical operation: bodies compared as canonical JSON (key order, spacing irrelevant),
    a frozen password hash against the replayed password."""

    def operation(change: Change) -> tuple[object, ...]:
        return (
            change.collection,
            change.operation,
            change.target_id,
            change.action_name,
            sorted(change.target_ids),
        )

    if operation(frozen) != operation(replay):
        return False
    if frozen.collection == "users":
        return directory.same_secrets(frozen.body, replay.body)
    return canonical_json(frozen.body) == canonical_json(replay.body)
