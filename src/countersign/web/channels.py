"""Tenant administration > Notifications: the tenant's notification channels (SMTP e-mail,
webhook, Slack, Teams) — list, add, edit, enable/disable, delete, and *Send test message*.

Changes are the API's own: a form builds the `Change` the notificationChannels router builds
and runs it through the gate (web/engine.py); the test button calls
services.notification_channels.send_test_message, as `POST {id}/sendTestMessage` does. Every
rule (which fields a kind needs, the webhook secret's length, the permissions) is the
service's; this module only turns form fields into a Graph body and shows what came back.

Secrets (the webhook's HMAC key, the SMTP password) are write-only here as in the API: never
shown, never put back into a form. An edit leaves the stored secret alone unless a new one is
typed (the service merges a PATCH over the stored channel, secret included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from countersign.api.collections import SPECS, CollectionSpec
from countersign.domain import permissions as p
from countersign.domain.approval import covering
from countersign.domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from countersign.notify.outbox import EVENTS
from countersign.services.changes import CREATE, DELETE, UPDATE, Change, Result
from countersign.services.handlers import notification_channels as nc
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.core import (
    WebSession,
    form_data,
    form_lists,
    page_router,
    redirect,
    render,
    signed_in,
)
from countersign.web.objects import confirm_page

BASE = "/admin/tenant/notifications"
COLLECTION = "notificationChannels"

router = page_router(BASE)

KIND_LABELS = {
    "email": "E-mail (SMTP)",
    "webhook": "Webhook",
    "slack": "Slack",
    "teams": "Microsoft Teams",
}
SECURITY_LABELS = {"none": "None (plain)", "starttls": "STARTTLS", "tls": "TLS"}
EVENT_LABELS = {
    "submitted": "Request submitted (to the approvers)",
    "reminder": "Reminder before expiry (to the approvers)",
    "approved": "Approved (to the requester)",
    "rejected": "Rejected (to the requester)",
    "cancelled": "Cancelled (to the requester)",
    "completed": "Completed (to the requester)",
    "expired": "Expired (to the requester)",
    "completionFailed": "Scheduled completion failed (to the requester)",
}
NOTICES = {
    "created": "Channel added.",
    "saved": "Channel saved.",
    "enabled": "Channel enabled.",
    "disabled": "Channel disabled.",
    "deleted": "Channel deleted.",
}
# Form fields that are text in the form and Graph properties in the body, per kind.
EMAIL_FIELDS = ("smtpHost", "smtpSecurity", "smtpUsername", "fromAddress")


def _spec() -> CollectionSpec:
    spec = SPECS.get(COLLECTION)
    if spec is None:  # the API router registers it at import; never missing in a real app
        raise NotFound("Notification channels are not available on this server.")
    return spec


def target_summary(channel: dict[str, Any]) -> str:
    """Where a channel delivers, without anything secret: the SMTP server and sender, or the
    URL's scheme and host only (a Slack or Teams URL's path is its credential)."""
    if channel.get("channelType") == "email":
        security = SECURITY_LABELS.get(str(channel.get("smtpSecurity")), "")
        port = channel.get("smtpPort")
        server = f"{channel.get('smtpHost') or '?'}{f':{port}' if port else ''}"
        summary = f"{server}, {security.split(' ')[0]}, from {channel.get('fromAddress') or '?'}"
        to = channel.get("toAddresses") or []
        if to:
            summary += f", to {', '.join(str(a) for a in to)}"
        return summary
    url = str(channel.get("url") or "")
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _can_update(web: WebSession) -> bool:
    """Whether to offer the buttons; the service checks the permission again on each change."""
    return web.caller.can(p.ORGANIZATION_UPDATE)


def _channels(web: WebSession) -> list[dict[str, Any]]:
    spec = _spec()
    with web.ctx.db.read() as session:
        rows = session.scalars(
            spec.visible_query(web.caller).order_by(
                t.NotificationChannel.display_name, t.NotificationChannel.id
            )
        ).all()
        return [spec.serialize(row) for row in rows]


def _load(web: WebSession, channel_id: str) -> dict[str, Any]:
    spec = _spec()
    with web.ctx.db.read() as session:
        channel: dict[str, Any] = spec.serialize(spec.load_visible(session, web.caller, channel_id))
        return channel


def _list_page(
    request: Request,
    web: WebSession,
    *,
    tested: str | None = None,
    test_error: str | None = None,
) -> Response:
    channels = _channels(web)
    return render(
        request,
        "channels.html",
        nav="notifications",
        channels=[(c, target_summary(c)) for c in channels],
        kinds=KIND_LABELS,
        can_update=_can_update(web),
        tested=tested,
        test_error=test_error,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        error=None,
    )


def _protected(web: WebSession) -> bool:
    """Whether channel changes need approval here: channels are tenant configuration, so an
    active `tenantConfiguration` policy protects them (the gate decides; this picks the form)."""
    return bool(covering(web.caller.snapshot.policies, nc.POLICY_TYPE, "notApplicable"))


def _justification(form: dict[str, str]) -> str | None:
    return form.get("justification", "").strip() or None


def _after_write(outcome: Result | str, notice: str) -> Response:
    """A channel change applies at once, or (under a tenantConfiguration policy) becomes a
    request: then show the request."""
    if isinstance(outcome, str):
        return redirect(f"/admin/requests/{outcome}?notice=submitted")
    return redirect(f"{BASE}?notice={notice}")


# -- form <-> body ---------------------------------------------------------------------------


def _values_of(channel: dict[str, Any]) -> dict[str, Any]:
    """A stored channel as form values (never its secret)."""
    port = channel.get("smtpPort")
    return {
        "displayName": str(channel.get("displayName") or ""),
        "enabled": bool(channel.get("enabled")),
        "events": list(channel.get("events") or []),
        "url": str(channel.get("url") or ""),
        "smtpHost": str(channel.get("smtpHost") or ""),
        "smtpPort": str(port) if port else "",
        "smtpSecurity": str(channel.get("smtpSecurity") or "none"),
        "smtpUsername": str(channel.get("smtpUsername") or ""),
        "fromAddress": str(channel.get("fromAddress") or ""),
        "toAddresses": "\n".join(str(a) for a in channel.get("toAddresses") or []),
    }


def _values_from(form: dict[str, str], events: list[str]) -> dict[str, Any]:
    """The submitted form as form values, to show it again after an error (not the secret)."""
    return {
        "displayName": form.get("displayName", ""),
        "enabled": form.get("enabled") == "true",
        "events": events,
        "url": form.get("url", ""),
        "smtpHost": form.get("smtpHost", ""),
        "smtpPort": form.get("smtpPort", ""),
        "smtpSecurity": form.get("smtpSecurity", "none"),
        "smtpUsername": form.get("smtpUsername", ""),
        "fromAddress": form.get("fromAddress", ""),
        "toAddresses": form.get("toAddresses", ""),
    }


def _addresses(text: str) -> list[str]:
    return [a for a in (part.strip() for part in text.replace(",", "\n").splitlines()) if a]


def _body_from(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The Graph body the form describes (without `channelType` and `secret`). Only typing is
    done here; whether the values make a valid channel is the service's call."""
    body: dict[str, Any] = {
        "displayName": values["displayName"].strip(),
        "enabled": values["enabled"],
        "events": sorted(values["events"]),
    }
    if kind == "email":
        for name in EMAIL_FIELDS:
            body[name] = values[name].strip() or None
        body["smtpSecurity"] = body["smtpSecurity"] or "none"
        port = values["smtpPort"].strip()
        # Digits become a number; anything else goes as typed and the service refuses it.
        body["smtpPort"] = int(port) if port.isdigit() else (port or None)
        body["toAddresses"] = _addresses(values["toAddresses"])
    else:
        body["url"] = values["url"].strip()
    return body


def _form_page(
    request: Request,
    *,
    kind: str,
    values: dict[str, Any],
    mode: str,
    action_url: str,
    error: str | None,
    channel: dict[str, Any] | None = None,
    status_code: int = 200,
    protected: bool = False,
    justification: str = "",
) -> Response:
    return render(
        request,
        "channel_form.html",
        status_code=status_code,
        nav="notifications",
        kind=kind,
        kind_label=KIND_LABELS[kind],
        values=values,
        mode=mode,
        action_url=action_url,
        error=error,
        channel=channel,
        security_labels=SECURITY_LABELS,
        event_labels={e: EVENT_LABELS.get(e, e) for e in sorted(EVENTS)},
        notice=None,
        protected=protected,
        justification=justification,
    )


def _run_form(
    request: Request,
    web: WebSession,
    form: dict[str, str],
    change: Callable[[], Change],
    notice: str,
    **page: Any,
) -> Response:
    """Send a channel form's change through the gate; refused, the form again with the error
    (a 403 or 404 keeps its own page)."""
    try:
        outcome = engine.run(web, change(), _justification(form))
    except DomainError as exc:
        if isinstance(exc, Forbidden | NotFound):
            raise
        return _form_page(
            request,
            **page,
            error=exc.message,
            status_code=400,
            protected=_protected(web),
            justification=form.get("justification", ""),
        )
    return _after_write(outcome, notice)


def _empty_values() -> dict[str, Any]:
    return {**_values_of({}), "enabled": True}


# -- pages -----------------------------------------------------------------------------------


@router.get("")
def list_channels(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _list_page(request, web)


@router.get("/new")
def new_channel(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    web.caller.require(p.ORGANIZATION_UPDATE)  # no form for who cannot send it; the service checks
    kind = request.query_params.get("kind", "")
    if kind not in KIND_LABELS:
        raise NotFound(f"There is no channel type '{kind}'.")
    return _form_page(
        request,
        kind=kind,
        values=_empty_values(),
        mode="create",
        action_url=f"{BASE}/new?kind={kind}",
        error=None,
        protected=_protected(web),
    )


@router.post("/new")
def create_channel(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    kind = request.query_params.get("kind", "")
    if kind not in KIND_LABELS:
        raise NotFound(f"There is no channel type '{kind}'.")
    form = form_data(request)
    values = _values_from(form, form_lists(request, "events"))
    body = {**_body_from(kind, values), "channelType": kind}
    if form.get("secret"):
        body["secret"] = form["secret"]
    return _run_form(
        request,
        web,
        form,
        lambda: Change(COLLECTION, CREATE, body=body),
        "created",
        kind=kind,
        values=values,
        mode="create",
        action_url=f"{BASE}/new?kind={kind}",
    )


@router.get("/{channel_id}/edit")
def edit_channel(
    channel_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    web.caller.require(p.ORGANIZATION_UPDATE)
    channel = _load(web, channel_id)
    return _form_page(
        request,
        kind=channel["channelType"],
        values=_values_of(channel),
        mode="edit",
        action_url=f"{BASE}/{channel_id}/edit",
        error=None,
        channel=channel,
        protected=_protected(web),
    )


@router.post("/{channel_id}/edit")
def update_channel(
    channel_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    channel = _load(web, channel_id)
    kind = channel["channelType"]
    form = form_data(request)
    values = _values_from(form, form_lists(request, "events"))
    current = _body_from(kind, _values_of(channel))
    wanted = _body_from(kind, values)
    patch = {k: v for k, v in wanted.items() if current.get(k) != v}  # only what changed
    if form.get("secret"):
        patch["secret"] = form["secret"]  # an empty field keeps the stored secret
    elif kind == "email" and form.get("clearSecret") == "true":
        patch["secret"] = None
    version = form.get("version", "")

    def change() -> Change:
        if not patch:
            raise ValidationFailed("Nothing was changed.")
        expected = int(version) if version.isdigit() else None
        return Change(COLLECTION, UPDATE, channel_id, patch, expected_version=expected)

    return _run_form(
        request,
        web,
        form,
        change,
        "saved",
        kind=kind,
        values=values,
        mode="edit",
        action_url=f"{BASE}/{channel_id}/edit",
        channel=channel,
    )


@router.post("/{channel_id}/enabled")
def set_enabled(
    channel_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    form = form_data(request)
    enabled = form.get("enabled") == "true"
    version = form.get("version", "")
    justification = _justification(form)
    if _protected(web) and justification is None:
        # The list's one-click button has no room for a justification: ask for it first.
        return _confirm_enabled(request, web, channel_id, enabled, None)
    change = Change(
        COLLECTION,
        UPDATE,
        channel_id,
        {"enabled": enabled},
        expected_version=int(version) if version.isdigit() else None,
    )
    try:
        outcome = engine.run(web, change, justification)
    except ValidationFailed as exc:
        return _confirm_enabled(request, web, channel_id, enabled, exc.message)
    return _after_write(outcome, "enabled" if enabled else "disabled")


def _confirm_enabled(
    request: Request, web: WebSession, channel_id: str, enabled: bool, error: str | None
) -> Response:
    channel = _load(web, channel_id)
    verb = "Enable" if enabled else "Disable"
    return _confirm(
        request,
        error,
        heading=f"{verb} {channel['displayName']}",
        explanation=f"{verb} the notification channel '{channel['displayName']}'.",
        hidden={"enabled": "true" if enabled else "false", "version": str(channel["version"])},
        action_url=f"{BASE}/{channel_id}/enabled",
        protected=True,
        button=verb,
    )


def _confirm(request: Request, error: str | None, **page: Any) -> Response:
    """A one-step confirmation of the channels page (no justification carried back)."""
    return confirm_page(
        request,
        None,
        {},
        nav="notifications",
        status_code=400 if error else 200,
        rows=[],
        error=error,
        cancel_url=BASE,
        **page,
    )


@router.get("/{channel_id}/delete")
@router.post("/{channel_id}/delete")
def delete_channel(
    channel_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    channel = _load(web, channel_id)
    name = channel["displayName"]
    error = None
    if request.method == "POST":
        change = Change(COLLECTION, DELETE, channel_id, expected_version=channel["version"])
        try:
            outcome = engine.run(web, change, _justification(form_data(request)))
        except ValidationFailed as exc:
            error = exc.message
        else:
            return _after_write(outcome, "deleted")
    web.caller.require(p.ORGANIZATION_UPDATE)
    return _confirm(
        request,
        error,
        heading=f"Delete {name}",
        explanation=(
            f"Delete the notification channel '{name}' ({KIND_LABELS[channel['channelType']]}). "
            "This cannot be undone."
        ),
        action_url=f"{BASE}/{channel_id}/delete",
        protected=_protected(web),
        button="Delete",
    )


@router.post("/{channel_id}/test")
def send_test_message(
    channel_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    """Deliver a test message now and show the channel's answer next to it. A plain `def`:
    FastAPI runs it in a worker thread, so the wait for the receiver blocks no other page."""
    settings = web.ctx.settings
    try:
        nc.send_test_message(
            web.ctx.db.read,
            web.caller,
            channel_id,
            public_url=settings.public_url,
            timeout=settings.delivery_timeout_seconds,
        )
    except nc.DeliveryFailed as exc:
        return _list_page(request, web, tested=channel_id, test_error=str(exc) or "failed")
    return _list_page(request, web, tested=channel_id)
