"""/beta/deviceManagement/auditEvents: the audit log in Graph's auditEvent shape (read only)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from countersign.api.collections import CollectionSpec, mount
from countersign.api.odata import Field, columns
from countersign.domain import permissions as p
from countersign.domain.errors import NotFound
from countersign.services.audit import event_json
from countersign.store import tables as t

router = APIRouter(prefix="/beta/deviceManagement", tags=["audit"])


def get_event(session: Session, tenant_id: str, event_id: str) -> t.AuditEvent:
    row = session.get(t.AuditEvent, event_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"Audit event '{event_id}' does not exist.")
    return row


AUDIT_EVENTS = CollectionSpec(
    path="/auditEvents",
    collection="auditEvents",
    table=t.AuditEvent,
    serialize=event_json,
    read_permission=p.AUDIT_READ,
    get_row=get_event,
    operations=set(),
    fields={
        **columns(
            t.AuditEvent,
            "id",
            "activityDateTime",
            "activity",
            "activityType",
            "category",
            "correlationId",
            "approvalRequestId",
            "sequence",
        ),
        "displayName": Field(t.AuditEvent.activity),
        "activityResult": Field(t.AuditEvent.result),
        "componentName": Field(t.AuditEvent.category),
        "actor/userId": Field(t.AuditEvent.actor_id),
        "actor/applicationId": Field(t.AuditEvent.actor_id),
        "actor/userPrincipalName": Field(t.AuditEvent.actor_name),
        "actor/applicationDisplayName": Field(t.AuditEvent.actor_name),
        "resources/resourceId": Field(t.AuditEvent.target_id, sortable=False),
    },
    default_order=(("sequence", True),),
)
mount(router, AUDIT_EVENTS)
