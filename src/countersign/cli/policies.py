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

POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
PLATFORMS = {
    "all": "notApplicable",
    "windows": "windows10AndLater,windows81AndLater,windows10X",
    "non-windows": "androidDeviceAdministrator,androidEnterprise,iOSiPadOS,macOS",
}

policies_app = typer.Typer(no_args_is_help=True, help="Access policies (API client).")


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


def group_names(group_ids: list[str]) -> dict[str, str]:
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
    return value if GUID.fullmatch(value) else _named_id_of(value, "group", "/beta/groups")


def _named_id_of(value: str, what: str, path: str, id_key: str = "id") -> str:
    """An object's id (`id_key`) from the id itself, a unique id prefix or its exact name."""
    items = client.all_items(path) or []
    if any(str(item[id_key]).lower() == value.lower() for item in items):
        return value
    named = [
        str(item[id_key])
        for item in items
        if str(item.get("displayName", "")).lower() == value.lower()
    ]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        fail(f"{len(named)} {what}s are named '{value}': {', '.join(named)}; give an id", BAD_INPUT)
    return resolve_id(value, what, lambda start: [str(item[id_key]) for item in items])


def parse_stage(text: str) -> dict[str, Any]:
    """`GROUP[,GROUP...][:N]`: a stage's approver groups (ids, prefixes or names) and quorum."""
    groups, _, required = text.rpartition(":")
    if not groups or not required.strip().isdigit():
        groups, required = text, "1"
    names = [g.strip() for g in groups.split(",") if g.strip()]
    if not names:
        fail(f"--stage '{text}' names no approver group", BAD_INPUT)
    return {
        "approverGroupIds": [_group_id_of(g) for g in names],
        "approvalsRequired": int(required),
    }


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
    names = {} if json_output else group_names([g for p in items for g in p["approverGroupIds"]])
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
        output_format=output_format,
        json_output=json_output,
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
    names = group_names(policy.get("approverGroupIds") or [])
    groups = ", ".join(f"{names[g]} ({g})" for g in policy.get("approverGroupIds") or [])
    stages = [
        (
            f"stage {number}",
            f"{', '.join(names.get(g, g) for g in stage['approverGroupIds'])}: "
            f"{stage['approvalsRequired']} approval(s)",
        )
        for number, stage in enumerate(policy.get("stages") or [], 1)
    ]
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
        ("scope tags", ", ".join(policy.get("scopeTagIds") or []) or "all objects"),
        ("excluded applications", ", ".join(policy.get("excludedApplicationIds") or [])),
        *stages,
        ("approval window (h)", policy.get("approvalWindowHours")),
        ("completion window (h)", policy.get("completionWindowHours")),
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
        [], help="Approver group: its id, an id prefix or its name (repeatable)."
    ),
    justification: str = typer.Option(..., help="Business justification."),
    platform: str = typer.Option("all", help="all, windows or non-windows."),
    description: str | None = typer.Option(None, help="What the policy is for."),
    approvals_required: int = typer.Option(1, help="Distinct approvers needed (quorum)."),
    auto_complete: bool = typer.Option(False, "--auto-complete", help="Apply changes at approval."),
    stage: list[str] = typer.Option(
        [],
        help="A stage, in order: 'GROUP[,GROUP...][:N]' (N approvals, default 1; repeatable). "
        "Instead of --approver-group.",
    ),
    scope_tag: list[str] = typer.Option(
        [], help="Protect only objects with this scope tag: id or name (repeatable)."
    ),
    exclude_app: list[str] = typer.Option(
        [], help="Do not intercept this service principal: appId or name (repeatable, 50 at most)."
    ),
    approval_window_hours: int | None = typer.Option(None, help="How long approval may take."),
    completion_window_hours: int | None = typer.Option(
        None, help="How long an approved request may wait for completion."
    ),
    json_output: bool = JSON,
) -> None:
    """Submit a new access policy for approval (a policy is itself protected)."""
    if platform not in PLATFORMS:
        fail(f"--platform must be one of {', '.join(PLATFORMS)}", BAD_INPUT)
    if bool(stage) == bool(approver_group):
        fail("give either --approver-group or --stage", BAD_INPUT)
    extensions: dict[str, Any] = {
        "scopeTagIds": [
            _named_id_of(tag, "scope tag", "/beta/deviceManagement/roleScopeTags")
            for tag in scope_tag
        ],
        "excludedApplicationIds": [
            _named_id_of(app, "service principal", "/beta/servicePrincipals", "appId")
            for app in exclude_app
        ],
        "approvalWindowHours": approval_window_hours,
        "completionWindowHours": completion_window_hours,
    }
    approvers: dict[str, Any] = (
        {"stages": [parse_stage(text) for text in stage]}
        if stage
        else {
            "approverGroupIds": [_group_id_of(g) for g in approver_group],
            "approvalsRequired": approvals_required,
        }
    )
    body = {
        "displayName": name,
        "description": description,
        "policyType": policy_type,
        "policyPlatform": PLATFORMS[platform],
        **approvers,
        "autoComplete": auto_complete,
        **extensions,
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
