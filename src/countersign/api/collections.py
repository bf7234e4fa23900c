"""Graph collections declared as data and mounted as routes: list, get, create, update, delete.

Every collection of SPEC §2 and §5 is a `CollectionSpec`; `mount` gives it the same OData
listing, tenant and scope-tag filtering, error shapes and write path as every other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.api.deps import base_url, context, current_caller
from countersign.api.odata import Field, apply_select, count_rows, list_page
from countersign.api.writes import graph_json, if_match_version, json_body, run_change
from countersign.domain.actors import Caller
from countersign.domain.errors import NotFound, ValidationFailed
from countersign.graph import schema
from countersign.services.changes import CREATE, DELETE, UPDATE, Change
from countersign.store.scope import reachable


@dataclass
class CollectionSpec:
    path: str  # under /beta, e.g. "/deviceManagement/roleDefinitions"
    collection: str  # the Change handler's name
    table: Any
    fields: dict[str, Field]
    serialize: Callable[[Any], dict[str, Any]]
    read_permission: str
    get_row: Callable[[Session, str, str], Any]
    scoped: bool = False  # rows carry scope tags; lists and reads are filtered by them
    operations: set[str] = field(default_factory=lambda: {CREATE, UPDATE, DELETE})
    default_order: tuple[tuple[str, bool], ...] = (("displayName", False),)
    tags_of: Callable[[Any], list[str]] = lambda row: list(row.role_scope_tag_ids)
    base_filter: Callable[[Any], Any] | None = None
    # Graph's entity types of the rows (for $expand of navigations Countersign lacks: 501).
    graph_types: tuple[str, ...] = ()

    @property
    def context_name(self) -> str:
        return str(self.path.rsplit("/", 1)[-1])

    @property
    def metadata_path(self) -> str:
        """What follows `$metadata#` in @odata.context: 'deviceAppManagement/mobileApps'."""
        return self.path.lstrip("/")

    def load_visible(self, session: Session, caller: Caller, object_id: str) -> Any:
        """The row, if it exists in the caller's tenant and within its reach (else 404)."""
        caller.require(self.read_permission)
        row = self.get_row(session, caller.tenant_id, object_id)
        if self.scoped and not caller.can(self.read_permission, self.tags_of(row)):
            raise NotFound(f"'{object_id}' does not exist.")
        return row

    def visible_query(self, caller: Caller) -> Any:
        """The rows the caller may list: its tenant's, within its scope-tag reach."""
        caller.require(self.read_permission)
        query = select(self.table).where(self.table.tenant_id == caller.tenant_id)
        if self.base_filter is not None:
            query = query.where(self.base_filter(self.table))
        if self.scoped:
            query = query.where(reachable(self.table.id, caller.access, self.read_permission))
        return query


# Every mounted collection by its Change handler's name; the admin center lists from it.
SPECS: dict[str, CollectionSpec] = {}


def expand_of(request: Request, spec: CollectionSpec) -> set[str]:
    """$expand names: `assignments` where the type has them (Graph's offer); others a 400."""
    raw = request.query_params.get("$expand")
    if not raw:
        return set()
    names = {part.strip().split("(", 1)[0] for part in raw.split(",") if part.strip()}
    offered = {"assignments"} if hasattr(spec.table, "assignments") else set()
    unknown = sorted(names - offered)
    navigations = {
        name
        for type_name in spec.graph_types
        for name, prop in schema.properties(type_name).items()
        if prop.navigation
    }
    if set(unknown) & navigations:
        raise HTTPException(
            501, f"Countersign does not implement $expand of '{unknown[0]}' on {spec.context_name}."
        )
    if unknown:
        raise ValidationFailed(
            f"$expand of '{unknown[0]}' is not supported on {spec.context_name}."
        )
    return names


def mount(router: APIRouter, spec: CollectionSpec) -> None:
    SPECS[spec.collection] = spec

    def list_items(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
        query = spec.visible_query(caller)
        url = base_url(request)
        with context(request).db.read() as session:
            return graph_json(
                request,
                list_page(
                    session,
                    query,
                    params=dict(request.query_params),
                    fields=spec.fields,
                    id_column=spec.table.id,
                    serialize=spec.serialize,
                    base_url=f"{url}{request.url.path}",
                    context=f"{url}/beta/$metadata#{spec.metadata_path}",
                    default_order=spec.default_order,
                    expand=expand_of(request, spec),
                ),
            )

    def count_items(request: Request, caller: Caller = Depends(current_caller)) -> Response:
        """GET {collection}/$count: the number as text/plain, as Graph answers it."""
        query = spec.visible_query(caller)
        with context(request).db.read() as session:
            total = count_rows(session, query, dict(request.query_params), spec.fields)
        return PlainTextResponse(str(total))

    def get_item(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> dict[str, Any]:
        params = dict(request.query_params)
        with context(request).db.read() as session:
            row = spec.load_visible(session, caller, object_id)
            body = spec.serialize(row)
        body = apply_select(body, params.get("$select"))
        if "assignments" in expand_of(request, spec) and hasattr(row, "assignments"):
            body["assignments"] = list(row.assignments)
        url = base_url(request)
        return graph_json(
            request,
            {"@odata.context": f"{url}/beta/$metadata#{spec.metadata_path}/$entity", **body},
        )

    def create_item(request: Request, caller: Caller = Depends(current_caller)) -> Response:
        body = json_body(request)
        return run_change(request, caller, Change(spec.collection, CREATE, body=body))

    def update_item(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> Response:
        body = json_body(request)
        return run_change(
            request,
            caller,
            Change(
                spec.collection, UPDATE, object_id, body, expected_version=if_match_version(request)
            ),
        )

    def delete_item(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> Response:
        return run_change(
            request,
            caller,
            Change(spec.collection, DELETE, object_id, expected_version=if_match_version(request)),
        )

    item = spec.path + "/{object_id}"
    routes = (  # name; the operation it needs (reads need none); method; path; endpoint; status
        ("list", None, "GET", spec.path, list_items, None),
        ("count", None, "GET", spec.path + "/$count", count_items, None),
        ("get", None, "GET", item, get_item, None),
        ("create", CREATE, "POST", spec.path, create_item, 201),
        ("update", UPDATE, "PATCH", item, update_item, 204),
        ("delete", DELETE, "DELETE", item, delete_item, 204),
    )
    for verb, operation, method, path, endpoint, status in routes:
        if operation is None or operation in spec.operations:
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                name=f"{verb}_{spec.context_name}",
                status_code=status,
            )
