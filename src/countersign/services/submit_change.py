"""Submit a change for approval: freeze the planned change as a request in needsApproval, lock
the objects it names (one active request per object, SPEC §4 rules 1-3), audit it and tell the
eligible approvers. The gate (services/gate.py) decides that a change needs approval and calls
`create_request` in its own transaction."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from countersign.domain import approval as a
from countersign.domain import eligibility, policy_rules
from countersign.domain import request as lifecycle
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict
from countersign.domain.protection import Protection
from countersign.services.changes import Change, Plan
from countersign.services.handlers import directory
from countersign.services.request_json import effective_status, public_change
from countersign.services.transitions import aggregate_of, record_expiry
from countersign.services.unit_of_work import LOCKED_MESSAGE, UnitOfWork
from countersign.store import tables as t


def create_request(
    uow: UnitOfWork,
    caller: Caller,
    change: Change,
    plan: Plan,
    protection: Protection,
    justification: str,
    now: datetime,
) -> t.ApprovalRequest:
    """Freeze a planned change as a request in `needsApproval` (SPEC §4 rules 1-3)."""
    frozen = frozen_change(change).canonical()
    access_change = protection.access_change.to_json() if protection.access_change else None
    lifetime = timedelta(
        days=protection.lifetime_days or uow.request_lifetime_days(caller.tenant_id)
    )
    # It waits for approval until the approval window closes (domain/policy_rules.py); on
    # approval, approve_request moves the expiry to the end of the completion window.
    request = lifecycle.ApprovalRequest.submit(
        str(uuid.uuid4()),
        caller.id,
        now,
        policy_rules.approval_deadline(now, lifetime, protection.approval_window_hours) - now,
        protection.approvals_required,
    )
    stages = protection.request_stages
    before, after = plan.before, plan.after
    row = t.ApprovalRequest(
        id=request.id,
        tenant_id=caller.tenant_id,
        status=request.status,
        request_date_time=now,
        expiration_date_time=request.expires,
        last_modified_date_time=now,
        requestor_id=caller.id,
        requestor_type=caller.type,
        requestor_name=caller.display_name,
        request_justification=justification,
        policy_type=protection.policy_type,
        policy_ids=[policy.id for policy in protection.policies],
        approvals_required=request.approvals_required,
        auto_complete=protection.auto_complete,
        payload_id=change.target_id,
        payload_type=plan.entity_type,
        payload_name=plan.target_name[:256],
        payload_operation=change.operation,
        action_name=change.action_name,
        payload={
            "change": frozen,
            "versions": plan.versions,
            "approvers": protection.approvers.to_json(),
            "accessChange": access_change,
            # Which policies apply, by name as they were at submission.
            "policies": [{"id": p.id, "displayName": p.display_name} for p in protection.policies],
        },
        display_payload={
            "before": before,
            "after": after,
            "diff": a.json_diff(before or {}, after or {}),
            "accessChange": access_change,
            "summary": uow.summary(caller, change, plan, access_change),
        },
        entity_keys=list(plan.entity_keys),
        stages=[stage.to_json() for stage in stages],
        current_stage=0,
        lifetime_end_date_time=now + lifetime,
        completion_window_hours=protection.completion_window_hours,
    )
    uow.add_request(row)
    _lock_entities(uow, caller.tenant_id, row, now)
    uow.audit(
        row,
        caller,
        "Submit",
        now,
        after={
            "status": row.status,
            "justification": justification,
            "change": public_change(frozen),
        },
    )
    first = dataclasses.replace(protection.approvers, group_ids=stages[0].approver_group_ids)
    approvers = eligibility.eligible_approvers(caller.snapshot, caller.id, first)
    uow.notify(row, "submitted", approvers, now)
    return row


def check_unlocked(uow: UnitOfWork, tenant_id: str, keys: Iterable[str], now: datetime) -> None:
    """409 when an active request holds any of the objects."""
    keys = list(keys)
    if not keys:
        return
    for holder in uow.lock_holders(tenant_id, keys):
        if effective_status(holder, now) in lifecycle.ACTIVE:
            raise Conflict(LOCKED_MESSAGE, reason=f"lockedBy:{holder.id}")


def _lock_entities(uow: UnitOfWork, tenant_id: str, row: t.ApprovalRequest, now: datetime) -> None:
    """One active request per object (rule 3), enforced by the request_locks primary key. A
    lock still held by a request whose time is up is freed by expiring that request now."""
    for key in row.entity_keys:
        for holder in uow.lock_holders(tenant_id, [key], for_update=True):
            expired = aggregate_of(holder)
            if not expired.expire(now):
                raise Conflict(LOCKED_MESSAGE, reason=f"lockedBy:{holder.id}")
            record_expiry(uow, holder, expired, now)  # frees its locks
        uow.lock(tenant_id, key, row.id)


def frozen_change(change: Change) -> Change:
    """The change as an approval request keeps it: secrets (a new password) only as hashes."""
    if change.collection != "users":
        return change
    return dataclasses.replace(change, body=directory.freeze_secrets(change.body))
