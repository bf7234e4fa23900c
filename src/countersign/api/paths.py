"""Graph's URL conventions, applied before routing: path segments match case-insensitively
(`/beta/devicemanagement/manageddevices`), and an entity may be addressed with OData key
syntax (`managedDevices('id')`, `managedDevices(id)`), both rewritten to the routes' form."""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

# name('key') or name(key) where the key holds no '=' (a function call such as
# retrieveMyRequestById(id='x') keeps its parentheses) and is not empty (retrieveMyRequests()).
_KEY = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\((?P<quoted>'(?:[^']|'')+'|[^'()=,]+)\)$")


def _paths(routes: list[Any], prefix: str) -> list[str]:
    """Route paths, through included routers (FastAPI keeps those as their own objects)."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found += _paths(list(inner.routes), prefix + getattr(context, "prefix", ""))
        elif isinstance(getattr(route, "path", None), str):
            found.append(prefix + route.path)
    return found


def canonical_segments(routes: list[Any]) -> dict[str, str]:
    """Every literal segment of the /beta routes by its lower-case spelling (segments whose
    lower-case forms collide are left out: they must be written as the route writes them)."""
    seen: dict[str, set[str]] = {}
    for path in _paths(routes, ""):
        if not path.startswith("/beta"):
            continue
        for segment in path.split("/"):
            if segment and "{" not in segment:
                seen.setdefault(segment.lower(), set()).add(segment)
    return {lower: next(iter(names)) for lower, names in seen.items() if len(names) == 1}


def rewrite(path: str, segments: dict[str, str]) -> str:
    if not path.lower().startswith("/beta/") and path.lower() != "/beta":
        return path
    parts: list[str] = []
    for segment in path.split("/"):
        match = _KEY.match(segment)
        if match and match.group("name").lower() in segments:
            key = match.group("quoted")
            if key.startswith("'"):
                key = key[1:-1].replace("''", "'")
            parts.extend((segments[match.group("name").lower()], key))
            continue
        parts.append(segments.get(segment.lower(), segment))
    return "/".join(parts)


class GraphPathMiddleware:
    def __init__(self, app: ASGIApp, routes: Any):
        self.app = app
        self.routes = routes
        self.segments: dict[str, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.segments is None:  # routes are complete once the app serves
                self.segments = canonical_segments(list(self.routes))
            path = rewrite(scope["path"], self.segments)
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
