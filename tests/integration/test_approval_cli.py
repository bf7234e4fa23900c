"""`countersign requests ...` and `countersign policies ...` against a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from countersign.cli import app as cli
from tests.factories import PASSWORD, TenantFactory, as_user
from tests.maa import seed

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_the_seed_story_from_the_command_line(
    tenants: TenantFactory, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = seed(tenants)
    as_user(monkeypatch, tmp_path, live_server, s.admin1)
    code, output = run(
        "policies",
        "create",
        "--name",
        "Protect apps",
        "--type",
        "app",
        "--platform",
        "windows",
        "--approver-group",
        s.approvers,
        "--justification",
        "CAB-42",
        "--json",
    )
    assert code == 0, output
    request_id = json.loads(output)["requestId"]
    code, output = run("requests", "approve", request_id)
    assert code == 3, output  # refused: the requester cannot approve (the reason is printed)
    assert "approverIsRequester" in output

    as_user(monkeypatch, tmp_path, live_server, s.admin2)
    code, output = run("requests", "list", "--status", "needsApproval", "--json")
    assert [r["id"] for r in json.loads(output)] == [request_id]
    code, output = run("requests", "show", request_id)
    assert code == 0 and "CAB-42" in output
    assert "Create access policy Protect apps" in output
    assert "Approver groups: Intune Change Approvers" in output
    code, output = run("requests", "approve", request_id, "--notes", "ok by me")
    assert code == 0 and "approved" in output

    as_user(monkeypatch, tmp_path, live_server, s.admin1)
    code, output = run("requests", "complete", request_id)
    assert code == 0, output
    code, output = run("policies", "list", "--json")
    [policy] = json.loads(output)
    assert policy["policyType"] == "app"
    assert policy["policyPlatform"] == "windows10AndLater,windows81AndLater,windows10X"
    code, output = run("requests", "complete", request_id)
    assert code == 5 and "completed" in output  # 409: already completed

    code, output = run("policies", "delete", policy["id"], "--justification", "retire it")
    assert code == 0 and "submitted for approval" in output
    code, output = run("requests", "list", "--mine", "--status", "needsApproval", "--json")
    [pending] = json.loads(output)
    code, output = run("requests", "cancel", pending["id"])
    assert code == 0 and "cancelled" in output
    code, output = run("requests", "reject", pending["id"], "--notes", "x")
    assert code != 0


def test_change_own_password_from_the_command_line(
    tenants: TenantFactory, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tenant = tenants()
    as_user(monkeypatch, tmp_path, live_server, tenant.admin)
    result = runner.invoke(
        cli,
        ["change-password"],
        input=f"{PASSWORD}\nCli-Passw0rd-77\nCli-Passw0rd-77\n",
    )
    assert result.exit_code == 0, result.output
    assert "password changed" in result.output and "Cli-Passw0rd-77" not in result.output
    code, output = run("whoami", "--json")  # signed in again with the new password
    assert code == 0 and json.loads(output)["id"] == tenant.admin.id
    assert tenant.sign_in(tenant.admin.upn, "Cli-Passw0rd-77").id == tenant.admin.id
    wrong = runner.invoke(
        cli, ["change-password"], input="nope\nOther-Passw0rd-1\nOther-Passw0rd-1\n"
    )
    assert wrong.exit_code == 2 and "The current password is incorrect." in wrong.output
    scripted = runner.invoke(
        cli,
        ["change-password", "--json", "--current", "Cli-Passw0rd-77", "--new", "Cli-Passw0rd-88"],
    )
    assert scripted.exit_code == 0, scripted.output
    assert json.loads(scripted.output) == {
        "userPrincipalName": tenant.admin.upn,
        "passwordChanged": True,
    }
    refused = runner.invoke(
        cli, ["change-password", "--json", "--current", "nope", "--new", "Cli-Passw0rd-99"]
    )
    assert refused.exit_code == 2
    assert json.loads(refused.output)["error"]["message"] == "The current password is incorrect."
