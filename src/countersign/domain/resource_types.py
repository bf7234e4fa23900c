"""The per-type facts of every Graph collection Countersign changes, in one table.

A fact about a collection (its Graph entity type, the access-policy type that protects it, what
an approver must be able to read, whether its changes can alter who may do what, how its objects
are locked) is written here once. The handlers (services/) and the approval engine
(domain/protection.py, services/queries.py) read it; nobody keeps a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from countersign.domain import permissions as p
from countersign.domain.approval import ACCESS_POLICY_TYPE, NOT_APPLICABLE

TENANT_CONFIGURATION = "tenantConfiguration"


@dataclass(frozen=True)
class ResourceType:
    collection: str
    entity_type: str  # Graph base type name, e.g. "mobileApp"
    category: str  # the audit category of its changes
    # The operationApprovalPolicyType that protects its changes; None: no policy does (device
    # remote actions carry their own, per action: services/devices.py ACTIONS).
    policy_type: str | None
    # What an approver must be able to read (SPEC §4 rule 4); None: no read is asked (the
    # collection is never protected, or access policies protect it by their own rule).
    read_permission: str | None
    # Whether its changes can change who may do what (directory, RBAC, access policies). It
    # decides only whether a protected change is tried at submission to learn whom it is about;
    # every unprotected change, and every completion, is judged by its measured effect on the
    # directory whatever this says.
    changes_access: bool
    # The permission every change to it needs, whatever the operation (checked before any
    # other); None: each operation has its own (the handler's).
    change_permission: str | None = None
    # Whether the tenant's cached directory snapshot (or its cached channel list) holds its
    # objects: every change to them moves tenants.directory_version, the cache's key.
    directory_cached: bool = False
    # The platform its objects have for access policies; None: each object's own (derived from
    # its @odata.type or a property: services/resources.py Kind.platform).
    platform: str | None = NOT_APPLICABLE
    # The other type names retrieveRequestStatus accepts for it (Graph's derived types).
    graph_type_aliases: tuple[str, ...] = ()
    # Whether retrieveRequestStatus answers for it at all.
    request_status: bool = True


def lock_key(collection: str, object_id: str) -> str:
    """The key an active approval request holds on an object (one active request per object)."""
    return f"{collection}:{object_id}"


_TYPES = (
    ResourceType(
        "mobileApps", "mobileApp", "Application", "app", p.MOBILE_APPS_READ, False, platform=None
    ),
    ResourceType(
        "deviceManagementScripts",
        "deviceManagementScript",
        "DeviceConfiguration",
        "script",
        p.DEVICE_CONFIGURATIONS_READ,
        False,
    ),
    ResourceType(
        "deviceHealthScripts",
        "deviceHealthScript",
        "DeviceConfiguration",
        "script",
        p.DEVICE_CONFIGURATIONS_READ,
        False,
    ),
    ResourceType(
        "deviceShellScripts",
        "deviceShellScript",
        "DeviceConfiguration",
        "script",
        p.DEVICE_CONFIGURATIONS_READ,
        False,
    ),
    ResourceType(
        "deviceCompliancePolicies",
        "deviceCompliancePolicy",
        "Compliance",
        "compliancePolicy",
        p.DEVICE_COMPLIANCE_READ,
        False,
        platform=None,
    ),
    ResourceType(
        "configurationPolicies",
        "deviceManagementConfigurationPolicy",
        "DeviceConfiguration",
        "configurationPolicy",
        p.DEVICE_CONFIGURATIONS_READ,
        False,
        platform=None,
    ),
    ResourceType(
        "deviceCategories",
        "deviceCategory",
        "Other",
        TENANT_CONFIGURATION,
        p.ORGANIZATION_READ,
        False,
    ),
    ResourceType("managedDevices", "managedDevice", "Device", None, p.MANAGED_DEVICES_READ, False),
    ResourceType(
        "users", "user", "Directory", None, p.DIRECTORY_USERS_READ, True, directory_cached=True
    ),
    ResourceType(
        "groups", "group", "Directory", None, p.DIRECTORY_GROUPS_READ, True, directory_cached=True
    ),
    ResourceType(
        "servicePrincipals",
        "servicePrincipal",
        "Directory",
        None,
        None,
        True,
        directory_cached=True,
        request_status=False,
    ),
    ResourceType(
        "roleDefinitions",
        "roleDefinition",
        "Role",
        "role",
        p.ROLES_READ,
        True,
        directory_cached=True,
        graph_type_aliases=("deviceAndAppManagementRoleDefinition",),
    ),
    ResourceType(
        "roleAssignments",
        "roleAssignment",
        "Role",
        "role",
        p.ROLES_READ,
        True,
        directory_cached=True,
        graph_type_aliases=("deviceAndAppManagementRoleAssignment",),
    ),
    ResourceType("roleScopeTags", "roleScopeTag", "Role", "role", p.ROLES_READ, True),
    ResourceType(
        "operationApprovalPolicies",
        "operationApprovalPolicy",
        "MultiAdminApproval",
        ACCESS_POLICY_TYPE,
        None,
        True,
        change_permission=p.APPROVAL_FOR_MAA,
        directory_cached=True,
    ),
    ResourceType(
        "multiAdminApprovalSettings",
        "multiAdminApprovalSettings",
        "MultiAdminApproval",
        TENANT_CONFIGURATION,
        None,
        False,
        change_permission=p.APPROVAL_FOR_MAA,
        request_status=False,
    ),
    ResourceType(
        "notificationChannels",
        "notificationChannel",
        "Organization",
        TENANT_CONFIGURATION,
        p.ORGANIZATION_READ,
        False,
        change_permission=p.ORGANIZATION_UPDATE,
        directory_cached=True,
        request_status=False,
    ),
)

RESOURCE_TYPES: dict[str, ResourceType] = {rt.collection: rt for rt in _TYPES}

# retrieveRequestStatus's entityType (a Graph type name) -> the collection it names.
COLLECTIONS_BY_GRAPH_TYPE: dict[str, str] = {
    name: rt.collection
    for rt in _TYPES
    if rt.request_status
    for name in (rt.entity_type, *rt.graph_type_aliases)
}


def resource_type(collection: str) -> ResourceType:
    return RESOURCE_TYPES[collection]


def approver_read_permission(collection: str) -> str | None:
    """What an approver of a change to `collection` must be able to read (SPEC §4 rule 4)."""
    rt = RESOURCE_TYPES.get(collection)
    return rt.read_permission if rt is not None else None
