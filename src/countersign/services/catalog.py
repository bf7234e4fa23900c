"""Every collection's change handler, listed, and the entry points that find one by collection:
`plan_change`, `apply_change` (with its audit entry), `run_unprotected`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from countersign.clock import system_clock
from countersign.domain.actors import Caller
from countersign.domain.errors import NotFound
from countersign.services.changes import Change, Handler, Plan, Result, apply_planned
from countersign.services.handlers import (
    devices,
    directory,
    notification_channels,
    policies,
    rbac,
    resources,
    tenant_settings,
)

_ALL: tuple[Handler, ...] = (
    *(resources.ResourceHandler(kind) for kind in resources.KINDS.values()),
    devices.DEVICES,
    directory.Users(),
    directory.Groups(),
    directory.ServicePrincipals(),
    rbac.RoleDefinitions(),
    rbac.RoleAssignments(),
    rbac.RoleScopeTags(),
    policies.OperationApprovalPolicies(),
    tenant_settings.MultiAdminApprovalSettings(),
    notification_channels.NotificationChannels(),
)
HANDLERS: dict[str, Handler] = {handler.collection: handler for handler in _ALL}


def handler_for(collection: str) -> Handler:
    try:
        return HANDLERS[collection]
    except KeyError:
        raise NotFound(f"Unknown collection '{collection}'.") from None


def plan_change(session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
    return handler_for(change.collection).plan(session, caller, change, now)


def apply_change(
    session: Session,
    caller: Caller,
    change: Change,
    plan: Plan,
    now: datetime,
    approval_request_id: str | None = None,
) -> Result:
    """Apply a planned change and write its audit entry, in the caller's transaction."""
    handler = handler_for(change.collection)
    return apply_planned(handler, session, caller, change, plan, now, approval_request_id)


def run_unprotected(
    session: Session, caller: Caller, change: Change, now: datetime | None = None
) -> Result:
    """Plan and apply at once (no approval gate): for tenant bootstrap and for tests."""
    now = now or system_clock()
    return apply_change(session, caller, change, plan_change(session, caller, change, now), now)
