"""Operator commands, run on the server's host against the configured database:
`serve`, `demo`, `db upgrade`, `tenant create`, `audit verify|keygen|export`, `devices import`
and `worker`. The package's __init__ mounts them on the `countersign` command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

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
    out,
    print_json,
)
from countersign.config import Settings
from countersign.domain.errors import DomainError

if TYPE_CHECKING:
    from countersign.store.db import Database

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
devices_app = typer.Typer(no_args_is_help=True, help="The managed-device inventory.")


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
    from countersign.auth.tokens import TokenClaims
    from countersign.clock import system_clock
    from countersign.domain.actors import USER
    from countersign.services.handlers.devices import first_administrator, import_csv
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
        imported = import_csv(db, caller, text, system_clock())
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


def worker_command(
    once: bool = typer.Option(False, "--once", help="Run one cycle and exit."),
    metrics_port: int = typer.Option(
        0, help="Serve Prometheus metrics on 127.0.0.1:PORT (0: off)."
    ),
    json_output: bool = JSON,
) -> None:
    """Expire due requests, send reminders and deliver notifications, until SIGTERM/SIGINT."""
    from countersign.logs import configure_logging
    from countersign.worker import Worker

    settings = Settings()
    db = open_database(settings)  # before logging is set up: a refusal is one plain line
    configure_logging(settings.log_level, settings.log_format)
    try:
        runner = Worker(db, settings)
        if once:
            result = runner.run_once()
            if json_output:
                print_json(
                    {
                        "expired": result.expired,
                        "reminded": result.reminded,
                        "delivered": result.dispatch.delivered,
                        "retrying": result.dispatch.retried,
                        "dead": result.dispatch.dead,
                    }
                )
                return
            out.print(
                f"expired {result.expired}, reminded {result.reminded}, delivered "
                f"{result.dispatch.delivered}, retrying {result.dispatch.retried}, "
                f"dead {result.dispatch.dead}"
            )
            return
        if metrics_port:
            from prometheus_client import start_http_server

            from countersign.metrics import REGISTRY, DatabaseCollector

            REGISTRY.register(DatabaseCollector(db))  # this process serves no /metrics of its own
            start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)
        runner.install_signal_handlers()
        runner.run_forever()
    finally:
        db.dispose()
