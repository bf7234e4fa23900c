"""The `countersign` command: operator commands run locally, admin commands call a server."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from countersign.approval_cli import policies_app, requests_app
from countersign.config import Settings
from countersign.domain.errors import DomainError
from countersign.notify.commands import channels_app, worker_command

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Countersign: device management where high-impact changes need a second administrator.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(audit_app, name="audit")
app.add_typer(channels_app, name="channels")  # notify/commands.py
app.add_typer(requests_app, name="requests")  # approval_cli.py
app.add_typer(policies_app, name="policies")  # approval_cli.py
app.command("worker")(worker_command)
devices_app = typer.Typer(no_args_is_help=True, help="The managed-device inventory.")
app.add_typer(devices_app, name="devices")

# soft_wrap: a long line stays one line (scripts and people grep it), whatever the width.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    message = " ".join(message.split())  # one line, whatever the server or driver said
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def exit_code(error: DomainError) -> int:
    """Exit codes for scripts: 2 bad input, 3 not allowed, 4 not found, 5 conflict."""
    from countersign.domain import errors as e

    for cls, code in (
        (e.ValidationFailed, 2),
        (e.Unauthorized, 3),
        (e.Forbidden, 3),
        (e.NotFound, 4),
        (e.Conflict, 5),
        (e.PreconditionFailed, 5),
    ):
        if isinstance(error, cls):
            return code
    return 1


# -- operator commands ---------------------------------------------------------------------


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    upgrade_db: bool = typer.Option(True, help="Apply pending migrations first."),
) -> None:
    """Serve the HTTP API (and admin center)."""
    import uvicorn

    from countersign.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if upgrade_db:
        _upgrade(settings)
    from countersign.store.db import Database

    db = Database(settings.database_url)
    try:
        db.refresh_statistics()
    finally:
        db.dispose()
    uvicorn.run(
        "countersign.api.factory:app",
        factory=False,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None,  # configure_logging's JSON lines (api/factory.py: worker processes)
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )


def _upgrade(settings: Settings) -> None:
    from countersign.store.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:  # reported as one line: the operator fixes the URL or the server
        detail = (str(exc).strip().splitlines() or [""])[0]  # drivers add lines of hints
        fail(f"could not migrate {_redact(settings.database_url)}: {type(exc).__name__}: {detail}")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Create a demo tenant like the seed's (once), print how to sign in, and serve."""
    from countersign.services.demo import ensure_demo_tenant
    from countersign.store.db import Database

    settings = Settings()
    _upgrade(settings)
    db = Database(settings.database_url)
    try:
        made = ensure_demo_tenant(db)
    finally:
        db.dispose()
    state = "created" if made.created else "already there"
    out.print(f"Demo tenant {made.tenant_id} ({state}) on {_redact(settings.database_url)}")
    for upn in made.administrators:
        out.print(f"  sign in as {upn} with password {made.password}", highlight=False)
    out.print(f"API: http://{host}:{port}/beta   docs: http://{host}:{port}/docs")
    first = made.administrators[0]
    out.print(f"CLI: countersign login --url http://{host}:{port} --username {first}")
    serve(host=host, port=port, workers=1, upgrade_db=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = Settings()
    _upgrade(settings)
    out.print(f"database {_redact(settings.database_url)} is at the latest schema")


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Option(..., help="The organisation's name."),
    admin_upn: str = typer.Option(..., help="The first administrator's sign-in name."),
    admin_password: str | None = typer.Option(None, help="Generated when omitted."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Create a tenant and its first administrator (holds Intune Administrator)."""
    from countersign.services.tenants import create_tenant
    from countersign.store.db import Database

    settings = Settings()
    _upgrade(settings)
    db = Database(settings.database_url)
    try:
        with db.write() as session:
            created = create_tenant(session, name, admin_upn, admin_password)
    except DomainError as exc:
        fail(exc.message, exit_code(exc))
    finally:
        db.dispose()
    result = {
        "tenantId": created.tenant_id,
        "userPrincipalName": created.admin_upn,
        "password": created.admin_password,
    }
    if json_output:
        out.print_json(data=result)
    else:
        out.print(
            f"tenant id:      {created.tenant_id}\nadministrator:  {created.admin_upn}\n"
            f"password:       {created.admin_password}",
            highlight=False,
        )


@audit_app.command("verify")
def audit_verify(
    tenant: str | None = typer.Option(None, help="One tenant; every tenant by default."),
) -> None:
    """Check every tenant's hash chain; exits non-zero at the first broken link."""
    from sqlalchemy import select

    from countersign.services.audit import verify_chain
    from countersign.store import tables as t
    from countersign.store.db import Database

    db = Database(Settings().database_url)
    try:
        with db.read() as session:
            tenant_ids = [tenant] if tenant else list(session.scalars(select(t.Tenant.id)))
            broken = [b for b in (verify_chain(session, tid) for tid in tenant_ids) if b]
    finally:
        db.dispose()
    for link in broken:
        err.print(
            f"tenant {link.tenant_id}: broken at entry {link.sequence}"
            f"{' (' + link.event_id + ')' if link.event_id else ''}: {link.problem}",
            highlight=False,
        )
    if broken:
        raise typer.Exit(1)
    out.print(f"audit log intact for {len(tenant_ids)} tenant(s)")


@audit_app.command("export")
def audit_export(
    tenant: str = typer.Option(..., help="The tenant id."),
    output: Path = typer.Option(Path("-"), "--output", "-o", help="File, or - for stdout."),
) -> None:
    """Write a tenant's audit log as JSON lines, oldest first."""
    from sqlalchemy import select

    from countersign.services.audit import event_json
    from countersign.store import tables as t
    from countersign.store.db import Database

    db = Database(Settings().database_url)
    stream = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    try:
        with db.read() as session:
            query = (
                select(t.AuditEvent)
                .where(t.AuditEvent.tenant_id == tenant)
                .order_by(t.AuditEvent.sequence)
                .execution_options(yield_per=1000)
            )
            for row in session.scalars(query):
                stream.write(json.dumps(event_json(row), sort_keys=True) + "\n")
    finally:
        if stream is not sys.stdout:
            stream.close()
        db.dispose()


@devices_app.command("import")
def devices_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header line."),
    tenant: str = typer.Option(..., help="The tenant id."),
    as_upn: str | None = typer.Option(
        None, "--as", help="The administrator recorded as the importer (default: the first)."
    ),
) -> None:
    """Import devices from a CSV file, all or nothing: a bad row names its line."""
    from datetime import UTC, datetime

    from countersign.auth.tokens import TokenClaims
    from countersign.domain.actors import USER
    from countersign.services.devices import first_administrator, import_csv
    from countersign.services.identity import resolve_caller
    from countersign.store.db import Database

    db = Database(Settings().database_url)
    try:
        with db.read() as session:
            upn = as_upn or first_administrator(session, tenant)
            if upn is None:
                fail(f"tenant {tenant} has no users", 4)
            caller = resolve_caller(session, db, TokenClaims(tenant, None, USER, upn=upn))
        count = import_csv(db, caller, file.read_text(encoding="utf-8-sig"), datetime.now(UTC))
    except DomainError as exc:
        fail(f"{file}: {exc.message} Nothing was imported.", exit_code(exc))
    finally:
        db.dispose()
    out.print(f"imported {count} device(s) into tenant {tenant}")


# -- administrator commands (an API client) ------------------------------------------------


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "countersign"


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, Any]:
    path = _credentials_path()
    if not path.exists():
        fail("not signed in: run 'countersign login --url URL --username UPN' first", 3)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def save_credentials(data: dict[str, Any]) -> Path:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def api_call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the server with the stored token; a refusal exits non-zero with the server's reason."""
    creds = load_credentials()
    try:
        response = httpx.request(
            method,
            creds["url"].rstrip("/") + path,
            timeout=30,
            headers={
                "Authorization": f"Bearer {creds['access_token']}",
                **kwargs.pop("headers", {}),
            },
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {creds['url']}: {exc}")
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            reason = error.get("innerError", {}).get("reason")
            message = error["message"] + (f" (reason: {reason})" if reason else "")
        except (ValueError, KeyError, TypeError):
            message = response.text or response.reason_phrase
        code = {400: 2, 401: 3, 403: 3, 404: 4, 409: 5, 412: 5}.get(response.status_code, 1)
        fail(f"{response.status_code} {message}", code)
    return response


@app.command()
def login(
    url: str = typer.Option(..., help="The server, e.g. http://127.0.0.1:8000"),
    username: str = typer.Option(..., help="Your user principal name."),
    password: str = typer.Option(..., prompt=True, hide_input=True),
) -> None:
    """Sign in and keep the token in your config directory (mode 0600)."""
    try:
        response = httpx.post(
            url.rstrip("/") + "/oauth2/token",
            timeout=30,
            data={"grant_type": "password", "username": username, "password": password},
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    if response.status_code != 200:
        try:
            description = response.json().get("error_description", response.text)
        except ValueError:
            description = response.text
        fail(f"sign-in refused: {description}", 3)
    path = save_credentials(
        {"url": url, "username": username, "access_token": response.json()["access_token"]}
    )
    out.print(f"signed in as {username}; token kept in {path}")


@app.command()
def whoami(json_output: bool = typer.Option(False, "--json")) -> None:
    """Show the signed-in principal."""
    me = api_call("GET", "/beta/me").json()
    if json_output:
        out.print_json(data=me)
    else:
        out.print(
            f"{me.get('displayName')} <{me.get('userPrincipalName') or me.get('appId')}> "
            f"id {me['id']} tenant {me.get('tenantId')}",
            highlight=False,
        )


@app.command("change-password")
def change_password(
    current: str = typer.Option(
        ..., prompt="Current password", hide_input=True, help="Your current password."
    ),
    new: str = typer.Option(
        ...,
        prompt="New password",
        hide_input=True,
        confirmation_prompt=True,
        help="The new password (8 to 256 characters).",
    ),
) -> None:
    """Change your own password (no approval needed: you prove the current one), then sign in
    again with it: the change ends every earlier token of yours."""
    api_call(
        "POST", "/beta/me/changePassword", json={"currentPassword": current, "newPassword": new}
    )
    creds = load_credentials()
    response = httpx.post(
        creds["url"].rstrip("/") + "/oauth2/token",
        timeout=30,
        data={"grant_type": "password", "username": creds["username"], "password": new},
    )
    if response.status_code != 200:
        fail("password changed; sign in again with `countersign login`", 3)
    save_credentials({**creds, "access_token": response.json()["access_token"]})
    out.print(f"password changed for {creds['username']}; signed in again with it")


def main() -> None:
    app()
