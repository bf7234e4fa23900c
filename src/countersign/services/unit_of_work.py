"""The unit of work the approval use cases run in: one transaction's requests (loaded for update,
saved by compare-and-set), decisions, object locks, the directory snapshot, the change's plan
and apply, the audit chain and the outbox.

`UnitOfWork` is what a use case asks for; `SqlUnitOfWork` answers it on one SQLAlchemy session
(tests/unit/fakes.py answers it with dicts and lists). `transaction(store, work)` runs `work`
in one: committed when it returns, rolled back when it raises -- except a `CommitThenRaise`,
whose writes (a refusal's audit entry, an expiry) persist before its error is raised.

Every status move is a compare-and-set (`UPDATE ... WHERE status = :expected`): the request row
is locked as well (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers), but
the conditional UPDATE is what makes two racing transitions -- two approvers, approve against
cancel, complete against the sweeper -- leave exactly one winner; the loser gets 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from countersign.auth.tokens import TokenClaims
from countersign.domain import eligibility, guards, policy_rules
from countersign.domain import request as lifecycle
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from countersign.domain.rbac import DirectorySnapshot
from countersign.notify import outbox
from countersign.services import audit
from countersign.services.catalog import apply_change, plan_change
from countersign.services.changes import Change, Plan, Result
from countersign.services.identity import caller_as_of, resolve_caller, snapshot_as_of
from countersign.services.request_json import request_json
from countersign.services.summary import build_summary
from countersign.store import tables as t
from countersign.store.db import Database, load_snapshot, locked_directory_version

LOCKED_MESSAGE = "An active Approval Request already exists for this entity."

T = TypeVar("T")


class UnitOfWork(Protocol):
    """One transaction of the approval engine, as the use cases see it."""

    # -- requests and decisions
    def get_request(
        self, tenant_id: str, request_id: str, *, for_update: bool = False
    ) -> t.ApprovalRequest: ...
    def add_request(self, row: t.ApprovalRequest) -> None: ...
    def move(
        self, row: t.ApprovalRequest, expected: str, target: str, now: datetime, **values: Any
    ) -> None: ...
    def touch(self, row: t.ApprovalRequest, now: datetime, **values: Any) -> None: ...
    def decisions(self, request_id: str) -> list[policy_rules.Decision]: ...
    def record_decision(self, decision: t.ApprovalDecision) -> None: ...

    # -- object locks (rule 3)
    def lock_holders(
        self, tenant_id: str, keys: Iterable[str], *, for_update: bool = False
    ) -> list[t.ApprovalRequest]: ...
    def lock(self, tenant_id: str, key: str, request_id: str) -> None: ...

    # -- tenant and directory
    def snapshot(self, tenant_id: str) -> DirectorySnapshot: ...
    def request_lifetime_days(self, tenant_id: str) -> int: ...
    def freeze_windows(self, tenant_id: str) -> list[policy_rules.FreezeWindow]: ...
    def caller_as_of(self, caller: Caller) -> Caller: ...
    def requester_of(self, row: t.ApprovalRequest) -> Caller: ...

    # -- the frozen change
    def lock_chain(self, tenant_id: str) -> None: ...
    def plan(self, caller: Caller, change: Change, now: datetime) -> Plan: ...
    def apply(
        self, caller: Caller, change: Change, plan: Plan, now: datetime, request_id: str
    ) -> Result: ...
    def directory_effect(
        self, tenant_id: str, requester_id: str, before: DirectorySnapshot
    ) -> guards.AccessChange | None: ...
    def summary(
        self, caller: Caller, change: Change, plan: Plan, access_change: dict[str, Any] | None
    ) -> dict[str, Any]: ...

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
    ) -> None: ...
    def notify(
        self, row: t.ApprovalRequest, event: str, recipients: list[str], now: datetime
    ) -> None: ...

    # -- the transaction: commit on return, roll back on an exception
    def begin(self) -> AbstractContextManager[UnitOfWork]: ...


class CommitThenRaise(Exception):
    """Raised inside a transaction whose writes (an audit entry, an expiry) must persist."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


# Where a use case runs: the database, or a unit of work standing in for it (tests/unit/fakes.py).
Store = Database | UnitOfWork


def transaction(store: Store, work: Callable[[UnitOfWork], T]) -> T:
    """Run `work` in one transaction of `store` (a database, or a unit of work such as a fake)."""
    if isinstance(store, Database):
        return sql_transaction(store, work)
    return _run(store.begin(), work)


def sql_transaction(db: Database, work: Callable[[SqlUnitOfWork], T]) -> T:
    """`transaction` on the database, handing `work` the session-bound unit of work."""
    return _run(_sql(db), work)


@contextmanager
def _sql(db: Database) -> Iterator[SqlUnitOfWork]:
    with db.write() as session:
        yield SqlUnitOfWork(db, session)


U = TypeVar("U")


def _run(begun: AbstractContextManager[U], work: Callable[[U], T]) -> T:
    failure: DomainError | None = None
    with begun as uow:
        try:
            return work(uow)
        except CommitThenRaise as deferred:
            failure = deferred.error
    assert failure is not None
    raise failure


def get_request(
    session: Session, tenant_id: str, request_id: str, *, for_update: bool = False
) -> t.ApprovalRequest:
    query = select(t.ApprovalRequest).where(
        t.ApprovalRequest.id == request_id, t.ApprovalRequest.tenant_id == tenant_id
    )
    if for_update:
        # Locked, and read fresh under the lock even if the session already holds the row.
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Approval request '{request_id}' does not exist.")
    return row


def add_request(session: Session, row: t.ApprovalRequest) -> None:
    """Store a new request with the indexed form of its frozen approvers (the "waiting for me"
    query reads that, services/queries.py): each stage's groups (EVERY_HOLDER when none), the
    principals it excludes, each object's scope tags, and the read permission."""
    approvers = eligibility.Approvers.from_json(row.payload["approvers"])
    row.approver_read_permission = approvers.read_permission or None
    session.add(row)
    session.flush()
    stages = policy_rules.stages_from(row.stages, approvers.group_ids, row.approvals_required)
    groups = [
        {"request_id": row.id, "stage": i, "group_id": group}
        for i, stage in enumerate(stages)
        for group in dict.fromkeys(stage.approver_group_ids or (eligibility.EVERY_HOLDER,))
    ]
    tag_sets = eligibility.indexed_tag_sets(approvers)
    index: list[tuple[type[t.Base], list[dict[str, Any]]]] = [
        (t.RequestApproverGroup, groups),
        (
            t.RequestExcludedApprover,
            [{"request_id": row.id, "principal_id": x} for x in set(approvers.excluded_ids)],
        ),
        (
            t.RequestObjectTag,
            [
                {"request_id": row.id, "object_index": i, "tag_id": tag}
                for i, tags in enumerate(tag_sets)
                for tag in set(tags)
            ],
        ),
    ]
    for table, rows in index:
        if rows:  # Core statements: the ORM's flush costs more than the rows
            session.execute(insert(table), rows)


def directory_effect(
    session: Session, tenant_id: str, requester_id: str, before: DirectorySnapshot
) -> guards.AccessChange | None:
    """The effect of the change just applied in this transaction on who can do what, or None
    when it left the directory as it was (its version did not move). Refuses a change that
    would lock the tenant out of its approvals."""
    session.flush()
    # Read under the tenant's lock earlier in this transaction, unless a change since bumped it.
    version = locked_directory_version(session, tenant_id)
    if version is None:
        version = session.scalar(select(t.Tenant.directory_version).where(t.Tenant.id == tenant_id))
    if version == before.version:
        return None
    after = load_snapshot(session, tenant_id, version=-1)
    locked_out = guards.lockout(after, requester_id)
    if locked_out is not None:
        raise ValidationFailed(locked_out, reason="approverLockout")
    return guards.access_change(before, after)


_DECISIONS = t.ApprovalDecision.__table__


def _record_decision(insert: Any) -> Any:
    statement = insert(_DECISIONS)
    key = [column.name for column in _DECISIONS.primary_key]
    return statement.on_conflict_do_update(
        index_elements=key,
        set_={c.name: statement.excluded[c.name] for c in _DECISIONS.columns if not c.primary_key},
    )


# Built once per dialect (their compiled forms are cached).
_RECORD_DECISION = {
    "sqlite": _record_decision(sqlite_insert),
    "postgresql": _record_decision(postgresql_insert),
}


class SqlUnitOfWork:
    """`UnitOfWork` on one open SQLAlchemy session (the transaction is the session's)."""

    def __init__(self, db: Database, session: Session):
        self.db = db
        self.session = session

    def get_request(
        self, tenant_id: str, request_id: str, *, for_update: bool = False
    ) -> t.ApprovalRequest:
        return get_request(self.session, tenant_id, request_id, for_update=for_update)

    def add_request(self, row: t.ApprovalRequest) -> None:
        add_request(self.session, row)

    def move(
        self, row: t.ApprovalRequest, expected: str, target: str, now: datetime, **values: Any
    ) -> None:
        """Compare-and-set on the status: the UPDATE matches only while the status is still
        `expected`, so of two racing transitions exactly one changes the row."""
        moved = cast(
            CursorResult[Any],
            self.session.execute(
                update(t.ApprovalRequest)
                .where(t.ApprovalRequest.id == row.id, t.ApprovalRequest.status == expected)
                .values(status=target, last_modified_date_time=now, **values)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        if moved != 1:
            raise Conflict(f"The request changed meanwhile; it is no longer {expected}.")
        if target not in lifecycle.ACTIVE:
            self.session.execute(delete(t.RequestLock).where(t.RequestLock.request_id == row.id))
        _mirror(row, status=target, last_modified_date_time=now, **values)

    def touch(self, row: t.ApprovalRequest, now: datetime, **values: Any) -> None:
        """Write fields other than the status (the request row is locked by the caller)."""
        self.session.execute(
            update(t.ApprovalRequest)
            .where(t.ApprovalRequest.id == row.id)
            .values(last_modified_date_time=now, **values)
            .execution_options(synchronize_session=False)
        )
        _mirror(row, last_modified_date_time=now, **values)

    def decisions(self, request_id: str) -> list[policy_rules.Decision]:
        d = t.ApprovalDecision
        rows = self.session.execute(
            select(d.approver_id, d.decision, d.stage).where(d.request_id == request_id)
        ).all()
        return [policy_rules.Decision(*row) for row in rows]

    def record_decision(self, decision: t.ApprovalDecision) -> None:
        # The request row is locked by the transition, so no other decision on it is written
        # between its read and this one; the primary key (request, approver) holds one each.
        # One statement (the ORM's merge read the row first): insert, or replace the
        # approver's earlier decision (a reject after an approve).
        dialect = "sqlite" if self.db.is_sqlite else "postgresql"
        values = {
            column.key: value
            for column in _DECISIONS.columns
            if (value := getattr(decision, column.key)) is not None  # else the column's default
        }
        self.session.execute(_RECORD_DECISION[dialect], values)

    def lock_holders(
        self, tenant_id: str, keys: Iterable[str], *, for_update: bool = False
    ) -> list[t.ApprovalRequest]:
        query = (
            select(t.ApprovalRequest)
            .join(t.RequestLock, t.RequestLock.request_id == t.ApprovalRequest.id)
            .where(t.RequestLock.tenant_id == tenant_id, t.RequestLock.entity_key.in_(list(keys)))
        )
        if for_update:
            query = query.with_for_update()
        return list(self.session.scalars(query).all())

    def lock(self, tenant_id: str, key: str, request_id: str) -> None:
        try:
            with self.session.begin_nested():
                self.session.add(
                    t.RequestLock(tenant_id=tenant_id, entity_key=key, request_id=request_id)
                )
        except IntegrityError:
            # Another transaction locked the entity between our read and our insert.
            raise Conflict(LOCKED_MESSAGE, reason="lockedConcurrently") from None

    def snapshot(self, tenant_id: str) -> DirectorySnapshot:
        return snapshot_as_of(self.session, self.db, tenant_id)

    def request_lifetime_days(self, tenant_id: str) -> int:
        days = self.session.scalar(
            select(t.Tenant.request_lifetime_days).where(t.Tenant.id == tenant_id)
        )
        assert days is not None
        return days

    def freeze_windows(self, tenant_id: str) -> list[policy_rules.FreezeWindow]:
        windows = self.session.scalar(
            select(t.Tenant.freeze_windows).where(t.Tenant.id == tenant_id)
        )
        return policy_rules.freeze_windows_of(windows or [])

    def caller_as_of(self, caller: Caller) -> Caller:
        return caller_as_of(self.session, self.db, caller)

    def requester_of(self, row: t.ApprovalRequest) -> Caller:
        claims = TokenClaims(row.tenant_id, row.requestor_id, row.requestor_type)
        return resolve_caller(self.session, self.db, claims)

    def lock_chain(self, tenant_id: str) -> None:
        audit.lock_chain(self.session, tenant_id)

    def plan(self, caller: Caller, change: Change, now: datetime) -> Plan:
        return plan_change(self.session, caller, change, now)

    def apply(
        self, caller: Caller, change: Change, plan: Plan, now: datetime, request_id: str
    ) -> Result:
        return apply_change(self.session, caller, change, plan, now, approval_request_id=request_id)

    def directory_effect(
        self, tenant_id: str, requester_id: str, before: DirectorySnapshot
    ) -> guards.AccessChange | None:
        return directory_effect(self.session, tenant_id, requester_id, before)

    def summary(
        self, caller: Caller, change: Change, plan: Plan, access_change: dict[str, Any] | None
    ) -> dict[str, Any]:
        return build_summary(self.session, caller, change, plan, access_change)

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
        audit.record(
            self.session,
            tenant_id=row.tenant_id,
            actor=actor,
            actor_name=None if actor else "countersign",
            activity=f"{activity} operationApprovalRequest",
            activity_type=activity,
            category="MultiAdminApproval",
            target_type=row.payload_type,
            target_id=row.payload_id,
            target_name=row.payload_name,
            approval_request_id=row.id,
            result=result,
            after=after or {"status": row.status},
            now=now,
        )

    def notify(
        self, row: t.ApprovalRequest, event: str, recipients: list[str], now: datetime
    ) -> None:
        outbox.enqueue(
            self.session,
            tenant_id=row.tenant_id,
            event=event,
            request=request_json(row, now),
            recipient_ids=recipients,
            now=now,
        )

    @contextmanager
    def begin(self) -> Iterator[SqlUnitOfWork]:
        """Already in the session's transaction: the outer `db.write()` commits it."""
        yield self


def _mirror(row: t.ApprovalRequest, **values: Any) -> None:
    """Show on the loaded row what an UPDATE just wrote, without marking it dirty."""
    for name, value in values.items():
        set_committed_value(row, name, value)
