"""Notification channels of a tenant (a Countersign extension, SPEC §9), managed as a Graph
collection: `/beta/deviceManagement/notificationChannels`.

Permissions: reading needs `Microsoft.Intune_Organization_Read`, changing (and sending a test
message) `Microsoft.Intune_Organization_Update`, Intune's permissions for tenant-wide settings;
no new resource action is invented. Channels are tenant configuration: creating, editing,
disabling and deleting one is a `tenantConfiguration` operation, so a tenant with an access
policy of that type needs approval to silence (or redirect) its own alerts. Audited like every
change.

Targets are checked at save and again at connect time (notify/targets.py): no loopback,
link-local, private or multicast addresses unless the operator allows them.

`secret` (the webhook's HMAC key, or the SMTP password) is write-only: never returned, never
written to the audit log (`hasSecret` says whether one is set).
"""

from __future__ import annotations

import ssl
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.domain.errors import ValidationFailed
from countersign.domain.resource_types import RESOURCE_TYPES, TENANT_CONFIGURATION
from countersign.notify import targets
from countersign.notify.channels import (
    CHANNEL_REMOVED_EVENT,
    ChannelConfig,
    DeliveryFailed,
    Outgoing,
    deliver,
    tls_context,
)
from countersign.notify.outbox import EVENTS, PENDING, TEST_EVENT, resolve_recipients
from countersign.services import audit
from countersign.services.changes import DELETE, GraphBody, Plan, Result, etag, iso, parse_body
from countersign.services.handlers.base import CollectionHandler, Write, get_in_tenant, touch
from countersign.store import tables as t

ODATA_TYPE = "#microsoft.graph.countersignNotificationChannel"
# The operationApprovalPolicyType that protects channels (the table's; web/channels.py reads it).
POLICY_TYPE = TENANT_CONFIGURATION
Kind = Literal["email", "webhook", "slack", "teams"]
Security = Literal["none", "starttls", "tls"]


class ChannelBody(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    channel_type: Kind
    enabled: bool = True
    # Which events the channel receives; empty: all of them.
    events: list[str] = Field(default_factory=list)
    url: str | None = Field(None, max_length=2048)
    smtp_host: str | None = Field(None, max_length=256)
    smtp_port: int | None = Field(None, ge=1, le=65535)
    smtp_security: Security = "none"
    smtp_username: str | None = Field(None, max_length=256)
    # PEM certificate(s) of a private CA: the SMTP server's certificate is then verified against
    # these only, instead of the system's CAs. Verification itself cannot be turned off.
    smtp_ca_certificate: str | None = Field(None, max_length=65536)
    from_address: str | None = Field(None, max_length=256)
    # Where e-mail goes when a message has no recipient with an address (and test messages).
    to_addresses: list[str] = Field(default_factory=list)
    secret: str | None = Field(None, max_length=1024)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - EVENTS)
        if unknown:
            raise ValueError(f"unknown event '{unknown[0]}' (known: {', '.join(sorted(EVENTS))})")
        return events


def _check(body: ChannelBody) -> None:
    """Rules across properties, per channel type."""
    if body.channel_type == "email":
        if not body.smtp_host:
            raise ValidationFailed("An e-mail channel needs 'smtpHost'.", target="smtpHost")
        if not body.from_address or "@" not in body.from_address:
            raise ValidationFailed(
                "An e-mail channel needs 'fromAddress' (an e-mail address).", target="fromAddress"
            )
        if body.smtp_ca_certificate:
            _check_ca_certificate(body.smtp_ca_certificate)
        if body.smtp_username and not body.secret:
            raise ValidationFailed(
                "'smtpUsername' needs the password in 'secret'.", target="secret"
            )
        _check_target(body.smtp_host, body.smtp_port or 25, "smtpHost")
        return
    if not body.url or not body.url.startswith(("https://", "http://")):
        raise ValidationFailed(
            f"A {body.channel_type} channel needs 'url' (http:// or https://).", target="url"
        )
    try:
        host, port = targets.url_host(body.url)
    except targets.TargetRefused as exc:
        raise ValidationFailed(str(exc), target="url") from None
    _check_target(host, port, "url")
    if body.channel_type == "webhook" and (not body.secret or len(body.secret) < 16):
        raise ValidationFailed(
            "A webhook channel needs 'secret' (at least 16 characters): the key of the "
            "X-Countersign-Signature HMAC.",
            target="secret",
        )


def _check_target(host: str, port: int, field: str) -> None:
    """Outbound requests are safe by default (notify/targets.py): checked here at save, and
    again at connect time."""
    try:
        targets.check_at_save(host, port)
    except targets.TargetRefused as exc:
        raise ValidationFailed(str(exc), target=field) from None


def _check_ca_certificate(pem: str) -> None:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValidationFailed(
            "'smtpCaCertificate' must be PEM (-----BEGIN CERTIFICATE-----).",
            target="smtpCaCertificate",
        )
    try:
        tls_context(pem)
    except (ssl.SSLError, ValueError):
        raise ValidationFailed(
            "'smtpCaCertificate' is not a readable PEM certificate.", target="smtpCaCertificate"
        ) from None


def _settings(body: ChannelBody) -> dict[str, Any]:
    if body.channel_type == "email":
        return {
            "host": body.smtp_host,
            "port": body.smtp_port,
            "security": body.smtp_security,
            "username": body.smtp_username,
            "caCertificate": body.smtp_ca_certificate,
            "from": body.from_address,
            "to": body.to_addresses,
        }
    return {"url": body.url}


def _as_body(channel: t.NotificationChannel) -> dict[str, Any]:
    """The stored channel as a (camelCase) body, secret included: the base of a PATCH."""
    s = channel.settings
    body: dict[str, Any] = {
        "displayName": channel.display_name,
        "channelType": channel.kind,
        "enabled": channel.enabled,
        "events": list(channel.events),
        "secret": channel.secret,
    }
    if channel.kind == "email":
        body.update(
            smtpHost=s.get("host"),
            smtpPort=s.get("port"),
            smtpSecurity=s.get("security") or "none",
            smtpUsername=s.get("username"),
            smtpCaCertificate=s.get("caCertificate"),
            fromAddress=s.get("from"),
            toAddresses=list(s.get("to") or []),
        )
    else:
        body["url"] = s.get("url")
    return body


def channel_json(channel: t.NotificationChannel) -> dict[str, Any]:
    body = _as_body(channel)
    del body["secret"]
    return {
        "@odata.type": ODATA_TYPE,
        "@odata.etag": etag(channel.version),
        "id": channel.id,
        **body,
        "hasSecret": bool(channel.secret),
        "createdDateTime": iso(channel.created_date_time),
        "lastModifiedDateTime": iso(channel.last_modified_date_time),
        "version": channel.version,
    }


def _without_secret(body: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k == "secret" and v else v) for k, v in body.items()}


def get_channel(session: Session, tenant_id: str, channel_id: str) -> t.NotificationChannel:
    return get_in_tenant(
        session, t.NotificationChannel, tenant_id, channel_id, "Notification channel"
    )


class NotificationChannels(CollectionHandler[t.NotificationChannel]):
    resource = RESOURCE_TYPES["notificationChannels"]

    get = staticmethod(get_channel)

    to_json = staticmethod(channel_json)

    def plan_create(self, write: Write) -> Plan:
        body = parse_body(ChannelBody, write.change.body)
        _check(body)
        return self.new_plan(body.display_name, _without_secret(write.change.body))

    def plan_existing(self, write: Write, row: t.NotificationChannel, plan: Plan) -> None:
        if write.change.operation != DELETE:
            merged = self._merged(row, write.change.body)
            plan.after = {**channel_json(row), **_without_secret(write.change.body)}
            plan.target_name = merged.display_name

    def _merged(self, channel: t.NotificationChannel, patch: dict[str, Any]) -> ChannelBody:
        if "channelType" in patch and patch["channelType"] != channel.kind:
            raise ValidationFailed(
                "'channelType' cannot change; create another channel.", target="channelType"
            )
        body = parse_body(ChannelBody, {**_as_body(channel), **patch})
        _check(body)
        return body

    # The outbox caches each tenant's enabled channels by directory version
    # (Database.enabled_channels): every channel change moves the version (resource_types).

    def create(self, write: Write) -> t.NotificationChannel:
        body = parse_body(ChannelBody, write.change.body)
        return t.NotificationChannel(
            **write.new_object_columns(),
            display_name=body.display_name,
            kind=body.channel_type,
            enabled=body.enabled,
            settings=_settings(body),
            secret=body.secret,
            events=body.events,
            version=1,
        )

    def delete(self, write: Write, row: t.NotificationChannel) -> None:
        _farewell_if_last(write.session, write.caller, row, "deleted", write.now)
        write.session.delete(row)

    def apply_existing(self, write: Write, plan: Plan, row: t.NotificationChannel) -> Result:
        body = self._merged(row, write.change.body)
        if row.enabled and not body.enabled:
            _farewell_if_last(write.session, write.caller, row, "disabled", write.now)
        row.display_name = body.display_name
        row.enabled = body.enabled
        row.events = body.events
        row.settings = _settings(body)
        row.secret = body.secret
        touch(row, write.now)
        return Result(204, channel_json(row), row.id)


def _farewell_if_last(
    session: Session, caller: Caller, channel: t.NotificationChannel, change: str, now: datetime
) -> None:
    """Disabling or deleting the tenant's last enabled channel while access policies are active
    silences every approval notification. So, before it goes, the channel carries one last
    message to every holder of the approval permission, and the audit records it.

    The message keeps its own copy of the channel (`target`): the dispatcher delivers it
    although the channel is disabled or gone by then. Counting the other enabled channels comes
    after apply() moved the tenant's directory version (an UPDATE of the tenant row, held until
    commit), so two administrators disabling the last two channels at once take turns and the
    second sees the first's change."""
    if not channel.enabled or not caller.snapshot.policies:
        return
    others = session.scalar(
        select(func.count())
        .select_from(t.NotificationChannel)
        .where(
            t.NotificationChannel.tenant_id == caller.tenant_id,
            t.NotificationChannel.enabled.is_(True),
            t.NotificationChannel.id != channel.id,
        )
    )
    if others:
        return
    snapshot = caller.snapshot
    holders = sorted(
        user_id
        for user_id in snapshot.enabled_users
        if snapshot.access_for(user_id).has(p.APPROVAL_FOR_MAA)
    )
    recipients = resolve_recipients(session, caller.tenant_id, holders)
    session.add(
        t.OutboxMessage(
            id=str(uuid.uuid4()),
            tenant_id=caller.tenant_id,
            # A deleted channel's messages go with it; this one stands on its own target.
            channel_id=None if change == "deleted" else channel.id,
            target={
                "id": channel.id,
                "kind": channel.kind,
                "settings": dict(channel.settings),
                "secret": channel.secret,
            },
            event=CHANNEL_REMOVED_EVENT,
            approval_request_id=None,
            recipients=recipients,
            content={
                "channelName": channel.display_name,
                "change": change,
                "by": caller.display_name,
            },
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_date_time=now,
        )
    )
    audit.record(
        session,
        tenant_id=caller.tenant_id,
        actor=caller,
        activity="Notify approvers: last notification channel " + change,
        activity_type="Notify notificationChannel",
        category="Organization",
        target_type="notificationChannel",
        target_id=channel.id,
        target_name=channel.display_name,
        after={
            "change": change,
            "recipients": [r.get("displayName") or r["id"] for r in recipients],
        },
        now=now,
    )


def send_test_message(
    session_factory: Any, caller: Caller, channel_id: str, *, public_url: str, timeout: float
) -> None:
    """Deliver a test message on the channel now (not through the outbox: the administrator
    waits for the answer). E-mail goes to the channel's `toAddresses`, else to the caller."""
    caller.require(p.ORGANIZATION_UPDATE)
    with session_factory() as session:
        channel = get_channel(session, caller.tenant_id, channel_id)
        config = ChannelConfig(channel.id, channel.kind, dict(channel.settings), channel.secret)
        recipients = resolve_recipients(session, caller.tenant_id, [caller.id])
        name = channel.display_name
    if config.kind == "email" and config.settings.get("to"):
        recipients = []  # email_message() falls back to the channel's toAddresses
    message = Outgoing(
        id=str(uuid.uuid4()),
        tenant_id=caller.tenant_id,
        event=TEST_EVENT,
        content={"channelName": name},
        recipients=recipients,
    )
    deliver(config, message, public_url=public_url, timeout=timeout)


__all__ = ["DeliveryFailed", "channel_json", "get_channel", "send_test_message"]
