"""The `countersign` command: operator commands run locally, admin commands call a server."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import typer
import typer.core

from countersign.cli.channels import channels_app, worker_command
from countersign.cli.output import (
    BAD_INPUT,
    CHECK_FAILED,
    CONFLICT,
    JSON,
    NOT_FOUND,
    REFUSED,
    UNREACHABLE,
    err,
    fail,
    http_exit_code,
    out,
)
from countersign.cli.requests import policies_app, requests_app
from countersign.config import Settings
from countersign.domain.errors import DomainError

if TYPE_CHECKING:
    from typer._click import Context

    from countersign.store.db import Database

__all__ = ["app", "err", "fail", "main", "out"]


def _help_type(self: Any, ctx: Context) -> str | None:
    """Help shows an option's value as click does (TEXT, INTEGER, PATH) and nothing for a flag
    or an argument (its name says it), not Typer's `<str>` and `<bool>`."""
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    if self.metavar:
        return str(self.metavar)
    if isinstance(self, typer.core.TyperArgument):
        return None
    label = typer.core._TyperParameter.display_type(self, ctx).strip("<>")
    if "|" in label:  # a choice: its values, as they are typed
        return label
    plain = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "bool": None}
    return plain.get(label.removeprefix("list[").removesuffix("]"), label.upper())


typer.core.TyperOption.display_type_rich = _help_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _help_type  # type: ignore[method-assign]

app = typer.Typer(
    no_args_is_help=True,
    help="Countersign: device management where high-impact changes need a second administrator.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(audit_app, name="audit")
app.add_typer(channels_app, name="channels")  # cli/channels.py
app.add_typer(requests_app, name="requests")  # cli/requests.py
app.add_typer(policies_app, name="policies")  # cli/requests.py
app.command("worker")(worker_command)
devices_app = typer.Typer(no_args_is_help=True, help="The managed-device inventory.")
app.add_typer(devices_app, name="devices")


def exit_code(error: DomainError) -> int:
    """The exit code of an error raised by a local (operator) command: see cli/output.py."""
    from countersign.domain import errors as e

    for cls, code in (
        (e.ValidationFailed, BAD_INPUT),
        (e.Unauthorized, REFUSED),
        (e.Forbidden, REFUSED),
        (e.NotEligibleToApprove, REFUSED),
        (e.NotFound, NOT_FOUND),
        (e.Conflict, CONFLICT),
        (e.PreconditionFailed, CONFLICT),
    ):
        if isinstance(error, cls):
            return code
    return BAD_INPUT


def open_database(settings: Settings | None = None) -> Database:
    """The configured database, for an operator command. A missing SQLite file or a database
    whose schema is not current exits 2 with one line, and nothing is created: only `db
    upgrade` (and `serve`, `demo`) create or migrate a database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from countersign.store.db import Database
    from countersign.store.migrate import migrations_current

    settings = settings or Settings()
    url = settings.database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        fail(f"COUNTERSIGN_DATABASE_URL is not a database URL: {_redact(url)}", BAD_INPUT)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or path.startswith("file:"):
            fail(f"{url} is not a database file (set COUNTERSIGN_DATABASE_URL)", BAD_INPUT)
        if not Path(path).is_file():
            fail(
                f"no database at {Path(path).resolve()}: run 'countersign db upgrade' to create "
                "it, or set COUNTERSIGN_DATABASE_URL",
                BAD_INPUT,
            )
    db = Database(url, settings.write_concurrency)
    try:
        current = migrations_current(db.engine)
    except Exception as exc:  # reported as one line: the operator fixes the URL or the server
        db.dispose()
        detail = (str(exc).strip().splitlines() or [""])[0]
        missing = "does not exist" in detail  # the server is there, the database is not
        fail(
            f"cannot open {_redact(url)}: {type(exc).__name__}: {detail}",
            BAD_INPUT if missing else UNREACHABLE,
        )
    if not current:
        db.dispose()
        fail(
            f"the database {_redact(url)} is not at the latest schema: run "
            "'countersign db upgrade' first",
            BAD_INPUT,
        )
    return db


# -- operator commands ---------------------------------------------------------------------


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8000, help="The TCP port to listen on."),
    workers: int = typer.Option(1, help="Server processes (PostgreSQL or SQLite)."),
    upgrade_db: bool = typer.Option(True, help="Apply pending migrations first."),
) -> None:
    """Serve the HTTP API (and admin center)."""
    import uvicorn

    from countersign.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if upgrade_db:
        _upgrade(settings)
    db = open_database(settings)
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
        fail(
            f"could not migrate {_redact(settings.database_url)}: {type(exc).__name__}: {detail}",
            UNREACHABLE,
        )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8000, help="The TCP port to listen on."),
) -> None:
    """Create a demo tenant (once), print its admin center URL and sign-ins, and serve it."""
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
    base = f"http://{host}:{port}"
    lines = [
        f"Demo tenant {made.tenant_id} ({state}) on {_redact(settings.database_url)}",
        f"Admin center: {base}/admin",
        *(f"  sign in as {upn} with password {made.password}" for upn in made.administrators),
        f"API: {base}/beta   docs: {base}/docs",
        f"CLI: {cli_path()} login --url {base} --username {made.administrators[0]}",
    ]
    out.print("\n".join(lines), highlight=False, markup=False)
    serve(host=host, port=port, workers=1, upgrade_db=False)


def cli_path() -> str:
    """The full path of this `countersign` command, as a person can paste it (it usually lives
    in the virtual environment's bin directory, not on PATH)."""
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and Path(argv0).name == "countersign":
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found:
            return str(Path(found).absolute())
    beside = Path(sys.executable).parent / "countersign"  # python -m countersign
    return str(beside) if beside.exists() else "countersign"


@db_app.command("upgrade")
def db_upgrade(json_output: bool = JSON) -> None:
    """Create the database if needed and apply every pending migration."""
    settings = Settings()
    _upgrade(settings)
    if json_output:
        out.print_json(data={"database": _redact(settings.database_url), "current": True})
    else:
        out.print(
            f"database {_redact(settings.database_url)} is at the latest schema", highlight=False
        )


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Option(..., help="The organisation's name."),
    admin_upn: str = typer.Option(..., help="The first administrator's sign-in name."),
    admin_password: str | None = typer.Option(None, help="Generated when omitted."),
    json_output: bool = JSON,
) -> None:
    """Create a tenant and its first administrator (holds Intune Administrator)."""
    from countersign.services.tenants import create_tenant

    db = open_database()
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
    tenant: str | None = typer.Option(None, help="One tenant's id; every tenant by default."),
    json_output: bool = JSON,
    checkpoints: Path | None = typer.Option(
        None,
        "--checkpoints",
        help="A checkpoint log (JSON lines): the chains must hold every signed checkpoint.",
    ),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        help="The checkpoints' key (PEM, public or private); default: the configured key file.",
    ),
) -> None:
    """Check the tenants' hash chains: exit 0 when intact, 1 at the first broken link (or a
    checkpoint the chains no longer hold, or a checkpoint refused)."""
    db = open_database()
    try:
        checked, broken = verify_audit(db, tenant)
        anchors = _verify_anchors(db, checkpoints, public_key, tenant)
    finally:
        db.dispose()
    if json_output:
        out.print_json(
            data={
                "tenants": checked,
                "intact": not broken and (anchors is None or not anchors.problems),
                "brokenLinks": [
                    {
                        "tenantId": link.tenant_id,
                        "sequence": link.sequence,
                        "eventId": link.event_id,
                        "problem": link.problem,
                    }
                    for link in broken
                ],
                **({"checkpoints": _anchors_json(anchors)} if anchors is not None else {}),
            }
        )
    else:
        for link in broken:
            err.print(
                f"tenant {link.tenant_id}: broken at entry {link.sequence}"
                f"{' (' + link.event_id + ')' if link.event_id else ''}: {link.problem}",
                highlight=False,
                markup=False,
            )
        if anchors is not None:
            _print_anchors(anchors)
        if not broken and (anchors is None or not anchors.problems):
            out.print(f"audit log intact for {checked} tenant(s)")
    if broken or (anchors is not None and anchors.problems):
        raise typer.Exit(CHECK_FAILED)


def verify_audit(db: Database, tenant: str | None) -> tuple[int, list[Any]]:
    """Verify one tenant's chain (an unknown tenant exits 4) or every tenant's: how many were
    checked, and the first broken link of each broken chain."""
    from sqlalchemy import select

    from countersign.services.audit import verify_chain
    from countersign.store import tables as t

    with db.read() as session:
        if tenant and session.get(t.Tenant, tenant) is None:
            fail(f"no tenant {tenant} in this database", NOT_FOUND)
        tenant_ids = [tenant] if tenant else list(session.scalars(select(t.Tenant.id)))
        broken = [b for b in (verify_chain(session, tid) for tid in tenant_ids) if b]
    return len(tenant_ids), broken


def _verify_anchors(
    db: Database, path: Path | None, public_key: Path | None, tenant: str | None
) -> Any:
    """`--checkpoints FILE`: every signed checkpoint in the file against the chains
    (services/audit_checkpoints.py). Without a file, where the checkpoint key is at hand, the
    checkpoints the database stores (signed with that key) -- weaker, since the database's
    keeper can delete those rows. None when there is nothing to check."""
    from countersign.services import audit_checkpoints as ac

    if path is None:
        return _verify_stored_checkpoints(db, tenant)
    try:
        key = ac.load_key(public_key or Path(Settings().audit_checkpoint_key_file))
        lines = ac.read_checkpoint_file(path)
    except (ac.CheckpointKeyError, OSError) as exc:
        fail(str(exc), 2)
    with db.read() as session:
        return ac.verify_checkpoints(session, lines, key, {tenant} if tenant else None)


def _anchors_json(report: Any) -> dict[str, Any]:
    last = report.last_verified
    return {
        "verified": report.verified,
        "lastVerified": last.document() if last is not None else None,
        "problems": [
            {"tenantId": p.tenant_id, "sequence": p.sequence, "problem": p.problem}
            for p in report.problems
        ],
    }


def _print_anchors(report: Any) -> None:
    for problem in report.problems:
        err.print(f"tenant {problem.tenant_id}: {problem.problem}", highlight=False, markup=False)
    last = report.last_verified
    if last is not None:
        out.print(
            f"{report.verified} checkpoint(s) verified; last verified checkpoint: "
            f"{last.document()['time']} (tenant {last.tenant_id}, entry {last.sequence})",
            highlight=False,
        )
    elif not report.problems:
        out.print("no checkpoints to verify", highlight=False)


def _verify_stored_checkpoints(db: Database, tenant: str | None) -> Any:
    from countersign.services import audit_checkpoints as ac

    path = Path(Settings().audit_checkpoint_key_file)
    if not path.exists():
        return None
    try:
        key = ac.load_key(path)
    except ac.CheckpointKeyError as exc:
        fail(str(exc), 2)
    with db.read() as session:
        report = ac.verify_checkpoints(session, ac.stored_checkpoints(session, key, tenant), key)
    return report if report.verified or report.problems else None


@audit_app.command("keygen")
def audit_keygen() -> None:
    """Create the Ed25519 key that signs audit checkpoints (0600; never overwritten)."""
    from countersign.services import audit_checkpoints as ac

    path = Path(Settings().audit_checkpoint_key_file)
    if path.exists():
        fail(f"{path} exists; a new key would stop older checkpoints from verifying", 1)
    key = ac.generate_key_file(path)
    out.print(f"key {key.key_id} written to {path} (public key: {path}.pub)", highlight=False)
    out.print(key.public_pem().strip(), highlight=False)


@audit_app.command("export")
def audit_export(
    tenant: str = typer.Option(..., help="The tenant id."),
    output: Path = typer.Option(Path("-"), "--output", "-o", help="File, or - for stdout."),
) -> None:
    """Write a tenant's audit log as JSON lines, oldest first."""
    from sqlalchemy import select

    from countersign.services.audit import event_json
    from countersign.store import tables as t

    db = open_database()
    try:
        with db.read() as session:
            if session.get(t.Tenant, tenant) is None:
                fail(f"no tenant {tenant} in this database", NOT_FOUND)
            stream = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
            try:
                query = (
                    select(t.AuditEvent)
                    .where(t.AuditEvent.tenant_id == tenant)
                    .order_by(t.AuditEvent.sequence)
                    .execution_options(yield_per=1000)
                )
                written = 0
                try:
                    for row in session.scalars(query):
                        stream.write(json.dumps(event_json(row), sort_keys=True) + "\n")
                        written = row.sequence
                except ValueError as exc:  # a stored value that does not parse
                    detail = " ".join(str(exc).split())[:200]
                    fail(
                        f"an audit entry after entry {written} cannot be read ({detail}); "
                        f"'countersign audit verify --tenant {tenant}' names it",
                        CHECK_FAILED,
                    )
            finally:
                if stream is not sys.stdout:
                    stream.close()
    finally:
        db.dispose()


@devices_app.command("import")
def devices_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header line."),
    tenant: str = typer.Option(..., help="The tenant id."),
    as_upn: str | None = typer.Option(
        None, "--as", help="The administrator recorded as the importer (default: the first)."
    ),
    json_output: bool = JSON,
) -> None:
    """Import devices from CSV, all or nothing; a known serial number updates its device."""
    from datetime import UTC, datetime

    from countersign.auth.tokens import TokenClaims
    from countersign.domain.actors import USER
    from countersign.services.devices import first_administrator, import_csv
    from countersign.services.identity import resolve_caller
    from countersign.store import tables as t

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read it as UTF-8 text ({exc})", BAD_INPUT)
    db = open_database()
    try:
        with db.read() as session:
            if session.get(t.Tenant, tenant) is None:
                fail(f"no tenant {tenant} in this database", NOT_FOUND)
            upn = as_upn or first_administrator(session, tenant)
            if upn is None:
                fail(f"tenant {tenant} has no users", NOT_FOUND)
            caller = resolve_caller(session, db, TokenClaims(tenant, None, USER, upn=upn))
        imported = import_csv(db, caller, text, datetime.now(UTC))
    except DomainError as exc:
        fail(f"{file}: {exc.message} Nothing was imported.", exit_code(exc))
    finally:
        db.dispose()
    if json_output:
        out.print_json(
            data={"tenantId": tenant, "created": imported.created, "updated": imported.updated}
        )
    else:
        out.print(
            f"imported {imported.created + imported.updated} device(s) into tenant {tenant}: "
            f"{imported.created} created, {imported.updated} updated (same serial number)",
            highlight=False,
        )


# -- administrator commands (an API client) ------------------------------------------------


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "countersign"


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, Any]:
    path = _credentials_path()
    if not path.exists():
        fail("not signed in: run 'countersign login --url URL --username UPN' first", REFUSED)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        if not isinstance(data.get("url"), str) or not data.get("access_token"):
            raise ValueError("incomplete")
    except (ValueError, KeyError, TypeError):
        fail(f"{path} is not a sign-in this CLI wrote: run 'countersign login' again", REFUSED)
    return data


def save_credentials(data: dict[str, Any]) -> Path:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def server_error(response: httpx.Response) -> NoReturn:
    """Exit with the server's refusal: its message and reason on one line, or (--json) its
    Graph error object as is; the exit code from the README's table."""
    error: dict[str, Any] | None = None
    try:
        body = response.json()
        error = body["error"] if isinstance(body.get("error"), dict) else None
    except (ValueError, AttributeError):
        pass
    if error is not None:
        reason = (error.get("innerError") or {}).get("reason")
        message = str(error.get("message", "")) + (f" (reason: {reason})" if reason else "")
    else:
        message = response.text or response.reason_phrase
    fail(
        f"{response.status_code} {message}",
        http_exit_code(response.status_code, error),
        error or {"code": response.reason_phrase or "error", "message": message},
    )


def api_call(
    method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
) -> httpx.Response:
    """Call the server with the stored token. An error answer (unless its status is in
    `allow`) exits with the server's reason; an unreachable server exits 6."""
    creds = load_credentials()
    url = path if path.startswith(("http://", "https://")) else creds["url"].rstrip("/") + path
    try:
        response = httpx.request(
            method,
            url,
            timeout=30,
            headers={
                "Authorization": f"Bearer {creds['access_token']}",
                **kwargs.pop("headers", {}),
            },
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {creds['url']}: {exc}", UNREACHABLE)
    if response.status_code >= 400 and response.status_code not in allow:
        server_error(response)
    return response


@app.command()
def login(
    url: str = typer.Option(..., help="The server, e.g. http://127.0.0.1:8000"),
    username: str = typer.Option(..., help="Your user principal name."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, help="Your password (asked for when omitted)."
    ),
    json_output: bool = JSON,
) -> None:
    """Sign in and keep the token in your config directory (mode 0600)."""
    try:
        response = httpx.post(
            url.rstrip("/") + "/oauth2/token",
            timeout=30,
            data={"grant_type": "password", "username": username, "password": password},
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}", UNREACHABLE)
    if response.status_code != 200:
        try:
            description = response.json().get("error_description", response.text)
        except ValueError:
            description = response.text
        code = REFUSED if response.status_code in (400, 401, 403) else UNREACHABLE
        fail(f"sign-in refused: {description}", code)
    path = save_credentials(
        {"url": url, "username": username, "access_token": response.json()["access_token"]}
    )
    if json_output:
        out.print_json(data={"userPrincipalName": username, "url": url, "credentials": str(path)})
    else:
        out.print(f"signed in as {username}; token kept in {path}", highlight=False)


@app.command()
def whoami(json_output: bool = JSON) -> None:
    """Show the signed-in principal."""
    me = api_call("GET", "/beta/me").json()
    if json_output:
        out.print_json(data=me)
    else:
        out.print(
            f"{me.get('displayName')} <{me.get('userPrincipalName') or me.get('appId')}> "
            f"id {me['id']} tenant {me.get('tenantId')}",
            highlight=False,
            markup=False,
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
