"""The application factory: create_app(settings) wires the database, tokens and routers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from countersign import __version__
from countersign.api import errors
from countersign.api.deps import Context
from countersign.api.middleware import RequestContextMiddleware
from countersign.api.routers import (
    approvals,
    audit,
    batch,
    directory,
    rbac,
    resources,
    system,
)
from countersign.auth.tokens import TokenService
from countersign.clock import Clock, system_clock
from countersign.config import Settings
from countersign.store.db import Database

# Routes anyone may call without a token; every other route requires one (a test walks them).
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/metrics",
        "/readyz",
        "/oauth2/token",
        "/{tenant}/oauth2/v2.0/token",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """The app; `clock` is the time every request reads (API, admin center), aware UTC."""
    settings = settings or Settings()
    db = db or Database(settings.database_url, settings.write_concurrency)
    from countersign.notify import targets

    targets.configure(settings.allow_private_channel_targets)
    app = FastAPI(
        title="Countersign",
        version=__version__,
        description="Graph-compatible device-management admin plane with multi admin approval.",
    )
    extras: dict[str, Any] = {}
    app.state.ctx = Context(
        settings=settings,
        db=db,
        tokens=TokenService(db, settings, clock),
        extras=extras,
        clock=clock,
    )
    errors.install(app)
    for module in (system, directory, rbac, resources, audit, approvals, batch):
        app.include_router(module.router)
    # Notification channels (issue 6), and operations: /metrics, HTTP latency, request ids in
    # the JSON logs. The observability middleware runs inside RequestContextMiddleware.
    from countersign import metrics
    from countersign.api import observability
    from countersign.api.routers import notifications, tenant_settings

    app.include_router(notifications.router)
    app.include_router(tenant_settings.router)
    app.include_router(observability.router)
    extras["metrics_registry"] = metrics.database_registry(db)
    app.add_middleware(observability.ObservabilityMiddleware)
    # The web admin center: pages under /admin authenticate with a session cookie (303 to
    # /admin/sign-in without one), not a bearer token; see countersign.web.
    from countersign import web

    web.install(app)
    # Graph's case-insensitive paths and key syntax, rewritten before routing (api/paths.py).
    from countersign.api.paths import GraphPathMiddleware

    app.add_middleware(GraphPathMiddleware, routes=app.router.routes)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, clock=clock
    )
    return app
