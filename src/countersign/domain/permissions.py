"""Permission names (resource actions), named as Intune and Entra name them, and the built-in roles.

Intune's resource actions cover device management; the directory (users, groups, service
principals) uses Entra's `microsoft.directory/...` action names.
"""

from __future__ import annotations

APPROVAL_FOR_MAA = "Microsoft.Intune_MultiAdminApproval_ApprovalForMultiAdminApproval"

AUDIT_READ = "Microsoft.Intune_Audit_Read"

DEVICE_COMPLIANCE_ASSIGN = "Microsoft.Intune_DeviceCompliancePolices_Assign"
DEVICE_COMPLIANCE_CREATE = "Microsoft.Intune_DeviceCompliancePolices_Create"
DEVICE_COMPLIANCE_DELETE = "Microsoft.Intune_DeviceCompliancePolices_Delete"
DEVICE_COMPLIANCE_READ = "Microsoft.Intune_DeviceCompliancePolices_Read"
DEVICE_COMPLIANCE_UPDATE = "Microsoft.Intune_DeviceCompliancePolices_Update"

DEVICE_CONFIGURATIONS_ASSIGN = "Microsoft.Intune_DeviceConfigurations_Assign"
DEVICE_CONFIGURATIONS_CREATE = "Microsoft.Intune_DeviceConfigurations_Create"
DEVICE_CONFIGURATIONS_DELETE = "Microsoft.Intune_DeviceConfigurations_Delete"
DEVICE_CONFIGURATIONS_READ = "Microsoft.Intune_DeviceConfigurations_Read"
DEVICE_CONFIGURATIONS_UPDATE = "Microsoft.Intune_DeviceConfigurations_Update"

DIRECTORY_GROUPS_CREATE = "microsoft.directory/groups/create"
DIRECTORY_GROUPS_DELETE = "microsoft.directory/groups/delete"
DIRECTORY_GROUPS_MEMBERS_UPDATE = "microsoft.directory/groups/members/update"
DIRECTORY_GROUPS_READ = "microsoft.directory/groups/standard/read"
DIRECTORY_GROUPS_UPDATE = "microsoft.directory/groups/basic/update"
DIRECTORY_SERVICE_PRINCIPALS_CREATE = "microsoft.directory/servicePrincipals/create"
DIRECTORY_SERVICE_PRINCIPALS_CREDENTIALS_UPDATE = (
    "microsoft.directory/servicePrincipals/credentials/update"
)
DIRECTORY_SERVICE_PRINCIPALS_DELETE = "microsoft.directory/servicePrincipals/delete"
DIRECTORY_SERVICE_PRINCIPALS_READ = "microsoft.directory/servicePrincipals/standard/read"
DIRECTORY_USERS_CREATE = "microsoft.directory/users/create"
DIRECTORY_USERS_DELETE = "microsoft.directory/users/delete"
DIRECTORY_USERS_PASSWORD_UPDATE = "microsoft.directory/users/password/update"
DIRECTORY_USERS_READ = "microsoft.directory/users/standard/read"
DIRECTORY_USERS_UPDATE = "microsoft.directory/users/basic/update"

MANAGED_DEVICES_CREATE = "Microsoft.Intune_ManagedDevices_Create"
MANAGED_DEVICES_DELETE = "Microsoft.Intune_ManagedDevices_Delete"
MANAGED_DEVICES_READ = "Microsoft.Intune_ManagedDevices_Read"
MANAGED_DEVICES_UPDATE = "Microsoft.Intune_ManagedDevices_Update"

MOBILE_APPS_ASSIGN = "Microsoft.Intune_MobileApps_Assign"
MOBILE_APPS_CREATE = "Microsoft.Intune_MobileApps_Create"
MOBILE_APPS_DELETE = "Microsoft.Intune_MobileApps_Delete"
MOBILE_APPS_READ = "Microsoft.Intune_MobileApps_Read"
MOBILE_APPS_UPDATE = "Microsoft.Intune_MobileApps_Update"

ORGANIZATION_CREATE = "Microsoft.Intune_Organization_Create"
ORGANIZATION_DELETE = "Microsoft.Intune_Organization_Delete"
ORGANIZATION_READ = "Microsoft.Intune_Organization_Read"
ORGANIZATION_UPDATE = "Microsoft.Intune_Organization_Update"

REMOTE_TASKS_RETIRE = "Microsoft.Intune_RemoteTasks_Retire"
REMOTE_TASKS_SYNC_DEVICE = "Microsoft.Intune_RemoteTasks_SyncDevice"
REMOTE_TASKS_WIPE = "Microsoft.Intune_RemoteTasks_Wipe"

ROLES_ASSIGN = "Microsoft.Intune_Roles_Assign"
ROLES_CREATE = "Microsoft.Intune_Roles_Create"
ROLES_DELETE = "Microsoft.Intune_Roles_Delete"
ROLES_READ = "Microsoft.Intune_Roles_Read"
ROLES_UPDATE = "Microsoft.Intune_Roles_Update"

SECURITY_BASELINES_ASSIGN = "Microsoft.Intune_SecurityBaselines_Assign"
SECURITY_BASELINES_CREATE = "Microsoft.Intune_SecurityBaselines_Create"
SECURITY_BASELINES_DELETE = "Microsoft.Intune_SecurityBaselines_Delete"
SECURITY_BASELINES_READ = "Microsoft.Intune_SecurityBaselines_Read"
SECURITY_BASELINES_UPDATE = "Microsoft.Intune_SecurityBaselines_Update"

ALL: frozenset[str] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)

READ_ALL: frozenset[str] = frozenset(p for p in ALL if p.endswith("_Read") or p.endswith("/read"))

INTUNE_ADMINISTRATOR = "Intune Administrator"
MAA_APPROVER = "Multi Admin Approval Approver"

# Built-in role definitions present in every tenant: name -> (description, permissions).
BUILT_IN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    INTUNE_ADMINISTRATOR: ("Full access to everything in the tenant.", ALL),
    "Read Only Operator": ("Reads everything, changes nothing.", READ_ALL),
    "Help Desk Operator": (
        "Reads everything, runs remote tasks on devices.",
        READ_ALL | {REMOTE_TASKS_SYNC_DEVICE, REMOTE_TASKS_RETIRE, MANAGED_DEVICES_UPDATE},
    ),
    "Application Manager": (
        "Manages mobile apps.",
        READ_ALL | {MOBILE_APPS_ASSIGN, MOBILE_APPS_CREATE, MOBILE_APPS_DELETE, MOBILE_APPS_UPDATE},
    ),
    "Policy and Profile Manager": (
        "Manages compliance and configuration policies and scripts.",
        READ_ALL
        | {
            DEVICE_COMPLIANCE_ASSIGN,
            DEVICE_COMPLIANCE_CREATE,
            DEVICE_COMPLIANCE_DELETE,
            DEVICE_COMPLIANCE_UPDATE,
            DEVICE_CONFIGURATIONS_ASSIGN,
            DEVICE_CONFIGURATIONS_CREATE,
            DEVICE_CONFIGURATIONS_DELETE,
            DEVICE_CONFIGURATIONS_UPDATE,
        },
    ),
    "Endpoint Security Manager": (
        "Manages security baselines and compliance policies.",
        READ_ALL
        | {
            SECURITY_BASELINES_ASSIGN,
            SECURITY_BASELINES_CREATE,
            SECURITY_BASELINES_DELETE,
            SECURITY_BASELINES_UPDATE,
            DEVICE_COMPLIANCE_ASSIGN,
            DEVICE_COMPLIANCE_CREATE,
            DEVICE_COMPLIANCE_DELETE,
            DEVICE_COMPLIANCE_UPDATE,
        },
    ),
    MAA_APPROVER: (
        "Reads everything and approves multi admin approval requests.",
        READ_ALL | {APPROVAL_FOR_MAA},
    ),
}
