"""Every write is a `Change`: a value that can be validated now, stored, and applied later.

Each Graph collection has a `Handler` that plans a change (validates it in full, checks the
caller's permission and scope-tag reach, computes before/after) and applies it. The API, the
admin center, the CLI and the approval engine all go through `plan_change` / `apply_change`
(services/catalog.py, which lists every handler).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from countersign.domain.actors import Caller
from countersign.domain.errors import PreconditionFailed, ValidationFailed
from countersign.services import audit

CREATE, UPDATE, DELETE, ASSIGN, ACTION = "Create", "Update", "Delete", "Assign", "Action"


@dataclass(frozen=True)
class Change:
    collection: str
    operation: str
    target_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    action_name: str | None = None
    target_ids: tuple[str, ...] = ()
    expected_version: int | None = None

    def canonical(self) -> dict[str, Any]:
        """The frozen form stored with an approval request."""
        return {
            "collection": self.collection,
            "operation": self.operation,
            "targetId": self.target_id,
            "body": self.body,
            "actionName": self.action_name,
            "targetIds": list(self.target_ids),
            "expectedVersion": self.expected_version,
        }

    @classmethod
    def from_canonical(cls, data: dict[str, Any]) -> Change:
        return cls(
            collection=data["collection"],
            operation=data["operation"],
            target_id=data.get("targetId"),
            body=data.get("body") or {},
            action_name=data.get("actionName"),
            target_ids=tuple(data.get("targetIds") or ()),
            expected_version=data.get("expectedVersion"),
        )


@dataclass
class Plan:
    """What a change will do, computed before it is applied."""

    entity_type: str  # Graph base type name, e.g. "mobileApp"
    target_name: str
    policy_type: str | None  # the operationApprovalPolicyType that may protect it
    platform: str = "notApplicable"
    # Entities the change locks while a request for it is active ("collection:id").
    entity_keys: tuple[str, ...] = ()
    # Object ids and the versions they had when planned: completion refuses if any moved.
    versions: dict[str, int] = field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class Result:
    status: int
    body: dict[str, Any] | None = None
    target_id: str | None = None
    # What the audit entry records as "after" when it must differ from the response body
    # (a new secret is returned once and never written anywhere).
    audit_after: dict[str, Any] | None = None


class Handler(Protocol):
    """What the engine asks of a collection's handler. The facts (entity type, category,
    changes_access...) are the collection's row in domain/resource_types.py; the skeleton of
    plan and apply is services/handlers/base.py."""

    collection: str
    entity_type: str
    category: str
    changes_access: bool

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan: ...

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result: ...


def apply_planned(
    handler: Handler,
    session: Session,
    caller: Caller,
    change: Change,
    plan: Plan,
    now: datetime,
    approval_request_id: str | None = None,
) -> Result:
    """Apply a planned change with its handler and write its audit entry, in the caller's
    transaction (services/catalog.py finds the handler of a collection: apply_change)."""
    result = handler.apply(session, caller, change, plan, now)
    activity = change.action_name or change.operation
    audit.record(
        session,
        tenant_id=caller.tenant_id,
        actor=caller,
        activity=f"{activity} {plan.entity_type}",
        activity_type=f"{activity} {plan.entity_type}",
        category=handler.category,
        target_type=plan.entity_type,
        target_id=result.target_id or change.target_id,
        target_name=plan.target_name,
        before=plan.before,
        after=None
        if change.operation == DELETE
        else (result.audit_after if result.audit_after is not None else result.body),
        approval_request_id=approval_request_id,
        now=now,
    )
    return result


# -- helpers for handlers ------------------------------------------------------------------


class GraphBody(BaseModel):
    """Base for request bodies: camelCase names, unknown properties refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: dict[str, Any], *, partial: bool = False) -> M:
    """Validate a body against `model`; errors name the property, in Graph's words."""
    body = {
        k: v for k, v in body.items() if k != "@odata.type" or "odata_type" in model.model_fields
    }
    try:
        if partial:
            fields = model.model_fields
            aliases = {f.alias or name for name, f in fields.items()}
            unknown = sorted(set(body) - aliases - set(fields))
            if unknown:
                raise ValidationFailed(
                    f"Property '{unknown[0]}' does not exist on this type.", target=unknown[0]
                )
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            message = f"Property '{name}' does not exist on this type."
        elif first["type"] == "missing":
            message = f"Property '{name}' is required."
        else:
            message = f"Property '{name}': {first['msg']}."
        raise ValidationFailed(message, target=name) from None


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"The object has changed (version {current}, If-Match named {expected})."
        )


def etag(version: int) -> str:
    return f'W/"{version}"'


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
