"""`countersign policies list|show|create|delete`: access policies, as an API client with the
stored token (cli/client.py). A policy is itself protected: create and delete submit a request
for a second administrator."""

from __future__ import annotations

import base64
from typing import Any

import typer

from countersign.cli import client
from countersign.cli.output import (
    BAD_INPUT,
    GUID,
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

POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
PLATFORMS = {
    "all": "notApplicable",
    "windows": "windows10AndLater,windows81AndLater,windows10X",
    "non-windows": "androidDeviceAdministrator,androidEnterprise,iOSiPadOS,macOS",
}

policies_app = typer.Typer(no_args_is_help=True, help="Access policies (API client).")

ID_HELP = "The id, or a unique prefix of it as the tables print it."


def _justification_header(text: str) -> dict[str, str]:
    return {"x-msft-approval-justification": base64.b64encode(text.encode()).decode()}


def _submitted(
    method: str, path: str, body: dict[str, Any] | None, justification: str, json_output: bool
) -> None:
    """Send a protected write with its justification; report the request it became."""
    response = client.api_call(
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
        client.server_error(response)
    if json_output:
        print_json(response.json() if response.content else {})
    else:
        out.print("applied (not protected)")


def policy_id_of(prefix: str) -> str:
    return resolve_id(
        prefix,
        "access policy",
        lambda start: [p["id"] for p in client.all_items(POLICIES, starting_with(start)) or []],
    )


def _group_names(group_ids: list[str]) -> dict[str, str]:
    """Each group's display name (GET /beta/groups/{id}); a group the caller may not read, or
    one that is gone, keeps its id."""
    names: dict[str, str] = {}
    for group_id in dict.fromkeys(group_ids):
        response = client.api_call("GET", f"/beta/groups/{group_id}", allow=(403, 404))
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
    groups = client.all_items("/beta/groups") or []
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
    items = client.call_json("GET", POLICIES)["value"]
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
    policy = client.call_json("GET", f"{POLICIES}/{policy_id_of(policy_id)}")
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
