"""The admin center's object pages, declared as data over the API's collection registry.

A section names a Graph collection (the Change handler's name); its page lights up as soon as
a router mounts that collection (api.collections.SPECS). Until then the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from countersign.api.collections import SPECS, CollectionSpec
from countersign.web.forms import APP_TYPES, COMPLIANCE_TYPES

GRAPH = "#microsoft.graph."


@dataclass(frozen=True)
class Section:
    slug: str  # the page's path under /admin
    title: str
    collection: str
    nav: str  # which navigation entry is highlighted
    columns: tuple[tuple[str, str], ...] = (
        ("Description", "description"),
        ("Last modified", "lastModifiedDateTime"),
    )
    name_key: str = "displayName"
    # The property a create/edit body names the object by (settings-catalog policies: `name`).
    name_field: str = "displayName"
    # Sibling tabs shown above the list (slugs), as Intune groups e.g. scripts.
    tabs: tuple[str, ...] = ()
    # What a new object's form starts with: its @odata.type and a sample of other properties.
    new_odata_type: str | None = None
    new_properties: str = "{}"
    creatable: bool = True
    singular: str = "item"
    # The list's search box looks in these Graph fields (empty: the name field).
    search: tuple[str, ...] = ()
    search_label: str = "Search by name"
    # The list's filters: (label, Graph field, ((value, label), ...)).
    filters: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def spec(self) -> CollectionSpec | None:
        return SPECS.get(self.collection)


SCRIPT_TABS = ("scripts", "remediations", "shell-scripts")
POLICY_TABS = ("compliance-policies", "configuration-policies")
ROLE_TABS = ("roles", "role-assignments")
DIRECTORY_TABS = ("users", "groups")

SECTIONS: dict[str, Section] = {
    s.slug: s
    for s in (
        Section(
            "devices",
            "All devices",
            "managedDevices",
            "devices",
            columns=(
                ("Operating system", "operatingSystem"),
                ("OS version", "osVersion"),
                ("Primary user", "userPrincipalName"),
                ("Compliance", "complianceState"),
                ("Management state", "managementState"),
                ("Last check-in", "lastSyncDateTime"),
            ),
            name_key="deviceName",
            creatable=False,
            singular="device",
            search=("deviceName", "serialNumber", "userPrincipalName"),
            search_label="Search by name, serial number or user",
            filters=(
                (
                    "Operating system",
                    "operatingSystem",
                    tuple(
                        (o, o) for o in ("Windows", "iOS", "iPadOS", "Android", "macOS", "Linux")
                    ),
                ),
                (
                    "Compliance",
                    "complianceState",
                    (
                        ("compliant", "Compliant"),
                        ("noncompliant", "Not compliant"),
                        ("inGracePeriod", "In grace period"),
                        ("unknown", "Unknown"),
                    ),
                ),
            ),
        ),
        Section(
            "apps",
            "All apps",
            "mobileApps",
            "apps",
            columns=(("Type", "@odata.type"), ("Last modified", "lastModifiedDateTime")),
            new_odata_type="#microsoft.graph.win32LobApp",
            new_properties=(
                '{"publisher": "Contoso", "fileName": "setup.exe", '
                '"installCommandLine": "setup.exe /quiet", '
                '"uninstallCommandLine": "setup.exe /uninstall /quiet"}'
            ),
            singular="app",
            filters=(("App type", "@odata.type", tuple((GRAPH + v, n) for v, n in APP_TYPES)),),
        ),
        Section(
            "scripts",
            "Platform scripts",
            "deviceManagementScripts",
            "scripts",
            tabs=SCRIPT_TABS,
            new_odata_type="#microsoft.graph.deviceManagementScript",
            new_properties=(
                '{"fileName": "script.ps1", "scriptContent": "V3JpdGUtSG9zdCAnaGVsbG8n"}'
            ),
            singular="script",
        ),
        Section(
            "remediations",
            "Remediations",
            "deviceHealthScripts",
            "scripts",
            tabs=SCRIPT_TABS,
            new_odata_type="#microsoft.graph.deviceHealthScript",
            new_properties='{"detectionScriptContent": "ZXhpdCAw"}',
            singular="remediation",
        ),
        Section(
            "shell-scripts",
            "macOS shell scripts",
            "deviceShellScripts",
            "scripts",
            tabs=SCRIPT_TABS,
            new_odata_type="#microsoft.graph.deviceShellScript",
            new_properties='{"fileName": "script.sh", "scriptContent": "ZWNobyBoZWxsbw=="}',
            singular="script",
        ),
        Section(
            "compliance-policies",
            "Compliance policies",
            "deviceCompliancePolicies",
            "policies",
            tabs=POLICY_TABS,
            columns=(("Type", "@odata.type"), ("Last modified", "lastModifiedDateTime")),
            new_odata_type="#microsoft.graph.windows10CompliancePolicy",
            singular="policy",
            filters=(
                ("Platform", "@odata.type", tuple((GRAPH + v, n) for v, n in COMPLIANCE_TYPES)),
            ),
        ),
        Section(
            "configuration-policies",
            "Configuration policies",
            "configurationPolicies",
            "policies",
            tabs=POLICY_TABS,
            columns=(("Platforms", "platforms"), ("Last modified", "lastModifiedDateTime")),
            new_properties='{"platforms": "windows10", "technologies": "mdm"}',
            name_field="name",
            singular="policy",
        ),
        Section(
            "device-categories",
            "Device categories",
            "deviceCategories",
            "tenant",
            columns=(("Description", "description"),),
            singular="category",
        ),
        Section(
            "roles",
            "Roles",
            "roleDefinitions",
            "roles",
            tabs=ROLE_TABS,
            columns=(("Built-in", "isBuiltIn"), ("Description", "description")),
            new_properties=(
                '{"rolePermissions": [{"resourceActions": [{"allowedResourceActions": '
                '["Microsoft.Intune_MobileApps_Read"]}]}]}'
            ),
            singular="role",
        ),
        Section(
            "role-assignments",
            "Role assignments",
            "roleAssignments",
            "roles",
            tabs=ROLE_TABS,
            columns=(
                ("Role", "roleDefinitionId"),
                ("Admin groups", "members"),
                ("Scope tags", "roleScopeTagIds"),
            ),
            new_properties='{"members": [], "roleScopeTagIds": ["0"], "roleDefinitionId": ""}',
            singular="assignment",
        ),
        Section(
            "scope-tags",
            "Scope tags",
            "roleScopeTags",
            "scope-tags",
            columns=(("Built-in", "isBuiltIn"), ("Description", "description")),
            singular="scope tag",
        ),
        Section(
            "users",
            "Users",
            "users",
            "directory",
            tabs=DIRECTORY_TABS,
            columns=(("User principal name", "userPrincipalName"), ("Enabled", "accountEnabled")),
            search=("displayName", "userPrincipalName"),
            search_label="Search by name or user principal name",
            new_properties=(
                '{"userPrincipalName": "someone@example.com", "passwordProfile": {"password": ""}}'
            ),
            singular="user",
        ),
        Section(
            "groups",
            "Groups",
            "groups",
            "directory",
            tabs=DIRECTORY_TABS,
            columns=(
                ("Security", "securityEnabled"),
                ("Mail-enabled", "mailEnabled"),
                ("Description", "description"),
            ),
            new_properties='{"securityEnabled": true, "mailEnabled": false}',
            singular="group",
        ),
    )
}
