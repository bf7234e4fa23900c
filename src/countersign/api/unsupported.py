"""Graph features Countersign does not serve answer 501 NotImplemented (in Graph's error
shape), not 404: a segment Graph offers under a served collection (a managed device's
remoteLock, an app's categories), another Intune collection (deviceManagement/
deviceConfigurations), $metadata. What Graph offers comes from Microsoft's metadata
(graph/schema.json: the SDK's request builders and navigation properties)."""

from __future__ import annotations

from functools import cache

from countersign.graph import schema

ROOTS = ("deviceManagement", "deviceAppManagement")


def _key(segment: str) -> str:
    return segment.replace("_", "").lower()


@cache
def _root_properties(root: str) -> frozenset[str]:
    return frozenset(name.lower() for name in schema.properties(root))


def unsupported_feature(path: str) -> str | None:
    """The Graph feature a path (that matched no route) names, or None when Graph has none."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] != "beta":
        return None
    rest = parts[1:]
    if not rest:
        return None
    if rest[0] == "$metadata":
        return "$metadata"
    for served, segments in schema.served_paths().items():
        names = served.split("/")
        if [p.lower() for p in rest[: len(names)]] != [n.lower() for n in names]:
            continue
        tail = rest[len(names) :]
        if len(tail) == 1 and _key(tail[0].split("(")[0]) in segments["collection"]:
            return f"{served}/{tail[0]}"
        if len(tail) >= 2 and _key(tail[1].split("(")[0]) in segments["item"]:
            return f"{served}/{{id}}/{tail[1]}"
        return None
    if len(rest) >= 2 and rest[0] in ROOTS and rest[1].lower() in _root_properties(rest[0]):
        return f"{rest[0]}/{rest[1]}"
    return None
