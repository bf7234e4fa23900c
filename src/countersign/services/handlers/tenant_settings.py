"""The tenant's multi admin approval settings, one object per tenant (a Countersign extension):
`/beta/deviceManagement/multiAdminApprovalSettings`.

- `requestLifetimeInDays` (1-90, 30 for a new tenant): how long a request waits for approval
  when no access policy protecting it sets its own lifetime.
- `reminderHoursBeforeExpiry` (1-2160, or null for the server's default,
  `COUNTERSIGN_REMINDER_HOURS_BEFORE_EXPIRY`): when the eligible approvers of a request still
  waiting get their one reminder (services/remind_requests.py).
- `changeFreezeWindows` ([{startDateTime, endDateTime, reason}], at most 50): while one is
  open no protected request can be completed (approving still works); completion answers 409
  naming the window (domain/policy_rules.py: freeze_at).

Reading needs `Microsoft.Intune_Organization_Read`; changing needs the approval permission
(`Microsoft.Intune_MultiAdminApproval_ApprovalForMultiAdminApproval`), is audited, and is a
`tenantConfiguration` change: an access policy of that type puts it behind approval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, model_validator
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain import policy_rules as rules
from countersign.domain.actors import Caller
from countersign.domain.errors import NotFound, ValidationFailed
from countersign.domain.resource_types import RESOURCE_TYPES, lock_key
from countersign.services.changes import (
    UPDATE,
    Change,
    GraphBody,
    Plan,
    Result,
    check_version,
    etag,
    iso,
    parse_body,
)
from countersign.services.handlers.base import CollectionHandler
from countersign.services.handlers.policies import MAX_LIFETIME_DAYS
from countersign.store import tables as t

COLLECTION = "multiAdminApprovalSettings"
ODATA_TYPE = "#microsoft.graph.countersignMultiAdminApprovalSettings"
MAX_REMINDER_HOURS = MAX_LIFETIME_DAYS * 24


class FreezeWindowBody(GraphBody):
    start_date_time: AwareDatetime
    end_date_time: AwareDatetime
    reason: str = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindowBody:
        if self.end_date_time <= self.start_date_time:
            raise ValueError("endDateTime must be after startDateTime")
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "startDateTime": iso(self.start_date_time),
            "endDateTime": iso(self.end_date_time),
            "reason": self.reason,
        }


class SettingsUpdate(GraphBody):
    # strict: JSON integers only (no true, "24" or 24.5).
    request_lifetime_in_days: int = Field(30, ge=1, le=MAX_LIFETIME_DAYS, strict=True)
    reminder_hours_before_expiry: int | None = Field(None, ge=1, le=MAX_REMINDER_HOURS, strict=True)
    change_freeze_windows: list[FreezeWindowBody] = Field([], max_length=rules.MAX_FREEZE_WINDOWS)


def _tenant(session: Session, tenant_id: str) -> t.Tenant:
    tenant = session.get(t.Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"Tenant '{tenant_id}' does not exist.")
    return tenant


def settings_json(tenant: t.Tenant) -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPE,
        "@odata.etag": etag(tenant.settings_version),
        "id": tenant.id,
        "requestLifetimeInDays": tenant.request_lifetime_days,
        "reminderHoursBeforeExpiry": tenant.reminder_hours_before_expiry,
        "changeFreezeWindows": list(tenant.freeze_windows or ()),
        "version": tenant.settings_version,
    }


def get_settings(session: Session, caller: Caller) -> dict[str, Any]:
    caller.require(p.ORGANIZATION_READ)
    return settings_json(_tenant(session, caller.tenant_id))


class MultiAdminApprovalSettings(CollectionHandler[t.Tenant]):
    """One object per tenant, versioned by `settings_version`: its own plan and apply."""

    resource = RESOURCE_TYPES[COLLECTION]

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        self.require_change_permission(caller)
        if change.operation != UPDATE:
            raise ValidationFailed("The settings can only be updated (PATCH).")
        tenant = _tenant(session, caller.tenant_id)
        check_version(tenant.settings_version, change.expected_version)
        update = self._update(change.body)
        before = settings_json(tenant)
        return Plan(
            self.entity_type,
            "Multi admin approval settings",
            self.policy_type,
            # One active request at a time may change them.
            entity_keys=(lock_key(COLLECTION, tenant.id),),
            versions={tenant.id: tenant.settings_version},
            before=before,
            after={**before, **_graph(update)},
        )

    def _update(self, body: dict[str, Any]) -> SettingsUpdate:
        update = parse_body(SettingsUpdate, body, partial=True)
        if not update.model_fields_set:
            raise ValidationFailed(
                "Name at least one of 'requestLifetimeInDays', 'reminderHoursBeforeExpiry' and "
                "'changeFreezeWindows'."
            )
        return update

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        tenant = _tenant(session, caller.tenant_id)
        update = self._update(change.body)
        if "request_lifetime_in_days" in update.model_fields_set:
            tenant.request_lifetime_days = update.request_lifetime_in_days
        if "reminder_hours_before_expiry" in update.model_fields_set:
            tenant.reminder_hours_before_expiry = update.reminder_hours_before_expiry
        if "change_freeze_windows" in update.model_fields_set:
            tenant.freeze_windows = _graph(update)["changeFreezeWindows"]
        tenant.settings_version += 1
        return Result(204, settings_json(tenant), tenant.id)


def _graph(update: SettingsUpdate) -> dict[str, Any]:
    """The properties an update sets, as Graph JSON (freeze windows in ISO 8601, UTC)."""
    values = update.model_dump(by_alias=True, exclude_unset=True)
    if "change_freeze_windows" in update.model_fields_set:
        values["changeFreezeWindows"] = [w.to_json() for w in update.change_freeze_windows]
    return values
