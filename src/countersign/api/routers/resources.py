"""/beta/deviceAppManagement/mobileApps, the script, policy and category collections of
/beta/deviceManagement, and /beta/deviceManagement/managedDevices with its remote actions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field as BodyField

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.odata import Field, columns
from countersign.api.writes import if_match_version, json_body, run_change
from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.services.changes import (
    ACTION,
    ASSIGN,
    CREATE,
    DELETE,
    UPDATE,
    Change,
    GraphBody,
    parse_body,
)
from countersign.services.handlers import devices as d
from countersign.services.handlers import resources as r
from countersign.store import tables as t

router = APIRouter(prefix="/beta", tags=["protected objects"])

PARENTS = {"mobileApps": "/deviceAppManagement"}


def _getter(collection: str) -> Any:
    return lambda session, tenant_id, object_id: r.get_resource(
        session, tenant_id, collection, object_id
    )


def resource_spec(kind: r.Kind) -> CollectionSpec:
    return CollectionSpec(
        path=f"{PARENTS.get(kind.collection, '/deviceManagement')}/{kind.collection}",
        collection=kind.collection,
        table=t.Resource,
        serialize=r.resource_json,
        read_permission=kind.permissions.read,
        get_row=_getter(kind.collection),
        scoped=True,
        base_filter=lambda table: table.collection == kind.collection,
        fields={
            "id": Field(t.Resource.id),
            kind.name_property: Field(t.Resource.display_name),
            "description": Field(t.Resource.description, sortable=False),
            "platform": Field(t.Resource.platform),
            "@odata.type": Field(t.Resource.odata_type),
            "createdDateTime": Field(t.Resource.created_date_time),
            "lastModifiedDateTime": Field(t.Resource.last_modified_date_time),
        },
        default_order=((kind.name_property, False),),
        graph_types=(kind.entity_type,),
    )


def mount_assignments(spec: CollectionSpec) -> None:
    """POST /{id}/assign (replaces the assignments) and GET /{id}/assignments."""

    def assign(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> Response:
        body = json_body(request)
        change = Change(
            spec.collection, ASSIGN, object_id, body, expected_version=if_match_version(request)
        )
        return run_change(request, caller, change)

    def list_assignments(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> dict[str, Any]:
        with context(request).db.read() as session:
            row = spec.load_visible(session, caller, object_id)
            assignments = list(row.assignments)
        return {
            "@odata.context": f"{base_url(request)}/beta/$metadata#"
            f"{spec.context_name}('{object_id}')/assignments",
            "value": assignments,
        }

    name = spec.context_name
    router.add_api_route(
        spec.path + "/{object_id}/assign",
        assign,
        methods=["POST"],
        name=f"assign_{name}",
        status_code=204,
    )
    router.add_api_route(
        spec.path + "/{object_id}/assignments",
        list_assignments,
        methods=["GET"],
        name=f"assignments_{name}",
    )


RESOURCE_SPECS = {kind.collection: resource_spec(kind) for kind in r.KINDS.values()}
for _kind in r.KINDS.values():
    mount(router, RESOURCE_SPECS[_kind.collection])
    if _kind.assignment_type is not None:
        mount_assignments(RESOURCE_SPECS[_kind.collection])


# -- managed devices -------------------------------------------------------------------------

MANAGED_DEVICES = CollectionSpec(
    path="/deviceManagement/managedDevices",
    collection=d.COLLECTION,
    table=t.ManagedDevice,
    serialize=d.device_json,
    read_permission=p.MANAGED_DEVICES_READ,
    get_row=d.get_device,
    scoped=True,
    operations={CREATE, UPDATE, DELETE},
    fields=columns(t.ManagedDevice, "id", *d.INVENTORY),
    default_order=(("deviceName", False),),
)


class ExecuteAction(GraphBody):
    """Graph's executeAction body, as the SDK sends it (its defaults included)."""

    action_name: Literal["wipe", "retire", "delete", "deprovision"]
    device_ids: list[str] = BodyField(min_length=1, max_length=1000)
    keep_enrollment_data: bool | None = None
    keep_user_data: bool | None = None
    persist_esim_data_plan: bool | None = None
    deprovision_reason: str | None = BodyField(None, max_length=1024)
    # Other parameters of Graph's action, for actions Countersign does not carry out: only
    # their absence is accepted.
    carrier_url: None = None
    device_name: None = None
    notification_title: None = None
    notification_body: None = None
    organizational_unit_path: None = None

    def action_body(self) -> dict[str, Any]:
        """The per-device action's body (a wipe's options, a deprovision's reason)."""
        names: tuple[str, ...]
        if self.action_name == "wipe":
            names = ("keep_enrollment_data", "keep_user_data", "persist_esim_data_plan")
        elif self.action_name == "deprovision":
            names = ("deprovision_reason",)
        else:
            names = ()
        return self.model_dump(by_alias=True, include=set(names), exclude_none=True)


@router.post("/deviceManagement/managedDevices/executeAction")
def execute_action(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    """Bulk wipe, retire or delete: one Change naming every device, with per-device results."""
    body = parse_body(ExecuteAction, json_body(request))
    change = Change(
        d.COLLECTION,
        ACTION,
        body=body.action_body(),
        action_name=body.action_name,
        target_ids=tuple(body.device_ids),
    )
    return run_change(request, caller, change)


mount(router, MANAGED_DEVICES)


def _device_action(name: str) -> Any:
    def device_action(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> Response:
        change = Change(
            d.COLLECTION,
            ACTION,
            object_id,
            json_body(request),
            action_name=name,
            expected_version=if_match_version(request),
        )
        return run_change(request, caller, change)

    return device_action


for _action in ("wipe", "retire", "deprovision", "syncDevice"):
    router.add_api_route(
        f"/deviceManagement/managedDevices/{{object_id}}/{_action}",
        _device_action(_action),
        methods=["POST"],
        name=f"{_action}_managedDevice",
        status_code=204,
    )
