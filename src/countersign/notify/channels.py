"""Channels: how one outbox message is formatted and delivered on each kind of channel.

- `email`: SMTP (security `none`, `starttls` or `tls`; login when a username is set), plain text.
  The server's certificate is always verified: against the system's CAs, or only against the
  channel's own CA (`caCertificate`, PEM) for a server with a private CA.
- `webhook`: a JSON body, signed: `X-Countersign-Signature: sha256=<hex HMAC-SHA256 of the raw
  body with the channel's secret>`; `X-Countersign-Delivery` carries the message id, so a
  receiver can drop the (rare, see dispatcher.py) duplicate delivery.
- `slack`: Slack's incoming-webhook body (`text` + `blocks`).
- `teams`: a Microsoft Teams message with an Adaptive Card attachment.

Everything here does I/O and runs in the worker (or in `sendTestMessage`), never inside a
database transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from countersign.domain.summary import summary_facts
from countersign.notify import targets

KINDS = ("email", "webhook", "slack", "teams")
# The farewell of a tenant's last enabled channel (services/handlers/notification_channels.py).
CHANNEL_REMOVED_EVENT = "channelRemoved"
# A signed audit checkpoint (services/audit_checkpoints.py), for webhooks that keep them.
CHECKPOINT_EVENT = "auditCheckpoint"
SMTP_SECURITY = ("none", "starttls", "tls")
# Submission ports by security when the channel names none (RFC 8314: 465 implicit TLS, 587
# STARTTLS submission).
_DEFAULT_SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class DeliveryFailed(Exception):
    """The channel refused or could not be reached; the dispatcher retries later."""


@dataclass(frozen=True)
class ChannelConfig:
    """What delivery needs of a channel row, detached from the session."""

    id: str
    kind: str
    settings: dict[str, Any]
    secret: str | None


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver: its content (notify/outbox.py) and recipients."""

    id: str
    tenant_id: str
    event: str
    content: dict[str, Any]
    recipients: list[dict[str, Any]] = field(default_factory=list)


# -- content -------------------------------------------------------------------------------

_HEADLINES = {
    "submitted": "Approval needed",
    "reminder": "Reminder: approval still needed",
    "approved": "Your request was approved",
    "rejected": "Your request was rejected",
    "cancelled": "Request cancelled",
    "completed": "Request completed",
    "expired": "Your request expired",
    "completionFailed": "Scheduled completion failed",
    "test": "Countersign test message",
}

_NEXT_STEP = {
    "submitted": "Review it and approve or reject it before it expires.",
    "reminder": "It expires soon; review it and approve or reject it.",
    "approved": "Complete it before it expires to apply the change.",
    "rejected": "The change will not be applied. Read the approver's notes.",
    "cancelled": "The change will not be applied.",
    "completed": "The change has been applied.",
    "expired": "The change was not applied; submit a new request if it is still needed.",
    "completionFailed": "The request is still approved; complete it yourself before it expires.",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    headline: str
    facts: list[tuple[str, str]]
    next_step: str
    link: str | None

    def text(self) -> str:
        lines = [self.headline, ""]
        lines += [f"{label}: {value}" for label, value in self.facts]
        if self.next_step:
            lines += ["", self.next_step]
        if self.link:
            lines += ["", f"Open the request: {self.link}"]
        return "\n".join(lines) + "\n"


def _who(identity: Any) -> str:
    if not isinstance(identity, dict):
        return "unknown"
    for key in ("user", "application"):
        if isinstance(identity.get(key), dict):
            return str(identity[key].get("displayName") or identity[key].get("id") or "unknown")
    return "unknown"


def render(message: Outgoing, public_url: str) -> Rendered:
    """Subject, facts and link: what changes, who asks, why, until when, approver notes."""
    if message.event == "test":
        return Rendered(
            subject="Countersign test message",
            headline=_HEADLINES["test"],
            facts=[("Channel", str(message.content.get("channelName", "")))],
            next_step="This channel works: approval notifications will arrive here.",
            link=public_url.rstrip("/") + "/admin",
        )
    if message.event == CHECKPOINT_EVENT:
        checkpoint = message.content.get("checkpoint") or {}
        return Rendered(
            subject="[Countersign] Audit checkpoint",
            headline="Audit checkpoint",
            facts=[
                ("Entry", str(checkpoint.get("sequence", ""))),
                ("Head hash", str(checkpoint.get("headHash", ""))),
                ("Time", str(checkpoint.get("time", ""))),
            ],
            next_step="Keep this signed checkpoint: `countersign audit verify --checkpoints` "
            "checks the audit log against it.",
            link=None,
        )
    if message.event == CHANNEL_REMOVED_EVENT:
        return Rendered(
            subject="[Countersign] Notifications are being turned off",
            headline="Notifications are being turned off",
            facts=[
                ("Channel", str(message.content.get("channelName", ""))),
                ("Change", str(message.content.get("change", ""))),
                ("By", str(message.content.get("by", ""))),
            ],
            next_step=(
                "This was the tenant's last enabled notification channel: approval requests "
                "will no longer be announced anywhere. If you did not expect this, review the "
                "audit log."
            ),
            link=public_url.rstrip("/") + "/admin",
        )
    request: dict[str, Any] = message.content.get("request") or {}
    summary: dict[str, Any] = message.content.get("summary") or {}
    operation = request.get("actionName") or request.get("payloadOperation") or "Change"
    what = summary.get("title") or (
        f"{operation} {request.get('payloadType') or 'object'} '{request.get('payloadName')}'"
    )
    facts = [
        ("What changes", what),
        *summary_facts(summary),
        ("Requested by", _who(request.get("requestor"))),
        ("Justification", str(request.get("requestJustification") or "")),
        ("Expires", str(request.get("expirationDateTime") or "")),
        ("Status", str(request.get("status") or "")),
    ]
    if request.get("approver") and message.event in ("approved", "rejected", "cancelled"):
        facts.append(("By", _who(request.get("approver"))))
    if request.get("approvalJustification"):
        facts.append(("Approver notes", str(request["approvalJustification"])))
    headline = _HEADLINES.get(message.event, message.event)
    link = f"{public_url.rstrip('/')}/admin/requests/{request.get('id')}"
    return Rendered(
        subject=f"[Countersign] {headline}: {what}",
        headline=headline,
        facts=facts,
        next_step=_NEXT_STEP.get(message.event, ""),
        link=link,
    )


# -- formats -------------------------------------------------------------------------------


def webhook_body(message: Outgoing, rendered: Rendered) -> dict[str, Any]:
    return {
        "deliveryId": message.id,
        "tenantId": message.tenant_id,
        "event": message.event,
        "subject": rendered.subject,
        "text": rendered.text(),
        "link": rendered.link,
        "request": message.content.get("request"),
        "diff": message.content.get("diff"),
        "summary": message.content.get("summary"),
        "recipients": message.recipients,
        **(
            {"checkpoint": message.content["checkpoint"]} if "checkpoint" in message.content else {}
        ),
    }


def sign(secret: str, body: bytes) -> str:
    """The value of X-Countersign-Signature for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(rendered: Rendered) -> dict[str, Any]:
    facts = "\n".join(
        f"*{_slack_escape(label)}:* {_slack_escape(value)}" for label, value in rendered.facts
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": rendered.headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": facts[:3000] or " "}},
    ]
    if rendered.link:
        action = f"{_slack_escape(rendered.next_step)} <{rendered.link}|Open the request>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": action}})
    return {"text": rendered.subject, "blocks": blocks}


def teams_body(rendered: Rendered) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": rendered.headline, "weight": "Bolder", "size": "Medium"},
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in rendered.facts],
            },
            {"type": "TextBlock", "text": rendered.next_step, "wrap": True},
        ],
    }
    if rendered.link:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the request", "url": rendered.link}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def email_message(channel: ChannelConfig, message: Outgoing, rendered: Rendered) -> EmailMessage:
    addresses = [r["address"] for r in message.recipients if r.get("address")]
    if not addresses and channel.settings.get("to"):
        addresses = list(channel.settings["to"])
    if not addresses:
        raise DeliveryFailed("no recipient has an e-mail address")
    email = EmailMessage()
    email["From"] = channel.settings.get("from") or "countersign@localhost"
    email["To"] = ", ".join(addresses)
    email["Subject"] = rendered.subject
    email["X-Countersign-Delivery"] = message.id
    email.set_content(rendered.text())
    return email


# -- delivery ------------------------------------------------------------------------------


def deliver(channel: ChannelConfig, message: Outgoing, *, public_url: str, timeout: float) -> None:
    """Send `message` on `channel`; raise DeliveryFailed when it did not get through."""
    rendered = render(message, public_url)
    if channel.kind == "email":
        _send_email(channel, email_message(channel, message, rendered), timeout)
        return
    if channel.kind == "webhook":
        body = json.dumps(webhook_body(message, rendered), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Countersign-Event": message.event,
            "X-Countersign-Delivery": message.id,
            "X-Countersign-Signature": sign(channel.secret or "", body),
        }
    elif channel.kind == "slack":
        body = json.dumps(slack_body(rendered)).encode()
        headers = {"Content-Type": "application/json"}
    elif channel.kind == "teams":
        body = json.dumps(teams_body(rendered)).encode()
        headers = {"Content-Type": "application/json"}
    else:
        raise DeliveryFailed(f"unknown channel kind {channel.kind!r}")
    _post(str(channel.settings.get("url", "")), body, headers, timeout)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """POST to the checked address the URL's host resolves to (notify/targets.py): the name is
    resolved once, here, and the connection goes to that address, with the name kept in the
    Host header and as the TLS server name (certificates are still verified against it).
    Redirects are not followed (a 3xx is a failure); every phase has the timeout."""
    try:
        host, port = targets.url_host(url)
        checked = targets.resolve_for_connect(host, port)
        target = httpx.URL(url)
        pinned = target.copy_with(host=checked.address)
        host_header = host if target.port is None else f"{host}:{target.port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if target.port is None else f"[{host}]:{target.port}"
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
            request = client.build_request(
                "POST",
                pinned,
                content=body,
                headers={**headers, "Host": host_header},
                extensions={"sni_hostname": host},
            )
            response = client.send(request)
    except targets.TargetRefused as exc:
        raise DeliveryFailed(f"refused: {exc}") from None
    except OSError as exc:
        raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")


def tls_context(ca_certificate: str | None) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and name: with the system's CAs,
    or with only `ca_certificate` (PEM, one or more certificates) when the channel has one."""
    if ca_certificate:
        return ssl.create_default_context(cadata=ca_certificate)
    return ssl.create_default_context()


class _CheckedSMTP(smtplib.SMTP):
    """Connects to the checked address of the host (notify/targets.py), resolved once; the
    host's name stays the TLS server name for STARTTLS."""

    def _get_socket(self, host: str, port: int, timeout: Any) -> socket.socket:
        return targets.connect(host, port, timeout)


class _CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTP):
    """Implicit TLS over the checked connection (SMTP_SSL wraps what _CheckedSMTP opens)."""


def _send_email(channel: ChannelConfig, email: EmailMessage, timeout: float) -> None:
    settings = channel.settings
    host = str(settings.get("host", ""))
    security = settings.get("security", "none")
    port = int(settings.get("port") or _DEFAULT_SMTP_PORTS.get(security, 25))
    try:
        smtp: smtplib.SMTP
        if security == "tls":
            context = tls_context(settings.get("caCertificate"))
            smtp = _CheckedSMTPSSL(host, port, timeout=timeout, context=context)
        else:
            smtp = _CheckedSMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=tls_context(settings.get("caCertificate")))
            if settings.get("username"):
                smtp.login(str(settings["username"]), channel.secret or "")
            smtp.send_message(email)
    except targets.TargetRefused as exc:
        raise DeliveryFailed(f"SMTP {host}:{port}: refused: {exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP {host}:{port}: {exc.__class__.__name__}: {exc}") from None
