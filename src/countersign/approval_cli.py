"""CLI commands of multi admin approval (mounted by cli.py), as an API client with the stored
token: `countersign requests list|show|approve|reject|cancel|complete` and
`countersign policies list|show|create|delete`. Tables for people, `--json` for scripts."""

from __future__ import annotations

import base64
import re
from typing import Any

import typer

from countersign.cli_output import (
    BAD_INPUT,
    GUID,
    JSON,
    OUTPUT,
    WIDE,
    Column,
    Format,
    fail,
    print_json,
    render,
    resolve_id,
    starting_with,
)
from countersign.domain.request import Status
from countersign.domain.summary import summary_lines

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
PLATFORMS = {
    "all": "notApplicable",
    "windows": "windows10AndLater,windows81AndLater,windows10X",
    "non-windows": "androidDeviceAdministrator,androidEnterprise,iOSiPadOS,macOS",
}

requests_app = typer.Typer(no_args_is_help=True, help="Approval requests (API client).")
policies_app = typer.Typer(no_args_is_help=True, help="Access policies (API client).")

STATUSES = tuple(Status)
ID_HELP = "The id, or a unique prefix of it as the tables print it."


def _call(method: str, path: str, **kwargs: Any) -> Any:
    from countersign.cli import api_call

    response = api_call(method, path, **kwargs)
    return response.json() if response.content else None


def _all(path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
    """Every item of a collection, following @odata.nextLink; None when the caller may not
    list it (403)."""
    from countersign.cli import api_call

    items: list[dict[str, Any]] = []
    url: str | None = path
    query: dict[str, str] | None = {"$top": "999", **(params or {})}
    while url:
        response = api_call("GET", url, params=query, allow=(403,))
        if response.status_code == 403:
            return None
        page = response.json()
        items.extend(page.get("value") or [])
        url, query = page.get("@odata.nextLink"), None
    return items


def _who(identity: dict[str, Any] | None) -> str:
    if not identity:
        return ""
    principal = identity.get("user") or identity.get("application") or {}
    return str(principal.get("displayName") or principal.get("id") or "")


def _justification_header(text: str) -> dict[str, str]:
    return {"x-msft-approval-justification": base64.b64encode(text.encode()).decode()}


def _submitted(
    method: str, path: str, body: dict[str, Any] | None, justification: str, json_output: bool
) -> None:
    """Send a protected write with its justification; report the request it became."""
    from countersign.cli import api_call, out, server_error

    response = api_call(
        method, path, json=body, headers=_justification_header(justification), allow=(403,)
    )
    request_id = response.headers.get("x-msft-approval-code")
    if response.status_code == 403 and request_id:
        if json_output:
            print_json({"requestId": request_id, "status": "needsApproval"})
        else:
            out.print(
                f"submitted for approval: request {request_id} needs a second administrator",
                highlight=False,
            )
        return
    if response.status_code >= 400:
        server_error(response)
    if json_output:
        print_json(response.json() if response.content else {})
    else:
        out.print("applied (not protected)")


# -- requests ----------------------------------------------------------------------------------


def request_id_of(prefix: str) -> str:
    """A request's whole id from a prefix: among all requests, or your own when you may not
    list all of them."""

    def ids(start: str) -> list[str]:
        items = _all(REQUESTS, starting_with(start))
        if items is None:
            items = _all(f"{REQUESTS}/retrieveMyRequests()", starting_with(start)) or []
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
    items = _call("GET", path, params=params)["value"]
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
        output_format=Format.json if json_output else output_format,
        wide=wide,
        raw=items,
    )


@requests_app.command("show")
def show_request(
    request_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON
) -> None:
    """Show one request with its justification, approver notes and the diff."""
    from countersign.cli import out

    r = _call("GET", f"{REQUESTS}/{request_id_of(request_id)}")
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


def _decide(action: str, request_id: str, notes: str | None, json_output: bool) -> None:
    from countersign.cli import out

    whole = request_id_of(request_id)
    result = _call(
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
    from countersign.cli import out

    whole = request_id_of(request_id)
    _call("POST", f"{REQUESTS}/cancelMyRequest", json={"id": whole})
    if json_output:
        print_json({"id": whole, "status": Status.CANCELLED})
    else:
        out.print(f"request {whole} is cancelled", highlight=False)


@requests_app.command("complete")
def complete(request_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON) -> None:
    """Complete your approved request: the change is applied now."""
    from countersign.cli import out

    whole = request_id_of(request_id)
    result = _call("POST", f"{REQUESTS}/{whole}/complete")
    if json_output:
        print_json(result or {})
    else:
        out.print(f"request {whole} is completed; the change is applied", highlight=False)


# -- policies ----------------------------------------------------------------------------------


def policy_id_of(prefix: str) -> str:
    return resolve_id(
        prefix,
        "access policy",
        lambda start: [p["id"] for p in _all(POLICIES, starting_with(start)) or []],
    )


def _group_names(group_ids: list[str]) -> dict[str, str]:
    """Each group's display name (GET /beta/groups/{id}); a group the caller may not read, or
    one that is gone, keeps its id."""
    from countersign.cli import api_call

    names: dict[str, str] = {}
    for group_id in dict.fromkeys(group_ids):
        response = api_call("GET", f"/beta/groups/{group_id}", allow=(403, 404))
        names[group_id] = (
            str(response.json().get("displayName") or group_id)
            if response.status_code == 200
            else group_id
        )
    return names


def _group_id_of(value: str) -> str:
    """An approver group from its id, a unique id prefix, or its exact display name."""
    if GUID.fullmatch(value):
        return value
    groups = _all("/beta/groups") or []
    named = [str(g["id"]) for g in groups if str(g.get("displayName", "")).lower() == value.lower()]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        fail(f"{len(named)} groups are named '{value}': {', '.join(named)}; give an id", BAD_INPUT)
    return resolve_id(value, "group", lambda start: [g["id"] for g in groups])


def _platform_text(flags: str) -> str:
    for choice, value in PLATFORMS.items():
        if flags == value:
            return choice
    return flags


@policies_app.command("list")
def list_policies(
    json_output: bool = JSON, output_format: Format = OUTPUT, wide: bool = WIDE
) -> None:
    """List active access policies, with their approver groups by name."""
    items = _call("GET", POLICIES)["value"]
    names = {} if json_output else _group_names([g for p in items for g in p["approverGroupIds"]])
    render(
        "Access policies",
        [
            Column("id", is_id=True),
            Column("name", wrap=True),
            Column("type"),
            Column("platforms"),
            Column("approver groups", wrap=True),
            Column("quorum"),
        ],
        [
            [
                p["id"],
                p["displayName"],
                p["policyType"],
                p["policyPlatform"] if wide else _platform_text(p["policyPlatform"]),
                ", ".join(names.get(g, g) for g in p["approverGroupIds"]),
                str(p.get("approvalsRequired", 1)),
            ]
            for p in items
        ],
        output_format=Format.json if json_output else output_format,
        wide=wide,
        raw=items,
    )


@policies_app.command("show")
def show_policy(
    policy_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON
) -> None:
    """Show one access policy, with its approver groups by name."""
    from countersign.cli import out

    policy = _call("GET", f"{POLICIES}/{policy_id_of(policy_id)}")
    if json_output:
        print_json(policy)
        return
    names = _group_names(policy.get("approverGroupIds") or [])
    groups = ", ".join(f"{names[g]} ({g})" for g in policy.get("approverGroupIds") or [])
    rows = [
        ("id", policy.get("id")),
        ("name", policy.get("displayName")),
        ("description", policy.get("description")),
        ("type", policy.get("policyType")),
        ("platforms", policy.get("policyPlatform")),
        ("approver groups", groups),
        ("approvals required", policy.get("approvalsRequired")),
        ("auto-complete", policy.get("autoComplete")),
        ("request lifetime (days)", policy.get("requestLifetimeInDays")),
    ]
    out.print(
        "\n".join(f"{key + ':':25}{'' if value is None else value}" for key, value in rows),
        highlight=False,
        markup=False,
    )


@policies_app.command("create")
def create_policy(
    name: str = typer.Option(..., help="Display name."),
    policy_type: str = typer.Option(
        ..., "--type", help="app, script, role, deviceWipe, deviceRetire, deviceDelete, ..."
    ),
    approver_group: list[str] = typer.Option(
        ..., help="Approver group: its id, an id prefix or its name (repeatable)."
    ),
    justification: str = typer.Option(..., help="Business justification."),
    platform: str = typer.Option("all", help="all, windows or non-windows."),
    description: str | None = typer.Option(None, help="What the policy is for."),
    approvals_required: int = typer.Option(1, help="Distinct approvers needed (quorum)."),
    auto_complete: bool = typer.Option(False, "--auto-complete", help="Apply changes at approval."),
    json_output: bool = JSON,
) -> None:
    """Submit a new access policy for approval (a policy is itself protected)."""
    if platform not in PLATFORMS:
        fail(f"--platform must be one of {', '.join(PLATFORMS)}", BAD_INPUT)
    body = {
        "displayName": name,
        "description": description,
        "policyType": policy_type,
        "policyPlatform": PLATFORMS[platform],
        "approverGroupIds": [_group_id_of(g) for g in approver_group],
        "approvalsRequired": approvals_required,
        "autoComplete": auto_complete,
    }
    _submitted("POST", POLICIES, body, justification, json_output)


@policies_app.command("delete")
def delete_policy(
    policy_id: str = typer.Argument(..., help=ID_HELP),
    justification: str = typer.Option(..., help="Business justification."),
    json_output: bool = JSON,
) -> None:
    """Submit the deletion of an access policy for approval."""
    _submitted("DELETE", f"{POLICIES}/{policy_id_of(policy_id)}", None, justification, json_output)
