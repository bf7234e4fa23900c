"""Intune RBAC objects: role definitions, role assignments and scope tags (policy type `role`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    NotImplementedByCountersign,
    ValidationFailed,
)
from countersign.domain.rbac import DEFAULT_SCOPE_TAG
from countersign.domain.resource_types import RESOURCE_TYPES, lock_key
from countersign.graph import schema
from countersign.services.changes import (
    DELETE,
    UPDATE,
    GraphBody,
    Plan,
    Result,
    etag,
    iso,
    parse_body,
)
from countersign.services.handlers.base import CollectionHandler, Write, get_in_tenant, touch
from countersign.store import tables as t
from countersign.store.db import lock_tenant
from countersign.store.scope import set_scope_tags

ROLE_DEFINITION = "deviceAndAppManagementRoleDefinition"
ROLE_ASSIGNMENT = "deviceAndAppManagementRoleAssignment"
SCOPE_TAG = "roleScopeTag"


def role_definition_json(role: t.RoleDefinition) -> dict[str, Any]:
    actions = [
        {"allowedResourceActions": sorted(role.permissions), "notAllowedResourceActions": []}
    ]
    values = {
        **role.properties,
        "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
        "@odata.etag": etag(role.version),
        "id": role.id,
        "displayName": role.display_name,
        "description": role.description,
        "isBuiltIn": role.is_built_in,
        "isBuiltInRoleDefinition": role.is_built_in,
        "roleScopeTagIds": role.role_scope_tag_ids,
        "rolePermissions": [{"resourceActions": actions}],
        "permissions": [{"actions": sorted(role.permissions), "resourceActions": actions}],
        "createdDateTime": iso(role.created_date_time),
        "lastModifiedDateTime": iso(role.last_modified_date_time),
        "version": role.version,
    }
    return schema.serve(ROLE_DEFINITION, values, include_unknown=True)


def scope_type_of(all_scope_tags: bool) -> str:
    """Graph's scopeType as Countersign serves it: the first administrator's assignment spans
    everything; any other is limited (by scope tags: Countersign has no group scopes)."""
    return "allDevicesAndLicensedUsers" if all_scope_tags else "resourceScope"


def role_assignment_json(assignment: t.RoleAssignment) -> dict[str, Any]:
    values = {
        **assignment.properties,
        "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleAssignment",
        "@odata.etag": etag(assignment.version),
        "id": assignment.id,
        "displayName": assignment.display_name,
        "description": assignment.description,
        "members": assignment.members,
        "scopeMembers": [],
        "scopeType": scope_type_of(assignment.all_scope_tags),
        "resourceScopes": [],
        "roleScopeTagIds": assignment.role_scope_tag_ids,
        "roleDefinitionId": assignment.role_definition_id,
        "allScopeTags": assignment.all_scope_tags,
        "createdDateTime": iso(assignment.created_date_time),
        "lastModifiedDateTime": iso(assignment.last_modified_date_time),
        "version": assignment.version,
    }
    return schema.serve(ROLE_ASSIGNMENT, values, include_unknown=True)


def scope_tag_json(tag: t.RoleScopeTag) -> dict[str, Any]:
    values = {
        **tag.properties,
        "@odata.type": "#microsoft.graph.roleScopeTag",
        "@odata.etag": etag(tag.version),
        "id": tag.id,
        "displayName": tag.display_name,
        "description": tag.description,
        "isBuiltIn": tag.is_built_in,
    }
    return schema.serve(SCOPE_TAG, values, include_unknown=True)


def get_role_definition(session: Session, tenant_id: str, role_id: str) -> t.RoleDefinition:
    return get_in_tenant(session, t.RoleDefinition, tenant_id, role_id, "Role definition")


def get_visible_role_definition(session: Session, caller: Caller, role_id: str) -> t.RoleDefinition:
    """The role, if the caller may read it over its scope tags; hidden ones are not found."""
    role = get_role_definition(session, caller.tenant_id, role_id)
    if not caller.can(p.ROLES_READ, role.role_scope_tag_ids):
        raise NotFound(f"Role definition '{role_id}' does not exist.")
    return role


def require_over_each_tag(caller: Caller, permission: str, tag_ids: list[str]) -> None:
    """Tagging an object (or an assignment) with a tag needs `permission` over that very tag:
    a scoped administrator cannot hand out reach it does not hold."""
    caller.require(permission)
    for tag_id in tag_ids:
        caller.require(permission, [tag_id])


def require_assignment_reach(caller: Caller, all_scope_tags: bool, tag_ids: Iterable[str]) -> None:
    """Changing who holds an assignment needs Roles_Assign over every tag it reaches, and one
    that spans all tags needs Roles_Assign through an all-scope-tags assignment: a scoped
    administrator cannot widen its own reach."""
    if not all_scope_tags:
        require_over_each_tag(caller, p.ROLES_ASSIGN, sorted(tag_ids))
        return
    caller.require(p.ROLES_ASSIGN)
    if not any(a.all_scope_tags for a in caller.access.assignments_granting(p.ROLES_ASSIGN)):
        raise Forbidden(
            "Only an administrator whose role assignment spans every scope tag can change who "
            "holds an assignment that spans every scope tag.",
            reason="scopeTagNotReached",
        )


def require_reach_over_holders(caller: Caller, principal_ids: Iterable[str]) -> None:
    """Changing a group's members, or a principal's credentials, sign-in or existence, changes
    who holds the role assignments on it and on every group around it: the caller must reach
    each of those assignments (see `require_assignment_reach`)."""
    snapshot = caller.snapshot
    affected = set(principal_ids)
    affected |= {group for principal in set(affected) for group in snapshot.groups_of(principal)}
    for assignment in snapshot.assignments:
        if assignment.member_group_ids & affected:
            require_assignment_reach(caller, assignment.all_scope_tags, assignment.scope_tag_ids)


def get_role_assignment(session: Session, tenant_id: str, assignment_id: str) -> t.RoleAssignment:
    return get_in_tenant(session, t.RoleAssignment, tenant_id, assignment_id, "Role assignment")


def get_scope_tag(session: Session, tenant_id: str, tag_id: str) -> t.RoleScopeTag:
    tag = session.get(t.RoleScopeTag, (tenant_id, tag_id))
    if tag is None:
        raise NotFound(f"Scope tag '{tag_id}' does not exist.")
    return tag


def check_scope_tags(
    session: Session, tenant_id: str, tag_ids: list[str], target: str = "roleScopeTagIds"
) -> None:
    """422 naming the first tag the tenant lacks. The Default tag is in every tenant and cannot
    be changed or deleted (services/tenants.py, RoleScopeTags.plan_existing): no read for it."""
    others = [tag_id for tag_id in tag_ids if tag_id != DEFAULT_SCOPE_TAG]
    if not others:
        return
    known = set(
        session.scalars(
            select(t.RoleScopeTag.id).where(
                t.RoleScopeTag.tenant_id == tenant_id, t.RoleScopeTag.id.in_(others)
            )
        )
    )
    for tag_id in others:
        if tag_id not in known:
            raise ValidationFailed(f"Scope tag '{tag_id}' does not exist.", target=target)


# -- role definitions ----------------------------------------------------------------------


class ResourceAction(GraphBody):
    allowed_resource_actions: list[str] = Field(default_factory=list)
    not_allowed_resource_actions: list[str] = Field(default_factory=list, max_length=0)


class RolePermission(GraphBody):
    resource_actions: list[ResourceAction] = Field(default_factory=list)


# The properties of each RBAC type Countersign keeps in its own columns, with its own rules
# (permissions that exist, tags the caller reaches, built-in roles only its own); any other
# property of the Graph type is kept as given. `id` is the server's (the models refuse one).
ROLE_DEFINITION_COLUMNS = frozenset(
    {
        "id",
        "@odata.type",
        "displayName",
        "description",
        "rolePermissions",
        "permissions",
        "roleScopeTagIds",
        "isBuiltIn",
        "isBuiltInRoleDefinition",
    }
)
ROLE_ASSIGNMENT_COLUMNS = frozenset(
    {
        "id",
        "@odata.type",
        "displayName",
        "description",
        "members",
        "roleScopeTagIds",
        "roleDefinition@odata.bind",
        "roleDefinitionId",
    }
)
SCOPE_TAG_COLUMNS = frozenset({"id", "@odata.type", "displayName", "description"})
# Graph's group scope of an assignment: the groups whose users and devices its holders manage.
GROUP_SCOPE = ("scopeMembers", "resourceScopes", "scopeType")

M = TypeVar("M", bound=GraphBody)


def columns_and_kept(
    type_name: str, columns: frozenset[str], model: type[M], body: dict[str, Any], partial: bool
) -> tuple[M, dict[str, Any]]:
    """A directory or RBAC write body: its columns through `model` (Countersign's own rules),
    and the properties it keeps as given, checked against Graph's type (unknown ones a 400
    naming them, read-only ones ignored)."""
    own, kept = schema.split_body(type_name, body, columns)
    return parse_body(model, own, partial=partial), kept


class RoleDefinitionBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(None, max_length=1024)
    role_permissions: list[RolePermission] = Field(default_factory=list)
    # At least one tag (Default when none is named), as on every scoped object.
    role_scope_tag_ids: list[str] = Field(
        default_factory=lambda: [DEFAULT_SCOPE_TAG], min_length=1, max_length=100
    )
    is_built_in: bool = False
    is_built_in_role_definition: bool = False
    # Graph's deprecated twin of rolePermissions: served (from rolePermissions), not written.
    permissions: list[Any] | None = None

    @field_validator("role_scope_tag_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("permissions")
    @classmethod
    def _deprecated(cls, value: list[Any] | None) -> None:
        if value is not None:
            raise ValueError("is deprecated in Graph; write rolePermissions")

    @field_validator("is_built_in", "is_built_in_role_definition")
    @classmethod
    def _custom(cls, value: bool) -> bool:
        if value:
            raise ValueError("only Countersign creates built-in roles")
        return value

    def permission_set(self) -> list[str]:
        actions = {
            a
            for rp in self.role_permissions
            for ra in rp.resource_actions
            for a in ra.allowed_resource_actions
        }
        unknown = sorted(actions - p.ALL)
        if unknown:
            raise ValidationFailed(
                f"'{unknown[0]}' is not a known resource action.", target="rolePermissions"
            )
        return sorted(actions)


class RoleDefinitionUpdate(RoleDefinitionBody):
    display_name: str = Field(None, min_length=1, max_length=256)  # type: ignore[assignment]


D = TypeVar("D", RoleDefinitionBody, RoleDefinitionUpdate)


def _role_definition(model: type[D], body: dict[str, Any]) -> tuple[D, dict[str, Any]]:
    return columns_and_kept(
        ROLE_DEFINITION, ROLE_DEFINITION_COLUMNS, model, body, model is RoleDefinitionUpdate
    )


class RoleDefinitions(CollectionHandler[t.RoleDefinition]):
    resource = RESOURCE_TYPES["roleDefinitions"]

    get = staticmethod(get_role_definition)

    def load(self, session: Session, caller: Caller, object_id: str) -> t.RoleDefinition:
        return get_visible_role_definition(session, caller, object_id)

    to_json = staticmethod(role_definition_json)

    def plan_create(self, write: Write) -> Plan:
        body, _ = _role_definition(RoleDefinitionBody, write.change.body)
        require_over_each_tag(write.caller, p.ROLES_CREATE, body.role_scope_tag_ids)
        check_scope_tags(write.session, write.caller.tenant_id, body.role_scope_tag_ids)
        body.permission_set()
        return self.new_plan(body.display_name, write.change.body)

    def plan_existing(self, write: Write, row: t.RoleDefinition, plan: Plan) -> None:
        if row.is_built_in:
            raise ValidationFailed(f"The built-in role '{row.display_name}' cannot be changed.")
        if write.change.operation == DELETE:
            write.caller.require(p.ROLES_DELETE, row.role_scope_tag_ids)
            in_use = write.session.scalar(
                select(func.count())
                .select_from(t.RoleAssignment)
                .where(t.RoleAssignment.role_definition_id == row.id)
            )
            if in_use:
                raise Conflict(
                    f"The role '{row.display_name}' has {in_use} assignment(s); remove them first."
                )
            return
        write.caller.require(p.ROLES_UPDATE, row.role_scope_tag_ids)
        update, _ = _role_definition(RoleDefinitionUpdate, write.change.body)
        if "role_scope_tag_ids" in update.model_fields_set:
            require_over_each_tag(write.caller, p.ROLES_UPDATE, update.role_scope_tag_ids)
            check_scope_tags(write.session, write.caller.tenant_id, update.role_scope_tag_ids)
        if "role_permissions" in update.model_fields_set:
            update.permission_set()
        plan.after = {**plan.before, **write.change.body} if plan.before else None

    def create(self, write: Write) -> t.RoleDefinition:
        body, kept = _role_definition(RoleDefinitionBody, write.change.body)
        return t.RoleDefinition(
            **write.new_object_columns(),
            display_name=body.display_name,
            description=body.description,
            is_built_in=False,
            permissions=body.permission_set(),
            role_scope_tag_ids=[],
            properties=schema.patched({}, kept),
        )

    def created(self, write: Write, row: t.RoleDefinition) -> None:
        body, _ = _role_definition(RoleDefinitionBody, write.change.body)
        set_scope_tags(write.session, row, body.role_scope_tag_ids)

    def delete(self, write: Write, row: t.RoleDefinition) -> None:
        set_scope_tags(write.session, row, [])
        write.session.delete(row)

    def apply_existing(self, write: Write, plan: Plan, row: t.RoleDefinition) -> Result:
        update, kept = _role_definition(RoleDefinitionUpdate, write.change.body)
        fields = update.model_fields_set
        row.properties = schema.patched(row.properties, kept)
        if "display_name" in fields:
            row.display_name = update.display_name
        if "description" in fields:
            row.description = update.description
        if "role_permissions" in fields:
            row.permissions = update.permission_set()
        if "role_scope_tag_ids" in fields:
            set_scope_tags(write.session, row, update.role_scope_tag_ids)
        touch(row, write.now)
        return Result(204, role_definition_json(row), row.id)


# -- role assignments ----------------------------------------------------------------------


class RoleAssignmentBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(None, max_length=1024)
    members: list[str] = Field(default_factory=list)
    role_scope_tag_ids: list[str] = Field(default_factory=lambda: [DEFAULT_SCOPE_TAG])
    role_definition_bind: str | None = Field(None, alias="roleDefinition@odata.bind")
    role_definition_id: str | None = None

    def role_id(self) -> str | None:
        if self.role_definition_bind:
            tail = self.role_definition_bind.rstrip("/").rsplit("/", 1)[-1]
            return tail.removeprefix("roleDefinitions(").removesuffix(")").strip("'")
        return self.role_definition_id


class RoleAssignmentUpdate(RoleAssignmentBody):
    display_name: str = Field(None, min_length=1, max_length=256)  # type: ignore[assignment]


A = TypeVar("A", RoleAssignmentBody, RoleAssignmentUpdate)


def role_assignment_body(
    model: type[A], body: dict[str, Any], all_scope_tags: bool = False
) -> tuple[A, dict[str, Any]]:
    """An assignment's write body. Graph's group scope (`scopeMembers`, `resourceScopes`,
    `scopeType`: the groups whose users and devices its holders manage) is not implemented:
    Countersign's reach follows scope tags alone, so a body may name the group scope only as
    Countersign serves it (no groups, its own scope type); anything else is a 501."""
    parsed, kept = columns_and_kept(
        ROLE_ASSIGNMENT, ROLE_ASSIGNMENT_COLUMNS, model, body, model is RoleAssignmentUpdate
    )
    scope = {name: kept.pop(name) for name in GROUP_SCOPE if name in kept}
    named = [name for name in GROUP_SCOPE[:2] if scope.get(name)]
    if scope.get("scopeType") not in (None, scope_type_of(all_scope_tags)):
        named.append("scopeType")
    if named:
        raise NotImplementedByCountersign(
            f"Countersign does not implement group scopes of role assignments ('{named[0]}'): "
            "an assignment reaches the objects that share one of its roleScopeTagIds.",
            target=named[0],
        )
    return parsed, kept


def _check_members(session: Session, tenant_id: str, members: list[str]) -> None:
    for member_id in members:
        group = session.get(t.Group, member_id)
        if group is None or group.tenant_id != tenant_id:
            raise ValidationFailed(
                f"Member '{member_id}' is not a group of this tenant.", target="members"
            )


class RoleAssignments(CollectionHandler[t.RoleAssignment]):
    resource = RESOURCE_TYPES["roleAssignments"]

    get = staticmethod(get_role_assignment)

    to_json = staticmethod(role_assignment_json)

    def plan_create(self, write: Write) -> Plan:
        write.caller.require(p.ROLES_ASSIGN)
        body, _ = role_assignment_body(RoleAssignmentBody, write.change.body)
        role_id = body.role_id()
        if not role_id:
            raise ValidationFailed(
                "Property 'roleDefinition@odata.bind' is required.",
                target="roleDefinition@odata.bind",
            )
        role = get_visible_role_definition(write.session, write.caller, role_id)
        require_over_each_tag(write.caller, p.ROLES_ASSIGN, body.role_scope_tag_ids)
        _check_members(write.session, write.caller.tenant_id, body.members)
        check_scope_tags(write.session, write.caller.tenant_id, body.role_scope_tag_ids)
        return self.new_plan(
            body.display_name,
            {**write.change.body, "roleDefinitionId": role.id},
            entity_keys=(lock_key("roleDefinitions", role.id),),
        )

    def plan_existing(self, write: Write, row: t.RoleAssignment, plan: Plan) -> None:
        require_assignment_reach(write.caller, row.all_scope_tags, row.role_scope_tag_ids)
        if write.change.operation == UPDATE:
            update, _ = role_assignment_body(
                RoleAssignmentUpdate, write.change.body, row.all_scope_tags
            )
            if "members" in update.model_fields_set:
                _check_members(write.session, write.caller.tenant_id, update.members)
            if "role_scope_tag_ids" in update.model_fields_set:
                require_over_each_tag(write.caller, p.ROLES_ASSIGN, update.role_scope_tag_ids)
                check_scope_tags(write.session, write.caller.tenant_id, update.role_scope_tag_ids)
            if update.role_id():
                get_visible_role_definition(write.session, write.caller, update.role_id() or "")
            plan.after = {**(plan.before or {}), **write.change.body}

    def create(self, write: Write) -> t.RoleAssignment:
        body, kept = role_assignment_body(RoleAssignmentBody, write.change.body)
        return t.RoleAssignment(
            **write.new_object_columns(),
            role_definition_id=body.role_id(),
            display_name=body.display_name,
            description=body.description,
            members=body.members,
            role_scope_tag_ids=body.role_scope_tag_ids,
            properties=schema.patched({}, kept),
        )

    def apply_existing(self, write: Write, plan: Plan, row: t.RoleAssignment) -> Result:
        update, kept = role_assignment_body(
            RoleAssignmentUpdate, write.change.body, row.all_scope_tags
        )
        fields = update.model_fields_set
        row.properties = schema.patched(row.properties, kept)
        for name in ("display_name", "description", "members", "role_scope_tag_ids"):
            if name in fields:
                setattr(row, name, getattr(update, name))
        if update.role_id():
            row.role_definition_id = update.role_id() or row.role_definition_id
        touch(row, write.now)
        return Result(204, role_assignment_json(row), row.id)


# -- scope tags ----------------------------------------------------------------------------


class ScopeTagBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(None, max_length=1024)


class ScopeTagUpdate(ScopeTagBody):
    display_name: str = Field(None, min_length=1, max_length=128)  # type: ignore[assignment]


T = TypeVar("T", ScopeTagBody, ScopeTagUpdate)


def _scope_tag(model: type[T], body: dict[str, Any]) -> tuple[T, dict[str, Any]]:
    return columns_and_kept(SCOPE_TAG, SCOPE_TAG_COLUMNS, model, body, model is ScopeTagUpdate)


class RoleScopeTags(CollectionHandler[t.RoleScopeTag]):
    resource = RESOURCE_TYPES["roleScopeTags"]

    get = staticmethod(get_scope_tag)

    to_json = staticmethod(scope_tag_json)

    def plan_create(self, write: Write) -> Plan:
        write.caller.require(p.ROLES_CREATE)
        body, _ = _scope_tag(ScopeTagBody, write.change.body)
        return self.new_plan(body.display_name, write.change.body)

    def plan_existing(self, write: Write, row: t.RoleScopeTag, plan: Plan) -> None:
        if row.is_built_in:
            raise ValidationFailed("The built-in Default scope tag cannot be changed.")
        if write.change.operation != DELETE:
            write.caller.require(p.ROLES_UPDATE)
            _scope_tag(ScopeTagUpdate, write.change.body)
            plan.after = {**(plan.before or {}), **write.change.body}
            return
        write.caller.require(p.ROLES_DELETE)
        used = write.session.scalar(
            select(func.count())
            .select_from(t.ObjectScopeTag)
            .where(
                t.ObjectScopeTag.tenant_id == write.caller.tenant_id,
                t.ObjectScopeTag.tag_id == row.id,
            )
        )
        if used:
            raise Conflict(
                f"The scope tag '{row.display_name}' is on {used} object(s); remove it first."
            )
        # An assignment naming a deleted tag would reach the next tag given its id.
        assigned = [
            a.display_name
            for a in write.session.scalars(
                select(t.RoleAssignment).where(t.RoleAssignment.tenant_id == write.caller.tenant_id)
            )
            if row.id in a.role_scope_tag_ids
        ]
        if assigned:
            raise Conflict(
                f"The scope tag '{row.display_name}' is on the role assignment "
                f"'{assigned[0]}'; remove it there first."
            )

    def create(self, write: Write) -> t.RoleScopeTag:
        body, kept = _scope_tag(ScopeTagBody, write.change.body)
        lock_tenant(
            write.session, write.caller.tenant_id
        )  # concurrent creates must not share an id
        numbers = [
            int(i)
            for i in write.session.scalars(
                select(t.RoleScopeTag.id).where(t.RoleScopeTag.tenant_id == write.caller.tenant_id)
            )
            if i.isdigit()
        ]
        return t.RoleScopeTag(
            tenant_id=write.caller.tenant_id,
            id=str(max(numbers, default=0) + 1),
            display_name=body.display_name,
            description=body.description,
            properties=schema.patched({}, kept),
        )

    def apply_existing(self, write: Write, plan: Plan, row: t.RoleScopeTag) -> Result:
        update, kept = _scope_tag(ScopeTagUpdate, write.change.body)
        for name in update.model_fields_set - {"odata_type"}:
            setattr(row, name, getattr(update, name))
        row.properties = schema.patched(row.properties, kept)
        row.version += 1  # a scope tag keeps no lastModifiedDateTime
        return Result(204, scope_tag_json(row), row.id)
