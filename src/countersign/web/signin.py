"""Sign-in and sign-out of the admin center.

The sign-in form has no session yet, so its CSRF token is a double-submit cookie: a random value
set with the form and echoed in it (a login-CSRF attacker can read neither).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Depends, Request, Response

from countersign.api.deps import context
from countersign.auth import sessions
from countersign.domain.errors import AccountLocked, DomainError, Unauthorized
from countersign.services.identity import change_own_password, password_sign_in
from countersign.web.core import (
    WebSession,
    error_page,
    form_data,
    load_session,
    now_utc,
    page_router,
    redirect,
    render,
    session_token,
    signed_in,
)

public_router = page_router(public=True)
router = page_router()

SIGN_IN_PATH = "/admin/sign-in"


def _safe_next(target: str | None) -> str:
    """Only paths inside the admin center (no open redirects to other sites)."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


def _secure(request: Request) -> bool:
    return context(request).settings.session_secure_cookie or request.url.scheme == "https"


def _sign_in_page(
    request: Request, *, error: str | None = None, upn: str = "", status_code: int = 200
) -> Response:
    csrf = request.cookies.get(sessions.SIGN_IN_CSRF_COOKIE) or sessions.new_random_token()
    response = render(
        request,
        "sign_in.html",
        status_code=status_code,
        sign_in_csrf=csrf,
        error=error,
        upn=upn,
        next=_safe_next(request.query_params.get("next")),
        signed_out=request.query_params.get("signed_out") == "1",
    )
    response.set_cookie(
        sessions.SIGN_IN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=SIGN_IN_PATH,
    )
    return response


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        sessions.SESSION_COOKIE,
        token,
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


@public_router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    if load_session(request) is not None:
        return redirect(_safe_next(request.query_params.get("next")))
    return _sign_in_page(request)


@public_router.post("/sign-in")
def sign_in(request: Request) -> Response:
    form = form_data(request)
    expected = request.cookies.get(sessions.SIGN_IN_CSRF_COOKIE)
    if not expected or not sessions.same_token(form.get("csrf_token"), expected):
        return error_page(
            request,
            403,
            "Request refused",
            "The sign-in form was sent without its security token (CSRF). Reload the page "
            "and try again.",
        )
    upn = form.get("username", "").strip()
    ctx = context(request)
    now = now_utc(request)
    try:
        user = password_sign_in(
            ctx.db,
            upn,
            form.get("password", ""),
            now=now,
            max_attempts=ctx.settings.lockout_attempts,
            lockout=timedelta(minutes=ctx.settings.lockout_minutes),
        )
    except AccountLocked as exc:
        return _sign_in_page(request, error=exc.message, upn=upn, status_code=400)
    except Unauthorized as exc:
        return _sign_in_page(request, error=exc.message, upn=upn, status_code=400)
    except DomainError as exc:
        return _sign_in_page(request, error=exc.message, upn=upn, status_code=400)
    with ctx.db.write() as session:
        token = sessions.create_session(session, user, now)
    response = redirect(_safe_next(form.get("next")))
    _set_session_cookie(request, response, token)
    response.delete_cookie(sessions.SIGN_IN_CSRF_COOKIE, path=SIGN_IN_PATH)
    return response


@router.post("/sign-out")
def sign_out(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    token = session_token(request)
    if token:
        with web.ctx.db.write() as session:
            sessions.end_session(session, token)
    response = redirect(f"{SIGN_IN_PATH}?signed_out=1")
    response.delete_cookie(
        sessions.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )
    return response


@router.get("/password")
def change_password_form(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return render(
        request,
        "change_password.html",
        changed=request.query_params.get("changed") == "1",
        error=None,
    )


@router.post("/password")
def change_password(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    """The signed-in administrator's own password (not protected: they prove the current one).
    The change ends every session of the user, this one too, so this browser gets a new one."""
    form = form_data(request)
    ctx = web.ctx
    try:
        user = change_own_password(
            ctx.db,
            web.caller,
            form.get("current_password", ""),
            form.get("new_password", ""),
            now=web.now,
            max_attempts=ctx.settings.lockout_attempts,
            lockout=timedelta(minutes=ctx.settings.lockout_minutes),
        )
    except DomainError as exc:
        return render(
            request, "change_password.html", status_code=400, error=exc.message, changed=False
        )
    with ctx.db.write() as session:
        token = sessions.create_session(session, user, web.now)
    response = redirect("/admin/password?changed=1")
    _set_session_cookie(request, response, token)
    return response
