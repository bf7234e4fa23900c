"""The request body, read synchronously.

RequestContextMiddleware reads every body up front (to cap its size) and keeps it on the
request's state, so endpoints that touch the database can be plain `def` functions, which
FastAPI runs in its thread pool: an `async def` endpoint doing blocking database work (or
Argon2 hashing) would stall every other request of its process.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from countersign.domain.errors import ValidationFailed


def raw_body(request: Request) -> bytes:
    body = getattr(request.state, "raw_body", None)
    if not isinstance(body, bytes):
        raise RuntimeError("RequestContextMiddleware did not run for this request")
    return body


def form_fields(request: Request) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body as (name, value) pairs, in order."""
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type:
        return []
    try:
        text = raw_body(request).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("The form is not valid UTF-8.") from None
    return parse_qsl(text, keep_blank_values=True, max_num_fields=10_000)
