"""`countersign requests ...` and `countersign policies ...` against a live server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from countersign.cli import app as cli
from countersign.cli import save_credentials
from tests.factories import Principal, TenantFactory
from tests.maa import seed

runner = CliRunner()


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started:
        assert thread.is_alive(), "uvicorn did not start"
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def as_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, who: Principal) -> None:
    home = tmp_path / who.id
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    save_credentials({"url": url, "username": who.upn, "access_token": who.token})


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_the_seed_story_from_the_command_line(
    tenants: TenantFactory, server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = seed(tenants)
    as_user(monkeypatch, tmp_path, server, s.admin1)
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
    assert code == 2, output  # the requester cannot approve: the server's reason is printed
    assert "approverIsRequester" in output

    as_user(monkeypatch, tmp_path, server, s.admin2)
    code, output = run("requests", "list", "--status", "needsApproval", "--json")
    assert [r["id"] for r in json.loads(output)] == [request_id]
    code, output = run("requests", "show", request_id)
    assert code == 0 and "CAB-42" in output and "/displayName" in output
    code, output = run("requests", "approve", request_id, "--notes", "ok by me")
    assert code == 0 and "approved" in output

    as_user(monkeypatch, tmp_path, server, s.admin1)
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
