"""POST /beta/$batch: Graph's JSON batching. Up to 20 requests, run in order; `dependsOn`
names earlier requests that must have succeeded (else 424). Graph's JSON batching has no
atomicity: each request succeeds or fails on its own, and an item naming OData's
`atomicityGroup` makes the whole batch a 400 before any item runs. Each request is served by the
application itself, through the same authentication, paths, handlers and approval gate as a
single call: a protected item answers its own 403 with its own `x-msft-approval-code`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from countersign.api.deps import current_caller
from countersign.api.writes import json_body
from countersign.domain.actors import Caller
from countersign.domain.errors import ValidationFailed
from countersign.services.changes import GraphBody, parse_body

router = APIRouter(prefix="/beta", tags=["batch"])

MAX_REQUESTS = 20
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
# Response headers an item reports (Graph reports the ones a client acts on).
ITEM_HEADERS = ("content-type", "location", "etag", "x-msft-approval-code", "retry-after")


class BatchItem(GraphBody):
    id: str = Field(min_length=1, max_length=64)
    method: str
    url: str = Field(min_length=1, max_length=4096)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    depends_on: list[str] = Field(default_factory=list)


class BatchBody(GraphBody):
    requests: list[BatchItem] = Field(min_length=1)


def _refuse_atomicity_groups(raw: Any) -> None:
    """OData 4.01's `atomicityGroup` is not part of Graph's JSON batching (its items take id,
    method, url, headers, body and dependsOn): refused by name, so a client that counts on
    all-or-nothing learns before anything is applied."""
    items = raw.get("requests") if isinstance(raw, dict) else None
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and "atomicityGroup" in item:
            raise ValidationFailed(
                "Property 'atomicityGroup' is not supported: Microsoft Graph's JSON batching "
                "applies each request on its own; use dependsOn to order them.",
                target=f"requests[{index}].atomicityGroup",
            )


def _check(body: BatchBody) -> None:
    if len(body.requests) > MAX_REQUESTS:
        raise ValidationFailed(
            f"A batch holds at most {MAX_REQUESTS} requests; this one holds {len(body.requests)}.",
            target="requests",
        )
    seen: set[str] = set()
    for item in body.requests:
        if item.id in seen:
            raise ValidationFailed(f"Request id '{item.id}' is used twice.", target="requests")
        if item.method.upper() not in METHODS:
            raise ValidationFailed(f"Method '{item.method}' is not supported.", target="method")
        unknown = [d for d in item.depends_on if d not in seen]
        if unknown:
            raise ValidationFailed(
                f"Request '{item.id}' depends on '{unknown[0]}', which is not an earlier request.",
                target="dependsOn",
            )
        seen.add(item.id)


def _path(url: str) -> tuple[str, str]:
    """'/deviceManagement/managedDevices?$top=1' (or an absolute Graph URL) -> path, query."""
    parts = urlsplit(url)
    path = parts.path if parts.scheme else url.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    for version in ("/beta/", "/v1.0/"):
        if path.startswith(version):
            path = path[len(version) - 1 :]
    return "/beta" + path, parts.query


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _serve(request: Request, item: BatchItem) -> dict[str, Any]:
    path, query = _path(item.url)
    if path.rstrip("/").lower() == "/beta/$batch":
        return {
            "id": item.id,
            "status": 400,
            "body": _error("BadRequest", "A batch cannot contain a batch."),
        }
    payload = b"" if item.body is None else json.dumps(item.body).encode()
    headers = {k.lower(): v for k, v in item.headers.items()}
    if payload:
        headers.setdefault("content-type", "application/json")
    for name in ("authorization", "client-request-id", "prefer"):
        if name in request.headers and name not in headers:
            headers[name] = request.headers[name]
    headers["content-length"] = str(len(payload))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": item.method.upper(),
        "scheme": request.url.scheme,
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "state": {},
    }
    status, response_headers, chunks = 500, [], []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response_headers}
    result: dict[str, Any] = {
        "id": item.id,
        "status": status,
        "headers": {name: found[name] for name in ITEM_HEADERS if name in found},
    }
    raw = b"".join(chunks)
    if raw:
        if "json" in found.get("content-type", ""):
            result["body"] = json.loads(raw)
        else:
            result["body"] = raw.decode("utf-8", "replace")
    return result


@router.post("/$batch")
async def batch(request: Request, caller: Caller = Depends(current_caller)) -> JSONResponse:
    """Run each request of the batch as its own call; the batch itself answers 200."""
    raw = json_body(request)
    _refuse_atomicity_groups(raw)
    body = parse_body(BatchBody, raw)
    _check(body)
    statuses: dict[str, int] = {}
    responses = []
    for item in body.requests:
        failed = [d for d in item.depends_on if not 200 <= statuses[d] < 300]
        result: dict[str, Any]
        if failed:
            result = {
                "id": item.id,
                "status": 424,
                "body": _error("FailedDependency", f"Request '{failed[0]}' did not succeed."),
            }
        else:
            result = await _serve(request, item)
        statuses[item.id] = result["status"]
        responses.append(result)
    return JSONResponse({"responses": responses})
