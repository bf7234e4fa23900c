"""What every admin center page shares: the signed-in session, CSRF checks, rendering, errors.

Pages under /admin authenticate with the session cookie (not a bearer token): without a valid
session a page answers 303 to /admin/sign-in. Every POST carries the session's CSRF token (a
form field `csrf_token` or the `X-CSRF-Token` header htmx sends); without it the answer is 403.
Domain errors become HTML pages here, in one place, instead of Graph JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from countersign.api.body import form_fields
from countersign.api.deps import context
from countersign.auth import sessions
from countersign.auth.tokens import TokenClaims
from countersign.domain import permissions as p
from countersign.domain.actors import USER
from countersign.domain.errors import DomainError, Forbidden, NotFound, Unauthorized
from countersign.domain.request import ACTIVE, Status
from countersign.services.changes import iso
from countersign.services.identity import resolve_caller
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.sections import SECTIONS
from countersign.web.session import WebSession as WebSession  # re-exported for the pages

log = logging.getLogger("countersign.web")

WEB_ROOT = Path(__file__).parent
STATIC_DIR = WEB_ROOT / "static"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(WEB_ROOT / "templates"),
    autoescape=True,  # every user-supplied text is escaped; templates never use |safe on it
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)


def _as_time(value: Any) -> Any:
    """Graph's ISO text as a datetime; anything else (text that is no time too) as it came."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _when(value: Any) -> str:
    """A timestamp as people read it: 2026-11-28 11:34 UTC."""
    if value is None or value == "":
        return "—"
    value = _as_time(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def when(value: Any) -> str:
    """The one date format of the admin center's lists: 2026-11-28 11:34 UTC."""
    return _when(value)


def full_time(value: Any) -> str:
    """What hovering a date shows: the full time, to the second."""
    value = _as_time(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%A %d %B %Y, %H:%M:%S UTC")
    return value if isinstance(value, str) else ""


def _time_left(expires: Any, now: datetime) -> str:
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    if not isinstance(expires, datetime):
        return "—"
    left = expires - now
    if left.total_seconds() <= 0:
        return "expired"
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} days {hours} hours"
    if hours:
        return f"{hours} hours {minutes} minutes"
    return f"{minutes} minutes"


STATUS_LABELS: dict[str, str] = {
    Status.NEEDS_APPROVAL: "Needs approval",
    Status.APPROVED: "Approved",
    Status.REJECTED: "Rejected",
    Status.CANCELLED: "Cancelled",
    Status.COMPLETED: "Completed",
    Status.EXPIRED: "Expired",
}

_env.filters["when"] = _when
_env.filters["full_time"] = full_time
_env.filters["status_label"] = lambda s: STATUS_LABELS.get(str(s), str(s))
_env.globals["time_left"] = _time_left
_env.globals["Status"] = Status
_env.globals["ACTIVE_STATUSES"] = ACTIVE
_env.globals["iso"] = iso


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SignInRequired(Exception):
    """No valid session: the page answers 303 to the sign-in form."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token."""


def now_utc(request: Request) -> datetime:
    """The app's clock (create_app(..., clock=...)): the admin center's one source of time."""
    return context(request).clock()


def session_token(request: Request) -> str | None:
    return request.cookies.get(sessions.SESSION_COOKIE) or None


def load_session(request: Request) -> WebSession | None:
    token = session_token(request)
    if not token:
        return None
    ctx = context(request)
    now = now_utc(request)
    with ctx.db.read() as session:
        row = sessions.find_session(session, token, now)
        if row is None:
            return None
        try:
            caller = resolve_caller(
                session, ctx.db, TokenClaims(row.tenant_id, row.user_id, USER), _request_id(request)
            )
        except Unauthorized:
            return None  # the user was disabled or deleted since signing in
        tenant_name = session.scalar(
            select(t.Tenant.display_name).where(t.Tenant.id == row.tenant_id)
        )
    return WebSession(caller, sessions.csrf_token_for(token), tenant_name or "", ctx, now)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def signed_in(request: Request) -> WebSession:
    """Dependency of every signed-in page; checks the CSRF token of every POST.

    Plain `def` (like every page that touches the database), so FastAPI runs it in its thread
    pool rather than on the event loop; api/body.py gives the form synchronously."""
    web = load_session(request)
    if web is None:
        raise SignInRequired()
    if request.method == "POST":
        given: str | None = dict(form_fields(request)).get("csrf_token")
        given = given if isinstance(given, str) else request.headers.get("x-csrf-token")
        if not sessions.same_token(given, web.csrf_token):
            raise CsrfRefused()
    request.state.web = web
    return web


def form_data(request: Request) -> dict[str, str]:
    """Single-valued form fields as strings (the last value of a repeated name)."""
    return dict(form_fields(request))


def form_lists(request: Request, name: str) -> list[str]:
    return [value for key, value in form_fields(request) if key == name and value]


# What each navigation entry needs: a section's read permission, or these.
NAV_PERMISSIONS = {
    "access-policies": p.ROLES_READ,  # services/handlers/policies.py reads policies with it
    "audit": p.AUDIT_READ,
    "tenant/notifications": p.ORGANIZATION_UPDATE,
}


def may_open(web: WebSession, slug: str) -> bool:
    """Whether the navigation shows the page: the administrator holds what it needs to open."""
    section = SECTIONS.get(slug)
    if section is not None:
        spec = section.spec
        return spec is None or web.caller.can(spec.read_permission)
    needed = NAV_PERMISSIONS.get(slug, "")
    return not needed or web.caller.can(needed)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    web: WebSession | None = getattr(request.state, "web", None)
    base: dict[str, Any] = {"web": web, "now": web.now if web else now_utc(request), "nav": ""}
    base["may_open"] = (lambda slug: may_open(web, slug)) if web is not None else (lambda _: False)
    if web is not None and "waiting_count" not in values:
        base["waiting_count"] = engine.waiting_count(web)
    base.update(values)
    response = templates.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # Defence in depth behind autoescaping: no inline script runs, even if markup slipped in.
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, title=title, message=message)


class HtmlRoute(APIRoute):
    """Turns the web layer's exceptions and domain errors into pages instead of Graph JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def html_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return redirect(f"/admin/sign-in?next={quote(target, safe='')}")
            except CsrfRefused:
                request.state.web = None
                return error_page(
                    request,
                    403,
                    "Request refused",
                    "The form was sent without its security token (CSRF). Reload the page "
                    "and try again.",
                )
            except Forbidden as exc:
                return error_page(request, 403, "Not allowed", exc.message)
            except NotFound as exc:
                return error_page(request, 404, "Not found", exc.message)
            except DomainError as exc:
                return error_page(request, 400, "Could not do that", exc.message)
            except Exception:  # a bug: log it, show a page that reveals nothing of it
                log.exception("admin center page failed", extra={"path": request.url.path})
                return error_page(
                    request, 500, "Something went wrong", "The page could not be shown."
                )

        return html_handler


def page_router(prefix: str = "/admin", *, public: bool = False) -> APIRouter:
    """The admin center's pages: errors as pages (`HtmlRoute`), and unless `public` each behind
    a signed-in session."""
    dependencies = [] if public else [Depends(signed_in)]
    return APIRouter(prefix=prefix, route_class=HtmlRoute, dependencies=dependencies)
