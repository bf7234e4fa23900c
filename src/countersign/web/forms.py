"""The admin center's forms, one per object type, as data: which Graph properties each blade
shows, with labels, help text, controls and required marks.

The tables below are derived from the request bodies the services accept today
(services/resources.py, services/directory.py, services/rbac.py). They are deliberately plain
rows (`FormField`), so they can later be generated from the Graph schema instead.

Converting between a form and a Graph body also lives here: `body_from_form` builds the body a
form describes, `changed_only` keeps what an edit changed, `form_values` fills a form from an
object's current Graph JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from countersign.domain import permissions as p
from countersign.domain.errors import ValidationFailed

GRAPH = "#microsoft.graph."

# Controls: text, textarea, number, switch, select, password, script (base64 content shown as
# text, with a file upload), multi (checkboxes over `source`), permissions (role permissions).
TEXT, TEXTAREA, NUMBER, SWITCH, SELECT, PASSWORD, SCRIPT, MULTI = (
    "text",
    "textarea",
    "number",
    "switch",
    "select",
    "password",
    "script",
    "multi",
)
PERMISSIONS = "permissions"


@dataclass(frozen=True)
class FormField:
    name: str  # the Graph property; dotted for nested ones (passwordProfile.password)
    label: str
    control: str = TEXT
    help: str = ""
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for select
    source: str = ""  # where a select/multi takes its options: groups, scopeTags, roles
    default: Any = None
    types: tuple[str, ...] = ()  # the @odata.type names it applies to (empty: every type)
    create_only: bool = False  # shown on create only (cannot change afterwards)
    maxlength: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    @property
    def key(self) -> str:
        """The HTML form field name (ids and names cannot carry every Graph character)."""
        return "f_" + self.name.replace(".", "__").replace("@", "_at_")


@dataclass(frozen=True)
class ObjectForm:
    # The types one may create, with their names in words; empty when the type is fixed.
    types: tuple[tuple[str, str], ...] = ()
    fields: tuple[FormField, ...] = ()
    name_field: str = "displayName"

    def fields_for(self, odata_type: str | None, *, create: bool) -> list[FormField]:
        name = (odata_type or "").removeprefix(GRAPH)
        return [
            f
            for f in self.fields
            if (not f.types or name in f.types) and (create or not f.create_only)
        ]

    def type_label(self, odata_type: str | None) -> str:
        name = (odata_type or "").removeprefix(GRAPH)
        return dict(self.types).get(name, name)


def _name(label: str = "Name", name: str = "displayName", limit: int = 256) -> FormField:
    return FormField(name, label, required=True, maxlength=limit)


DESCRIPTION = FormField("description", "Description", TEXTAREA, maxlength=1024)
SCOPE_TAGS = FormField(
    "roleScopeTagIds",
    "Scope tags",
    MULTI,
    "Which administrators see and manage it: those whose role assignment reaches a tag.",
    source="scopeTags",
    default=["0"],
)
RUN_AS = FormField(
    "runAsAccount",
    "Run this script using the logged on credentials",
    SELECT,
    choices=(("system", "No (system)"), ("user", "Yes (logged-on user)")),
    default="system",
)
SIGNATURE_CHECK = FormField("enforceSignatureCheck", "Enforce script signature check", SWITCH)

# Type names in words, as Intune's lists and "Select app type" show them.
APP_TYPES = (
    ("win32LobApp", "Windows app (Win32)"),
    ("iosStoreApp", "iOS store app"),
    ("androidManagedStoreApp", "Managed Google Play store app"),
    ("macOSDmgApp", "macOS app (DMG)"),
    ("winGetApp", "Microsoft Store app (new)"),
    ("webApp", "Web link"),
)
COMPLIANCE_TYPES = (
    ("windows10CompliancePolicy", "Windows 10 and later"),
    ("iosCompliancePolicy", "iOS/iPadOS"),
    ("androidWorkProfileCompliancePolicy", "Android Enterprise (work profile)"),
    ("macOSCompliancePolicy", "macOS"),
)
# Every type name a list may show, in words (more than a form creates).
TYPE_NAMES: dict[str, str] = {
    **dict(APP_TYPES),
    "windowsMobileMSI": "Windows MSI line-of-business app",
    "microsoftStoreForBusinessApp": "Microsoft Store for Business app",
    "officeSuiteApp": "Microsoft 365 Apps (Windows)",
    "iosLobApp": "iOS line-of-business app",
    "iosVppApp": "iOS volume-purchase app",
    "managedIOSStoreApp": "Managed iOS store app",
    "androidStoreApp": "Android store app",
    "androidLobApp": "Android line-of-business app",
    "macOSLobApp": "macOS line-of-business app",
    "macOSPkgApp": "macOS app (PKG)",
    "macOsVppApp": "macOS volume-purchase app",
    **{k: f"{v} compliance policy" for k, v in COMPLIANCE_TYPES},
    "windows81CompliancePolicy": "Windows 8.1 and later compliance policy",
    "androidDeviceOwnerCompliancePolicy": "Android Enterprise (fully managed) compliance policy",
    "androidCompliancePolicy": "Android device administrator compliance policy",
    "deviceManagementScript": "Windows PowerShell script",
    "deviceHealthScript": "Remediation",
    "deviceShellScript": "macOS shell script",
    "managedDevice": "Managed device",
}

PLATFORM_CHOICES = (
    ("windows10", "Windows 10 and later"),
    ("macOS", "macOS"),
    ("iOS", "iOS/iPadOS"),
    ("androidEnterprise", "Android Enterprise"),
    ("linux", "Linux"),
)

WIN32 = ("win32LobApp",)
FORMS: dict[str, ObjectForm] = {
    "apps": ObjectForm(
        types=APP_TYPES,
        fields=(
            _name(),
            DESCRIPTION,
            FormField("publisher", "Publisher", required=True, maxlength=1024),
            FormField(
                "fileName",
                "App package file",
                help="The .intunewin file's name.",
                required=True,
                types=WIN32,
            ),
            FormField(
                "installCommandLine",
                "Install command",
                help='The command line that installs the app, e.g. "setup.exe /quiet".',
                required=True,
                types=WIN32,
            ),
            FormField(
                "uninstallCommandLine",
                "Uninstall command",
                required=True,
                types=WIN32,
            ),
            FormField(
                "appStoreUrl",
                "App store URL",
                help="The app's page in the App Store.",
                required=True,
                types=("iosStoreApp",),
            ),
            FormField("bundleId", "Bundle ID", types=("iosStoreApp", "macOSDmgApp")),
            FormField(
                "packageId",
                "Package ID",
                help="The app's package name in Google Play, e.g. com.contoso.app.",
                required=True,
                types=("androidManagedStoreApp",),
            ),
            FormField("fileName", "DMG file", help="The .dmg file's name.", types=("macOSDmgApp",)),
            FormField(
                "packageIdentifier",
                "Package identifier",
                required=True,
                types=("winGetApp",),
            ),
            FormField("appUrl", "App URL", required=True, types=("webApp",)),
            FormField("developer", "Developer"),
            FormField("owner", "Owner"),
            FormField("informationUrl", "Information URL"),
            FormField("privacyInformationUrl", "Privacy URL"),
            FormField("notes", "Notes", TEXTAREA),
            FormField(
                "isFeatured",
                "Show this as a featured app in the Company Portal",
                SWITCH,
                default=False,
            ),
            SCOPE_TAGS,
        ),
    ),
    "scripts": ObjectForm(
        fields=(
            _name(),
            DESCRIPTION,
            FormField(
                "fileName",
                "Script file name",
                help="Shown to administrators; e.g. cleanup.ps1.",
                required=True,
                maxlength=256,
            ),
            FormField(
                "scriptContent",
                "Script",
                SCRIPT,
                "Upload a .ps1 file or type the script; it is stored base64-encoded.",
                required=True,
            ),
            RUN_AS,
            SIGNATURE_CHECK,
            FormField("runAs32Bit", "Run script in 64-bit PowerShell host: No (32-bit)", SWITCH),
            SCOPE_TAGS,
        )
    ),
    "remediations": ObjectForm(
        fields=(
            _name(),
            DESCRIPTION,
            FormField("publisher", "Publisher"),
            FormField(
                "detectionScriptContent",
                "Detection script",
                SCRIPT,
                "Exit code 1 means the issue was detected and remediation runs.",
                required=True,
            ),
            FormField("remediationScriptContent", "Remediation script", SCRIPT),
            RUN_AS,
            SIGNATURE_CHECK,
            FormField("runAs32Bit", "Run script in 32-bit PowerShell", SWITCH),
            SCOPE_TAGS,
        )
    ),
    "shell-scripts": ObjectForm(
        fields=(
            _name(),
            DESCRIPTION,
            FormField("fileName", "Script file name", required=True, maxlength=256),
            FormField("scriptContent", "Script", SCRIPT, "Upload a .sh file.", required=True),
            RUN_AS,
            FormField(
                "retryCount",
                "Max number of times to retry if script fails",
                NUMBER,
                minimum=0,
                maximum=10,
                default=0,
            ),
            FormField(
                "executionFrequency",
                "Script frequency",
                help="An ISO 8601 duration such as PT15M or P1D; empty: run once.",
            ),
            FormField("blockExecutionNotifications", "Hide script notifications", SWITCH),
            SCOPE_TAGS,
        )
    ),
    "compliance-policies": ObjectForm(
        types=COMPLIANCE_TYPES,
        fields=(
            _name(),
            DESCRIPTION,
            FormField("passwordRequired", "Require a password to unlock devices", SWITCH),
            FormField(
                "passwordMinimumLength",
                "Minimum password length",
                NUMBER,
                "From 4 to 16 characters; empty: not configured.",
                minimum=4,
                maximum=16,
            ),
            FormField(
                "osMinimumVersion",
                "Minimum OS version",
                help="e.g. 10.0.19045 for Windows, 17.0 for iOS.",
            ),
            FormField("osMaximumVersion", "Maximum OS version"),
            FormField("storageRequireEncryption", "Require encryption of data storage", SWITCH),
            FormField(
                "securityBlockJailbrokenDevices",
                "Block jailbroken or rooted devices",
                SWITCH,
                types=(
                    "iosCompliancePolicy",
                    "androidWorkProfileCompliancePolicy",
                ),
            ),
            SCOPE_TAGS,
        ),
    ),
    "configuration-policies": ObjectForm(
        name_field="name",
        fields=(
            _name(name="name"),
            DESCRIPTION,
            FormField(
                "platforms",
                "Platform",
                SELECT,
                "Cannot be changed after the policy is created.",
                required=True,
                choices=PLATFORM_CHOICES,
                default="windows10",
                create_only=True,
            ),
            FormField(
                "technologies",
                "Technologies",
                SELECT,
                choices=(
                    ("mdm", "MDM"),
                    ("microsoftSense", "Microsoft Defender for Endpoint"),
                    ("configManager", "Configuration Manager"),
                    ("appleRemoteManagement", "Apple remote management"),
                ),
                default="mdm",
            ),
            SCOPE_TAGS,
        ),
    ),
    "device-categories": ObjectForm(fields=(_name(), DESCRIPTION)),
    "users": ObjectForm(
        fields=(
            _name("Display name"),
            FormField(
                "userPrincipalName",
                "User principal name",
                help="The sign-in name, e.g. alex@contoso.com.",
                required=True,
                maxlength=256,
            ),
            FormField("mail", "Email (notifications)", maxlength=256),
            FormField(
                "passwordProfile.password",
                "Password",
                PASSWORD,
                "At least 8 characters. Never shown again; leave empty to keep the current one.",
                maxlength=256,
            ),
            FormField("accountEnabled", "Account enabled", SWITCH, default=True),
        )
    ),
    "groups": ObjectForm(
        fields=(
            _name("Group name"),
            DESCRIPTION,
            FormField(
                "securityEnabled",
                "Security group",
                SWITCH,
                "Approver groups must be security groups.",
                default=True,
                create_only=True,
            ),
            FormField("mailEnabled", "Mail-enabled", SWITCH, default=False, create_only=True),
        )
    ),
    "roles": ObjectForm(
        fields=(
            _name(),
            DESCRIPTION,
            FormField(
                "rolePermissions",
                "Permissions",
                PERMISSIONS,
                "The resource actions the role allows.",
                required=True,
                source="permissions",
            ),
            SCOPE_TAGS,
        )
    ),
    "role-assignments": ObjectForm(
        fields=(
            _name(),
            DESCRIPTION,
            FormField(
                "roleDefinitionId",
                "Role",
                SELECT,
                required=True,
                source="roles",
                create_only=True,
            ),
            FormField(
                "members",
                "Admin groups",
                MULTI,
                "Members of these groups hold the role.",
                source="groups",
                default=[],
            ),
            FormField(
                "roleScopeTagIds",
                "Scope (tags)",
                MULTI,
                "The objects the role reaches: those carrying one of these tags.",
                source="scopeTags",
                default=["0"],
            ),
        )
    ),
    "scope-tags": ObjectForm(fields=(_name(limit=128), DESCRIPTION)),
}


def form_for(slug: str) -> ObjectForm | None:
    return FORMS.get(slug)


# -- values --------------------------------------------------------------------------------


def _get(item: Mapping[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def decode_script(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value


def encode_script(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


def _permissions_of(value: Any) -> list[str]:
    found: list[str] = []
    for rp in value or []:
        for ra in rp.get("resourceActions", []) if isinstance(rp, dict) else []:
            found.extend(ra.get("allowedResourceActions", []) if isinstance(ra, dict) else [])
    return sorted(set(found))


def form_values(fields: list[FormField], item: Mapping[str, Any] | None) -> dict[str, Any]:
    """What each control shows: the object's current values, or the defaults of a new one.

    A password is never filled in (it is never read back from anywhere)."""
    values: dict[str, Any] = {}
    for f in fields:
        current = f.default if item is None else _get(item, f.name)
        if f.control == PASSWORD:
            current = ""
        elif f.control == SCRIPT:
            current = decode_script(current)
        elif f.control == PERMISSIONS:
            current = _permissions_of(current)
        elif f.control == MULTI:
            current = list(current or [])
        elif f.control == SWITCH:
            current = bool(current)
        elif current is None:
            current = ""
        values[f.key] = current
    return values


def values_from_form(
    fields: list[FormField],
    form: Mapping[str, str],
    lists: Mapping[str, list[str]],
    files: Mapping[str, bytes],
) -> dict[str, Any]:
    """The controls' values as submitted (the same shapes `form_values` gives)."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.control in (MULTI, PERMISSIONS):
            values[f.key] = list(lists.get(f.key, []))
        elif f.control == SWITCH:
            values[f.key] = form.get(f.key) in ("on", "true", "1")
        elif f.control == SCRIPT:
            uploaded = files.get(f.key + "_file")
            if uploaded:
                try:
                    values[f.key] = uploaded.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValidationFailed(
                        f"{f.label}: the uploaded file is not UTF-8 text.", target=f.name
                    ) from None
            else:
                # Browsers send a textarea's line breaks as CRLF; scripts keep what was typed.
                values[f.key] = form.get(f.key, "").replace("\r\n", "\n")
        else:
            values[f.key] = form.get(f.key, "")
    return values


def _graph_value(f: FormField, value: Any) -> Any:
    """A control's value as the Graph property takes it (None: leave the property out)."""
    if f.control == SWITCH:
        return bool(value)
    if f.control == MULTI:
        return list(value)
    if f.control == PERMISSIONS:
        if not value:
            return None
        return [{"resourceActions": [{"allowedResourceActions": sorted(value)}]}]
    if f.control == SCRIPT:
        return encode_script(value) if value else None
    text = str(value).strip() if f.control != PASSWORD else str(value)
    if text == "":
        return None
    if f.control == NUMBER:
        try:
            return int(text)
        except ValueError:
            raise ValidationFailed(f"{f.label} must be a whole number.", target=f.name) from None
    return text


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        body = body.setdefault(part, {})
    body[parts[-1]] = value


def _required_check(f: FormField, value: Any) -> None:
    if f.required and f.control != PASSWORD and value in (None, "", []):
        raise ValidationFailed(f"{f.label} is required.", target=f.name)


def advanced_properties(text: str) -> dict[str, Any]:
    """The Advanced box: Graph properties the form lacks, as a JSON object."""
    try:
        extra = json.loads(text or "{}")
    except ValueError:
        raise ValidationFailed(
            "Advanced: other properties must be a JSON object.", target="properties"
        ) from None
    if not isinstance(extra, dict):
        raise ValidationFailed(
            "Advanced: other properties must be a JSON object.", target="properties"
        )
    return extra


def body_from_form(
    fields: list[FormField], values: Mapping[str, Any], odata_type: str | None, advanced: str
) -> dict[str, Any]:
    """The create body a filled-in form describes."""
    body: dict[str, Any] = {}
    if odata_type:
        body["@odata.type"] = GRAPH + odata_type.removeprefix(GRAPH)
    for f in fields:
        value = _graph_value(f, values.get(f.key))
        _required_check(f, value)
        if value is not None:
            _set(body, f.name, value)
    body.update(advanced_properties(advanced))
    return body


def _same(f: FormField, current: Any, new: Any) -> bool:
    if f.control == SCRIPT:
        return decode_script(current).replace("\r\n", "\n") == decode_script(new)
    if f.control == PERMISSIONS:
        return _permissions_of(current) == _permissions_of(new)
    if f.control == MULTI:
        return sorted(current or []) == sorted(new or [])
    if f.control == SWITCH:
        return bool(current) == bool(new)
    return bool(current == new)


def changed_only(
    fields: list[FormField], values: Mapping[str, Any], item: Mapping[str, Any], advanced: str
) -> dict[str, Any]:
    """The PATCH body of an edit: only the properties whose value the form changed."""
    body: dict[str, Any] = {}
    for f in fields:
        new = _graph_value(f, values.get(f.key))
        if f.control == PASSWORD:
            if new:  # an empty password field keeps the current password
                _set(body, f.name, new)
            continue
        current = _get(item, f.name)
        if new is None and current in (None, ""):
            continue
        _required_check(f, new)
        if not _same(f, current, new):
            # A cleared optional text is sent as null (Graph's way of removing a value).
            _set(body, f.name, new)
    extra = advanced_properties(advanced)
    body.update({k: v for k, v in extra.items() if item.get(k) != v})
    return body


def review_rows(
    fields: list[FormField],
    body: Mapping[str, Any],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Label and value of each property a body sets, for the Review step (a password: 'set');
    `names` gives the pickers' ids their names (by the field's source)."""
    rows: list[tuple[str, str]] = []
    known = set()
    for f in fields:
        known.add(f.name.split(".")[0])
        value = _get(body, f.name)
        if f.name not in body and "." not in f.name:
            continue
        if f.control == PASSWORD:
            if value:
                rows.append((f.label.lower(), "set"))
            continue
        if value is None and "." in f.name:
            continue
        rows.append((f.label, display(f, value, names)))
    for key, value in body.items():
        if key in known or key == "@odata.type":
            continue
        if key == "passwordProfile":
            rows.append(("password", "set"))
            continue
        rows.append((key, json.dumps(value, ensure_ascii=False)))
    return rows


def display(f: FormField, value: Any, names: Mapping[str, Mapping[str, str]] | None = None) -> str:
    if value is None or value == "":
        return "—"
    lookup = (names or {}).get(f.source) if f.source else None
    if lookup is not None and f.control != PERMISSIONS:
        if isinstance(value, list):
            return ", ".join(lookup.get(str(v), str(v)) for v in value) or "—"
        return lookup.get(str(value), str(value))
    if f.control == SWITCH:
        return "Yes" if value else "No"
    if f.control == SCRIPT:
        return decode_script(value)
    if f.control == PERMISSIONS:
        return ", ".join(_permissions_of(value))
    if f.control == SELECT and f.choices:
        return dict(f.choices).get(str(value), str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def permission_choices() -> list[str]:
    return sorted(p.ALL)


@dataclass
class Options:
    """Names for the ids a form's pickers offer (filled per request from the database)."""

    by_source: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def label(self, source: str, value: str) -> str:
        return dict(self.by_source.get(source, [])).get(value, value)
