"""CLI commands of multi admin approval (mounted by cli.py), as an API client with the stored
token: `countersign requests list|show|approve|reject|cancel|complete` and
`countersign policies list|show|create|delete`. Tables for people, `--json` for scripts."""

from __future__ import annotations

import base64
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
PLATFORMS = {
    "all": "notApplicable",
    "windows": "windows10AndLater,windows81AndLater,windows10X",
    "non-windows": "androidDeviceAdministrator,androidEnterprise,iOSiPadOS,macOS",
}

requests_app = typer.Typer(no_args_is_help=True, help="Approval requests (API client).")
policies_app = typer.Typer(no_args_is_help=True, help="Access policies (API client).")

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


def _call(method: str, path: str, **kwargs: Any) -> Any:
    from countersign.cli import api_call

    response = api_call(method, path, **kwargs)
    return response.json() if response.content else None


def _print_json(data: Any) -> None:
    from countersign.cli import out

    out.print_json(data=data)


def _who(identity: dict[str, Any] | None) -> str:
    if not identity:
        return ""
    principal = identity.get("user") or identity.get("application") or {}
    return str(principal.get("displayName") or principal.get("id") or "")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from countersign.cli import out

    table = Table(title=title)
    for column in columns:
        # Ids are what people copy into the next command: never shortened.
        table.add_column(column, no_wrap=column == "id", min_width=36 if column == "id" else None)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
    out.print(table)


def _justification_header(text: str) -> dict[str, str]:
    return {"x-msft-approval-justification": base64.b64encode(text.encode()).decode()}


def _submitted(
    method: str, path: str, body: dict[str, Any] | None, justification: str, json_output: bool
) -> None:
    """Send a protected write with its justification; report the request it became."""
    import httpx

    from countersign.cli import fail, load_credentials, out

    creds = load_credentials()
    response = httpx.request(
        method,
        creds["url"].rstrip("/") + path,
        json=body,
        timeout=30,
        headers={
            "Authorization": f"Bearer {creds['access_token']}",
            **_justification_header(justification),
        },
    )
    request_id = response.headers.get("x-msft-approval-code")
    if response.status_code == 403 and request_id:
        if json_output:
            _print_json({"requestId": request_id, "status": "needsApproval"})
        else:
            out.print(f"submitted for approval: request {request_id} needs a second administrator")
        return
    if response.status_code < 300:
        if json_output:
            _print_json(response.json() if response.content else {})
        else:
            out.print("applied (not protected)")
        return
    try:
        error = response.json()["error"]
        reason = error.get("innerError", {}).get("reason")
        message = error["message"] + (f" (reason: {reason})" if reason else "")
    except (ValueError, KeyError, TypeError):
        message = response.text
    fail(
        f"{response.status_code} {message}",
        {400: 2, 401: 3, 403: 3, 404: 4, 409: 5}.get(response.status_code, 1),
    )


# -- requests ----------------------------------------------------------------------------------


@requests_app.command("list")
def list_requests(
    status: str | None = typer.Option(None, help="needsApproval, approved, ..."),
    mine: bool = typer.Option(False, help="Only requests I made."),
    top: int = typer.Option(50, help="How many."),
    json_output: bool = JSON,
) -> None:
    """List approval requests, newest first."""
    params: dict[str, str] = {"$top": str(top)}
    if status:
        params["$filter"] = f"status eq '{status}'"
    path = f"{REQUESTS}/retrieveMyRequests()" if mine else REQUESTS
    items = _call("GET", path, params=params)["value"]
    if json_output:
        _print_json(items)
        return
    _table(
        "Approval requests",
        ["id", "status", "operation", "object", "requester", "requested", "expires"],
        [
            [
                r["id"],
                r["status"],
                f"{r['payloadOperation']} {r['payloadType']}",
                r["payloadName"] or "",
                _who(r["requestor"]),
                r["requestDateTime"][:19],
                r["expirationDateTime"][:19],
            ]
            for r in items
        ],
    )


@requests_app.command("show")
def show_request(request_id: str, json_output: bool = JSON) -> None:
    """Show one request with its justification, approver notes and the diff."""
    from countersign.cli import out

    r = _call("GET", f"{REQUESTS}/{request_id}")
    if json_output:
        _print_json(r)
        return
    lines = [
        f"{r['payloadOperation']} {r['payloadType']} {r['payloadName'] or ''}",
        f"status:         {r['status']}",
        f"requester:      {_who(r['requestor'])}",
        f"requested:      {r['requestDateTime']}",
        f"expires:        {r['expirationDateTime']}",
        f"justification:  {r['requestJustification']}",
        f"approver:       {_who(r['approver'])}",
        f"approver notes: {r['approvalJustification'] or ''}",
    ]
    # User-supplied text is printed without Rich markup, so "[...]" in it stays literal.
    out.print("\n".join(lines), highlight=False, markup=False)
    for change in r["displayPayload"]["diff"]:
        out.print(
            f"  {change['op']:8} {change['path']}: {change['before']!r} -> {change['after']!r}",
            highlight=False,
            markup=False,
        )


def _decide(action: str, request_id: str, notes: str | None, json_output: bool) -> None:
    from countersign.cli import out

    result = _call(
        "POST",
        f"{REQUESTS}/{request_id}/{action}",
        json={"justification": notes, "approvalSource": "adminConsole"},
    )
    if json_output:
        _print_json(result)
    else:
        out.print(f"request {request_id} is now {result['value']}")


@requests_app.command("approve")
def approve(
    request_id: str,
    notes: str | None = typer.Option(None, help="Approver notes."),
    json_output: bool = JSON,
) -> None:
    """Approve a request (you must be an eligible approver, not the requester)."""
    _decide("approve", request_id, notes, json_output)


@requests_app.command("reject")
def reject(
    request_id: str,
    notes: str = typer.Option(..., help="Why (the requester sees it)."),
    json_output: bool = JSON,
) -> None:
    """Reject a request; notes are required."""
    _decide("reject", request_id, notes, json_output)


@requests_app.command("cancel")
def cancel(request_id: str, json_output: bool = JSON) -> None:
    """Cancel your own request (needs approval, or approved and not yet completed)."""
    from countersign.cli import out

    _call("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})
    if json_output:
        _print_json({"id": request_id, "status": "cancelled"})
    else:
        out.print(f"request {request_id} is cancelled")


@requests_app.command("complete")
def complete(request_id: str, json_output: bool = JSON) -> None:
    """Complete your approved request: the change is applied now."""
    from countersign.cli import out

    result = _call("POST", f"{REQUESTS}/{request_id}/complete")
    if json_output:
        _print_json(result or {})
    else:
        out.print(f"request {request_id} is completed; the change is applied")


# -- policies ----------------------------------------------------------------------------------


@policies_app.command("list")
def list_policies(json_output: bool = JSON) -> None:
    """List active access policies."""
    items = _call("GET", POLICIES)["value"]
    if json_output:
        _print_json(items)
        return
    _table(
        "Access policies",
        ["id", "name", "type", "platforms", "approver groups", "quorum"],
        [
            [
                p["id"],
                p["displayName"],
                p["policyType"],
                p["policyPlatform"],
                ", ".join(p["approverGroupIds"]),
                str(p["approvalsRequired"]),
            ]
            for p in items
        ],
    )


@policies_app.command("show")
def show_policy(policy_id: str, json_output: bool = JSON) -> None:
    policy = _call("GET", f"{POLICIES}/{policy_id}")
    if json_output:
        _print_json(policy)
        return
    from countersign.cli import out

    for key in (
        "id",
        "displayName",
        "description",
        "policyType",
        "policyPlatform",
        "approverGroupIds",
        "approvalsRequired",
        "autoComplete",
        "requestLifetimeInDays",
    ):
        out.print(f"{key + ':':24}{policy.get(key)}", highlight=False)


@policies_app.command("create")
def create_policy(
    name: str = typer.Option(..., help="Display name."),
    policy_type: str = typer.Option(..., "--type", help="app, script, role, deviceWipe, ..."),
    approver_group: list[str] = typer.Option(..., help="Approver group id (repeatable)."),
    justification: str = typer.Option(..., help="Business justification."),
    platform: str = typer.Option("all", help="all, windows or non-windows."),
    description: str | None = typer.Option(None),
    approvals_required: int = typer.Option(1, help="Distinct approvers needed (quorum)."),
    auto_complete: bool = typer.Option(False, help="Apply changes at approval."),
    json_output: bool = JSON,
) -> None:
    """Submit a new access policy for approval (a policy is itself protected)."""
    from countersign.cli import fail

    if platform not in PLATFORMS:
        fail(f"--platform must be one of {', '.join(PLATFORMS)}", 2)
    body = {
        "displayName": name,
        "description": description,
        "policyType": policy_type,
        "policyPlatform": PLATFORMS[platform],
        "approverGroupIds": approver_group,
        "approvalsRequired": approvals_required,
        "autoComplete": auto_complete,
    }
    _submitted("POST", POLICIES, body, justification, json_output)


@policies_app.command("delete")
def delete_policy(
    policy_id: str,
    justification: str = typer.Option(..., help="Business justification."),
    json_output: bool = JSON,
) -> None:
    """Submit the deletion of an access policy for approval."""
    _submitted("DELETE", f"{POLICIES}/{policy_id}", None, justification, json_output)
