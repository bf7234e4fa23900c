"""An in-memory `UnitOfWork` (services/unit_of_work.py) for the use-case tests: requests stored
as plain dicts of their columns, decisions, locks, the audit trail and the outbox as lists and
dicts; no database. A transaction is a copy of that state, put back when the work raises."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect

from countersign.domain import guards, policy_rules
from countersign.domain.actors import USER, Caller
from countersign.domain.errors import Conflict, NotFound
from countersign.domain.rbac import DirectorySnapshot
from countersign.domain.request import ACTIVE
from countersign.services.changes import Change, Plan, Result
from countersign.services.unit_of_work import LOCKED_MESSAGE
from countersign.store import tables as t

COLUMNS = [attribute.key for attribute in inspect(t.ApprovalRequest).column_attrs]


@dataclass
class Stored:
    """What the fake holds: what a database would, as plain values."""

    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    stages: dict[tuple[str, str], int] = field(default_factory=dict)  # the decisions' stages
    freeze_windows: list[policy_rules.FreezeWindow] = field(default_factory=list)
    locks: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, key) -> request
    audit: list[tuple[str, str, str]] = field(default_factory=list)  # request, activity, result
    outbox: list[tuple[str, str, list[str]]] = field(default_factory=list)  # request, event, to
    applied: list[tuple[str, Change]] = field(default_factory=list)  # request, change


class FakeUnitOfWork:
    def __init__(self, directory: DirectorySnapshot, lifetime_days: int = 30):
        self.stored = Stored()
        self.directory = directory
        self.lifetime_days = lifetime_days
        # The objects' versions as a plan reads them now (completion compares them).
        self.versions: dict[str, int] = {"app-1": 1}
        # What applying a change does to the directory (None: nothing).
        self.effect: guards.AccessChange | None = None
        self.commits = 0

    # -- requests and decisions
    def get_request(
        self, tenant_id: str, request_id: str, *, for_update: bool = False
    ) -> t.ApprovalRequest:
        values = self.stored.requests.get(request_id)
        if values is None or values["tenant_id"] != tenant_id:
            raise NotFound(f"Approval request '{request_id}' does not exist.")
        return t.ApprovalRequest(**copy.deepcopy(values))

    def add_request(self, row: t.ApprovalRequest) -> None:
        values = {name: getattr(row, name) for name in COLUMNS}
        self.stored.requests[row.id] = copy.deepcopy(values)

    def move(
        self, row: t.ApprovalRequest, expected: str, target: str, now: datetime, **values: Any
    ) -> None:
        stored = self.stored.requests[row.id]
        if stored["status"] != expected:  # the compare-and-set
            raise Conflict(f"The request changed meanwhile; it is no longer {expected}.")
        self.touch(row, now, status=target, **values)
        if target not in ACTIVE:
            self.stored.locks = {k: r for k, r in self.stored.locks.items() if r != row.id}

    def touch(self, row: t.ApprovalRequest, now: datetime, **values: Any) -> None:
        values = {"last_modified_date_time": now, **values}
        self.stored.requests[row.id].update(copy.deepcopy(values))
        for name, value in values.items():
            setattr(row, name, value)

    def decisions(self, request_id: str) -> list[policy_rules.Decision]:
        return [
            policy_rules.Decision(approver, verdict, self.stored.stages.get((request, approver), 0))
            for (request, approver), (verdict, _) in self.stored.decisions.items()
            if request == request_id
        ]

    def record_decision(self, decision: t.ApprovalDecision) -> None:
        key = (decision.request_id, decision.approver_id)
        self.stored.decisions[key] = (decision.decision, decision.justification)
        self.stored.stages[key] = decision.stage or 0

    # -- object locks
    def lock_holders(
        self, tenant_id: str, keys: Iterable[str], *, for_update: bool = False
    ) -> list[t.ApprovalRequest]:
        held = {self.stored.locks.get((tenant_id, key)) for key in keys}
        return [self.get_request(tenant_id, r) for r in sorted(r for r in held if r)]

    def lock(self, tenant_id: str, key: str, request_id: str) -> None:
        if (tenant_id, key) in self.stored.locks:
            raise Conflict(LOCKED_MESSAGE, reason="lockedConcurrently")
        self.stored.locks[(tenant_id, key)] = request_id

    # -- tenant and directory
    def snapshot(self, tenant_id: str) -> DirectorySnapshot:
        return self.directory

    def freeze_windows(self, tenant_id: str) -> list[policy_rules.FreezeWindow]:
        return list(self.stored.freeze_windows)

    def request_lifetime_days(self, tenant_id: str) -> int:
        return self.lifetime_days

    def caller_as_of(self, caller: Caller) -> Caller:
        return caller

    def requester_of(self, row: t.ApprovalRequest) -> Caller:
        return caller(self.directory, row.requestor_id, tenant_id=row.tenant_id)

    # -- the frozen change
    def lock_chain(self, tenant_id: str) -> None:
        pass

    def plan(self, caller: Caller, change: Change, now: datetime) -> Plan:
        return plan_for(change, dict(self.versions))

    def apply(
        self, caller: Caller, change: Change, plan: Plan, now: datetime, request_id: str
    ) -> Result:
        self.stored.applied.append((request_id, change))
        return Result(201, {"id": "new-object"}, target_id="new-object")

    def directory_effect(
        self, tenant_id: str, requester_id: str, before: DirectorySnapshot
    ) -> guards.AccessChange | None:
        return self.effect

    def summary(
        self, caller: Caller, change: Change, plan: Plan, access_change: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {"title": f"{change.operation} {plan.target_name}"}

    # -- records
    def audit(
        self,
        row: t.ApprovalRequest,
        actor: Caller | None,
        activity: str,
        now: datetime,
        *,
        result: str = "success",
        after: dict[str, Any] | None = None,
    ) -> None:
        self.stored.audit.append((row.id, activity, result))

    def notify(
        self, row: t.ApprovalRequest, event: str, recipients: list[str], now: datetime
    ) -> None:
        self.stored.outbox.append((row.id, event, list(recipients)))

    @contextmanager
    def begin(self) -> Iterator[FakeUnitOfWork]:
        before = copy.deepcopy(self.stored)
        try:
            yield self
        except BaseException:
            self.stored = before
            raise
        self.commits += 1


def caller(directory: DirectorySnapshot, principal_id: str, tenant_id: str = "t1") -> Caller:
    return Caller(
        tenant_id,
        principal_id,
        USER,
        principal_id.title(),
        f"{principal_id}@example.com",
        directory.access_for(principal_id),
        directory,
    )


def plan_for(change: Change, versions: dict[str, int] | None = None) -> Plan:
    """What a handler would plan for a change to one mobile app."""
    target = change.target_id or "app-1"
    return Plan(
        "mobileApp",
        "Contoso app",
        "app",
        entity_keys=(f"mobileApps:{target}",),
        versions=versions if versions is not None else {target: 1},
        before={"displayName": "Contoso app", "roleScopeTagIds": ["0"]},
        after={"displayName": "Contoso app 2", "roleScopeTagIds": ["0"]},
    )
