"""`countersign channels list|add|test|delete` against a live server: what it prints (tables
and `--json`), its exit codes with the server's reason, and that no secret is ever printed."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from countersign.cli import app as cli
from countersign.cli import out
from tests.factories import Tenant, TenantFactory, as_user
from tests.integration.receivers import http_receiver

runner = CliRunner()
HOOK_SECRET = "cli-hook-secret-0123456789abcdef"
SMTP_PASSWORD = "cli-smtp-password-never-printed"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env)
    output = result.output + (result.stderr if result.stderr_bytes else "")
    for secret in (HOOK_SECRET, SMTP_PASSWORD):
        assert secret not in output, f"secret printed by {args}"
    return result.exit_code, output


@pytest.fixture()
def tenant(
    tenants: TenantFactory, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Tenant:
    tenant = tenants()
    as_user(monkeypatch, tmp_path, live_server, tenant.admin)
    # A wide terminal, so that table cells are not wrapped (ids never are: checked below).
    monkeypatch.setattr(out, "_width", 160)
    return tenant


def test_add_list_test_and_delete_a_webhook(tenant: Tenant) -> None:
    with http_receiver() as http:
        code, output = run(
            "channels",
            "add",
            "--name",
            "Ops hook",
            "--type",
            "webhook",
            "--url",
            f"{http.url}/hook",
            "--secret",
            HOOK_SECRET,
            "--event",
            "submitted",
            "--event",
            "reminder",
            "--json",
        )
        assert code == 0, output
        created = json.loads(output)
        assert created["hasSecret"] is True and "secret" not in created
        assert created["events"] == ["submitted", "reminder"]

        code, output = run("channels", "list")
        assert code == 0, output
        prefix = created["id"][:8]  # ids are shown as a short unique prefix
        assert "Ops hook" in output and prefix in output and created["id"] not in output
        assert "submitted, reminder" in output and f"{http.url}/hook" in output
        code, output = run("channels", "list", "--wide")
        assert code == 0 and created["id"] in output
        code, output = run("channels", "list", "--json")
        assert [c["id"] for c in json.loads(output)] == [created["id"]]
        code, output = run("channels", "list", "--output", "csv")
        assert output.splitlines()[0] == "id,name,type,enabled,target,events"
        assert output.splitlines()[1].startswith(f"{created['id']},Ops hook,webhook,yes,")
        with pytest.MonkeyPatch.context() as narrow:
            narrow.setattr(out, "_width", 60)
            code, output = run("channels", "list")
        rows = [line.split()[:1] for line in output.splitlines()]
        assert code == 0 and [prefix] in rows  # whole, even on a narrow terminal

        code, output = run("channels", "test", prefix)  # the prefix is accepted back
        assert code == 0 and "test message delivered" in output
    (test,) = http.at("/hook")
    assert test.json()["event"] == "test"
    signature = hmac.new(HOOK_SECRET.encode(), test.body, hashlib.sha256).hexdigest()
    assert test.headers["x-countersign-signature"] == f"sha256={signature}"

    code, output = run("channels", "delete", created["id"])
    assert code == 0 and f"channel {created['id']} deleted" in output
    code, output = run("channels", "list", "--json")
    assert json.loads(output) == []
    code, output = run("channels", "delete", created["id"])
    assert code == 4 and "does not exist" in output  # 404, the server's reason


def test_an_email_channel_takes_its_password_from_the_environment(
    tenant: Tenant, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    arguments = [
        "channels",
        "add",
        "--name",
        "Mail",
        "--type",
        "email",
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        "9",
        "--smtp-security",
        "starttls",
        "--smtp-username",
        "countersign",
        "--from",
        "countersign@contoso.example",
        "--to",
        "ops@contoso.example",
        "--smtp-ca-certificate",
        str(ca),
    ]
    code, output = run(*arguments, env={"COUNTERSIGN_CHANNEL_SECRET": SMTP_PASSWORD})
    assert code == 2 and "smtpCaCertificate" in output  # 400: the server's reason

    code, output = run(*arguments[:-2], "--json", env={"COUNTERSIGN_CHANNEL_SECRET": SMTP_PASSWORD})
    assert code == 0, output
    created = json.loads(output)
    assert created["hasSecret"] is True and created["smtpSecurity"] == "starttls"
    assert created["toAddresses"] == ["ops@contoso.example"]
    code, output = run("channels", "list")
    assert "127.0.0.1:9" in output

    # Nothing listens on port 9: the test fails with the server's answer (502), exit code 6.
    code, output = run("channels", "test", created["id"])
    assert code == 6 and "502" in output and "SMTP 127.0.0.1:9" in output


def test_refusals_exit_non_zero_with_the_servers_reason(tenant: Tenant) -> None:
    code, output = run(
        "channels",
        "add",
        "--name",
        "Weak",
        "--type",
        "webhook",
        "--url",
        "https://hooks.example/cs",
        "--secret",
        "short-Q7Z",
    )
    assert code == 2 and "at least 16 characters" in output and "short-Q7Z" not in output
    code, output = run(
        "channels", "add", "--name", "Bad", "--type", "pager", "--url", "https://x.example"
    )
    assert code == 2 and "channelType" in output

    with http_receiver() as http:
        http.script["/down"] = [503]
        code, output = run(
            "channels",
            "add",
            "--name",
            "Teams",
            "--type",
            "teams",
            "--url",
            f"{http.url}/down",
            "--json",
        )
        channel_id = json.loads(output)["id"]
        code, output = run("channels", "test", channel_id)
    assert code == 6 and "502" in output and "HTTP 503" in output
    code, output = run("channels", "test", "00000000-0000-0000-0000-000000000000")
    assert code == 4 and "does not exist" in output
    run("channels", "delete", channel_id)


def test_a_reader_may_list_but_not_change_channels(
    tenant: Tenant, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, output = run(
        "channels",
        "add",
        "--name",
        "Slack [/ops] [bold]",
        "--type",
        "slack",
        "--url",
        "https://hooks.slack.example/T0/B0/x",
        "--json",
    )
    channel_id = json.loads(output)["id"]
    reader = tenant.user(roles=("Read Only Operator",))
    as_user(monkeypatch, tmp_path, live_server, reader)
    code, output = run("channels", "list")
    assert code == 0 and "Slack [/ops] [bold]" in output  # a name is data, not rich markup
    code, output = run("channels", "list", "--json")
    assert code == 0 and [c["id"] for c in json.loads(output)] == [channel_id]
    code, output = run("channels", "delete", channel_id)
    assert code == 3 and "403" in output
    code, output = run(
        "channels", "add", "--name", "x", "--type", "slack", "--url", "https://x.example"
    )
    assert code == 3
    code, output = run("channels", "test", channel_id)
    assert code == 3
    as_user(monkeypatch, tmp_path, live_server, tenant.admin)
    assert run("channels", "delete", channel_id)[0] == 0
