"""Apps, scripts, compliance and configuration policies, device categories (SPEC §2).

One generic handler, parametrised per collection by a `Kind` (its Graph names, body model,
permissions, and how its platform is derived); all of them live in the `resources` table with
their type-specific properties in `properties`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.domain.errors import NotFound, ValidationFailed
from countersign.domain.rbac import DEFAULT_SCOPE_TAG
from countersign.domain.resource_types import RESOURCE_TYPES, ResourceType
from countersign.graph import schema
from countersign.services.changes import (
    ASSIGN,
    DELETE,
    UPDATE,
    GraphBody,
    Plan,
    Result,
    etag,
    iso,
    parse_body,
)
from countersign.services.handlers.base import CollectionHandler, Write, touch
from countersign.services.handlers.rbac import check_scope_tags
from countersign.store import tables as t
from countersign.store.scope import set_scope_tags

GRAPH = "#microsoft.graph."


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    return value


Base64 = Annotated[str, Field(min_length=1), AfterValidator(_base64)]
RunAs = Literal["system", "user"]
Text = Annotated[str, Field(max_length=1024)]


# -- bodies: the properties each type accepts (anything else is a 400 naming it) -----------


class ResourceBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=256)
    description: Text | None = None
    role_scope_tag_ids: list[str] = Field(
        default_factory=lambda: [DEFAULT_SCOPE_TAG], min_length=1, max_length=100
    )


COMMON = frozenset(ResourceBody.model_fields)


class MobileAppBody(ResourceBody):
    publisher: Text | None = None
    developer: Text | None = None
    owner: Text | None = None
    notes: Text | None = None
    information_url: Text | None = None
    privacy_information_url: Text | None = None
    is_featured: bool = False
    app_store_url: Text | None = None
    bundle_id: str | None = Field(None, max_length=256)
    package_id: str | None = Field(None, max_length=256)
    package_identifier: str | None = Field(None, max_length=256)
    file_name: str | None = Field(None, max_length=256)
    install_command_line: Text | None = None
    uninstall_command_line: Text | None = None
    app_url: Text | None = None


class ScriptBody(ResourceBody):
    run_as_account: RunAs = "system"


class PowerShellScriptBody(ScriptBody):
    script_content: Base64
    file_name: str = Field(min_length=1, max_length=256)
    enforce_signature_check: bool = False
    run_as32_bit: bool = False


class HealthScriptBody(ScriptBody):
    publisher: Text | None = None
    detection_script_content: Base64
    remediation_script_content: Base64 | None = None
    enforce_signature_check: bool = False
    run_as32_bit: bool = False


class ShellScriptBody(ScriptBody):
    script_content: Base64
    file_name: str = Field(min_length=1, max_length=256)
    retry_count: int = Field(0, ge=0, le=10)
    block_execution_notifications: bool = False
    execution_frequency: str | None = Field(None, max_length=32, pattern=r"^P(\d+D)?(T\d+[HM])?$")


class CompliancePolicyBody(ResourceBody):
    password_required: bool = False
    password_minimum_length: int | None = Field(None, ge=4, le=16)
    os_minimum_version: str | None = Field(None, max_length=64)
    os_maximum_version: str | None = Field(None, max_length=64)
    storage_require_encryption: bool = False
    security_block_jailbroken_devices: bool = False
    scheduled_actions_for_rule: list[dict[str, Any]] = Field(default_factory=list)


class ConfigurationPolicyBody(ResourceBody):
    # Graph names a settings-catalog policy `name`, not `displayName`.
    display_name: str = Field(alias="name", min_length=1, max_length=256)
    platforms: str
    technologies: Literal["mdm", "configManager", "microsoftSense", "appleRemoteManagement"] = "mdm"
    settings: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    template_reference: dict[str, Any] | None = None


class DeviceCategoryBody(ResourceBody):
    pass


# -- kinds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    read: str
    create: str
    update: str
    delete: str
    assign: str | None = None


@dataclass(frozen=True)
class Kind:
    resource: ResourceType  # collection, entity type, policy type, audit category (the table's)
    body: type[ResourceBody]
    permissions: Permissions
    # Accepted @odata.type names -> the platform each implies (or "notApplicable").
    types: Mapping[str, str]
    # When set, the platform follows this property (through `property_platforms`) instead.
    platform_property: str | None = None
    property_platforms: Mapping[str, str] = field(default_factory=dict)
    # Properties a particular @odata.type needs beyond the body's own required ones.
    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The Graph type of its assignments; None when the type cannot be assigned.
    assignment_type: str | None = None
    name_property: str = "displayName"
    # Assignments of apps carry an intent (required, available, uninstall...).
    intents: tuple[str, ...] = ()

    @property
    def collection(self) -> str:
        return self.resource.collection

    @property
    def entity_type(self) -> str:
        return self.resource.entity_type

    @property
    def policy_type(self) -> str | None:
        return self.resource.policy_type

    @property
    def category(self) -> str:
        return self.resource.category

    def normalise_type(self, raw: str | None) -> str:
        """'#microsoft.graph.win32LobApp' (or without the prefix) -> 'win32LobApp'."""
        if raw is None:
            if len(self.types) == 1:
                return next(iter(self.types))
            raise ValidationFailed("Property '@odata.type' is required.", target="@odata.type")
        name = raw.removeprefix("#").removeprefix("microsoft.graph.")
        if name not in self.types:
            raise ValidationFailed(
                f"'{raw}' is not a known @odata.type for {self.collection}.", target="@odata.type"
            )
        return name

    def platform(self, type_name: str, properties: Mapping[str, Any]) -> str:
        if self.platform_property is None:
            return self.types[type_name]
        value = str(properties.get(self.platform_property))
        if value not in self.property_platforms:
            raise ValidationFailed(
                f"Property '{self.platform_property}' must be one of "
                f"{', '.join(self.property_platforms)}; '{value}' is not.",
                target=self.platform_property,
            )
        return self.property_platforms[value]


WINDOWS, IOS, MACOS = "windows10AndLater", "iOSiPadOS", "macOS"
ANDROID_ENTERPRISE, NOT_APPLICABLE = "androidEnterprise", "notApplicable"

CONFIGURATION = Permissions(
    p.DEVICE_CONFIGURATIONS_READ,
    p.DEVICE_CONFIGURATIONS_CREATE,
    p.DEVICE_CONFIGURATIONS_UPDATE,
    p.DEVICE_CONFIGURATIONS_DELETE,
    p.DEVICE_CONFIGURATIONS_ASSIGN,
)

KINDS: dict[str, Kind] = {
    kind.collection: kind
    for kind in (
        Kind(
            RESOURCE_TYPES["mobileApps"],
            MobileAppBody,
            Permissions(
                p.MOBILE_APPS_READ,
                p.MOBILE_APPS_CREATE,
                p.MOBILE_APPS_UPDATE,
                p.MOBILE_APPS_DELETE,
                p.MOBILE_APPS_ASSIGN,
            ),
            # Android store and line-of-business apps count as Android Enterprise: Countersign
            # has one Android platform for apps (device administrator is legacy in Intune).
            types={
                **dict.fromkeys(
                    (
                        "win32LobApp",
                        "windowsMobileMSI",
                        "winGetApp",
                        "microsoftStoreForBusinessApp",
                        "officeSuiteApp",
                    ),
                    WINDOWS,
                ),
                **dict.fromkeys(
                    ("iosStoreApp", "iosLobApp", "iosVppApp", "managedIOSStoreApp"), IOS
                ),
                **dict.fromkeys(
                    ("androidManagedStoreApp", "androidStoreApp", "androidLobApp"),
                    ANDROID_ENTERPRISE,
                ),
                **dict.fromkeys(
                    ("macOSDmgApp", "macOSLobApp", "macOSPkgApp", "macOsVppApp"), MACOS
                ),
                "webApp": NOT_APPLICABLE,
            },
            required={
                "win32LobApp": ("fileName", "installCommandLine", "uninstallCommandLine"),
                "winGetApp": ("packageIdentifier",),
                "iosStoreApp": ("appStoreUrl",),
                "androidStoreApp": ("appStoreUrl",),
                "androidManagedStoreApp": ("appIdentifier",),  # Graph: packageId is read-only
                "webApp": ("appUrl",),
            },
            assignment_type="mobileAppAssignment",
            intents=("available", "required", "uninstall", "availableWithoutEnrollment"),
        ),
        Kind(
            RESOURCE_TYPES["deviceManagementScripts"],
            PowerShellScriptBody,
            CONFIGURATION,
            types={"deviceManagementScript": NOT_APPLICABLE},
            assignment_type="deviceManagementScriptAssignment",
        ),
        Kind(
            RESOURCE_TYPES["deviceHealthScripts"],
            HealthScriptBody,
            CONFIGURATION,
            types={"deviceHealthScript": NOT_APPLICABLE},
            assignment_type="deviceHealthScriptAssignment",
        ),
        Kind(
            RESOURCE_TYPES["deviceShellScripts"],
            ShellScriptBody,
            CONFIGURATION,
            types={"deviceShellScript": NOT_APPLICABLE},
            # Graph assigns shell scripts with the PowerShell scripts' assignment type.
            assignment_type="deviceManagementScriptAssignment",
        ),
        Kind(
            RESOURCE_TYPES["deviceCompliancePolicies"],
            CompliancePolicyBody,
            Permissions(
                p.DEVICE_COMPLIANCE_READ,
                p.DEVICE_COMPLIANCE_CREATE,
                p.DEVICE_COMPLIANCE_UPDATE,
                p.DEVICE_COMPLIANCE_DELETE,
                p.DEVICE_COMPLIANCE_ASSIGN,
            ),
            types={
                "windows10CompliancePolicy": WINDOWS,
                "windows81CompliancePolicy": "windows81AndLater",
                "iosCompliancePolicy": IOS,
                "androidWorkProfileCompliancePolicy": ANDROID_ENTERPRISE,
                "androidDeviceOwnerCompliancePolicy": ANDROID_ENTERPRISE,
                "androidCompliancePolicy": "androidDeviceAdministrator",
                "macOSCompliancePolicy": MACOS,
            },
            assignment_type="deviceCompliancePolicyAssignment",
        ),
        Kind(
            RESOURCE_TYPES["configurationPolicies"],
            ConfigurationPolicyBody,
            CONFIGURATION,
            types={"deviceManagementConfigurationPolicy": NOT_APPLICABLE},
            platform_property="platforms",
            property_platforms={
                "windows10": WINDOWS,
                "windows10X": "windows10X",
                "iOS": IOS,
                "macOS": MACOS,
                "android": ANDROID_ENTERPRISE,
                "androidEnterprise": ANDROID_ENTERPRISE,
                "aosp": ANDROID_ENTERPRISE,
                "linux": NOT_APPLICABLE,
            },
            assignment_type="deviceManagementConfigurationPolicyAssignment",
            name_property="name",
        ),
        Kind(
            RESOURCE_TYPES["deviceCategories"],
            DeviceCategoryBody,
            Permissions(
                p.ORGANIZATION_READ,
                p.ORGANIZATION_CREATE,
                p.ORGANIZATION_UPDATE,
                p.ORGANIZATION_DELETE,
            ),
            types={"deviceCategory": NOT_APPLICABLE},
        ),
    )
}


# -- Graph JSON ----------------------------------------------------------------------------


def resource_json(row: t.Resource) -> dict[str, Any]:
    """The object as Graph serves it: every property its type defines (null where Countersign
    has no value), then Countersign's extensions (`platform`, `version`)."""
    kind = KINDS[row.collection]
    type_name = row.odata_type.removeprefix(GRAPH)
    version_prop = schema.properties(type_name).get("version")
    body: dict[str, Any] = {
        "@odata.type": row.odata_type,
        "@odata.etag": etag(row.version),
        "id": row.id,
        "displayName": row.display_name,
        kind.name_property: row.display_name,
        "description": row.description,
        **row.properties,
        "roleScopeTagIds": list(row.role_scope_tag_ids),
        "createdDateTime": iso(row.created_date_time),
        "lastModifiedDateTime": iso(row.last_modified_date_time),
        "platform": row.platform,  # Countersign extension: the platform access policies match
        # Graph types a script's version as a string (deviceHealthScript.version).
        "version": str(row.version)
        if version_prop is not None and version_prop.type == "string"
        else row.version,
    }
    if kind.assignment_type is not None:
        body["assignments"] = list(row.assignments)
    return schema.serve(type_name, body, include_unknown=True)


def _request_shape(row: t.Resource) -> dict[str, Any]:
    """The stored object as a create body: what a PATCH is merged into."""
    kind = KINDS[row.collection]
    return {
        "@odata.type": row.odata_type,
        kind.name_property: row.display_name,
        "description": row.description,
        "roleScopeTagIds": list(row.role_scope_tag_ids),
        **row.properties,
    }


def get_resource(session: Session, tenant_id: str, collection: str, object_id: str) -> t.Resource:
    row = session.get(t.Resource, object_id)
    if row is None or row.tenant_id != tenant_id or row.collection != collection:
        raise NotFound(f"'{object_id}' does not exist in {collection}.")
    return row


R = TypeVar("R", t.Resource, t.ManagedDevice)


def visible_or_404(caller: Caller, row: R | None, read_permission: str, what: str) -> R:
    """An object of the caller's tenant, hidden (404) when its scope tags are out of reach."""
    if (
        row is None
        or row.tenant_id != caller.tenant_id
        or not caller.can(read_permission, row.role_scope_tag_ids)
    ):
        raise NotFound(f"'{what}' does not exist.")
    return row


# -- validation (pure: a function of the Change alone) ---------------------------------------


@dataclass(frozen=True)
class Draft:
    """A validated body: the columns of the row it becomes."""

    odata_type: str
    display_name: str
    description: str | None
    platform: str
    properties: dict[str, Any]
    tags: list[str]


def _model_names(model: type[ResourceBody]) -> frozenset[str]:
    return frozenset(f.alias or name for name, f in model.model_fields.items())


def draft(kind: Kind, body: dict[str, Any]) -> Draft:
    """Graph's schema says which properties the type has, their types, and which are
    read-only (ignored, as Graph ignores them); the body model adds Countersign's own rules
    (required names, lengths, base64) for the properties it names."""
    type_name = kind.normalise_type(body.get("@odata.type"))
    graph_props = schema.properties(type_name)
    model_names = _model_names(kind.body)
    for name in body:
        if name in model_names and name not in graph_props and name != "@odata.type":
            raise ValidationFailed(f"Property '{name}' does not exist on {type_name}.", target=name)
    extras = schema.check_body(type_name, body, skip=model_names)
    modelled = {
        k: v
        for k, v in body.items()
        if k in model_names and not (k in graph_props and graph_props[k].read_only)
    }
    model = parse_body(kind.body, modelled)
    dumped = model.model_dump(by_alias=True, exclude=set(COMMON), mode="json")
    properties = {k: v for k, v in dumped.items() if k in graph_props} | extras
    for name in kind.required.get(type_name, ()):
        if properties.get(name) in (None, ""):
            raise ValidationFailed(f"Property '{name}' is required for {type_name}.", target=name)
    return Draft(
        odata_type=GRAPH + type_name,
        display_name=model.display_name,
        description=model.description,
        platform=kind.platform(type_name, properties),
        properties=properties,
        tags=list(dict.fromkeys(model.role_scope_tag_ids)),
    )


def _merged_draft(kind: Kind, row: t.Resource, patch: dict[str, Any]) -> Draft:
    """A PATCH validated as the whole object it would leave (type and platform are fixed)."""
    current = _request_shape(row)
    if (
        "@odata.type" in patch
        and GRAPH + kind.normalise_type(patch["@odata.type"]) != row.odata_type
    ):
        raise ValidationFailed("Property '@odata.type' cannot be changed.", target="@odata.type")
    name = kind.platform_property
    if name and name in patch and patch[name] != current[name]:
        raise ValidationFailed(f"Property '{name}' cannot be changed.", target=name)
    return draft(kind, {**current, **{k: v for k, v in patch.items() if k != "@odata.type"}})


GROUP_TARGETS = ("groupAssignmentTarget", "exclusionGroupAssignmentTarget")
TARGETS = (*GROUP_TARGETS, "allDevicesAssignmentTarget", "allLicensedUsersAssignmentTarget")


class AssignmentTarget(GraphBody):
    odata_type: str = Field(alias="@odata.type")
    group_id: str | None = None
    device_and_app_management_assignment_filter_id: str | None = None
    device_and_app_management_assignment_filter_type: Literal["none", "include", "exclude"] = "none"


class Assignment(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    id: str | None = None
    # One of the two: Graph's target, or a script group assignment's targetGroupId.
    target: AssignmentTarget | None = None
    target_group_id: str | None = Field(None, max_length=36)
    intent: str | None = None
    settings: dict[str, Any] | None = None
    source: str | None = None
    run_remediation_script: bool | None = None
    run_schedule: dict[str, Any] | None = None


# The body keys Graph's assign actions (and the SDK's request bodies) use for the list.
ASSIGN_KEYS = (
    "assignments",
    "mobileAppAssignments",
    "deviceManagementScriptAssignments",
    "deviceManagementScriptGroupAssignments",
    "deviceHealthScriptAssignments",
    "deviceCompliancePolicyAssignments",
)


class AssignBody(GraphBody):
    assignments: list[Assignment] = Field(max_length=100)


def _assign_list(body: dict[str, Any]) -> dict[str, Any]:
    """The assign body's lists under every key it uses, as one list (a script's assign takes
    group assignments and assignments side by side)."""
    unknown = sorted(set(body) - set(ASSIGN_KEYS))
    if unknown:
        raise ValidationFailed(
            f"Property '{unknown[0]}' does not exist on this type.", target=unknown[0]
        )
    if not any(key in body for key in ASSIGN_KEYS):
        raise ValidationFailed("Property 'assignments' is required.", target="assignments")
    combined: list[Any] = []
    for key in ASSIGN_KEYS:
        value = body.get(key)
        if value is not None and not isinstance(value, list):
            raise ValidationFailed(f"Property '{key}' must be a collection.", target=key)
        combined.extend(value or [])
    return {"assignments": combined}


# Properties of an assignment beyond its target, by Graph name; each must exist on the
# kind's assignment type in Graph's schema.
OPTIONAL_ASSIGNMENT_PROPERTIES = (
    "intent",
    "settings",
    "source",
    "runRemediationScript",
    "runSchedule",
)


def _target_of(item: Assignment, where: str) -> tuple[str, str | None, AssignmentTarget | None]:
    if item.target is not None and item.target_group_id is None:
        name = item.target.odata_type.removeprefix("#").removeprefix("microsoft.graph.")
        return name, item.target.group_id, item.target
    if item.target is None and item.target_group_id is not None:
        return "groupAssignmentTarget", item.target_group_id, None  # a script group assignment
    raise ValidationFailed(
        "An assignment names its target or its targetGroupId (one of the two).",
        target=f"{where}.target",
    )


def assignments_of(kind: Kind, object_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Graph's assign body -> the object's new assignment list (replaces the old one)."""
    assert kind.assignment_type is not None
    graph_props = schema.properties(kind.assignment_type)
    result, seen = [], set()
    for index, item in enumerate(parse_body(AssignBody, _assign_list(body)).assignments):
        where = f"assignments[{index}]"
        target_type, group_id, target = _target_of(item, where)
        if target_type not in TARGETS:
            raise ValidationFailed(
                f"'{target_type}' is not a known assignment target.",
                target=f"{where}.target.@odata.type",
            )
        needs_group = target_type in GROUP_TARGETS
        if needs_group != (group_id is not None):
            raise ValidationFailed(
                f"{target_type} {'needs a' if needs_group else 'takes no'} groupId.",
                target=f"{where}.target.groupId",
            )
        key = group_id or target_type
        if key in seen:
            raise ValidationFailed(f"'{key}' is assigned more than once.", target=where)
        seen.add(key)
        assignment: dict[str, Any] = {
            "@odata.type": GRAPH + kind.assignment_type,
            "id": f"{object_id}_{key}",
            "target": {
                "@odata.type": GRAPH + target_type,
                "groupId": group_id,
                "deviceAndAppManagementAssignmentFilterId": (
                    target.device_and_app_management_assignment_filter_id if target else None
                ),
                "deviceAndAppManagementAssignmentFilterType": (
                    target.device_and_app_management_assignment_filter_type if target else "none"
                ),
            },
        }
        given = item.model_dump(by_alias=True, exclude_unset=True)
        for name in OPTIONAL_ASSIGNMENT_PROPERTIES:
            if name not in given or given[name] is None:
                continue
            prop = graph_props.get(name)
            if prop is None:
                raise ValidationFailed(
                    f"Property '{name}' does not exist on {kind.assignment_type}.",
                    target=f"{where}.{name}",
                )
            if not prop.read_only:
                assignment[name] = schema.check_value(prop, given[name], f"{where}.{name}")
        if kind.intents:
            if item.intent not in kind.intents:
                raise ValidationFailed(
                    f"Property 'intent' must be one of {', '.join(kind.intents)}.",
                    target=f"{where}.intent",
                )
            assignment.setdefault("settings", None)
        result.append(assignment)
    return result


def check_groups_exist(session: Session, tenant_id: str, assignments: list[dict[str, Any]]) -> None:
    """Assignment targets must be groups of the tenant (they may be deleted at any time)."""
    for index, assignment in enumerate(assignments):
        group_id = assignment["target"]["groupId"]
        if group_id is None:
            continue
        group = session.get(t.Group, group_id)
        if group is None or group.tenant_id != tenant_id:
            raise ValidationFailed(
                f"Group '{group_id}' does not exist in this tenant.",
                target=f"assignments[{index}].target.groupId",
            )


# -- the handler -----------------------------------------------------------------------------


class ResourceHandler(CollectionHandler[t.Resource]):
    def __init__(self, kind: Kind):
        self.kind = kind
        self.resource = kind.resource
        super().__init__()

    def get(self, session: Session, tenant_id: str, object_id: str) -> t.Resource:
        return get_resource(session, tenant_id, self.collection, object_id)

    def load(self, session: Session, caller: Caller, object_id: str) -> t.Resource:
        row = session.get(t.Resource, object_id)
        if row is not None and row.collection != self.collection:
            row = None
        return visible_or_404(caller, row, self.kind.permissions.read, object_id)

    def platform_of(self, row: t.Resource) -> str:
        return row.platform

    to_json = staticmethod(resource_json)

    def plan_create(self, write: Write) -> Plan:
        new = draft(self.kind, write.change.body)
        write.caller.require(self.kind.permissions.create, new.tags)
        check_scope_tags(write.session, write.caller.tenant_id, new.tags)
        after = resource_json(_new_row(self.kind, new, write.caller.tenant_id, "", write.now))
        return self.new_plan(new.display_name, after, platform=new.platform)

    def plan_existing(self, write: Write, row: t.Resource, plan: Plan) -> None:
        kind, perms = self.kind, self.kind.permissions
        if write.change.operation == DELETE:
            write.caller.require(perms.delete, row.role_scope_tag_ids)
        elif write.change.operation == UPDATE:
            write.caller.require(perms.update, row.role_scope_tag_ids)
            new = _merged_draft(kind, row, write.change.body)
            write.caller.require(perms.update, new.tags)
            check_scope_tags(write.session, write.caller.tenant_id, new.tags)
            plan.after = {**plan.before, **_changed(kind, new)} if plan.before else None
        elif write.change.operation == ASSIGN and perms.assign and kind.assignment_type:
            write.caller.require(perms.assign, row.role_scope_tag_ids)
            assignments = assignments_of(kind, row.id, write.change.body)
            check_groups_exist(write.session, write.caller.tenant_id, assignments)
            plan.after = {**(plan.before or {}), "assignments": assignments}
        else:
            raise ValidationFailed(
                f"{write.change.operation} is not an operation on {kind.collection}."
            )

    def create(self, write: Write) -> t.Resource:
        new = draft(self.kind, write.change.body)
        check_scope_tags(write.session, write.caller.tenant_id, new.tags)
        return _new_row(self.kind, new, write.caller.tenant_id, str(uuid.uuid4()), write.now)

    def created(self, write: Write, row: t.Resource) -> None:
        set_scope_tags(write.session, row, list(row.role_scope_tag_ids), new=True)

    def delete(self, write: Write, row: t.Resource) -> None:
        set_scope_tags(write.session, row, [])
        write.session.delete(row)

    def apply_existing(self, write: Write, plan: Plan, row: t.Resource) -> Result:
        if write.change.operation == UPDATE:
            new = _merged_draft(self.kind, row, write.change.body)
            check_scope_tags(write.session, write.caller.tenant_id, new.tags)
            row.display_name, row.description = new.display_name, new.description
            row.properties = new.properties
            if new.tags != row.role_scope_tag_ids:
                set_scope_tags(write.session, row, new.tags)
        else:
            assignments = assignments_of(self.kind, row.id, write.change.body)
            check_groups_exist(write.session, write.caller.tenant_id, assignments)
            row.assignments = assignments
        touch(row, write.now)
        return Result(204, resource_json(row), row.id)


def _changed(kind: Kind, new: Draft) -> dict[str, Any]:
    return {
        "displayName": new.display_name,
        kind.name_property: new.display_name,
        "description": new.description,
        **new.properties,
        "roleScopeTagIds": new.tags,
    }


def _new_row(kind: Kind, new: Draft, tenant_id: str, object_id: str, now: datetime) -> t.Resource:
    return t.Resource(
        id=object_id,
        tenant_id=tenant_id,
        collection=kind.collection,
        odata_type=new.odata_type,
        display_name=new.display_name,
        description=new.description,
        platform=new.platform,
        properties=new.properties,
        assignments=[],
        role_scope_tag_ids=new.tags,
        created_date_time=now,
        last_modified_date_time=now,
        version=1,
    )
