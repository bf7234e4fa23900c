"""/beta/deviceManagement/roleDefinitions, roleAssignments, roleScopeTags."""

from __future__ import annotations

from fastapi import APIRouter

from countersign.api.collections import CollectionSpec, mount
from countersign.api.odata import Field
from countersign.domain import permissions as p
from countersign.services import rbac as r
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
    fields={
        "id": Field(t.RoleDefinition.id),
        "displayName": Field(t.RoleDefinition.display_name),
        "isBuiltIn": Field(t.RoleDefinition.is_built_in),
        "lastModifiedDateTime": Field(t.RoleDefinition.last_modified_date_time),
    },
)
ROLE_ASSIGNMENTS = CollectionSpec(
    path="/roleAssignments",
    collection="roleAssignments",
    table=t.RoleAssignment,
    serialize=r.role_assignment_json,
    read_permission=p.ROLES_READ,
    get_row=r.get_role_assignment,
    fields={
        "id": Field(t.RoleAssignment.id),
        "displayName": Field(t.RoleAssignment.display_name),
        "roleDefinitionId": Field(t.RoleAssignment.role_definition_id),
    },
)
ROLE_SCOPE_TAGS = CollectionSpec(
    path="/roleScopeTags",
    collection="roleScopeTags",
    table=t.RoleScopeTag,
    serialize=r.scope_tag_json,
    read_permission=p.ROLES_READ,
    get_row=r.get_scope_tag,
    fields={
        "id": Field(t.RoleScopeTag.id),
        "displayName": Field(t.RoleScopeTag.display_name),
        "isBuiltIn": Field(t.RoleScopeTag.is_built_in),
    },
    default_order=(),
)

for spec in (ROLE_DEFINITIONS, ROLE_ASSIGNMENTS, ROLE_SCOPE_TAGS):
    mount(router, spec)
