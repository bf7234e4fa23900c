"""Operations endpoints and middleware: `/metrics` (Prometheus text), HTTP latency, and the
request id bound to every log line of a request."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from countersign import metrics
from countersign.api.deps import context
from countersign.logs import request_id_var

router = APIRouter(tags=["system"])
log = logging.getLogger("countersign.http")


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """Public, like /healthz: process metrics, then the database gauges."""
    registry = context(request).extras.get("metrics_registry")
    body = generate_latest(metrics.REGISTRY)
    if registry is not None:
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class ObservabilityMiddleware:
    """Times each request (by route template, so ids do not explode the label set), logs it,
    and binds its request id to the log context. Installed inside RequestContextMiddleware,
    which assigns the id."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(scope.get("state", {}).get("request_id"))
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_LATENCY.labels(scope["method"], template, str(status)).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "durationMs": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)
