"""Write src/countersign/graph/schema.json from Microsoft's own metadata, as the
`msgraph-beta-sdk` package carries it (a development dependency; the runtime never imports it).

How it works: every model class of the SDK has `get_field_deserializers()`, a dict from each
Graph property name to a function that reads it from a parse node (`n.get_str_value()`,
`n.get_object_value(Win32LobAppRule)`, `n.get_collection_of_enum_values(WindowsArchitecture)`).
Calling each function with a *recording* parse node tells the property's type without any
network or metadata document. Derived types come from `create_from_discriminator_value`
(the `#microsoft.graph.x` names it maps), so every subtype of `mobileApp` or
`deviceCompliancePolicy` is found. Complex types are followed transitively; navigation
properties (entity-typed) are recorded but not followed, except the ones Countersign accepts
inline (a configuration policy's `settings`).

Read-only properties: the SDK has no flag for them; its docstrings do ("... This property is
read-only."), so a property whose comment says read-only, plus `id` and the usual server-kept
timestamps, is marked read-only — except where the comment says it only of users synced from
on-premises (a user's `mobilePhone`, `businessPhones`): Countersign's users are cloud users.

Refresh for a newer SDK:

    .venv/bin/pip install -U 'msgraph-beta-sdk'     # or the version wanted
    .venv/bin/python scripts/generate-graph-schema.py
    git diff --stat src/countersign/graph/           # review, run the tests, commit

The file records the SDK version it was made from (`"sdk"`).
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "countersign" / "graph" / "schema.json"
MODELS = "msgraph_beta.generated.models"

# The entity types Countersign serves (each with every derived type).
ROOTS = (
    "mobileApp",
    "mobileAppAssignment",
    "deviceCompliancePolicy",
    "deviceCompliancePolicyAssignment",
    "deviceManagementScript",
    "deviceManagementScriptAssignment",
    "deviceManagementScriptGroupAssignment",
    "deviceHealthScript",
    "deviceHealthScriptAssignment",
    "deviceShellScript",
    "deviceManagementConfigurationPolicy",
    "deviceManagementConfigurationPolicyAssignment",
    "deviceManagementConfigurationSetting",
    "deviceCategory",
    "managedDevice",
    "deviceAndAppManagementRoleDefinition",
    "roleDefinition",
    "deviceAndAppManagementRoleAssignment",
    "roleAssignment",
    "roleScopeTag",
    "user",
    "group",
    "servicePrincipal",
    "operationApprovalPolicy",
    "operationApprovalRequest",
    "operationApprovalRequestEntityStatus",
    "auditEvent",
    "bulkManagedDeviceActionResult",
    # The two singletons the collections hang from: their navigation properties name every
    # Intune collection, served or not (an unserved one answers 501, not 404).
    "deviceManagement",
    "deviceAppManagement",
)
# The served collections' request builders in the SDK: the segments Graph offers under each
# (actions, functions, navigations), so a segment Countersign lacks answers 501 NotImplemented.
SERVED_PATHS = (
    "deviceAppManagement/mobileApps",
    "deviceManagement/deviceManagementScripts",
    "deviceManagement/deviceHealthScripts",
    "deviceManagement/deviceShellScripts",
    "deviceManagement/deviceCompliancePolicies",
    "deviceManagement/configurationPolicies",
    "deviceManagement/deviceCategories",
    "deviceManagement/managedDevices",
    "deviceManagement/roleDefinitions",
    "deviceManagement/roleAssignments",
    "deviceManagement/roleScopeTags",
    "deviceManagement/operationApprovalPolicies",
    "deviceManagement/operationApprovalRequests",
    "users",
    "groups",
    "servicePrincipals",
)
# Navigation properties Countersign takes inline on create (followed like complex types).
INLINE_NAVIGATION = {("deviceManagementConfigurationPolicy", "settings")}
SERVER_KEPT = {"id", "createdDateTime", "lastModifiedDateTime"}
READ_ONLY_TEXT = re.compile(r"read-?only", re.IGNORECASE)
# "Read-only for users synced from on-premises directory": writable for cloud users, which are
# the only ones Countersign has.
SYNCED_ONLY = re.compile(r"synced|on-?premises", re.IGNORECASE)


def says_read_only(note: str) -> bool:
    """Whether a docstring says the property is read-only (not only for synced users)."""
    sentences = re.split(r"(?<=\.)\s+", note)
    return any(READ_ONLY_TEXT.search(s) and not SYNCED_ONLY.search(s) for s in sentences)


def module_name(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()


def load_class(type_name: str) -> type[Any] | None:
    """The SDK class for a Graph type name ('win32LobApp' -> Win32LobApp)."""
    candidates = [module_name(type_name)]
    # Names like 'iOSVppApp' or 'macOSDmgApp' split differently from their module names.
    candidates.append(re.sub(r"_+", "_", module_name(type_name.replace("OS", "Os"))))
    # deviceManagement is also a namespace: its entity type lives inside the package.
    candidates.append(f"{module_name(type_name)}.{module_name(type_name)}")
    for candidate in candidates:
        try:
            module = importlib.import_module(f"{MODELS}.{candidate}")
        except ImportError:
            continue
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and value.__name__[0].lower() + value.__name__[1:]
                in (type_name, type_name.replace("OS", "Os"))
                and hasattr(value, "get_field_deserializers")
            ):
                return value
    return None


def graph_name(cls: type[Any]) -> str:
    default = getattr(cls, "odata_type", None)
    if isinstance(default, str) and default.startswith("#microsoft.graph."):
        return default.removeprefix("#microsoft.graph.")
    name = cls.__name__
    return name[0].lower() + name[1:]


class Recorder:
    """A parse node that remembers which reader a property used and with what type."""

    def __init__(self) -> None:
        self.kind: Any = None

    def _set(self, value: Any) -> None:
        self.kind = value
        return None

    def get_str_value(self) -> None:
        return self._set("string")

    def get_bool_value(self) -> None:
        return self._set("boolean")

    def get_int_value(self) -> None:
        return self._set("int")

    def get_float_value(self) -> None:
        return self._set("number")

    def get_uuid_value(self) -> None:
        return self._set("guid")

    def get_datetime_value(self) -> None:
        return self._set("dateTime")

    def get_date_value(self) -> None:
        return self._set("date")

    def get_time_value(self) -> None:
        return self._set("time")

    def get_timedelta_value(self) -> None:
        return self._set("duration")

    def get_bytes_value(self) -> None:
        return self._set("base64")

    def get_object_value(self, cls: type[Any]) -> None:
        return self._set(("object", cls))

    def get_enum_value(self, cls: type[Any]) -> None:
        return self._set(("enum", cls))

    def get_collection_of_enum_values(self, cls: type[Any]) -> list[Any]:
        self._set(("enums", cls))
        return []

    def get_collection_of_object_values(self, cls: type[Any]) -> list[Any]:
        self._set(("objects", cls))
        return []

    def get_collection_of_primitive_values(self, cls: type[Any] | None) -> list[Any]:
        primitive = {str: "string", bool: "boolean", int: "int", float: "number"}
        self._set(("primitives", primitive.get(cls, getattr(cls, "__name__", "string"))))
        return []

    def get_child_node(self, _name: str) -> Recorder:
        return self


def derived_names(cls: type[Any]) -> list[str]:
    try:
        source = inspect.getsource(cls.create_from_discriminator_value)
    except (OSError, TypeError):
        return []
    names = re.findall(r'"#microsoft\.graph\.([A-Za-z0-9]+)"', source)
    return [n for n in dict.fromkeys(names) if n != graph_name(cls)]


def comments(cls: type[Any]) -> dict[str, str]:
    """Each dataclass field's preceding comment (the SDK's description of the property)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    found, last = {}, ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            last = stripped
        elif match := re.match(r"([a-z_0-9]+): Optional", stripped):
            found[match.group(1)] = last
            last = ""
    return found


def own_fields(cls: type[Any]) -> dict[str, Any]:
    instance = cls()
    fields = instance.get_field_deserializers()
    parent = cls.__mro__[1]
    inherited = set()
    if hasattr(parent, "get_field_deserializers") and parent.__name__ not in ("Parsable",):
        try:
            inherited = set(parent().get_field_deserializers())
        except TypeError:
            inherited = set()
    return {k: v for k, v in fields.items() if k not in inherited and k != "@odata.type"}


def python_field(name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return snake


def is_entity(cls: type[Any]) -> bool:
    return any(c.__name__ == "Entity" for c in cls.__mro__)


class Builder:
    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.enums: dict[str, dict[str, Any]] = {}
        self.queue: list[type[Any]] = []

    def enum(self, cls: type[enum.Enum], flags: bool) -> str:
        name = cls.__name__[0].lower() + cls.__name__[1:]
        if name not in self.enums:
            entry: dict[str, Any] = {"members": [m.value for m in cls]}
            if flags:
                entry["flags"] = True
            self.enums[name] = entry
        elif flags:
            self.enums[name]["flags"] = True
        return name

    def add(self, cls: type[Any]) -> str:
        name = graph_name(cls)
        if name not in self.types:
            self.types[name] = {}
            self.queue.append(cls)
        return name

    def run(self) -> None:
        while self.queue:
            self.describe(self.queue.pop())

    def describe(self, cls: type[Any]) -> None:
        name = graph_name(cls)
        parent = cls.__mro__[1]
        entry: dict[str, Any] = {}
        if hasattr(parent, "get_field_deserializers") and parent.__name__ != "Entity":
            entry["base"] = self.add(parent)
        entry["kind"] = "entity" if is_entity(cls) else "complex"
        notes = comments(cls)
        annotations = {
            k: str(v)
            for c in reversed(cls.__mro__)
            for k, v in getattr(c, "__annotations__", {}).items()
        }
        properties: dict[str, Any] = {}
        for prop, reader in sorted(own_fields(cls).items()):
            recorder = Recorder()
            reader(recorder)
            kind = recorder.kind
            field = python_field(prop)
            note = notes.get(field, "")
            flags = {}
            if prop in SERVER_KEPT or says_read_only(note):
                flags["readOnly"] = True
            if isinstance(kind, str):
                spec: dict[str, Any] = {"type": kind}
            elif kind is None:
                spec = {"type": "untyped"}
            else:
                tag, target = kind
                if tag == "primitives":
                    spec = {"type": target, "collection": True}
                elif tag in ("enum", "enums"):
                    # A flags enum reads as a collection of members but is one value in the model.
                    is_flags = tag == "enums" and "list[" not in annotations.get(field, "list[")
                    spec = {"type": self.enum(target, is_flags), "enum": True}
                    if tag == "enums" and not is_flags:
                        spec["collection"] = True
                else:
                    nav = is_entity(target) and (name, prop) not in INLINE_NAVIGATION
                    spec = {"type": graph_name(target)}
                    if tag == "objects":
                        spec["collection"] = True
                    if nav:
                        spec["navigation"] = True
                    else:
                        self.add(target)
                        for derived in derived_names(target):
                            derived_cls = load_class(derived)
                            if derived_cls is not None:
                                self.add(derived_cls)
            spec.update(flags)
            properties[prop] = spec
        entry["properties"] = properties
        derived = [n for n in derived_names(cls) if load_class(n) is not None]
        for derived_name in derived:
            derived_cls = load_class(derived_name)
            assert derived_cls is not None
            self.add(derived_cls)
        self.types[name] = entry


def compact(spec: dict[str, Any]) -> str:
    """{'type': 'string', 'collection': True, 'readOnly': True} -> 'string[] ro' (smaller file)."""
    text = spec["type"] + ("[]" if spec.get("collection") else "")
    marks = [
        m
        for m, key in (("enum", "enum"), ("nav", "navigation"), ("ro", "readOnly"))
        if spec.get(key)
    ]
    return " ".join([text, *marks])


def builder_segments(path: str) -> dict[str, list[str]]:
    """The SDK's request-builder folders under a collection and under its item, as segment
    keys (lower case, no underscores: 'remote_lock' -> 'remotelock'); type casts left out."""
    package = importlib.import_module("msgraph_beta")
    assert package.__file__ is not None
    root = Path(package.__file__).parent.joinpath(
        "generated", *(module_name(p) for p in path.split("/"))
    )

    def names(folder: Path) -> list[str]:
        found = []
        for child in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (
                child.is_dir()
                and child.name not in ("item", "__pycache__")
                and not child.name.startswith("graph_")
            ):
                found.append(child.name.split("_with_")[0].replace("_", ""))
        return found

    return {"collection": names(root), "item": names(root / "item")}


def main() -> None:
    builder = Builder()
    for root in ROOTS:
        cls = load_class(root)
        if cls is None:
            sys.exit(f"no SDK class for {root}")
        builder.add(cls)
    builder.run()
    types = {
        name: {
            **({"base": entry["base"]} if "base" in entry else {}),
            "kind": entry["kind"],
            "properties": {k: compact(v) for k, v in entry["properties"].items()},
        }
        for name, entry in sorted(builder.types.items())
    }
    document = {
        "sdk": importlib.metadata.version("msgraph-beta-sdk"),
        "types": types,
        "enums": dict(sorted(builder.enums.items())),
        "paths": {path: builder_segments(path) for path in SERVED_PATHS},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"{OUT}: {len(types)} types, {len(builder.enums)} enums, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
