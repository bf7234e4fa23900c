"""Request-scoped dependencies: the app context and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

from countersign.auth.tokens import TokenService
from countersign.clock import Clock, system_clock
from countersign.config import Settings
from countersign.domain.actors import Caller
from countersign.domain.errors import Unauthorized
from countersign.services.identity import cached_caller, resolve_caller
from countersign.store.db import Database


@dataclass
class Context:
    settings: Settings
    db: Database
    tokens: TokenService
    extras: dict[str, Any]
    clock: Clock = system_clock


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def now(request: Request) -> datetime:
    """The app's clock, read once per use: aware UTC (countersign/clock.py)."""
    return context(request).clock()


def current_caller(request: Request) -> Caller:
    """The principal of the request's bearer token (401 without a valid one)."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Access token is empty.")
    ctx = context(request)
    claims = ctx.tokens.verify(token.strip())
    caller = cached_caller(ctx.db, claims, request.state.request_id)
    if caller is None:
        with ctx.db.read() as session:
            caller = resolve_caller(session, ctx.db, claims, request.state.request_id)
    request.state.caller = caller
    return caller


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def query_params(request: Request) -> dict[str, str]:
    return dict(request.query_params)
