"""The `countersign` command: tenant create, login against a live server, whoami, errors."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from countersign.cli import app as command
from countersign.store.db import Database, make_engine
from countersign.store.migrate import migrations_current
from tests.factories import unique


@pytest.fixture()
def run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, db: Database
) -> Iterator[tuple[CliRunner, Path]]:
    """A runner against the test database (migrated by the `db` fixture)."""
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", database_url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield CliRunner(), tmp_path / "config"


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(command, list(args))


def _create_tenant(runner: CliRunner, password: str | None = None) -> dict[str, str]:
    upn = f"admin@{unique('cli')}.example"
    args = ["tenant", "create", "--name", "CLI Corp", "--admin-upn", upn, "--json"]
    if password:
        args += ["--admin-password", password]
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    created: dict[str, str] = json.loads(result.stdout)
    return created


def _login(runner: CliRunner, url: str, upn: str, password: str) -> Result:
    return invoke(runner, "login", "--url", url, "--username", upn, "--password", password)


def test_tenant_create_prints_the_tenant_and_credentials(run: tuple[CliRunner, Path]) -> None:
    runner, _ = run
    upn = f"Admin@{unique('cli')}.example"
    result = invoke(runner, "tenant", "create", "--name", "Fabrikam", "--admin-upn", upn)
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.strip().splitlines())
    assert len(lines["tenant id"].strip()) == 36
    assert lines["administrator"].strip() == upn.lower()
    assert len(lines["password"].strip()) >= 16
    created = _create_tenant(runner, "Chosen-Passw0rd")
    assert created["password"] == "Chosen-Passw0rd"
    assert set(created) == {"tenantId", "userPrincipalName", "password"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--admin-upn", "not-a-upn"], "user principal name"),
        (["--admin-upn", "x@y.example", "--admin-password", "short"], "8 characters"),
        (["--name", " ", "--admin-upn", "z@y.example"], "needs a name"),
    ],
)
def test_tenant_create_errors_are_one_line(
    run: tuple[CliRunner, Path], args: list[str], fragment: str
) -> None:
    runner, _ = run
    if "--name" not in args:
        args = ["--name", "Bad", *args]
    result = invoke(runner, "tenant", "create", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def test_duplicate_admin_upn_is_a_conflict(run: tuple[CliRunner, Path]) -> None:
    runner, _ = run
    created = _create_tenant(runner)
    result = invoke(
        runner, "tenant", "create", "--name", "Again", "--admin-upn", created["userPrincipalName"]
    )
    assert result.exit_code == 5 and "already exists" in result.stderr


def test_login_keeps_the_token_private_and_whoami_uses_it(
    run: tuple[CliRunner, Path], live_server: str
) -> None:
    runner, config = run
    created = _create_tenant(runner)
    result = _login(runner, live_server, created["userPrincipalName"], created["password"])
    assert result.exit_code == 0, result.output
    path = config / "countersign" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored["url"] == live_server and stored["access_token"].count(".") == 2
    assert created["password"] not in path.read_text()

    result = invoke(runner, "whoami")
    assert result.exit_code == 0, result.output
    assert created["userPrincipalName"] in result.stdout and created["tenantId"] in result.stdout
    result = invoke(runner, "whoami", "--json")
    assert json.loads(result.stdout)["tenantId"] == created["tenantId"]


def test_bad_password_exits_non_zero_with_one_line(
    run: tuple[CliRunner, Path], live_server: str
) -> None:
    runner, config = run
    created = _create_tenant(runner)
    result = _login(runner, live_server, created["userPrincipalName"], "Wrong-Password-1")
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        "error: sign-in refused: The user name or password is incorrect."
    ]
    assert not (config / "countersign" / "credentials.json").exists()


def test_unreachable_server_and_no_login_are_one_line(run: tuple[CliRunner, Path]) -> None:
    runner, _ = run
    result = invoke(runner, "whoami")
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1 and "not signed in" in result.stderr
    long_url = "http://127.0.0.1:1/[bold]/" + "a-rather-long-path/" * 8
    result = invoke(
        runner, "login", "--url", long_url, "--username", "x@y.example", "--password", "p"
    )
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot reach" in result.stderr and long_url in result.stderr  # no markup eaten


def test_db_upgrade(
    run: tuple[CliRunner, Path], monkeypatch: pytest.MonkeyPatch, fresh_database_url: Any
) -> None:
    runner, _ = run
    url = fresh_database_url()
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", url)
    result = invoke(runner, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "latest schema" in result.stdout
    engine = make_engine(url)
    try:
        assert migrations_current(engine)
    finally:
        engine.dispose()


def test_db_upgrade_against_an_unreachable_server_is_one_line(
    run: tuple[CliRunner, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _ = run
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", "postgresql://ops:secret@127.0.0.1:1/nothing")
    result = invoke(runner, "db", "upgrade")
    assert result.exit_code == 6  # the database server cannot be reached
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "could not migrate" in lines[0] and "secret" not in lines[0]


def test_demo_prints_the_admin_center_both_sign_ins_and_the_cli_path(
    run: tuple[CliRunner, Path], monkeypatch: pytest.MonkeyPatch, fresh_database_url: Any
) -> None:
    import sys

    from countersign.cli import operator as cli

    runner, _ = run
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", fresh_database_url())
    served: list[tuple[str, int]] = []
    monkeypatch.setattr(
        cli, "serve", lambda host, port, workers, upgrade_db: served.append((host, port))
    )
    result = invoke(runner, "demo", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", 8123)]
    lines = result.stdout.splitlines()
    assert "Admin center: http://127.0.0.1:8123/admin" in lines
    sign_ins = [line for line in lines if line.strip().startswith("sign in as ")]
    assert len(sign_ins) == 2 and all("with password" in line for line in sign_ins)
    executable = Path(sys.executable).parent / "countersign"  # the venv's bin, in full
    assert any(
        line.startswith(f"CLI: {executable} login --url http://127.0.0.1:8123") for line in lines
    )
    assert "seed" not in result.stdout
    helped = invoke(runner, "demo", "--help")
    assert "--port" in helped.stdout and "seed" not in helped.stdout


def test_help_has_no_type_clutter_and_completion_is_offered(run: tuple[CliRunner, Path]) -> None:
    runner, _ = run
    top = invoke(runner, "--help").stdout
    assert "--install-completion" in top
    for args in (
        ["policies", "show"],
        ["policies", "create"],
        ["requests", "list"],
        ["audit", "verify"],
    ):
        text = invoke(runner, *args, "--help").stdout
        assert "<bool>" not in text and "<str>" not in text, args
    assert "unique prefix" in invoke(runner, "policies", "show", "--help").stdout


def test_every_command_and_option_has_help() -> None:
    import typer

    missing: list[str] = []

    def walk(group: Any, path: str) -> None:
        for name, sub in group.commands.items():
            where = f"{path} {name}"
            if not (sub.help or "").strip():
                missing.append(where)
            for param in sub.params:
                if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                    missing.append(f"{where} {param.opts[0] if param.opts else param.name}")
            if hasattr(sub, "commands"):
                walk(sub, where)

    walk(typer.main.get_command(command), "countersign")
    assert missing == []
