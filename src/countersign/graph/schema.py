"""Graph's types as Microsoft's metadata defines them: every property's name, type, enum
members and whether a client may write it, for the types Countersign serves.

The data comes from `schema.json`, generated from the `msgraph-beta-sdk` models by
`scripts/generate-graph-schema.py` (see there how to refresh it); this module reads it with the
standard library only. The small API:

    properties("win32LobApp")      -> {name: Property}, inherited ones included, in name order
    prop = properties("managedDevice")["managementState"]
    prop.type, prop.enum_members, prop.writable, prop.collection, prop.navigation
    is_a("win32LobApp", "mobileApp") -> True;  derived_types("mobileApp") -> [...]
    check_value(...), check_body(...)  validation against the schema (errors name the property)
    serve(type_name, values, include_unknown_enum_members) -> every structural property

Evolvable enums follow Graph: members after `unknownFutureValue` reach only clients that send
`Prefer: include-unknown-enum-members`; others read `unknownFutureValue`. Countersign's own
members (a device's end states, its extra policy types) are appended after it (`EXTENSIONS`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from countersign.domain.errors import ValidationFailed

SCHEMA_FILE = Path(__file__).with_name("schema.json")
GRAPH = "#microsoft.graph."
UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
PREFER_UNKNOWN = "include-unknown-enum-members"

# Countersign's members of Graph enums, after unknownFutureValue (evolvable-enum rules apply).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "managementState": ("wiped", "retired"),
    "operationApprovalPolicyType": (
        "compliancePolicy",
        "configurationPolicy",
        "operationApprovalPolicy",
    ),
}
PRIMITIVES = frozenset(
    {"string", "boolean", "int", "number", "guid", "dateTime", "date", "time", "duration",
     "base64", "untyped"}
)  # fmt: skip


@dataclass(frozen=True)
class Property:
    name: str
    type: str  # a primitive above, an enum name or a complex/entity type name
    collection: bool = False
    enum: bool = False
    navigation: bool = False
    read_only: bool = False

    @property
    def writable(self) -> bool:
        return not (self.read_only or self.navigation)

    @property
    def complex(self) -> bool:
        return not self.enum and self.type not in PRIMITIVES

    @property
    def enum_members(self) -> tuple[str, ...] | None:
        return members(self.type) if self.enum else None


@cache
def _document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def served_paths() -> dict[str, dict[str, list[str]]]:
    """Per served collection path, the segments Graph offers under the collection and under
    an item (lower case, no separators), from the SDK's request builders."""
    paths: dict[str, dict[str, list[str]]] = _document().get("paths", {})
    return paths


def sdk_version() -> str:
    return str(_document()["sdk"])


def known(type_name: str) -> bool:
    return _name(type_name) in _document()["types"]


def _name(type_name: str) -> str:
    return type_name.removeprefix("#").removeprefix("microsoft.graph.")


def _parse(name: str, text: str) -> Property:
    words = text.split()
    type_text = words[0]
    return Property(
        name=name,
        type=type_text.removesuffix("[]"),
        collection=type_text.endswith("[]"),
        enum="enum" in words[1:],
        navigation="nav" in words[1:],
        read_only="ro" in words[1:],
    )


@cache
def properties(type_name: str) -> dict[str, Property]:
    """Every property of a type, its base types' included (empty for an unknown type)."""
    types = _document()["types"]
    chain, name = [], _name(type_name)
    while name in types:
        chain.append(types[name])
        name = types[name].get("base", "")
    found: dict[str, Property] = {}
    if chain and chain[-1]["kind"] == "entity":
        found["id"] = Property("id", "string")
    for entry in reversed(chain):
        for prop, text in entry["properties"].items():
            found[prop] = _parse(prop, text)
    return dict(sorted(found.items()))


def base_of(type_name: str) -> str | None:
    base = _document()["types"].get(_name(type_name), {}).get("base")
    return str(base) if base else None


def is_a(type_name: str, base: str) -> bool:
    name: str | None = _name(type_name)
    while name:
        if name == _name(base):
            return True
        name = base_of(name)
    return False


@cache
def derived_types(type_name: str) -> tuple[str, ...]:
    """The type and every type derived from it, directly or not."""
    return tuple(n for n in _document()["types"] if is_a(n, type_name))


@cache
def members(enum_name: str) -> tuple[str, ...]:
    entry = _document()["enums"].get(enum_name)
    if entry is None:
        return ()
    found = tuple(entry["members"])
    extra = tuple(m for m in EXTENSIONS.get(enum_name, ()) if m not in found)
    if extra and UNKNOWN_FUTURE_VALUE not in found:
        found += (UNKNOWN_FUTURE_VALUE,)
    return found + extra


def is_flags(enum_name: str) -> bool:
    return bool(_document()["enums"].get(enum_name, {}).get("flags"))


def evolvable_member(enum_name: str, value: str, include_unknown: bool) -> str:
    """What a client reads for a member: members after unknownFutureValue only when asked."""
    if include_unknown:
        return value
    known_members = members(enum_name)
    if UNKNOWN_FUTURE_VALUE not in known_members or value not in known_members:
        return value
    cut = known_members.index(UNKNOWN_FUTURE_VALUE)
    return value if known_members.index(value) < cut else UNKNOWN_FUTURE_VALUE


# -- validation ------------------------------------------------------------------------------


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"Property '{where}': {message}.", target=where)


def _check_primitive(kind: str, value: Any, where: str) -> Any:
    if kind == "untyped":
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(where, "must be a boolean")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise _fail(where, "must be a whole number")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, "must be a number")
        return value
    if not isinstance(value, str):
        raise _fail(where, "must be a string")
    if kind == "dateTime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(where, "must be an ISO 8601 date and time") from None
    elif kind == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise _fail(where, "must be a date (YYYY-MM-DD)")
    elif kind == "guid" and not re.fullmatch(
        r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value
    ):
        raise _fail(where, "must be a GUID")
    elif kind == "duration" and not re.fullmatch(
        r"-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", value
    ):
        raise _fail(where, "must be an ISO 8601 duration")
    elif kind == "base64":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _fail(where, "must be base64") from None
    return value


def _check_enum(enum_name: str, value: Any, where: str) -> Any:
    allowed = members(enum_name)
    if not isinstance(value, str):
        raise _fail(where, f"must be one of {', '.join(allowed)}")
    parts = [p.strip() for p in value.split(",")] if is_flags(enum_name) else [value]
    for part in parts:
        if part not in allowed:
            raise _fail(where, f"'{part}' is not one of {', '.join(allowed)}")
    return value


def check_value(prop: Property, value: Any, where: str) -> Any:
    """A value for `prop` as Graph would accept it (read-only parts of complex values dropped)."""
    if value is None:
        return None
    if prop.collection:
        if not isinstance(value, list):
            raise _fail(where, "must be a collection")
        single = Property(prop.name, prop.type, enum=prop.enum)
        return [check_value(single, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if prop.enum:
        return _check_enum(prop.type, value, where)
    if not prop.complex:
        return _check_primitive(prop.type, value, where)
    if not isinstance(value, dict):
        raise _fail(where, f"must be a {prop.type} object")
    return check_object(prop.type, value, where)


def _object_type(declared: str, value: Mapping[str, Any], where: str) -> str:
    raw = value.get("@odata.type")
    if raw is None:
        return declared
    if not isinstance(raw, str) or not known(raw) or not is_a(raw, declared):
        raise ValidationFailed(
            f"Property '{where}.@odata.type': '{raw}' is not {declared} or a type derived from it.",
            target=f"{where}.@odata.type",
        )
    return _name(raw)


def check_object(declared: str, value: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A complex value: known properties, typed; read-only ones dropped; unknown ones a 400."""
    type_name = _object_type(declared, value, where)
    props = properties(type_name)
    result: dict[str, Any] = {}
    if "@odata.type" in value:
        result["@odata.type"] = GRAPH + type_name
    for key, item in value.items():
        if key == "@odata.type" or key.endswith("@odata.type"):
            continue
        name = f"{where}.{key}"
        prop = props.get(key)
        if prop is None:
            raise ValidationFailed(f"Property '{key}' does not exist on {type_name}.", target=name)
        if prop.read_only:
            continue
        result[key] = check_value(prop, item, name)
    return result


def check_body(
    type_name: str,
    body: Mapping[str, Any],
    *,
    skip: frozenset[str] = frozenset(),
    include_read_only: bool = False,
) -> dict[str, Any]:
    """A top-level write body: every property Graph lets a client write for the type, typed.

    Read-only properties are ignored as Graph ignores them (kept with `include_read_only`, for
    an inventory feed); navigation properties and unknown names are a 400 naming the property.
    Names in `skip` are left to the caller's own checks."""
    props = properties(type_name)
    result: dict[str, Any] = {}
    for key, value in body.items():
        if key in skip or key == "id" or key.startswith("@odata.") or "@odata." in key:
            continue  # an id is the server's to give (Graph ignores one in a create body)
        prop = props.get(key)
        if prop is None:
            raise ValidationFailed(
                f"Property '{key}' does not exist on {_name(type_name)}.", target=key
            )
        if prop.read_only and not include_read_only:
            continue
        if prop.navigation:
            raise ValidationFailed(
                f"Property '{key}' is a navigation property; it is not written in this body.",
                target=key,
            )
        result[key] = check_value(prop, value, key)
    return result


def split_body(
    type_name: str, body: Mapping[str, Any], own: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A write body in two: the names in `own` (the properties Countersign keeps with rules of
    its own: columns, credentials, references), as given for the caller's own model, and every
    other property checked against Graph's schema (`check_body`), to keep as it is.

    Read-only properties are ignored in both parts, as Graph ignores them."""
    props = properties(type_name)
    mine = {k: v for k, v in body.items() if k in own and not (k in props and props[k].read_only)}
    return mine, check_body(type_name, body, skip=own)


def patched(kept: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Kept properties after a PATCH: a property set to null is no longer kept (served null)."""
    merged = {**kept, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def read_only(type_name: str) -> frozenset[str]:
    return frozenset(n for n, p in properties(type_name).items() if p.read_only)


# -- serving ---------------------------------------------------------------------------------


def _serve_value(prop: Property, value: Any, include_unknown: bool) -> Any:
    if value is None:
        return None
    if prop.collection and isinstance(value, list):
        single = Property(prop.name, prop.type, enum=prop.enum)
        return [_serve_value(single, item, include_unknown) for item in value]
    if prop.enum and isinstance(value, str):
        if is_flags(prop.type):
            return value
        return evolvable_member(prop.type, value, include_unknown)
    if prop.complex and isinstance(value, dict):
        type_name = _name(value.get("@odata.type") or prop.type)
        sub = properties(type_name) or properties(prop.type)
        return {
            k: (_serve_value(sub[k], v, include_unknown) if k in sub else v)
            for k, v in value.items()
        }
    return value


def serve(
    type_name: str, values: Mapping[str, Any], include_unknown: bool = False
) -> dict[str, Any]:
    """An entity as Graph serves it: every structural property of its type (null where
    Countersign has no value), then Countersign's own extension properties."""
    props = properties(type_name)
    body: dict[str, Any] = {k: values[k] for k in values if k.startswith("@odata.")}
    if "id" in values:
        body["id"] = values["id"]
    for name, prop in props.items():
        if prop.navigation:
            if name in values:
                body[name] = values[name]
            continue
        body[name] = _serve_value(prop, values.get(name), include_unknown)
    for name, value in values.items():
        if name not in body:
            body[name] = value
    return body


def evolve(type_name: str, values: dict[str, Any], include_unknown: bool) -> dict[str, Any]:
    """Only the evolvable-enum rule applied to an entity's values (no properties added)."""
    if include_unknown:
        return values
    props = properties(type_name)
    return {
        k: (_serve_value(props[k], v, include_unknown) if k in props else v)
        for k, v in values.items()
    }


def prefers_unknown_members(prefer_header: str | None) -> bool:
    return PREFER_UNKNOWN in (prefer_header or "").lower()
