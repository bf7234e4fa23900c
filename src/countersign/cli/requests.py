"""`countersign requests list|show|approve|reject|cancel|complete|schedule`: approval requests,
as an API client with the stored token (cli/client.py). Tables for people, `--json` for
scripts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import typer

from countersign.cli import client
from countersign.cli.output import (
    BAD_INPUT,
    ID_HELP,
    JSON,
    OUTPUT,
    WIDE,
    Column,
    Format,
    fail,
    out,
    print_json,
    render,
    resolve_id,
    starting_with,
)
from countersign.cli.policies import group_names
from countersign.domain.request import Status
from countersign.domain.summary import summary_lines

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"

requests_app = typer.Typer(no_args_is_help=True, help="Approval requests (API client).")

STATUSES = tuple(Status)


def _who(identity: dict[str, Any] | None) -> str:
    if not identity:
        return ""
    principal = identity.get("user") or identity.get("application") or {}
    return str(principal.get("displayName") or principal.get("id") or "")


def request_id_of(prefix: str) -> str:
    """A request's whole id from a prefix: among all requests, or your own when you may not
    list all of them."""

    def ids(start: str) -> list[str]:
        items = client.all_items(REQUESTS, starting_with(start))
        if items is None:
            items = client.all_items(f"{REQUESTS}/retrieveMyRequests()", starting_with(start)) or []
        return [r["id"] for r in items]

    return resolve_id(prefix, "request", ids)


# What people call the types a request changes (else the type's name in words).
TYPE_WORDS = {
    "operationApprovalPolicy": "access policy",
    "mobileApp": "app",
    "managedDevice": "device",
    "deviceManagementScript": "script",
    "deviceHealthScript": "remediation script",
    "deviceShellScript": "shell script",
}


def _type_words(entity_type: str) -> str:
    return TYPE_WORDS.get(entity_type) or re.sub(r"(?<!^)(?=[A-Z])", " ", entity_type).lower()


def _change_text(r: dict[str, Any]) -> str:
    """What a request changes, as a person reads it: the server's summary title when it gives
    one, else the operation (or action), the type in words and the object's name."""
    summary = (r.get("displayPayload") or {}).get("summary") or {}
    if isinstance(summary, dict) and summary.get("title"):
        return str(summary["title"])
    operation = r.get("actionName") or r.get("payloadOperation") or ""
    parts = (operation.capitalize(), _type_words(r.get("payloadType") or ""), r.get("payloadName"))
    return " ".join(part for part in parts if part)


def _minute(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


@requests_app.command("list")
def list_requests(
    status: str | None = typer.Option(None, help=f"Only this status: {', '.join(STATUSES)}."),
    mine: bool = typer.Option(False, "--mine", help="Only requests I made."),
    top: int = typer.Option(50, min=1, max=999, help="How many, newest first."),
    json_output: bool = JSON,
    output_format: Format = OUTPUT,
    wide: bool = WIDE,
) -> None:
    """List approval requests, newest first."""
    if status is not None and status not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)} (not '{status}')", BAD_INPUT)
    params: dict[str, str] = {"$top": str(top)}
    if status:
        params["$filter"] = f"status eq '{status}'"
    path = f"{REQUESTS}/retrieveMyRequests()" if mine else REQUESTS
    items = client.call_json("GET", path, params=params)["value"]
    render(
        "Approval requests",
        [
            Column("id", is_id=True),
            Column("status"),
            Column("change", wrap=True),
            Column("requester"),
            Column("requested", wide_only=True),
            Column("expires"),
        ],
        [
            [
                r["id"],
                r["status"],
                _change_text(r),
                _who(r["requestor"]),
                _minute(r["requestDateTime"]),
                _minute(r["expirationDateTime"]),
            ]
            for r in items
        ],
        output_format=output_format,
        json_output=json_output,
        wide=wide,
        raw=items,
    )


@requests_app.command("show")
def show_request(
    request_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON
) -> None:
    """Show one request with its justification, approver notes and the diff."""
    r = client.call_json("GET", f"{REQUESTS}/{request_id_of(request_id)}")
    if json_output:
        print_json(r)
        return
    lines = [
        _change_text(r),
        f"id:             {r['id']}",
        f"status:         {r['status']}",
        f"requester:      {_who(r['requestor'])}",
        f"requested:      {r['requestDateTime']}",
        f"expires:        {r['expirationDateTime']}",
        f"justification:  {r['requestJustification']}",
        f"approver:       {_who(r['approver'])}",
        f"approver notes: {r['approvalJustification'] or ''}",
        *_policy_lines(r),
    ]
    # User-supplied text is printed without Rich markup, so "[...]" in it stays literal.
    summary = (r.get("displayPayload") or {}).get("summary")
    if summary:
        # What the reviewer reads (the same summary as the admin center and notifications);
        # the JSON pointers stay in --json.
        lines += ["", *summary_lines(summary)]
    out.print("\n".join(lines), highlight=False, markup=False)
    if not summary:
        for change in (r.get("displayPayload") or {}).get("diff") or []:
            out.print(
                f"  {change['op']:8} {change['path']}: {change['before']!r} -> {change['after']!r}",
                highlight=False,
                markup=False,
            )


STAGE_WORDS = {
    "approved": "approved",
    "inProgress": "deciding now",
    "notStarted": "waiting",
    "rejected": "rejected",
    "notReached": "not reached",
}


def _policy_lines(r: dict[str, Any]) -> list[str]:
    """Which policies apply, each stage with who decided in it, and the scheduled completion."""
    policies = ", ".join(
        str(p.get("displayName") or p["id"]) for p in r.get("appliedPolicies") or []
    )
    lines = [f"policies:       {policies}"] if policies else []
    stages = r.get("stages") or []
    if len(stages) > 1:
        names = group_names([g for stage in stages for g in stage["approverGroupIds"]])
        for stage in stages:
            groups = ", ".join(names.get(g, g) for g in stage["approverGroupIds"])
            deciders = ", ".join(
                f"{_who(d['approver'])} ({d['decision']})" for d in stage.get("decisions") or []
            )
            state = STAGE_WORDS.get(stage["status"], stage["status"])
            lines.append(
                f"stage {stage['stage']}:        {state} -- {groups}, "
                f"{stage['approvalsRequired']} approval(s)" + (f": {deciders}" if deciders else "")
            )
    if r.get("scheduledCompletionDateTime"):
        lines.append(f"completes at:   {r['scheduledCompletionDateTime']}")
    return lines


def _decide(action: str, request_id: str, notes: str | None, json_output: bool) -> None:
    whole = request_id_of(request_id)
    result = client.call_json(
        "POST",
        f"{REQUESTS}/{whole}/{action}",
        json={"justification": notes, "approvalSource": "adminConsole"},
    )
    if json_output:
        print_json(result)
    else:
        out.print(f"request {whole} is now {result['value']}", highlight=False)


@requests_app.command("approve")
def approve(
    request_id: str = typer.Argument(..., help=ID_HELP),
    notes: str | None = typer.Option(None, help="Approver notes (the requester sees them)."),
    json_output: bool = JSON,
) -> None:
    """Approve a request (you must be an eligible approver, not the requester)."""
    _decide("approve", request_id, notes, json_output)


@requests_app.command("reject")
def reject(
    request_id: str = typer.Argument(..., help=ID_HELP),
    notes: str = typer.Option(..., help="Why (the requester sees it)."),
    json_output: bool = JSON,
) -> None:
    """Reject a request; notes are required."""
    _decide("reject", request_id, notes, json_output)


@requests_app.command("cancel")
def cancel(request_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON) -> None:
    """Cancel your own request (needs approval, or approved and not yet completed)."""
    whole = request_id_of(request_id)
    client.call_json("POST", f"{REQUESTS}/cancelMyRequest", json={"id": whole})
    if json_output:
        print_json({"id": whole, "status": Status.CANCELLED})
    else:
        out.print(f"request {whole} is cancelled", highlight=False)


@requests_app.command("complete")
def complete(request_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON) -> None:
    """Complete your approved request: the change is applied now."""
    whole = request_id_of(request_id)
    result = client.call_json("POST", f"{REQUESTS}/{whole}/complete")
    if json_output:
        print_json(result or {})
    else:
        out.print(f"request {whole} is completed; the change is applied", highlight=False)


@requests_app.command("schedule")
def schedule(
    request_id: str = typer.Argument(..., help=ID_HELP),
    at: str | None = typer.Option(
        None, help="When the worker completes it once approved: ISO 8601 with a zone."
    ),
    clear: bool = typer.Option(False, "--clear", help="Remove the scheduled completion."),
    json_output: bool = JSON,
) -> None:
    """Have the worker complete your request at a given time, once it is approved."""
    if (at is None) == (not clear):
        fail("give either --at TIME or --clear", BAD_INPUT)
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at '{at}' is not an ISO 8601 time", BAD_INPUT)
        if when is None or when.tzinfo is None:
            fail(
                f"--at '{at}' has no zone (add Z or +01:00): it could mean any of 24 hours",
                BAD_INPUT,
            )
    whole = request_id_of(request_id)
    result = client.call_json(
        "POST",
        f"{REQUESTS}/{whole}/scheduleCompletion",
        json={"scheduledCompletionDateTime": when.isoformat() if when else None},
    )
    if json_output:
        print_json(result)
    elif when is None:
        out.print(f"request {whole} has no scheduled completion", highlight=False)
    else:
        out.print(
            f"request {whole} completes at {result['scheduledCompletionDateTime']} once approved",
            highlight=False,
        )
