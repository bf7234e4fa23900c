"""ASGI middleware: request ids (Graph's request-id / client-request-id) and the body size cap."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from countersign.clock import Clock, system_clock

log = logging.getLogger("countersign.api")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, clock: Clock = system_clock):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id", "")[:64] or request_id
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = client_request_id
        extra = [
            (b"request-id", request_id.encode()),
            (b"client-request-id", client_request_id.encode()),
        ]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(send_with_ids, request_id, client_request_id)
            return
        # U+0000 cannot be stored or compared on PostgreSQL; no Graph id or option holds one.
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await self._reject(
                send_with_ids,
                request_id,
                client_request_id,
                status=400,
                code="BadRequest",
                message="The URL cannot contain NUL characters.",
            )
            return
        # Read the body up front (bounded), so an oversized chunked body is refused before any
        # handler runs, then replay it to the application.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.max_body_bytes:
                await self._reject(send_with_ids, request_id, client_request_id)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # Handlers read it from here synchronously (api/body.py), so they can be plain `def`
        # functions that FastAPI runs in its thread pool, off the event loop.
        state["raw_body"] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_ids(message)

        try:
            await self.app(scope, replay, send_tracked)
        except Exception:
            # Answer the 500 here rather than let the exception reach Starlette's outermost
            # ServerErrorMiddleware: that one sends its 500 and then re-raises, and an exception
            # escaping the application makes Uvicorn drop the client's keep-alive connection.
            if started:  # part of a response went out; only closing can end it now
                raise
            log.exception("unhandled error", extra={"request_id": request_id})
            await self._reject(
                send_with_ids,
                request_id,
                client_request_id,
                status=500,
                code="InternalServerError",
                message="An unexpected error occurred.",
            )

    async def _reject(
        self,
        send: Any,
        request_id: str,
        client_request_id: str,
        status: int = 413,
        code: str = "RequestEntityTooLarge",
        message: str | None = None,
    ) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": code,
                    "message": message or f"The request body exceeds {self.max_body_bytes} bytes.",
                    "innerError": {
                        "date": self.clock().strftime("%Y-%m-%dT%H:%M:%S"),
                        "request-id": request_id,
                        "client-request-id": client_request_id,
                    },
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
