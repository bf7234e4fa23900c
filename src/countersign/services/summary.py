"""The change summary a reviewer reads: built once, at submission, from the frozen change.

`build_summary` turns a planned change into a title a person would say and labelled rows, with
every id resolved to a name *now* (and the names kept, so a later rename or delete cannot change
what was approved). The request page, Home and the request lists, the CLI, every notification
and the API (`displayPayload.summary`) show this one value; `current_names` tells, at read time,
which of the frozen names have changed since.

Shape (JSON):

    {"title": str,
     "rows": [{"label", "before", "after", "change", "added"?, "removed"?, "refs"?}],
     "content": [{"label", "text", "diff"?}],          # script bodies, decoded
     "assignments": [{"mode", "target", "intent", "change", "refs"}],
     "devices": [{"id", "name", "os", "user", "serial", "compliance", "scopeTags"}],
     "approversBefore"/"approversAfter": [names],   # access policies
     "grants": [str],                                # what the change grants
     "refs": {id: {"kind", "name"}}}                 # every name resolved, as frozen

Secrets never enter it: a password or a service principal secret reads "set (hidden)".
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.domain import eligibility as e
from countersign.domain import summary as s
from countersign.domain.actors import Caller
from countersign.services.changes import ASSIGN, CREATE, DELETE, UPDATE, Change, Plan
from countersign.store import tables as t

SCRIPT_CONTENT = {
    "scriptContent": "Script content",
    "detectionScriptContent": "Detection script",
    "remediationScriptContent": "Remediation script",
}
RESOURCE_COLLECTIONS = frozenset(
    {
        "mobileApps",
        "deviceManagementScripts",
        "deviceHealthScripts",
        "deviceShellScripts",
        "deviceCompliancePolicies",
        "configurationPolicies",
        "deviceCategories",
    }
)
# Properties whose values are ids of a kind of object.
ID_LISTS = {
    "roleScopeTagIds": "scopeTag",
    "scopeTagIds": "scopeTag",
    "approverGroupIds": "group",
    "members": "group",
}
ID_VALUES = {"roleDefinitionId": "role"}
ALL_TAGS = "*"


# -- names -------------------------------------------------------------------------------------


class Names:
    """Resolves ids to the names people know them by, and remembers every name it gave."""

    def __init__(self, session: Session, tenant_id: str):
        self.session = session
        self.tenant_id = tenant_id
        self.refs: dict[str, dict[str, str]] = {}

    def _keep(self, object_id: str, kind: str, name: str) -> str:
        self.refs.setdefault(object_id, {"kind": kind, "name": name})
        return name

    def user(self, user_id: str) -> str:
        return self.of("user", user_id)

    def group(self, group_id: str) -> str:
        return self.of("group", group_id)

    def principal(self, principal_id: str) -> tuple[str, str]:
        """(kind, name) of a user, group or service principal."""
        for kind in ("user", "group", "servicePrincipal"):
            name = label_of(self.session, self.tenant_id, kind, principal_id)
            if not name.endswith(NOT_FOUND):
                return kind, self._keep(principal_id, kind, name)
        return "object", self._keep(principal_id, "principal", f"{principal_id}{NOT_FOUND}")

    def of(self, kind: str, object_id: str) -> str:
        known = self.refs.get(object_id)
        if known is not None and known["kind"] == kind:
            return known["name"]  # one lookup per object, however often it is named
        return self._keep(object_id, kind, label_of(self.session, self.tenant_id, kind, object_id))

    def many(self, kind: str, ids: Iterable[Any]) -> list[str]:
        return [self.of(kind, str(i)) for i in ids]


NOT_FOUND = " (no longer exists)"


# Kinds of named objects: their table and the column people know them by.
_NAMED: dict[str, tuple[Any, str]] = {
    "group": (t.Group, "display_name"),
    "servicePrincipal": (t.ServicePrincipal, "display_name"),
    "role": (t.RoleDefinition, "display_name"),
    "policy": (t.ApprovalPolicy, "display_name"),
    "device": (t.ManagedDevice, "device_name"),
}


def label_of(session: Session, tenant_id: str, kind: str, object_id: str) -> str:
    """The name of one object of the tenant now, or the id saying it no longer resolves."""
    row: Any
    if kind == "user":
        row = session.get(t.User, object_id)
        if row is not None and row.tenant_id == tenant_id:
            return f"{row.display_name} ({row.user_principal_name})"
    elif kind == "scopeTag":
        row = session.get(t.RoleScopeTag, (tenant_id, object_id))
        if row is not None:
            return str(row.display_name)
    elif kind in _NAMED:
        table, column = _NAMED[kind]
        row = session.get(table, object_id)
        if row is not None and row.tenant_id == tenant_id:
            return str(getattr(row, column))
    elif kind == "principal":
        for candidate in ("user", "group", "servicePrincipal"):
            name = label_of(session, tenant_id, candidate, object_id)
            if not name.endswith(NOT_FOUND):
                return name
    return f"{object_id}{NOT_FOUND}"


def current_names(session: Session, tenant_id: str, summary: dict[str, Any]) -> dict[str, str]:
    """At read time: {id: what it is called now} for every frozen name that has changed
    (renamed, or deleted: then the text says it no longer exists)."""
    changed: dict[str, str] = {}
    for object_id, ref in (summary.get("refs") or {}).items():
        now = label_of(session, tenant_id, ref.get("kind", ""), object_id)
        if now != ref.get("name") and not str(ref.get("name", "")).endswith(NOT_FOUND):
            changed[object_id] = now if not now.endswith(NOT_FOUND) else "no longer exists"
    return changed


# -- values ------------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _when(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in value:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _format(names: Names, key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in s.SECRET_PROPERTIES:
        return s.HIDDEN
    if key == "url" and isinstance(value, str):
        # A webhook URL may carry its token (Slack, Teams): the host says where it goes.
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else s.HIDDEN
    if key in ID_LISTS and isinstance(value, list):
        return s.join(names.many(ID_LISTS[key], value))
    if key in ID_VALUES and isinstance(value, str):
        return names.of(ID_VALUES[key], value)
    if key == "permissions" and isinstance(value, list):
        return s.join(_permission_labels(value))
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return s.join(s.value_label(key, v) for v in value)
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and (when := _when(value)):
        return when
    return s.value_label(key, value)


def _permission_labels(value: list[Any]) -> list[str]:
    permissions: list[str] = []
    for item in value:
        if isinstance(item, str):
            permissions.append(item)
        elif isinstance(item, dict):  # Graph's {"actions": [...]} shape
            permissions += [str(x) for x in item.get("actions") or []]
    return [s.permission_label(x) for x in sorted(set(permissions))]


def _shown_keys(document: dict[str, Any]) -> list[str]:
    keys = [
        k
        for k in document
        if k not in s.HOUSEKEEPING and not k.startswith("@odata.") and "@odata." not in k
    ]
    if "displayName" in keys and "name" in keys:
        keys.remove("name")  # a settings-catalog policy repeats its name
    return keys


def _refs_of(names: Names, key: str, *values: Any) -> list[str]:
    ids: list[str] = []
    for value in values:
        if key in ID_LISTS and isinstance(value, list):
            ids += [str(v) for v in value]
        elif key in ID_VALUES and isinstance(value, str):
            ids.append(value)
    return [i for i in dict.fromkeys(ids) if i in names.refs]


def property_rows(
    names: Names, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Labelled rows: every set property of a create, only what changes for an edit."""
    rows: list[dict[str, Any]] = []
    if before is None:
        for key in _shown_keys(after or {}):
            value = (after or {})[key]
            if _empty(value):
                continue
            rows.append(
                {
                    "label": s.property_label(key),
                    "key": key,
                    "before": None,
                    "after": _format(names, key, value),
                    "change": "set",
                    "refs": _refs_of(names, key, value),
                }
            )
        return rows
    after = after or {}
    for key in _shown_keys({**before, **after}):
        old, new = before.get(key), after.get(key)
        if old == new or (_empty(old) and _empty(new)):
            continue
        row: dict[str, Any] = {
            "label": s.property_label(key),
            "key": key,
            "before": None if _empty(old) else _format(names, key, old),
            "after": None if _empty(new) else _format(names, key, new),
            "change": "changed" if not _empty(old) and not _empty(new) else "set",
            "refs": _refs_of(names, key, old, new),
        }
        if _empty(new):
            row["change"] = "removed"
        if isinstance(old, list) and isinstance(new, list) and key != "permissions":
            row["added"] = [_format(names, key, [v]) for v in new if v not in old]
            row["removed"] = [_format(names, key, [v]) for v in old if v not in new]
        elif key == "permissions" and isinstance(old, list) and isinstance(new, list):
            old_set, new_set = set(_flat(old)), set(_flat(new))
            row["added"] = [s.permission_label(x) for x in sorted(new_set - old_set)]
            row["removed"] = [s.permission_label(x) for x in sorted(old_set - new_set)]
        rows.append(row)
    return rows


def _flat(value: list[Any]) -> list[str]:
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out += [str(x) for x in item.get("actions") or []]
    return out


def _changed_words(rows: list[dict[str, Any]], extra: Iterable[str] = ()) -> str:
    words = [s.title_word(row["key"]) for row in rows if row.get("key")] + list(extra)
    return ", ".join(dict.fromkeys(words))


def _row(label: str, after: str, *, refs: Iterable[str] = ()) -> dict[str, Any]:
    return {"label": label, "before": None, "after": after, "change": "set", "refs": list(refs)}


# -- content and assignments -------------------------------------------------------------------


def decode_script(value: Any) -> str | None:
    """Base64 script content -> text (None when it is not base64)."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff")


def content_blocks(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Any]:
    blocks: list[dict[str, Any]] = []
    for key, label in SCRIPT_CONTENT.items():
        old = decode_script((before or {}).get(key))
        new = decode_script((after or {}).get(key))
        if after is None or (old == new and before is not None):
            continue
        if before is None or old is None:
            if new is not None:
                blocks.append({"label": label, "key": key, "text": new})
            continue
        diff = [
            line.rstrip("\n")
            for line in difflib.unified_diff(
                old.splitlines(), (new or "").splitlines(), lineterm="", n=2
            )
        ][2:]  # without the ---/+++ header
        blocks.append({"label": label, "key": key, "text": new, "diff": diff})
    return blocks


def _target(names: Names, target: dict[str, Any]) -> tuple[str, str, list[str]]:
    kind = str(target.get("@odata.type", "")).removeprefix("#").removeprefix("microsoft.graph.")
    mode = "Exclude" if kind.startswith("exclusion") else "Include"
    group_id = target.get("groupId")
    if group_id:
        return mode, f"group {names.group(str(group_id))}", [str(group_id)]
    if kind == "allDevicesAssignmentTarget":
        return mode, "all devices", []
    if kind == "allLicensedUsersAssignmentTarget":
        return mode, "all users", []
    return mode, s.words(kind).lower(), []


def assignment_rows(
    names: Names, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> str:
        target = item.get("target") or {}
        return f"{target.get('@odata.type')}:{target.get('groupId')}"

    old = {key(item): item for item in before}
    new = {key(item): item for item in after}
    rows = []
    for k in dict.fromkeys([*new, *old]):
        item = new.get(k) or old[k]
        mode, target, refs = _target(names, item.get("target") or {})
        intent = item.get("intent")
        change = "unchanged"
        if k not in old:
            change = "added"
        elif k not in new:
            change = "removed"
        elif old[k].get("intent") != intent:
            change = "changed"
        rows.append(
            {
                "mode": mode,
                "target": target,
                "intent": s.value_label("intent", intent) if intent else None,
                "change": change,
                "refs": refs,
            }
        )
    return rows


# -- what it grants ----------------------------------------------------------------------------


def _exists(names: Names, kind: str, object_id: str) -> bool:
    return not label_of(names.session, names.tenant_id, kind, object_id).endswith(NOT_FOUND)


def grant_lines(
    session: Session,
    caller: Caller,
    names: Names,
    access_change: dict[str, Any],
    new_policy: str | None = None,
) -> list[str]:
    """'Alice Example (alice@…) gains: Intune Administrator permissions over all scope tags;
    can approve requests of 'Protect apps''."""
    roles = {
        role.id: (role.display_name, frozenset(role.permissions))
        for role in session.scalars(
            select(t.RoleDefinition).where(t.RoleDefinition.tenant_id == caller.tenant_id)
        )
    }
    lines: list[str] = []
    for gain in access_change.get("gains") or []:
        principal_id = str(gain.get("principalId"))
        _, who = names.principal(principal_id)
        held = caller.snapshot.access_for(principal_id).permissions
        parts: list[str] = []
        by_tags: dict[tuple[str, ...], set[str]] = {}
        for item in gain.get("permissions") or []:
            tags = tuple(sorted(str(x) for x in item.get("scopeTagIds") or []))
            by_tags.setdefault(tags, set()).add(str(item.get("permission")))
        for tags, permissions in by_tags.items():
            plural = "s" if len(tags) != 1 else ""
            reach = (
                "all scope tags"
                if ALL_TAGS in tags
                else f"scope tag{plural} {s.join(names.many('scopeTag', tags))}"
            )
            parts.append(f"{_permission_words(roles, permissions, held)} over {reach}")
        policies = [
            f"'{new_policy}'"
            if new_policy and not _exists(names, "policy", str(i))
            # An access policy this change creates has no row yet: it is the one named.
            else f"'{names.of('policy', str(i))}'"
            for i in gain.get("approvalPolicyIds") or []
        ]
        if policies:
            parts.append(f"can approve requests of {', '.join(policies)}")
        if parts:
            lines.append(f"{who} gains: {'; '.join(parts)}")
    subjects = [names.principal(str(i))[1] for i in access_change.get("subjects") or []]
    if subjects:
        lines.append(f"Changes the access of: {', '.join(subjects)}")
    credentials = [names.principal(str(i))[1] for i in access_change.get("credentials") or []]
    if credentials:
        lines.append(f"Sets the credentials of: {', '.join(credentials)}")
    return lines


def _permission_words(
    roles: dict[str, tuple[str, frozenset[str]]], gained: set[str], held: frozenset[str]
) -> str:
    """A role's name when, with what the principal held before, it now holds exactly all of a
    role's permissions (and gained nothing outside it); else the permissions' labels."""
    candidates = [
        (name, role_permissions)
        for name, role_permissions in roles.values()
        if role_permissions and gained <= role_permissions and role_permissions <= gained | held
    ]
    if candidates:
        name, _ = min(candidates, key=lambda c: (-len(c[1] & gained), len(c[1]), c[0]))
        return f"{name} permissions"
    return s.join(sorted(s.permission_label(x) for x in gained))


def approver_names(caller: Caller, names: Names, group_ids: Iterable[str]) -> list[str]:
    """Who can approve requests of a policy naming these approver groups (from the snapshot)."""
    user_ids = e.eligible_approvers(caller.snapshot, "", e.Approvers(tuple(group_ids), None))
    return sorted((names.user(user_id) for user_id in user_ids), key=str.casefold)


# -- the builder -------------------------------------------------------------------------------


def build_summary(
    session: Session,
    caller: Caller,
    change: Change,
    plan: Plan,
    access_change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The reviewer's summary of a planned change, names resolved now (see the module doc)."""
    names = Names(session, caller.tenant_id)
    summary: dict[str, Any] = {"title": "", "rows": []}
    collection = change.collection
    if collection == "operationApprovalPolicies":
        _access_policy(caller, names, change, plan, summary)
    else:  # scope tags, and anything added later, as any object
        _BUILDERS.get(collection, _generic)(names, change, plan, summary)
    if access_change:
        creates_policy = collection == "operationApprovalPolicies" and change.operation == CREATE
        new_policy = plan.target_name if creates_policy else None
        summary["grants"] = grant_lines(session, caller, names, access_change, new_policy)
    summary["refs"] = names.refs
    kept = ("title", "rows", "approversBefore", "approversAfter")
    return {k: v for k, v in summary.items() if v or k in kept}


def _what(plan: Plan) -> str:
    return s.entity_label(plan.entity_type)


def _identity_rows(names: Names, plan: Plan, document: dict[str, Any]) -> list[dict[str, Any]]:
    """What a delete shows: the object's name, type and scope tags."""
    rows = [_row("Name", plan.target_name)]
    type_label = s.odata_type_label(document.get("@odata.type"))
    if type_label:
        rows.append(_row("Type", type_label))
    if document.get("description"):
        rows.append(_row("Description", str(document["description"])))
    tags = document.get("roleScopeTagIds")
    if isinstance(tags, list) and tags:
        rows.append(_row("Scope tags", _format(names, "roleScopeTagIds", tags), refs=tags))
    return rows


def _generic(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    what, name = _what(plan), plan.target_name
    if change.operation == DELETE:
        summary["title"] = f"Delete {what} {name}"
        summary["rows"] = _identity_rows(names, plan, plan.before or {})
        return
    if change.operation == CREATE:
        summary["title"] = f"Create {what} {name}"
        summary["rows"] = property_rows(names, None, plan.after)
        return
    rows = property_rows(names, plan.before, plan.after)
    summary["rows"] = rows
    verb = s.ACTION_VERBS.get(change.action_name or "", change.action_name or "")
    if change.operation == UPDATE:
        changed = _changed_words(rows)
        summary["title"] = f"Change {what} {name}" + (f": {changed}" if changed else "")
    else:
        summary["title"] = f"{verb or change.operation} {what} {name}"


def _resource(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    what, name = _what(plan), plan.target_name
    before, after = plan.before, plan.after
    if change.operation == CREATE:
        type_label = s.odata_type_label((after or {}).get("@odata.type"))
        summary["title"] = f"Create {what} {name}" + (f" ({type_label})" if type_label else "")
        rows = property_rows(names, None, after)
        if type_label:
            rows.insert(0, _row("Type", type_label))
        summary["rows"] = rows
        summary["content"] = content_blocks(None, after)
        return
    if change.operation == DELETE:
        summary["title"] = f"Delete {what} {name}"
        summary["rows"] = _identity_rows(names, plan, before or {})
        assignments = (before or {}).get("assignments") or []
        summary["assignments"] = assignment_rows(names, assignments, assignments)
        return
    if change.operation == ASSIGN:
        summary["title"] = f"Change assignments of {what} {name}"
        summary["assignments"] = assignment_rows(
            names, (before or {}).get("assignments") or [], (after or {}).get("assignments") or []
        )
        summary["rows"] = []
        return
    rows = property_rows(names, before, after)
    content = content_blocks(before, after)
    changed = _changed_words(rows, (s.title_word(block["key"]) for block in content))
    summary["title"] = f"Change {what} {name}" + (f": {changed}" if changed else "")
    summary["rows"] = rows
    summary["content"] = content


def device_entry(names: Names, device: dict[str, Any]) -> dict[str, Any]:
    tags = device.get("roleScopeTagIds") or []
    device_id = str(device.get("id"))
    names.refs.setdefault(device_id, {"kind": "device", "name": str(device.get("deviceName"))})
    return {
        "id": device_id,
        "name": device.get("deviceName"),
        "os": " ".join(
            str(x) for x in (device.get("operatingSystem"), device.get("osVersion")) if x
        ),
        "user": device.get("userPrincipalName"),
        "serial": device.get("serialNumber"),
        "compliance": s.value_label("complianceState", device.get("complianceState")),
        "scopeTags": s.join(names.many("scopeTag", tags)),
    }


def _device_rows(change: Change) -> list[dict[str, Any]]:
    """The action's options (a wipe's keep-data switches); an unlock code stays hidden."""
    rows = []
    for key, value in change.body.items():
        if _empty(value):
            continue
        shown = s.HIDDEN if key == "macOsUnlockCode" else s.value_label(key, value)
        rows.append(_row(s.property_label(key), shown))
    return rows


def _devices(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    action = "delete" if change.operation == DELETE else change.action_name or ""
    verb = s.ACTION_VERBS.get(action, s.words(action))
    if change.operation == CREATE:
        _generic(names, change, plan, summary)
        return
    if change.target_ids:
        acted = [d for d in (plan.before or {}).get("value") or [] if isinstance(d, dict)]
        devices = [device_entry(names, d) for d in acted]
        shown = [str(d["name"]) for d in devices[:3]]
        more = f" and {len(devices) - 3} more" if len(devices) > 3 else ""
        count = f"{len(devices)} device{'s' if len(devices) != 1 else ''}"
        summary["title"] = f"{verb} {count}" + (f": {', '.join(shown)}{more}" if shown else "")
        rows = _device_rows(change)
        skipped = [
            i for i in dict.fromkeys(change.target_ids) if i not in {d["id"] for d in devices}
        ]
        if skipped:
            rows.append(
                _row(
                    "Not acted on (not found, not allowed or already leaving)",
                    s.join(names.many("device", skipped)),
                )
            )
        summary["rows"] = rows
        summary["devices"] = devices
        return
    device = plan.before or {}
    entry = device_entry(names, device)
    user = f"user {entry['user']}" if entry["user"] else "no user"
    summary["title"] = f"{verb} device {entry['name']} ({device.get('operatingSystem')}, {user})"
    summary["rows"] = _device_rows(change)
    summary["devices"] = [entry]


def _group(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    name = plan.target_name
    if change.action_name in ("addMember", "removeMember") and plan.after:
        member_id = str(plan.after.get("memberId"))
        kind, member = names.principal(member_id)
        kind_word = s.entity_label(kind) if kind != "object" else "object"
        if change.target_id:
            names.refs.setdefault(change.target_id, {"kind": "group", "name": name})
        if change.action_name == "addMember":
            summary["title"] = f"Add {kind_word} {member} to group {name}"
            summary["rows"] = [
                {**_row("Member added", member, refs=[member_id]), "change": "added"},
                _row("Group", name, refs=[change.target_id or ""]),
            ]
        else:
            summary["title"] = f"Remove {kind_word} {member} from group {name}"
            summary["rows"] = [
                {
                    "label": "Member removed",
                    "before": member,
                    "after": None,
                    "change": "removed",
                    "refs": [member_id],
                },
                _row("Group", name, refs=[change.target_id or ""]),
            ]
        return
    if change.operation == CREATE:
        summary["title"] = f"Create group {name}"
        rows = property_rows(names, None, plan.after)
        members = [
            names.principal(str(ref).rstrip("/").rsplit("/", 1)[-1])
            for ref in (plan.after or {}).get("members@odata.bind") or []
        ]
        if members:
            rows.append(_row("Members", s.join(m for _, m in members)))
        summary["rows"] = rows
        return
    _generic(names, change, plan, summary)


def _user(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    # The body may carry a password (or its hash): only its presence is ever shown.
    password = isinstance(change.body.get("passwordProfile"), dict)
    if change.operation == CREATE:
        after = plan.after or {}
        summary["title"] = (
            f"Create user {after.get('displayName')} ({after.get('userPrincipalName')})"
        )
        rows = property_rows(names, None, after)
    elif change.operation == DELETE:
        label = names.user(change.target_id or "")
        summary["title"] = f"Delete user {label}"
        summary["rows"] = _identity_rows(names, plan, plan.before or {})
        summary["rows"].append(
            _row("User principal name", str((plan.before or {}).get("userPrincipalName")))
        )
        return
    else:
        label = names.user(change.target_id or "")
        rows = property_rows(names, plan.before, plan.after)
        changed = _changed_words(rows, ["password"] if password else [])
        summary["title"] = f"Change user {label}" + (f": {changed}" if changed else "")
    if password:
        rows.append({**_row("Password", s.HIDDEN), "key": "passwordProfile"})
        profile = change.body["passwordProfile"]
        if profile.get("forceChangePasswordNextSignIn"):
            rows.append(_row("Must change password at next sign-in", "Yes"))
    summary["rows"] = rows


def _service_principal(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    name = plan.target_name
    if change.target_id:
        names.refs.setdefault(change.target_id, {"kind": "servicePrincipal", "name": name})
    if change.action_name == "addPassword":
        credential = change.body.get("passwordCredential") or {}
        summary["title"] = f"Add a secret to service principal {name}"
        rows = [_row("Secret", s.HIDDEN)]
        if credential.get("displayName"):
            rows.append(_row("Description", str(credential["displayName"])))
        if credential.get("endDateTime"):
            rows.append(_row("Expires", _format(names, "endDateTime", credential["endDateTime"])))
        summary["rows"] = rows
        return
    if change.action_name == "removePassword":
        key_id = str(change.body.get("keyId"))
        secrets = (plan.before or {}).get("passwordCredentials") or []
        described = next(
            (c.get("displayName") or c.get("hint") for c in secrets if c.get("keyId") == key_id),
            None,
        )
        summary["title"] = f"Remove a secret from service principal {name}"
        summary["rows"] = [_row("Secret", f"{described or 'secret'} ({key_id})")]
        return
    _generic(names, change, plan, summary)


def _with_permissions(plan: Plan) -> Plan:
    """A role definition's permissions as one flat list, from Graph's `rolePermissions`."""

    def flat(document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        actions = sorted(
            {
                str(action)
                for permission in document.get("rolePermissions") or []
                for resource in permission.get("resourceActions") or []
                for action in resource.get("allowedResourceActions") or []
            }
        )
        return {**document, "permissions": actions}

    return dataclasses.replace(plan, before=flat(plan.before), after=flat(plan.after))


def _role_definition(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    _generic(names, change, _with_permissions(plan), summary)


def _role_assignment(names: Names, change: Change, plan: Plan, summary: dict[str, Any]) -> None:
    name = plan.target_name
    if change.operation == CREATE:
        after = dict(plan.after or {})
        role = names.of("role", str(after.get("roleDefinitionId")))
        groups = names.many("group", after.get("members") or [])
        plural = "s" if len(groups) != 1 else ""
        summary["title"] = f"Assign role {role} to group{plural} {s.join(groups)} ({name})"
        rows = property_rows(names, None, after)
        summary["rows"] = rows
        return
    _generic(names, change, plan, summary)
    if change.operation == DELETE:
        before = plan.before or {}
        role = names.of("role", str(before.get("roleDefinitionId")))
        groups = names.many("group", before.get("members") or [])
        summary["rows"] += [
            _row("Role", role, refs=[str(before.get("roleDefinitionId"))]),
            _row("Member groups", s.join(groups), refs=before.get("members") or []),
        ]


def _access_policy(
    caller: Caller, names: Names, change: Change, plan: Plan, summary: dict[str, Any]
) -> None:
    _generic(names, change, plan, summary)
    before_groups = (plan.before or {}).get("approverGroupIds")
    after_groups = (plan.after or {}).get("approverGroupIds")
    if change.operation == DELETE:
        summary["rows"] += [
            _row(
                "Policy type", _format(names, "policyType", (plan.before or {}).get("policyType"))
            ),
            _row("Platforms", s.platforms_label((plan.before or {}).get("policyPlatform"))),
            _row(
                "Approver groups",
                _format(names, "approverGroupIds", before_groups or []),
                refs=before_groups or [],
            ),
        ]
    if before_groups is not None:
        summary["approversBefore"] = approver_names(caller, names, before_groups)
    if change.operation != DELETE and after_groups is not None:
        summary["approversAfter"] = approver_names(caller, names, after_groups)
    elif change.operation == DELETE:
        summary["approversAfter"] = []


# The summary of each collection's changes; a collection not named here reads as any object.
_BUILDERS: dict[str, Callable[[Names, Change, Plan, dict[str, Any]], None]] = {
    **dict.fromkeys(RESOURCE_COLLECTIONS, _resource),
    "managedDevices": _devices,
    "groups": _group,
    "users": _user,
    "servicePrincipals": _service_principal,
    "roleAssignments": _role_assignment,
    "roleDefinitions": _role_definition,
}
