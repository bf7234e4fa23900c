"""The admin center's object pages, declared as data over the API's collection registry.

A section names a Graph collection (the Change handler's name); its page lights up as soon as
a router mounts that collection (api.collections.SPECS). Until then the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from countersign.api.collections import SPECS, CollectionSpec


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
            columns=(("Members (group ids)", "members"), ("Scope tags", "roleScopeTagIds")),
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
