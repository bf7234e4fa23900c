"""`countersign channels list|add|test|delete`: the tenant's notification channels, as an API
client with the stored token (cli/client.py), like the other administrator commands. The
worker that delivers their messages is an operator command (cli/operator.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from countersign.cli.client import api_call
from countersign.cli.output import (
    JSON,
    OUTPUT,
    WIDE,
    Column,
    Format,
    out,
    print_json,
    render,
    resolve_id,
)

CHANNELS_PATH = "/beta/deviceManagement/notificationChannels"

channels_app = typer.Typer(no_args_is_help=True, help="Notification channels (API client).")
ID_HELP = "The channel's id, or a unique prefix of it as `channels list` prints it."


def channel_id_of(prefix: str) -> str:
    return resolve_id(
        prefix,
        "channel",
        lambda start: [c["id"] for c in api_call("GET", CHANNELS_PATH).json()["value"]],
    )


@channels_app.command("list")
def channels_list(
    json_output: bool = JSON, output_format: Format = OUTPUT, wide: bool = WIDE
) -> None:
    """List the tenant's notification channels."""
    channels = api_call("GET", CHANNELS_PATH).json()["value"]
    rows = []
    for c in channels:
        target = c.get("url") or f"{c.get('smtpHost')}:{c.get('smtpPort') or ''}"
        events = ", ".join(c.get("events") or []) or "all"
        enabled = "yes" if c["enabled"] else "no"
        rows.append([c["id"], c["displayName"], c["channelType"], enabled, target, events])
    render(
        "Notification channels",
        [
            Column("id", is_id=True),
            Column("name", wrap=True),
            Column("type"),
            Column("enabled"),
            Column("target", wrap=True),
            Column("events", wrap=True),
        ],
        rows,
        output_format=output_format,
        json_output=json_output,
        wide=wide,
        raw=channels,
    )


@channels_app.command("add")
def channels_add(
    name: str = typer.Option(..., help="Display name."),
    channel_type: str = typer.Option(..., "--type", help="email, webhook, slack or teams."),
    url: str | None = typer.Option(None, help="Webhook, Slack or Teams URL."),
    secret: str | None = typer.Option(
        None, envvar="COUNTERSIGN_CHANNEL_SECRET", help="Webhook HMAC key or SMTP password."
    ),
    smtp_host: str | None = typer.Option(None, help="E-mail: the SMTP server's host name."),
    smtp_port: int | None = typer.Option(
        None, help="E-mail: the SMTP port (default: 25, 587 or 465 by --smtp-security)."
    ),
    smtp_security: str = typer.Option("none", help="E-mail: none, starttls or tls."),
    smtp_username: str | None = typer.Option(None, help="E-mail: the SMTP login, if any."),
    smtp_ca_certificate: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="PEM file of a private CA: the SMTP server's certificate is verified against it.",
    ),
    from_address: str | None = typer.Option(None, "--from", help="E-mail: the sender address."),
    to: list[str] = typer.Option([], "--to", help="Fallback e-mail recipients (repeat)."),
    event: list[str] = typer.Option([], "--event", help="Only these events (repeat); all."),
    json_output: bool = JSON,
) -> None:
    """Add a channel (the secret is write-only: it is never shown again)."""
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
def channels_test(
    channel_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON
) -> None:
    """Send a test message on a channel now."""
    whole = channel_id_of(channel_id)
    response = api_call("POST", f"{CHANNELS_PATH}/{whole}/sendTestMessage")
    if json_output:
        print_json(response.json() if response.content else {"id": whole, "delivered": True})
    else:
        out.print("test message delivered")


@channels_app.command("delete")
def channels_delete(
    channel_id: str = typer.Argument(..., help=ID_HELP), json_output: bool = JSON
) -> None:
    """Delete a channel (its undelivered messages go with it)."""
    whole = channel_id_of(channel_id)
    api_call("DELETE", f"{CHANNELS_PATH}/{whole}")
    if json_output:
        print_json({"id": whole, "deleted": True})
    else:
        out.print(f"channel {whole} deleted", highlight=False)
