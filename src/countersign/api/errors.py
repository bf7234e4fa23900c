"""Graph's error shape, produced in one place for every failure."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from countersign.api.unsupported import unsupported_feature
from countersign.clock import Clock, system_clock
from countersign.domain import errors as e

log = logging.getLogger("countersign.api")

STATUS: list[tuple[type[e.DomainError], int]] = [
    (e.ApprovalRequired, 403),
    (e.NotEligibleToApprove, 400),
    (e.ValidationFailed, 400),
    (e.Unauthorized, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.PreconditionFailed, 412),
    (e.AccountLocked, 400),
    (e.NotImplementedByCountersign, 501),
]

HTTP_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalServerError",
    501: "NotImplemented",
}


def _now(request: Request) -> datetime:
    """The app's clock (api/deps.py Context); the wall clock before the app has one."""
    ctx = getattr(request.app.state, "ctx", None)
    clock: Clock = ctx.clock if ctx is not None else system_clock
    return clock()


def graph_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    inner: dict[str, Any] = {
        "date": _now(request).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": getattr(request.state, "request_id", ""),
        "client-request-id": getattr(request.state, "client_request_id", ""),
    }
    if reason:
        inner["reason"] = reason
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(error: e.DomainError) -> int:
    return next(status for cls, status in STATUS if isinstance(error, cls))


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc)
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        if err.get("type") == "extra_forbidden":
            parts.append(f"Property '{field}' does not exist on this type.")
        elif err.get("type") == "missing":
            parts.append(f"Property '{field}' is required.")
        else:
            parts.append(f"Property '{field}': {err.get('msg', 'invalid value')}.")
    return " ".join(parts) or "The request is not valid."


def install(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain(request: Request, exc: e.DomainError) -> JSONResponse:
        headers = None
        if isinstance(exc, e.ApprovalRequired):
            headers = {"x-msft-approval-code": exc.request_id}
        if isinstance(exc, e.Unauthorized):
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return graph_error(
            request, status_of(exc), exc.code, exc.message, reason=exc.reason, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return graph_error(request, 400, "BadRequest", _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "BadRequest")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            feature = unsupported_feature(request.url.path)
            if feature is not None:  # Graph has it; Countersign does not (README)
                return graph_error(
                    request,
                    501,
                    "NotImplemented",
                    f"Countersign does not implement '{feature}' of Microsoft Graph.",
                )
            message = f"Resource not found for the segment '{request.url.path}'."
        return graph_error(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": request.state.request_id})
        # Starlette answers this one outside the middleware that adds the id headers.
        ids = {
            "request-id": getattr(request.state, "request_id", ""),
            "client-request-id": getattr(request.state, "client_request_id", ""),
        }
        return graph_error(
            request, 500, "InternalServerError", "An unexpected error occurred.", headers=ids
        )
