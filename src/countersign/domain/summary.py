"""What a person reads about a change: labels for properties, types and enum values, and the
plain-text form of a change summary (for the CLI and notifications).

Pure: no I/O. The summary itself is built in `services/summary.py` from the frozen change, with
names resolved at submission.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Properties that are bookkeeping, never what a reviewer decides on.
HOUSEKEEPING = frozenset(
    {
        "id",
        "version",
        "createdDateTime",
        "lastModifiedDateTime",
        "enrolledDateTime",
        "lastSyncDateTime",
        "deviceActionResults",
        "platform",  # derived from the type; the type label says it
        "isBuiltIn",
        "isBuiltInRoleDefinition",
        "rolePermissions",  # the same permissions as `permissions`
        "scopeMembers",
        "resourceScopes",
        "scopeType",  # the same fact as `allScopeTags`
        "policySet",  # the same facts as policyType/policyPlatform
        "roleDefinition@odata.bind",  # shown as roleDefinitionId
        "members@odata.bind",  # shown as members
        "passwordCredentials",
        "passwordProfile",  # shown as "Password: set (hidden)", never its value
        "assignments",  # shown as its own section
        "scriptContent",  # shown as content
        "detectionScriptContent",
        "remediationScriptContent",
    }
)

PROPERTY_LABELS: dict[str, str] = {
    "displayName": "Name",
    "name": "Name",
    "description": "Description",
    "roleScopeTagIds": "Scope tags",
    "installCommandLine": "Install command",
    "uninstallCommandLine": "Uninstall command",
    "fileName": "File name",
    "informationUrl": "Information URL",
    "privacyInformationUrl": "Privacy URL",
    "isFeatured": "Featured",
    "appStoreUrl": "App store URL",
    "appUrl": "App URL",
    "bundleId": "Bundle ID",
    "packageId": "Package ID",
    "packageIdentifier": "Package identifier",
    "runAsAccount": "Run as",
    "enforceSignatureCheck": "Enforce signature check",
    "runAs32Bit": "Run in 32-bit PowerShell",
    "retryCount": "Retries",
    "blockExecutionNotifications": "Hide notifications",
    "executionFrequency": "Run every",
    "passwordRequired": "Require a password",
    "passwordMinimumLength": "Minimum password length",
    "osMinimumVersion": "Minimum OS version",
    "osMaximumVersion": "Maximum OS version",
    "storageRequireEncryption": "Require encryption",
    "securityBlockJailbrokenDevices": "Block jailbroken devices",
    "scheduledActionsForRule": "Actions for noncompliance",
    "platforms": "Platforms",
    "technologies": "Technologies",
    "settings": "Settings",
    "templateReference": "Template",
    "policyType": "Policy type",
    "policyPlatform": "Platforms",
    "approverGroupIds": "Approver groups",
    "approvalsRequired": "Approvals required",
    "autoComplete": "Complete automatically when approved",
    "requestLifetimeInDays": "Request lifetime (days)",
    "scopeTagIds": "Scope tags",
    "excludedApplicationIds": "Excluded applications (appId)",
    "stages": "Stages",
    "approvalWindowHours": "Approval window (hours)",
    "completionWindowHours": "Completion window after approval (hours)",
    "changeFreezeWindows": "Change freeze windows",
    "userPrincipalName": "User principal name",
    "mail": "E-mail",
    "mailNickname": "Mail nickname",
    "accountEnabled": "Account enabled",
    "jobTitle": "Job title",
    "securityEnabled": "Security group",
    "mailEnabled": "Mail-enabled",
    "groupTypes": "Group types",
    "members": "Member groups",
    "roleDefinitionId": "Role",
    "allScopeTags": "All scope tags",
    "permissions": "Permissions",
    "appId": "Application ID",
    "deviceName": "Device name",
    "operatingSystem": "Operating system",
    "osVersion": "OS version",
    "serialNumber": "Serial number",
    "complianceState": "Compliance",
    "managementState": "Management state",
    "keepEnrollmentData": "Keep enrollment data",
    "keepUserData": "Keep user data",
    "macOsUnlockCode": "macOS unlock code",
    "persistEsimDataPlan": "Keep the eSIM data plan",
    "useProtectedWipe": "Protected wipe",
    "publisher": "Publisher",
    "developer": "Developer",
    "owner": "Owner",
    "notes": "Notes",
    "channelType": "Channel type",
    "url": "URL",
    "smtpHost": "SMTP server",
    "smtpPort": "SMTP port",
    "smtpSecurity": "SMTP security",
    "smtpUsername": "SMTP user name",
    "fromAddress": "From",
    "toAddresses": "To",
    "secret": "Secret",
    "hasSecret": "Secret set",
}

# Short words for an edit's title: "Change access policy X: approvers".
TITLE_WORDS: dict[str, str] = {
    "approverGroupIds": "approvers",
    "excludedApplicationIds": "exclusions",
    "scopeTagIds": "scope",
    "stages": "stages",
    "displayName": "name",
    "name": "name",
    "roleScopeTagIds": "scope tags",
    "scriptContent": "script",
    "detectionScriptContent": "detection script",
    "remediationScriptContent": "remediation script",
    "passwordProfile": "password",
    "members": "members",
    "roleDefinitionId": "role",
}

# Graph base type -> how a person names one.
ENTITY_LABELS: dict[str, str] = {
    "mobileApp": "app",
    "deviceManagementScript": "PowerShell script",
    "deviceHealthScript": "remediation script",
    "deviceShellScript": "macOS shell script",
    "deviceCompliancePolicy": "compliance policy",
    "deviceManagementConfigurationPolicy": "configuration policy",
    "deviceCategory": "device category",
    "managedDevice": "device",
    "roleDefinition": "role",
    "roleAssignment": "role assignment",
    "roleScopeTag": "scope tag",
    "operationApprovalPolicy": "access policy",
    "user": "user",
    "group": "group",
    "servicePrincipal": "service principal",
}

# @odata.type (without '#microsoft.graph.') -> words.
ODATA_TYPE_LABELS: dict[str, str] = {
    "win32LobApp": "Windows app (Win32)",
    "windowsMobileMSI": "Windows MSI line-of-business app",
    "winGetApp": "Microsoft Store app (new)",
    "microsoftStoreForBusinessApp": "Microsoft Store for Business app",
    "officeSuiteApp": "Microsoft 365 Apps",
    "iosStoreApp": "iOS store app",
    "iosLobApp": "iOS line-of-business app",
    "iosVppApp": "iOS volume-purchase app",
    "managedIOSStoreApp": "Managed iOS store app",
    "androidManagedStoreApp": "Managed Google Play app",
    "androidStoreApp": "Android store app",
    "androidLobApp": "Android line-of-business app",
    "macOSDmgApp": "macOS app (DMG)",
    "macOSLobApp": "macOS line-of-business app",
    "macOSPkgApp": "macOS app (PKG)",
    "macOsVppApp": "macOS volume-purchase app",
    "webApp": "Web link",
    "windows10CompliancePolicy": "Windows 10 and later",
    "windows81CompliancePolicy": "Windows 8.1 and later",
    "iosCompliancePolicy": "iOS/iPadOS",
    "androidWorkProfileCompliancePolicy": "Android Enterprise work profile",
    "androidDeviceOwnerCompliancePolicy": "Android Enterprise fully managed",
    "androidCompliancePolicy": "Android device administrator",
    "macOSCompliancePolicy": "macOS",
}

PLATFORM_LABELS: dict[str, str] = {
    "notApplicable": "All platforms",
    "androidDeviceAdministrator": "Android device administrator",
    "androidEnterprise": "Android Enterprise",
    "iOSiPadOS": "iOS/iPadOS",
    "macOS": "macOS",
    "windows10AndLater": "Windows 10 and later",
    "windows81AndLater": "Windows 8.1 and later",
    "windows10X": "Windows 10X",
    # configurationPolicy `platforms`
    "windows10": "Windows 10 and later",
    "iOS": "iOS/iPadOS",
    "android": "Android",
    "aosp": "Android (AOSP)",
    "linux": "Linux",
}

POLICY_TYPE_LABELS: dict[str, str] = {
    "app": "Apps",
    "script": "Scripts",
    "role": "Role",
    "deviceWipe": "Device wipe",
    "deviceRetire": "Device retire",
    "deviceDelete": "Device delete",
    "deviceDeprovision": "Device deprovision",
    "compliancePolicy": "Compliance policies",
    "configurationPolicy": "Configuration policies",
    "tenantConfiguration": "Tenant configuration",
    "operationApprovalPolicy": "Access policies",
}

# Enum values per property.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "runAsAccount": {"system": "System", "user": "Signed-in user"},
    "technologies": {
        "mdm": "MDM",
        "configManager": "Configuration Manager",
        "microsoftSense": "Microsoft Defender for Endpoint",
        "appleRemoteManagement": "Apple remote management",
    },
    "complianceState": {
        "unknown": "Unknown",
        "compliant": "Compliant",
        "noncompliant": "Not compliant",
        "conflict": "Conflict",
        "error": "Error",
        "inGracePeriod": "In grace period",
        "configManager": "Managed by Configuration Manager",
    },
    "intent": {
        "available": "Available",
        "required": "Required",
        "uninstall": "Uninstall",
        "availableWithoutEnrollment": "Available without enrollment",
    },
    "policyType": POLICY_TYPE_LABELS,
    "channelType": {
        "email": "E-mail (SMTP)",
        "webhook": "Webhook",
        "slack": "Slack",
        "teams": "Microsoft Teams",
    },
    "smtpSecurity": {"none": "None", "starttls": "STARTTLS", "tls": "TLS"},
}

ACTION_VERBS = {"wipe": "Wipe", "retire": "Retire", "delete": "Delete", "syncDevice": "Sync"}

OPERATION_VERBS = {
    "Create": "Create",
    "Update": "Change",
    "Delete": "Delete",
    "Assign": "Change assignments of",
}

HIDDEN = "set (hidden)"
# Properties whose values are secrets: shown only as set (hidden), never their value.
SECRET_PROPERTIES = frozenset(
    {"secret", "password", "secretText", "smtpPassword", "clientSecret", "macOsUnlockCode"}
)


def words(name: str) -> str:
    """'installCommandLine' -> 'Install command line' (for properties without a label)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.removeprefix("@odata."))
    return spaced[:1].upper() + spaced[1:].lower()


def property_label(name: str) -> str:
    return PROPERTY_LABELS.get(name) or words(name)


def title_word(name: str) -> str:
    """A property as a title names it: 'Minimum OS version' -> 'minimum OS version'."""
    if name in TITLE_WORDS:
        return TITLE_WORDS[name]
    return " ".join(w if w.isupper() else w.lower() for w in property_label(name).split())


def entity_label(entity_type: str) -> str:
    return ENTITY_LABELS.get(entity_type) or words(entity_type).lower()


def odata_type_label(odata_type: str | None) -> str | None:
    if not odata_type:
        return None
    name = odata_type.removeprefix("#").removeprefix("microsoft.graph.")
    return ODATA_TYPE_LABELS.get(name)


def platforms_label(value: str | None) -> str:
    """'windows10AndLater,windows81AndLater' -> 'Windows 10 and later, Windows 8.1 and later'."""
    parts = [part.strip() for part in str(value or "").split(",") if part.strip()]
    return ", ".join(PLATFORM_LABELS.get(part, part) for part in parts) or "All platforms"


def value_label(name: str, value: Any) -> str:
    """A scalar property value in words."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name in ("platforms", "policyPlatform"):
        return platforms_label(str(value))
    labels = VALUE_LABELS.get(name)
    if labels is not None and str(value) in labels:
        return labels[str(value)]
    return str(value)


_ACTION_WORDS = {
    "Read": "read",
    "Create": "create",
    "Update": "update",
    "Delete": "delete",
    "Assign": "assign",
    "Wipe": "wipe",
    "Retire": "retire",
    "SyncDevice": "sync",
    "ApprovalForMultiAdminApproval": "approve requests",
}


def permission_label(permission: str) -> str:
    """'Microsoft.Intune_MobileApps_Create' -> 'Mobile apps: create';
    'microsoft.directory/users/password/update' -> 'Users: password update'."""
    if permission.startswith("Microsoft.Intune_"):
        parts = permission.removeprefix("Microsoft.Intune_").split("_")
        if len(parts) == 2:
            area, action = parts
            if area == "MultiAdminApproval":
                return "Approval for Multi Admin Approval"
            area_words = words(area.replace("Polices", "Policies"))
            return f"{area_words}: {_ACTION_WORDS.get(action, words(action).lower())}"
    if permission.startswith("microsoft.directory/"):
        area, *rest = permission.removeprefix("microsoft.directory/").split("/")
        action = " ".join(part for part in rest if part not in ("standard", "basic"))
        return f"{words(area)}: {words(action).lower() if action else 'all'}"
    return permission


def summary_lines(summary: dict[str, Any] | None) -> list[str]:
    """The summary as plain-text lines (no title): rows, content, assignments, devices,
    what it grants. For the CLI and notifications."""
    if not summary:
        return []
    lines: list[str] = []
    for row in summary.get("rows") or []:
        lines.append(f"{row['label']}: {row_text(row)}")
    for block in summary.get("content") or []:
        if block.get("diff"):
            lines.append(f"{block['label']} (changed lines):")
            lines += [f"  {line}" for line in block["diff"]]
        elif block.get("text") is not None:
            lines.append(f"{block['label']}:")
            lines += [f"  {line}" for line in str(block["text"]).splitlines()]
    assignments = summary.get("assignments") or []
    if assignments:
        lines.append("Assignments:")
        lines += [f"  {assignment_text(a)}" for a in assignments]
    devices = summary.get("devices") or []
    if devices:
        lines.append(f"Devices ({len(devices)}):")
        lines += [f"  {device_text(d)}" for d in devices]
    for key, heading in (
        ("approversBefore", "Can approve now"),
        ("approversAfter", "Can approve after"),
    ):
        if key in summary:
            names = summary[key]
            lines.append(f"{heading}: {', '.join(names) if names else 'nobody'}")
    grants = summary.get("grants") or []
    if grants:
        lines.append("What it grants:")
        lines += [f"  {grant}" for grant in grants]
    return lines


def summary_facts(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The summary as (label, value) pairs: one per row, then content, assignments, devices,
    approvers and grants (for notifications' fact lists)."""
    if not summary:
        return []
    facts = [(str(row["label"]), row_text(row)) for row in summary.get("rows") or []]
    for block in summary.get("content") or []:
        lines = block.get("diff") or str(block.get("text") or "").splitlines()
        label = f"{block['label']} (changed lines)" if block.get("diff") else block["label"]
        facts.append((label, "\n".join(lines)))
    if summary.get("assignments"):
        facts.append(("Assignments", "; ".join(assignment_text(a) for a in summary["assignments"])))
    if summary.get("devices"):
        facts.append(
            (
                f"Devices ({len(summary['devices'])})",
                "; ".join(device_text(d) for d in summary["devices"]),
            )
        )
    for key, heading in (
        ("approversBefore", "Can approve now"),
        ("approversAfter", "Can approve after"),
    ):
        if key in summary:
            facts.append((heading, ", ".join(summary[key]) or "nobody"))
    if summary.get("grants"):
        facts.append(("What it grants", "; ".join(summary["grants"])))
    return facts


def row_text(row: dict[str, Any]) -> str:
    """'before → after'; for a list, what is added and removed."""
    parts = [f"{word} {', '.join(row[word])}" for word in ("added", "removed") if row.get(word)]
    if parts:
        return "; ".join(parts)
    before, after = row.get("before"), row.get("after")
    if before is not None and after is not None:
        return f"{before} → {after}"
    if after is not None:
        return str(after)
    return f"{before} (removed)" if row.get("change") == "removed" else str(before)


def assignment_text(assignment: dict[str, Any]) -> str:
    parts = [f"{assignment['mode']} {assignment['target']}"]
    if assignment.get("intent"):
        parts.append(f"({assignment['intent']})")
    if assignment.get("change") in ("added", "removed"):
        parts.append(f"[{assignment['change']}]")
    return " ".join(parts)


def device_text(device: dict[str, Any]) -> str:
    fields = (
        device.get("name"),
        device.get("os"),
        device.get("user") or "no user",
        f"serial {device.get('serial') or '—'}",
        device.get("compliance"),
        f"scope tags {device.get('scopeTags') or '—'}",
    )
    return ", ".join(str(f) for f in fields if f)


def join(names: Iterable[str]) -> str:
    items = list(names)
    return ", ".join(items) if items else "none"
