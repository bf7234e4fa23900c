"""The request body, read synchronously.

RequestContextMiddleware reads every body up front (to cap its size) and keeps it on the
request's state, so endpoints that touch the database can be plain `def` functions, which
FastAPI runs in its thread pool: an `async def` endpoint doing blocking database work (or
Argon2 hashing) would stall every other request of its process.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from fastapi import Request

from countersign.domain.errors import ValidationFailed


def raw_body(request: Request) -> bytes:
    body = getattr(request.state, "raw_body", None)
    if not isinstance(body, bytes):
        raise RuntimeError("RequestContextMiddleware did not run for this request")
    return body


def _multipart(request: Request) -> list[tuple[str, str | None, bytes]]:
    """A multipart/form-data body as (name, filename or None, content), in order."""
    cached = getattr(request.state, "multipart_parts", None)
    if isinstance(cached, list):
        return cached
    content_type = request.headers.get("content-type", "")
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + raw_body(request))
    parts: list[tuple[str, str | None, bytes]] = []
    if message.is_multipart():
        for part in message.get_payload():
            if not isinstance(part, Message):
                continue
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            filename = part.get_param("filename", header="content-disposition")
            content = part.get_payload(decode=True)
            parts.append(
                (
                    name,
                    filename if isinstance(filename, str) else None,
                    content if isinstance(content, bytes) else b"",
                )
            )
    request.state.multipart_parts = parts
    return parts


def form_files(request: Request) -> dict[str, bytes]:
    """The files of a multipart/form-data body by field name (an empty file input: absent)."""
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        return {}
    return {
        name: content for name, filename, content in _multipart(request) if filename and content
    }


def form_fields(request: Request) -> list[tuple[str, str]]:
    """A form body (application/x-www-form-urlencoded, or the non-file fields of
    multipart/form-data) as (name, value) pairs, in order."""
    content_type = request.headers.get("content-type", "")
    if "multipart/form-data" in content_type:
        try:
            return [
                (name, content.decode("utf-8"))
                for name, filename, content in _multipart(request)
                if filename is None
            ]
        except UnicodeDecodeError:
            raise ValidationFailed("The form is not valid UTF-8.") from None
    if "application/x-www-form-urlencoded" not in content_type:
        return []
    try:
        text = raw_body(request).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("The form is not valid UTF-8.") from None
    return parse_qsl(text, keep_blank_values=True, max_num_fields=10_000)
