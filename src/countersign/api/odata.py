"""OData query options ($filter, $orderby, $top, $skip, $count, $select) compiled to SQL,
with keyset paging through @odata.nextLink ($skiptoken)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException
from pydantic.alias_generators import to_snake
from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from countersign.domain.errors import ValidationFailed
from countersign.graph import schema

MAX_TOP = 999
DEFAULT_TOP = 100

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_@][A-Za-z0-9_./@]*)
    )""",
    re.VERBOSE,
)

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
# Parentheses and `not` nest this deep at most (the parser recurses on them).
MAX_DEPTH = 32
# Comparisons joined by and/or: a longer filter is refused before it reaches the database
# (SQLite refuses expression trees deeper than 1,000; no client needs more than this).
MAX_TERMS = 100
INT64 = 2**63


@dataclass(frozen=True)
class Field:
    column: Any
    sortable: bool = True
    # Custom SQL for `eq` (ne, in and not are built from it), for fields whose value is
    # computed, such as a request's status, which reads as expired once its time is up.
    equals: Callable[[Any], ColumnElement[bool]] | None = None


def columns(table: Any, *names: str) -> dict[str, Field]:
    """Fields named as Graph names them, each read from the table's column of the same name in
    snake case ('lastModifiedDateTime' -> last_modified_date_time)."""
    return {name: Field(getattr(table, to_snake(name))) for name in names}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValidationFailed(f"Invalid $filter near '{text[position : position + 20]}'.")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


_JOINS = frozenset({"and", "or"})


class _FilterParser:
    def __init__(self, text: str, fields: dict[str, Field]):
        self.tokens = _tokenize(text)
        self.position = 0
        self.fields = fields
        self.depth = 0

    def parse(self) -> ColumnElement[bool]:
        if not self.tokens:
            raise ValidationFailed("$filter is empty.")
        joins = sum(1 for kind, word in self.tokens if kind == "word" and word.lower() in _JOINS)
        if joins >= MAX_TERMS:
            raise ValidationFailed(
                f"Invalid $filter: more than {MAX_TERMS} conditions joined by 'and'/'or'."
            )
        expression = self._or()
        if self.position != len(self.tokens):
            raise ValidationFailed(
                f"Invalid $filter: unexpected '{self.tokens[self.position][1]}'."
            )
        return expression

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ValidationFailed("Invalid $filter: it ends too early.")
        self.position += 1
        return token

    def _expect(self, value: str) -> None:
        if self._next()[1] != value:
            raise ValidationFailed(f"Invalid $filter: '{value}' expected.")

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.position += 1
            return True
        return False

    def _or(self) -> ColumnElement[bool]:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def _and(self) -> ColumnElement[bool]:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def _unary(self) -> ColumnElement[bool]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValidationFailed(f"Invalid $filter: nested more than {MAX_DEPTH} deep.")
        try:
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self) -> ColumnElement[bool]:
        if self._keyword("not"):
            return not_(self._unary())
        token = self._peek()
        if token == ("punct", "("):
            self.position += 1
            inner = self._or()
            self._expect(")")
            return inner
        kind, word = self._next()
        if kind != "word":
            raise ValidationFailed(f"Invalid $filter: a property name expected, not '{word}'.")
        if word in ("startswith", "contains", "endswith"):
            return self._function(word)
        if word == "isof":
            return self._isof()
        column = self._column(word)
        equals = self.fields[word].equals
        operator = self._next()[1].lower()
        if operator == "in":
            self._expect("(")
            values = [self._value(column)]
            while self._peek() == ("punct", ","):
                self.position += 1
                values.append(self._value(column))
            self._expect(")")
            if equals is not None:
                return or_(*[equals(v) for v in values])
            if _python_type(column) is str:  # Graph compares strings case-insensitively
                return func.lower(column).in_([_lower(v) for v in values])
            return column.in_(values)  # type: ignore[no-any-return]
        if equals is not None and operator in ("eq", "ne"):
            match = equals(self._value(column))
            return match if operator == "eq" else not_(match)
        if operator not in COMPARISONS:
            raise ValidationFailed(f"Invalid $filter: unsupported operator '{operator}'.")
        value = self._value(column)
        if value is None and operator in ("eq", "ne"):
            return column.is_(None) if operator == "eq" else column.is_not(None)  # type: ignore[no-any-return]
        if operator in ("eq", "ne") and isinstance(value, str) and _python_type(column) is str:
            # Graph matches string equality case-insensitively (operatingSystem eq 'windows').
            column, value = func.lower(column), value.lower()
        return {  # type: ignore[no-any-return]
            "eq": column.__eq__,
            "ne": column.__ne__,
            "gt": column.__gt__,
            "ge": column.__ge__,
            "lt": column.__lt__,
            "le": column.__le__,
        }[operator](value)

    def _isof(self) -> ColumnElement[bool]:
        """isof('microsoft.graph.win32LobApp'): the type or any type derived from it."""
        self._expect("(")
        kind, raw = self._next()
        if kind != "string":
            raise ValidationFailed("Invalid $filter: isof() takes a type name in quotes.")
        self._expect(")")
        field = self.fields.get("@odata.type")
        name = raw[1:-1].removeprefix("#")
        if field is None or not name.startswith("microsoft.graph.") or not schema.known(name):
            raise ValidationFailed(f"Invalid $filter: isof('{name}') is not supported here.")
        names = [f"#microsoft.graph.{n}" for n in schema.derived_types(name)]
        return field.column.in_(names)  # type: ignore[no-any-return]

    def _function(self, name: str) -> ColumnElement[bool]:
        self._expect("(")
        column = self._column(self._next()[1])
        if _python_type(column) is not str:
            raise ValidationFailed(f"Invalid $filter: {name}() applies to text properties only.")
        self._expect(",")
        kind, raw = self._next()
        if kind != "string":
            raise ValidationFailed(f"Invalid $filter: {name}() takes a string.")
        self._expect(")")
        text = _checked_text(raw[1:-1].replace("''", "'"))
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {
            "startswith": f"{escaped}%",
            "contains": f"%{escaped}%",
            "endswith": f"%{escaped}",
        }[name]
        return func.lower(column).like(pattern.lower(), escape="\\")

    def _column(self, name: str) -> Any:
        field = self.fields.get(name)
        if field is None:
            raise ValidationFailed(f"$filter on property '{name}' is not supported.")
        return field.column

    def _value(self, column: Any) -> Any:
        kind, raw = self._next()
        return _convert(kind, raw, column)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _python_type(column: Any) -> Any:
    """The Python type of a column's values, or None when the type does not say."""
    column_type = getattr(column, "type", None)
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance  # UTCDateTime says `object`, its impl says more
    try:
        return column_type.python_type  # type: ignore[union-attr]
    except (AttributeError, NotImplementedError):
        return None


def _fits(value: Any, expected: Any) -> bool:
    """Whether `value` may be compared with a column of Python type `expected` on every
    database (PostgreSQL refuses to compare text with a number, SQLite an oversized int)."""
    if expected is None:
        return True
    if expected is bool or isinstance(value, bool):
        return isinstance(value, bool) and expected is bool
    if expected is int:
        return isinstance(value, int) and -INT64 <= value < INT64
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def _checked_text(text: str) -> str:
    if "\x00" in text:
        raise ValidationFailed("Invalid $filter: a text value cannot contain NUL characters.")
    return text


def _parse_datetime(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(f"Invalid date and time '{raw}' in $filter.") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _convert(kind: str, raw: str, column: Any) -> Any:
    """A literal of $filter as a Python value of the column's type (400 for any other type)."""
    expected = _python_type(column)
    value: Any
    if kind == "string":
        text = _checked_text(raw[1:-1].replace("''", "'"))
        value = _parse_datetime(text) if expected is datetime else text
    elif kind == "datetime":
        value = _parse_datetime(raw)
    elif kind == "number":
        value = float(raw) if "." in raw else int(raw)
    elif kind == "guid":
        value = raw
    elif kind == "word" and raw.lower() in ("true", "false", "null"):
        value = None if raw.lower() == "null" else raw.lower() == "true"
    else:
        raise ValidationFailed(f"Invalid $filter: a value expected, not '{raw}'.")
    if value is not None and not _fits(value, expected):
        raise ValidationFailed(
            f"Invalid $filter: {raw} is not a {expected.__name__} value for this property."
        )
    return value


def parse_filter(text: str, fields: dict[str, Field]) -> ColumnElement[bool]:
    return _FilterParser(text, fields).parse()


def parse_orderby(text: str | None, fields: dict[str, Field]) -> list[tuple[str, bool]]:
    """[(field name, descending)] from '$orderby=name desc,other'."""
    if not text:
        return []
    order = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ValidationFailed(f"Invalid $orderby '{part.strip()}'.")
        field = fields.get(words[0])
        if field is None or not field.sortable:
            raise ValidationFailed(f"$orderby on property '{words[0]}' is not supported.")
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def _int_option(params: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationFailed(f"{name} must be a non-negative whole number.")
    value = int(raw)
    if value > maximum:
        raise ValidationFailed(f"{name} must be at most {maximum}.")
    return value


def _encode_token(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, columns: list[Any]) -> list[Any]:
    """The sort key a $skiptoken carries, checked against the columns it will be compared with
    (the token comes from the client, so it is input like any other)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(values, list) or len(values) != len(columns):
            raise ValueError
        decoded = []
        for value, column in zip(values, columns, strict=True):
            expected = _python_type(column)
            if expected is datetime:
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
            if value is None or not _fits(value, expected):
                raise ValueError
            if isinstance(value, str) and "\x00" in value:
                raise ValueError
            decoded.append(value)
        return decoded
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationFailed("$skiptoken is not valid for this query.") from exc


def _after(columns: list[Any], descending: list[bool], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the sort order (keyset paging)."""
    clauses = []
    for index, column in enumerate(columns):
        equal = [columns[i] == values[i] for i in range(index)]
        step = column < values[index] if descending[index] else column > values[index]
        clauses.append(and_(*equal, step))
    return or_(*clauses)


KNOWN_OPTIONS = {
    "$filter",
    "$orderby",
    "$top",
    "$skip",
    "$count",
    "$select",
    "$skiptoken",
    "$expand",
    "$search",
    "$format",
}


def list_page(
    session: Session,
    query: Select[Any],
    *,
    params: dict[str, str],
    fields: dict[str, Field],
    id_column: Any,
    serialize: Callable[[Any], dict[str, Any]],
    base_url: str,
    context: str,
    default_order: Sequence[tuple[str, bool]] = (),
    expand: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One page of a collection in Graph's shape, with @odata.nextLink when more remain."""
    unknown = [k for k in params if k.startswith("$") and k not in KNOWN_OPTIONS]
    if unknown:
        raise ValidationFailed(f"Query option '{unknown[0]}' is not supported.")
    if "$search" in params:
        raise HTTPException(501, "Countersign does not implement $search; use $filter.")
    if "$filter" in params:
        query = query.where(parse_filter(params["$filter"], fields))
    order = parse_orderby(params.get("$orderby"), fields) or list(default_order)
    columns = [fields[name].column for name, _ in order] + [id_column]
    # The id breaks ties in the direction of the last key, so one index serves the whole order.
    descending = [desc for _, desc in order] + [order[-1][1] if order else False]
    top = _int_option(params, "$top", DEFAULT_TOP, MAX_TOP)
    skip = _int_option(params, "$skip", 0, 10_000_000)
    count_requested = params.get("$count", "false").lower()
    if count_requested not in ("true", "false"):
        raise ValidationFailed("$count must be true or false.")
    select_fields = [s.strip() for s in params.get("$select", "").split(",") if s.strip()]

    total = None
    if count_requested == "true":
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    paged = query
    if "$skiptoken" in params:
        paged = paged.where(
            _after(columns, descending, _decode_token(params["$skiptoken"], columns))
        )
    paged = paged.order_by(
        *[c.desc() if d else c.asc() for c, d in zip(columns, descending, strict=True)]
    )
    rows = session.execute(paged.offset(skip).limit(top + 1)).all()
    more = len(rows) > top
    rows = rows[:top]
    items = [serialize(row[0] if len(row) == 1 else row) for row in rows]
    if "assignments" in expand:
        items = [
            {**item, "assignments": list(row[0].assignments)}
            for item, row in zip(items, rows, strict=True)
        ]
    if select_fields:
        keep = set(select_fields) | {"id", "@odata.type", "@odata.etag"} | set(expand)
        items = [{k: v for k, v in item.items() if k in keep} for item in items]
    body: dict[str, Any] = {"@odata.context": context}
    if total is not None:
        body["@odata.count"] = total
    body["value"] = items
    if more and rows:
        last = rows[-1]
        last_values = [_row_value(last, column) for column in columns]
        next_params = {k: v for k, v in params.items() if k not in ("$skiptoken", "$skip")}
        next_params["$skiptoken"] = _encode_token(last_values)
        body["@odata.nextLink"] = f"{base_url}?{urlencode(next_params)}"
    return body


def apply_select(item: dict[str, Any], raw: str | None) -> dict[str, Any]:
    """$select on one entity: the named properties (with its id and type annotations)."""
    names = {s.strip() for s in (raw or "").split(",") if s.strip()}
    if not names:
        return item
    keep = names | {"id", "@odata.type", "@odata.etag", "@odata.context"}
    return {k: v for k, v in item.items() if k in keep}


def count_rows(
    session: Session, query: Select[Any], params: dict[str, str], fields: dict[str, Field]
) -> int:
    """The /$count segment: how many rows match $filter (Graph answers a bare number)."""
    if "$filter" in params:
        query = query.where(parse_filter(params["$filter"], fields))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(total or 0)


def _row_value(row: Any, column: Any) -> Any:
    entity = row[0]
    key = column.key
    return getattr(entity, key)
