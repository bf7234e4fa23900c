"""The one path from an HTTP write to the services: builds a Change, runs it, shapes the reply."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from countersign.api.body import raw_body
from countersign.api.deps import base_url, context
from countersign.domain.actors import Caller
from countersign.domain.errors import ApprovalRequired, PreconditionFailed, ValidationFailed
from countersign.graph import schema
from countersign.services.changes import Change, etag
from countersign.services.gate import ApprovalHeaders, Submitted, execute


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is an empty object)."""
    raw = raw_body(request)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise ValidationFailed("The request body must be JSON (Content-Type: application/json).")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValidationFailed("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    if _holds_nul(body):
        raise ValidationFailed("The request body cannot contain NUL characters.")
    return body


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (json.loads accepts them; databases do not)."""
    raise ValueError(name)


def _holds_nul(value: Any) -> bool:
    """Whether a string anywhere in the document holds U+0000, which PostgreSQL cannot store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def if_match_version(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise PreconditionFailed(f"If-Match '{raw}' is not an etag of this object.")
    return int(value)


def run_change(request: Request, caller: Caller, change: Change) -> Response:
    ctx = context(request)
    headers = ApprovalHeaders.from_request(request.headers)
    outcome = execute(ctx.db, caller, change, headers, now=ctx.clock())
    if isinstance(outcome, Submitted):  # Intune's answer: 403 and the request's id in a header
        raise ApprovalRequired(outcome.request_id, outcome.message)
    result = outcome.result
    if result.status == 204 or result.body is None:
        return Response(status_code=204)
    response_headers = {}
    version = result.body.get("version")
    if isinstance(result.body.get("@odata.etag"), str):
        response_headers["ETag"] = result.body["@odata.etag"]
    elif isinstance(version, int):
        response_headers["ETag"] = etag(version)
    if result.status == 201 and isinstance(result.body.get("id"), str):
        # Graph names a created entity's URL (with its key) in Location.
        path = request.url.path.rstrip("/")
        response_headers["Location"] = f"{base_url(request)}{path}('{result.body['id']}')"
    body = graph_json(request, result.body)
    return JSONResponse(body, status_code=result.status, headers=response_headers)


def graph_json(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """A response body with Graph's evolvable-enum rule applied: members after
    unknownFutureValue only for clients that send `Prefer: include-unknown-enum-members`."""
    if schema.prefers_unknown_members(request.headers.get("prefer")):
        return body
    return evolve_json(body)


def evolve_json(body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body.get("value"), list) and "@odata.type" not in body:
        return {
            **body,
            "value": [evolve_json(v) if isinstance(v, dict) else v for v in body["value"]],
        }
    type_name = body.get("@odata.type")
    if isinstance(type_name, str) and schema.known(type_name):
        return schema.evolve(type_name, body, include_unknown=False)
    return body
