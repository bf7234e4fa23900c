"""The skeleton every collection handler shares, written once.

A handler plans and applies the `Change`s of one Graph collection. What differs per collection
(its body, its permission checks, its columns) is in the hooks; the order of the rest is here:

- plan: a create is planned by `plan_create`; any other change loads the object (404 when it
  is not in the caller's tenant, or not visible to the caller), checks the version the client
  named in If-Match, and plans with the object's lock key, its version and its Graph JSON as
  "before"; `plan_existing` adds the operation's own checks and "after".
- apply: a change to a collection the directory snapshot caches moves the tenant's directory
  version first; the object must be at the version it was planned at; a create adds and
  flushes the new row, a delete removes it, anything else is `apply_existing`'s.

The per-type facts (entity type, audit category, policy type, whether a change can alter
access, whether the snapshot caches it) come from `domain/resource_types.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy.orm import Session

from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, NotFound
from countersign.domain.resource_types import ResourceType, lock_key
from countersign.services.changes import CREATE, DELETE, Change, Plan, Result, check_version
from countersign.store.db import bump_directory_version


@dataclass(frozen=True)
class Write:
    """One change being planned or applied: in which transaction, by whom, what, when."""

    session: Session
    caller: Caller
    change: Change
    now: datetime

    def new_object_columns(self) -> dict[str, Any]:
        """The columns a new object of the caller's tenant starts with."""
        return {
            "id": str(uuid.uuid4()),
            "tenant_id": self.caller.tenant_id,
            "created_date_time": self.now,
            "last_modified_date_time": self.now,
        }


class Owned(Protocol):
    """A named row of a tenant."""

    id: str
    tenant_id: str
    display_name: str


class Stamped(Protocol):
    version: int
    last_modified_date_time: datetime


# Bound to Owned in spirit: mypy (1.x) loses the protocol match of some ORM classes inside
# the services' import cycle, so the rows are read through `_owned`.
Row = TypeVar("Row")


def _owned(row: object) -> Owned:
    return cast(Owned, row)


def get_in_tenant(
    session: Session, model: type[Row], tenant_id: str, object_id: str, what: str
) -> Row:
    """The row with this id if it belongs to the tenant; NotFound ("{what} '{id}' ...") else."""
    row = session.get(model, object_id)
    if row is None or _owned(row).tenant_id != tenant_id:
        raise NotFound(f"{what} '{object_id}' does not exist.")
    return row


def touch(row: Stamped, now: datetime) -> None:
    """A changed object moves to its next version (what If-Match and planned versions compare)."""
    row.version += 1
    row.last_modified_date_time = now


class CollectionHandler(Generic[Row]):
    resource: ResourceType  # the collection's row of the table (a class attribute, usually)

    def __init__(self) -> None:
        self.collection = self.resource.collection
        self.entity_type = self.resource.entity_type
        self.category = self.resource.category
        self.changes_access = self.resource.changes_access
        self.policy_type = self.resource.policy_type

    # -- hooks ---------------------------------------------------------------------------------

    def get(self, session: Session, tenant_id: str, object_id: str, /) -> Row:
        """The object in the tenant, or NotFound."""
        raise NotImplementedError

    def load(self, session: Session, caller: Caller, object_id: str) -> Row:
        """The object as the caller may plan a change to it: NotFound when it is hidden."""
        return self.get(session, caller.tenant_id, object_id)

    def name_of(self, row: Row) -> str:
        return _owned(row).display_name

    def version_of(self, row: Row) -> int | None:
        """The version If-Match names; None for objects without one."""
        version = getattr(row, "version", None)
        return version if isinstance(version, int) else None

    def platform_of(self, row: Row) -> str:
        assert self.resource.platform is not None, "override platform_of"
        return self.resource.platform

    def to_json(self, row: Row, /) -> dict[str, Any]:
        """The object as Graph serves it."""
        raise NotImplementedError

    def plan_create(self, write: Write) -> Plan:
        raise NotImplementedError

    def plan_existing(self, write: Write, row: Row, plan: Plan) -> None:
        """Check the change against the object; set plan.after."""
        raise NotImplementedError

    def create(self, write: Write) -> Row:
        """The new row, not yet added to the session."""
        raise NotImplementedError

    def created(self, write: Write, row: Row) -> None:
        """What follows the new row's flush (scope tags, members...)."""

    def delete(self, write: Write, row: Row) -> None:
        write.session.delete(row)

    def apply_existing(self, write: Write, plan: Plan, row: Row) -> Result:
        raise NotImplementedError

    # -- the skeleton --------------------------------------------------------------------------

    def new_plan(self, name: str, after: dict[str, Any] | None, **extra: Any) -> Plan:
        """The plan of a create."""
        return Plan(self.entity_type, name, self.policy_type, after=after, **extra)

    def require_change_permission(self, caller: Caller) -> None:
        if self.resource.change_permission is not None:
            caller.require(self.resource.change_permission)

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        self.require_change_permission(caller)
        write = Write(session, caller, change, now)
        if change.operation == CREATE:
            return self.plan_create(write)
        row = self.load(session, caller, change.target_id or "")
        row_id, version = _owned(row).id, self.version_of(row)
        if version is not None:
            check_version(version, change.expected_version)
        plan = Plan(
            self.entity_type,
            self.name_of(row),
            self.policy_type,
            self.platform_of(row),
            entity_keys=(lock_key(self.collection, row_id),),
            versions={} if version is None else {row_id: version},
            before=self.to_json(row),
        )
        self.plan_existing(write, row, plan)
        return plan

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        write = Write(session, caller, change, now)
        if self.resource.directory_cached:
            # The snapshot (and the channel list) cached by this version must not outlive it.
            bump_directory_version(session, caller.tenant_id)
        if change.operation == CREATE:
            new = self.create(write)
            session.add(new)
            session.flush()
            self.created(write, new)
            return Result(201, self.to_json(new), _owned(new).id)
        row = self.get(session, caller.tenant_id, change.target_id or "")
        row_id, version = _owned(row).id, self.version_of(row)
        if plan.versions.get(row_id, version) != version:
            raise Conflict(f"'{self.name_of(row)}' has changed since the change was planned.")
        if change.operation == DELETE:
            self.delete(write, row)
            return Result(204, None, row_id)
        return self.apply_existing(write, plan, row)
