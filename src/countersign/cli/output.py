"""What the `countersign` command prints, for every subcommand: one-line errors (Graph's error
object on stdout with `--json`), the exit codes scripts rely on, tables that fit 80 columns,
and short ids that every command accepts back (as git does)."""

from __future__ import annotations

import csv
import enum
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Exit codes (the README's table): scripts branch on these, so each has one meaning.
OK = 0
CHECK_FAILED = 1  # only `audit verify`: the chain is broken
BAD_INPUT = 2  # bad input or usage (also: no such database, or one not migrated)
REFUSED = 3  # not signed in, not allowed, not an eligible approver, the requester
NOT_FOUND = 4
CONFLICT = 5  # conflict or wrong state (already completed, another request active, etag)
UNREACHABLE = 6  # the server (or the database server) cannot be reached, or failed (5xx)

# Graph-style codes for the errors the CLI finds itself (the server's own are printed as is).
ERROR_CODES = {
    CHECK_FAILED: "checkFailed",
    BAD_INPUT: "badRequest",
    REFUSED: "forbidden",
    NOT_FOUND: "notFound",
    CONFLICT: "conflict",
    UNREACHABLE: "serviceUnavailable",
}

# The server answers an ineligible approver with 400 (as Graph does) and names the failed check
# in innerError.reason: for a script that is a refusal (3), not bad input (2).
NOT_ELIGIBLE_MESSAGE = "does not have proper permissions to approve"
REFUSAL_REASONS = frozenset(
    {
        "approverIsNotAUser",
        "approverIsRequester",
        "approverIsDisabled",
        "notInApproverGroup",
        "approverGroupHasNoRoleAssignment",
        "missingApprovalPermission",
        "missingReadPermission",
        "scopeTagNotReached",
        "notRequester",
    }
)

# soft_wrap: a long line stays one line (scripts and people grep it), whatever the width.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


JSON = typer.Option(False, "--json", help="Print results and errors as JSON on stdout.")
OUTPUT = typer.Option(Format.table, "--output", "-o", help="How to print the result.")
WIDE = typer.Option(False, "--wide", help="Show whole ids and every column.")
ID_HELP = "The id, or a unique prefix of it as the tables print it."


def json_mode() -> bool:
    """Whether the running command was asked for JSON (`--json` or `--output json`)."""
    # Typer carries its own copy of click: its context stack is the one that knows.
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("json_output") or ctx.params.get("output_format") == Format.json:
            return True
        ctx = ctx.parent
    return False


def fail(message: str, code: int = BAD_INPUT, error: dict[str, Any] | None = None) -> NoReturn:
    """Exit with `code`: one line on stderr, or Graph's error object on stdout with --json."""
    message = " ".join(message.split())  # one line, whatever the server or driver said
    if json_mode():
        body = error or {"code": ERROR_CODES.get(code, "error"), "message": message}
        out.print_json(data={"error": body})
    else:
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def http_exit_code(status: int, error: dict[str, Any] | None) -> int:
    """The exit code of a server's error answer."""
    inner = (error or {}).get("innerError") or {}
    if status == 400 and (
        inner.get("reason") in REFUSAL_REASONS
        or NOT_ELIGIBLE_MESSAGE in str((error or {}).get("message", ""))
    ):
        return REFUSED
    if status in (401, 403):
        return REFUSED
    if status == 404:
        return NOT_FOUND
    if status in (409, 412):
        return CONFLICT
    if status >= 500:
        return UNREACHABLE
    return BAD_INPUT


def print_json(data: Any) -> None:
    out.print_json(data=data)


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    wrap: bool = False  # the one column that takes what width is left, wrapped
    wide_only: bool = False  # shown with --wide (and always in csv/json)
    is_id: bool = False  # shortened to a unique prefix unless --wide


MINIMUM_ID_LENGTH = 8


def short_ids(ids: Sequence[str], minimum: int = MINIMUM_ID_LENGTH) -> dict[str, str]:
    """Each id's shortest prefix (at least `minimum` long) that is unique among `ids`."""
    distinct = list(dict.fromkeys(ids))
    length = minimum
    while length < max((len(i) for i in distinct), default=0) and len(
        {i[:length] for i in distinct}
    ) < len(distinct):
        length += 1
    return {i: i[:length] for i in distinct}


def render(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    output_format: Format = Format.table,
    json_output: bool = False,
    wide: bool = False,
    raw: Any = None,
) -> None:
    """Print rows as a table (people), csv (spreadsheets) or JSON (`raw`, the server's data);
    `--json` (`json_output`) wins over `--output`."""
    if json_output or output_format == Format.json:
        headers = [c.header for c in columns]
        print_json(raw if raw is not None else [dict(zip(headers, r, strict=True)) for r in rows])
        return
    if output_format == Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.header for c in columns])
        writer.writerows(rows)
        return
    shown = [i for i, c in enumerate(columns) if wide or not c.wide_only]
    prefixes: dict[str, str] = {}
    for i in shown:
        if columns[i].is_id and not wide:
            prefixes.update(short_ids([row[i] for row in rows]))
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    for i in shown:
        column = columns[i]
        table.add_column(
            column.header,
            no_wrap=not column.wrap,
            overflow="fold",  # never an ellipsis: a cell is read whole or wrapped
        )
    for row in rows:
        cells = [prefixes.get(row[i], row[i]) if columns[i].is_id else row[i] for i in shown]
        table.add_row(*(Text(cell) for cell in cells))  # cells are data, never markup
    out.print(table)


# -- ids ---------------------------------------------------------------------------------------

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PREFIX = re.compile(r"[0-9a-f][0-9a-f-]*")


def starting_with(prefix: str) -> dict[str, str]:
    """The OData query of the ids starting with `prefix` (PREFIX-checked: nothing to quote)."""
    return {"$filter": f"startswith(id,'{prefix}')"}


def resolve_id(prefix: str, noun: str, ids_starting: Callable[[str], list[str]]) -> str:
    """A whole id from what a table printed: an id, or a prefix unique among the ids the server
    lists (`ids_starting(prefix)`). No match exits 4; several exit 2 naming them."""
    prefix = prefix.strip().lower()
    if GUID.fullmatch(prefix):
        return prefix
    if not PREFIX.fullmatch(prefix):
        fail(f"'{prefix}' is not an id or the start of one", BAD_INPUT)
    matches = sorted({i for i in ids_starting(prefix) if i.lower().startswith(prefix)})
    if not matches:
        fail(f"no {noun} has an id starting with '{prefix}'", NOT_FOUND)
    if len(matches) > 1:
        shown = ", ".join(matches[:10]) + (", ..." if len(matches) > 10 else "")
        fail(f"'{prefix}' names {len(matches)} {noun}s: {shown}; give more characters", BAD_INPUT)
    return matches[0]
