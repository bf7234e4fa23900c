"""/beta/deviceManagement/roleDefinitions, roleAssignments, roleScopeTags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.odata import columns
from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.services.handlers import rbac as r
from countersign.store import tables as t

router = APIRouter(prefix="/beta/deviceManagement", tags=["rbac"])

ROLE_DEFINITIONS = CollectionSpec(
    path="/roleDefinitions",
    collection="roleDefinitions",
    table=t.RoleDefinition,
    serialize=r.role_definition_json,
    read_permission=p.ROLES_READ,
    get_row=r.get_role_definition,
    scoped=True,
    fields=columns(t.RoleDefinition, "id", "displayName", "isBuiltIn", "lastModifiedDateTime"),
)
ROLE_ASSIGNMENTS = CollectionSpec(
    path="/roleAssignments",
    collection="roleAssignments",
    table=t.RoleAssignment,
    serialize=r.role_assignment_json,
    read_permission=p.ROLES_READ,
    get_row=r.get_role_assignment,
    fields=columns(t.RoleAssignment, "id", "displayName", "roleDefinitionId"),
)
ROLE_SCOPE_TAGS = CollectionSpec(
    path="/roleScopeTags",
    collection="roleScopeTags",
    table=t.RoleScopeTag,
    serialize=r.scope_tag_json,
    read_permission=p.ROLES_READ,
    get_row=r.get_scope_tag,
    fields=columns(t.RoleScopeTag, "id", "displayName", "isBuiltIn"),
    default_order=(),
)

for spec in (ROLE_DEFINITIONS, ROLE_ASSIGNMENTS, ROLE_SCOPE_TAGS):
    mount(router, spec)


@router.get("/roleAssignments/{assignment_id}/roleDefinition")
def assignment_role_definition(
    assignment_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    """The role an assignment grants (Graph's navigation property)."""
    with context(request).db.read() as session:
        assignment = ROLE_ASSIGNMENTS.load_visible(session, caller, assignment_id)
        body = r.role_definition_json(
            ROLE_DEFINITIONS.load_visible(session, caller, assignment.role_definition_id)
        )
    context_url = f"{base_url(request)}/beta/$metadata#deviceManagement/roleDefinitions/$entity"
    return {"@odata.context": context_url, **body}
