"""CLI commands of notifications (mounted by cli.py): `countersign worker` (operator, local)
and `countersign channels list|add|test|delete` (an API client, like the other admin commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

CHANNELS_PATH = "/beta/deviceManagement/notificationChannels"

channels_app = typer.Typer(no_args_is_help=True, help="Notification channels (API client).")


def worker_command(
    once: bool = typer.Option(False, help="Run one cycle and exit."),
    metrics_port: int = typer.Option(
        0, help="Serve Prometheus metrics on 127.0.0.1:PORT (0: off)."
    ),
) -> None:
    """Expire due requests, send reminders and deliver notifications, until SIGTERM/SIGINT."""
    from countersign.cli import out
    from countersign.config import Settings
    from countersign.logs import configure_logging
    from countersign.store.db import Database
    from countersign.worker import Worker

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings.database_url, settings.write_concurrency)
    try:
        runner = Worker(db, settings)
        if once:
            result = runner.run_once()
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


@channels_app.command("list")
def channels_list(json_output: bool = typer.Option(False, "--json")) -> None:
    """List the tenant's notification channels."""
    from rich.table import Table
    from rich.text import Text

    from countersign.cli import api_call, out

    channels = api_call("GET", CHANNELS_PATH).json()["value"]
    if json_output:
        out.print_json(data=channels)
        return
    table = Table()
    for column in ("id", "name", "type", "enabled", "target", "events"):
        # The id is what people copy into `channels test|delete`: never wrapped or shortened.
        table.add_column(column, no_wrap=column == "id", min_width=36 if column == "id" else None)
    for c in channels:
        target = c.get("url") or f"{c.get('smtpHost')}:{c.get('smtpPort') or ''}"
        events = ", ".join(c.get("events") or []) or "all"
        cells = (c["id"], c["displayName"], c["channelType"], str(c["enabled"]), target, events)
        table.add_row(*(Text(cell) for cell in cells))  # names are data, never markup
    out.print(table)


@channels_app.command("add")
def channels_add(
    name: str = typer.Option(..., help="Display name."),
    channel_type: str = typer.Option(..., "--type", help="email, webhook, slack or teams."),
    url: str | None = typer.Option(None, help="Webhook, Slack or Teams URL."),
    secret: str | None = typer.Option(
        None, envvar="COUNTERSIGN_CHANNEL_SECRET", help="Webhook HMAC key or SMTP password."
    ),
    smtp_host: str | None = typer.Option(None),
    smtp_port: int | None = typer.Option(None),
    smtp_security: str = typer.Option("none", help="none, starttls or tls."),
    smtp_username: str | None = typer.Option(None),
    smtp_ca_certificate: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="PEM file of a private CA: the SMTP server's certificate is verified against it.",
    ),
    from_address: str | None = typer.Option(None, "--from"),
    to: list[str] = typer.Option([], "--to", help="Fallback e-mail recipients (repeat)."),
    event: list[str] = typer.Option([], "--event", help="Only these events (repeat); all."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Add a channel (the secret is write-only: it is never shown again)."""
    from countersign.cli import api_call, out

    body: dict[str, Any] = {"displayName": name, "channelType": channel_type, "events": event}
    if channel_type == "email":
        body.update(
            smtpHost=smtp_host,
            smtpPort=smtp_port,
            smtpSecurity=smtp_security,
            smtpUsername=smtp_username,
            smtpCaCertificate=smtp_ca_certificate.read_text() if smtp_ca_certificate else None,
            fromAddress=from_address,
            toAddresses=to,
        )
    else:
        body["url"] = url
    if secret:
        body["secret"] = secret
    created = api_call("POST", CHANNELS_PATH, json=body).json()
    if json_output:
        out.print_json(data=created)
    else:
        out.print(f"channel {created['id']} added", highlight=False)


@channels_app.command("test")
def channels_test(channel_id: str) -> None:
    """Send a test message on a channel now."""
    from countersign.cli import api_call, out

    api_call("POST", f"{CHANNELS_PATH}/{channel_id}/sendTestMessage")
    out.print("test message delivered")


@channels_app.command("delete")
def channels_delete(channel_id: str) -> None:
    """Delete a channel (its undelivered messages go with it)."""
    from countersign.cli import api_call, out

    api_call("DELETE", f"{CHANNELS_PATH}/{channel_id}")
    out.print(f"channel {channel_id} deleted", highlight=False)
