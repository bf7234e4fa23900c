"""The README's exit-code table, one test per code against a live server, with `--json`
errors in Graph's shape; and the tables people read at 80 columns, whose short ids every
command takes back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from countersign.cli import app as cli
from countersign.cli import save_credentials
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import Principal, TenantFactory, as_user
from tests.maa import Seed, seed

runner = CliRunner()
APPS = "/beta/deviceAppManagement/mobileApps"
NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def graph_error(stdout: str) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(stdout)["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


@dataclass
class People:
    """Users made before any policy is active (afterwards, granting roles needs approval)."""

    outsider: Principal  # an Intune Administrator outside the approver group
    reader: Principal  # Read Only Operator
    packager: Principal  # Application Manager: submits app changes, approves nothing


PEOPLE: dict[str, People] = {}


@pytest.fixture()
def maa(
    tenants: TenantFactory, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Seed:
    """The two-administrator tenant, signed in as the first administrator, with an app
    policy active; `people(s)` are its other users."""
    s = seed(tenants)
    PEOPLE[s.tenant.id] = People(
        outsider=s.tenant.user(roles=("Intune Administrator",)),
        reader=s.tenant.user(roles=("Read Only Operator",)),
        packager=s.tenant.user(roles=("Application Manager",)),
    )
    s.activate_policy("app", "windows10AndLater,windows81AndLater,windows10X")
    as_user(monkeypatch, tmp_path, live_server, s.admin1)
    return s


def people(s: Seed) -> People:
    return PEOPLE[s.tenant.id]


def pending_request(s: Seed) -> str:
    return s.submit(
        "POST",
        APPS,
        json={
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": "Contoso Portal",
            "fileName": "portal.intunewin",
            "installCommandLine": "setup.exe /quiet",
            "uninstallCommandLine": "setup.exe /uninstall",
        },
        justification="CAB-77",
    )


def test_exit_0_ok(maa: Seed) -> None:
    code, stdout, _ = run("requests", "list", "--json")
    assert code == 0
    assert isinstance(json.loads(stdout), list)


def test_exit_1_only_for_a_broken_audit_chain(maa: Seed, cli: Any, db: Database) -> None:
    tenant_id = maa.tenant.id
    result = cli("audit", "verify", "--tenant", tenant_id)
    assert result.exit_code == 0, result.output
    with db.read() as session:
        event_id, activity = session.execute(
            select(t.AuditEvent.id, t.AuditEvent.activity).where(
                t.AuditEvent.tenant_id == tenant_id, t.AuditEvent.sequence == 2
            )
        ).one()
    edit = update(t.AuditEvent).where(t.AuditEvent.id == event_id)
    with db.write() as session:
        session.execute(edit.values(activity="Nothing to see"))
    try:
        result = cli("audit", "verify", "--tenant", tenant_id)
        assert result.exit_code == 1 and "broken at entry 2" in result.stderr
    finally:
        with db.write() as session:
            session.execute(edit.values(activity=activity))


def test_exit_2_bad_input(maa: Seed) -> None:
    code, _, stderr = run("requests", "list", "--status", "bogus")
    assert code == 2
    assert stderr.strip().splitlines() == [
        "error: --status must be one of needsApproval, approved, rejected, cancelled, "
        "completed, expired (not 'bogus')"
    ]
    code, stdout, _ = run("requests", "list", "--status", "bogus", "--json")
    assert code == 2 and graph_error(stdout)["code"] == "badRequest"
    # The server's 400: an approver group that does not exist.
    code, stdout, _ = run(
        "policies",
        "create",
        "--name",
        "Bad group",
        "--type",
        "script",
        "--approver-group",
        NO_SUCH_ID,
        "--justification",
        "x",
        "--json",
    )
    assert code == 2 and graph_error(stdout)["code"] == "BadRequest"


def test_exit_3_refused_self_approval_and_not_an_approver(
    maa: Seed, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    request_id = pending_request(maa)
    code, _, stderr = run("requests", "approve", request_id)
    assert code == 3 and "approverIsRequester" in stderr  # the server answers 400: still 3
    code, stdout, _ = run("requests", "approve", request_id, "--json")
    error = graph_error(stdout)
    assert code == 3 and error["innerError"]["reason"] == "approverIsRequester"
    assert "proper permissions to approve" in error["message"]

    outsider = people(maa).outsider  # not in the approver group
    as_user(monkeypatch, tmp_path, live_server, outsider)
    code, stdout, _ = run("requests", "approve", request_id, "--json")
    assert code == 3, stdout
    assert graph_error(stdout)["innerError"]["reason"] == "notInApproverGroup"

    reader = people(maa).reader
    as_user(monkeypatch, tmp_path, live_server, reader)
    code, _, stderr = run("policies", "delete", NO_SUCH_ID, "--justification", "x")
    assert code == 3 and "403" in stderr  # a 403


def test_exit_4_not_found(maa: Seed) -> None:
    code, stdout, _ = run("requests", "show", NO_SUCH_ID, "--json")
    assert code == 4 and graph_error(stdout)["code"] == "ResourceNotFound"
    code, _, stderr = run("requests", "show", "ffffffff-ff")  # a prefix nothing starts with
    assert code == 4 and "no request has an id starting with 'ffffffff-ff'" in stderr
    code, _, stderr = run("requests", "show", "x' or 1 eq 1")
    assert code == 2 and "not an id" in stderr


def test_exit_5_conflict_or_wrong_state(maa: Seed) -> None:
    request_id = pending_request(maa)
    code, _, stderr = run("requests", "complete", request_id)
    assert code == 5 and "409" in stderr  # not approved yet
    code, stdout, _ = run("requests", "cancel", request_id, "--json")
    assert code == 0 and json.loads(stdout)["status"] == "cancelled"
    code, stdout, _ = run("requests", "cancel", request_id, "--json")
    assert code == 5 and graph_error(stdout)["code"] == "Conflict"


def test_exit_6_server_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, maa: Seed
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nowhere"))
    save_credentials({"url": "http://127.0.0.1:1", "username": "x", "access_token": "t"})
    code, _, stderr = run("requests", "list")
    assert code == 6 and "cannot reach http://127.0.0.1:1" in stderr
    code, stdout, _ = run("whoami", "--json")
    assert code == 6 and graph_error(stdout)["code"] == "serviceUnavailable"


def test_ids_must_be_whole_or_a_unique_prefix(maa: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    from countersign.cli import client

    ids = ["4f2a1c00-0000-0000-0000-000000000001", "4f2a1c99-0000-0000-0000-000000000002"]
    monkeypatch.setattr(client, "all_items", lambda path, params=None: [{"id": i} for i in ids])
    code, _, stderr = run("requests", "show", "4f2a1c99")
    assert code != 2  # unique: resolved (the server then answers for that id)
    code, _, stderr = run("requests", "show", "4f2a1c")
    assert code == 2 and ids[0] in stderr and ids[1] in stderr  # ambiguous: both named


# -- 80 columns --------------------------------------------------------------------------------


def test_requests_list_at_80_columns_and_its_prefix_accepted(
    maa: Seed, live_server: str, tmp_path: Path
) -> None:
    request_id = pending_request(maa)
    me = maa.tenant.ok("GET", "/beta/me")
    env = {
        **os.environ,
        "COLUMNS": "80",
        "XDG_CONFIG_HOME": str(tmp_path / maa.admin1.id),
        "NO_COLOR": "1",
    }
    listed = subprocess.run(
        [sys.executable, "-m", "countersign", "requests", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), listed.stdout
    assert "…" not in listed.stdout
    [row] = [line for line in lines if "needsApproval" in line]  # the whole status word
    assert me["displayName"] in row  # the requester by name, whole
    assert "Contoso" in listed.stdout and request_id not in listed.stdout
    prefix = row.split()[0]
    assert 8 <= len(prefix) < len(request_id) and request_id.startswith(prefix)

    shown = subprocess.run(
        [sys.executable, "-m", "countersign", "requests", "show", prefix],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"id:             {request_id}" in shown.stdout and "CAB-77" in shown.stdout


def test_policies_list_names_the_approver_groups(maa: Seed) -> None:
    code, stdout, _ = run("policies", "list")
    assert code == 0
    assert "Intune Change Approvers" in stdout and maa.approvers not in stdout
    assert re.search(r"\bwindows\b", stdout)  # the platform choice, not the flags
    code, stdout, _ = run("policies", "list", "--wide")
    assert code == 0 and "windows10AndLater" in stdout  # --wide: the flags themselves
    code, stdout, _ = run("policies", "list", "--output", "csv")
    header, first = stdout.splitlines()[:2]
    assert header == "id,name,type,platforms,approver groups,quorum"
    policy_id = first.split(",")[0]
    code, stdout, _ = run("policies", "show", policy_id[:8])
    assert code == 0 and f"Intune Change Approvers ({maa.approvers})" in stdout


def test_a_requester_without_the_approval_permission_uses_a_prefix_of_their_request(
    maa: Seed, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    packager = people(maa).packager
    request_id = maa.submit(
        "POST",
        APPS,
        who=packager,
        json={
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": "Packager's app",
            "fileName": "p.intunewin",
            "installCommandLine": "setup.exe /quiet",
            "uninstallCommandLine": "setup.exe /uninstall",
        },
    )
    as_user(monkeypatch, tmp_path, live_server, packager)
    code, stdout, stderr = run("requests", "show", request_id[:8])
    assert code == 0, stderr
    assert f"id:             {request_id}" in stdout
    code, stdout, _ = run("requests", "cancel", request_id[:8], "--json")
    assert code == 0 and json.loads(stdout) == {"id": request_id, "status": "cancelled"}
