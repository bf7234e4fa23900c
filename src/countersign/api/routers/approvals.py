"""/beta/deviceManagement/operationApprovalRequests and operationApprovalPolicies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field as PydanticField
from sqlalchemy import ColumnElement

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.deps import now as clock_now
from countersign.api.odata import Field, columns, list_page
from countersign.api.writes import json_body
from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.services import (
    approve_request,
    cancel_request,
    complete_request,
    queries,
    reject_request,
    schedule_completion,
)
from countersign.services.changes import GraphBody, parse_body
from countersign.services.handlers.policies import get_policy, policy_json
from countersign.services.request_json import request_json
from countersign.store import tables as t
from countersign.store.db import Database

router = APIRouter(prefix="/beta/deviceManagement", tags=["multi admin approval"])
REQUESTS = "/operationApprovalRequests"
R = t.ApprovalRequest
STATUS_TYPE = "microsoft.graph.operationApprovalRequestEntityStatus"
POLICY_SETS = "Collection(microsoft.graph.operationApprovalPolicySet)"


class DecisionBody(GraphBody):
    justification: str | None = PydanticField(None, max_length=4096)
    approval_source: str | None = PydanticField(
        None, pattern="^(adminConsole|email|unknown|unknownFutureValue)$"
    )


class CancelBody(GraphBody):
    id: str


class StatusQuery(GraphBody):
    entity_id: str = PydanticField(min_length=1, max_length=64)
    entity_type: str = PydanticField(min_length=1, max_length=128)


def _status_equals(now: datetime) -> Any:
    """`status eq X` as stored status plus the clock, so expiry is exact in filters too."""

    def equals(value: Any) -> ColumnElement[bool]:
        return queries.status_is(str(value), now)

    return equals


def _request_fields(now: datetime) -> dict[str, Field]:
    return {
        "id": Field(R.id),
        "status": Field(R.status, equals=_status_equals(now)),
        "requestDateTime": Field(R.request_date_time),
        "expirationDateTime": Field(R.expiration_date_time),
        "lastModifiedDateTime": Field(R.last_modified_date_time),
        "payloadId": Field(R.payload_id),
        "payloadType": Field(R.payload_type),
        "payloadName": Field(R.payload_name),
        "payloadOperation": Field(R.payload_operation),
        "requiredOperationApprovalPolicyTypes": Field(R.policy_type),
        "requestor/user/id": Field(R.requestor_id),
        "requestor/application/id": Field(R.requestor_id),
        "requestor/user/displayName": Field(R.requestor_name),
    }


def _list_requests(request: Request, caller: Caller, *, mine: bool) -> dict[str, Any]:
    now = clock_now(request)
    query = queries.visible_requests(caller, mine=mine)
    url = base_url(request)
    with context(request).db.read() as session:
        return list_page(
            session,
            query,
            params=dict(request.query_params),
            fields=_request_fields(now),
            id_column=R.id,
            serialize=lambda row: request_json(row, now),
            base_url=f"{url}{request.url.path}",
            context=f"{url}/beta/$metadata#deviceManagement/operationApprovalRequests",
            default_order=(("requestDateTime", True),),
        )


def _one_request(
    request: Request, caller: Caller, request_id: str, *, mine: bool
) -> dict[str, Any]:
    now = clock_now(request)
    with context(request).db.read() as session:
        if mine:
            row = queries.my_request(session, caller, request_id)
        else:
            row = queries.visible_request(session, caller, request_id)
        body = request_json(row, now, queries.decisions_of(session, row.id))
    context_url = (
        f"{base_url(request)}/beta/$metadata#deviceManagement/operationApprovalRequests/$entity"
    )
    return {"@odata.context": context_url, **body}


def _string_result(request: Request, value: str) -> dict[str, Any]:
    return {"@odata.context": f"{base_url(request)}/beta/$metadata#Edm.String", "value": value}


@router.get(REQUESTS + "/retrieveMyRequests()")
def retrieve_my_requests(
    request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    return _list_requests(request, caller, mine=True)


@router.get(REQUESTS + "/retrieveMyRequestById(id='{request_id}')")
def retrieve_my_request_by_id(
    request_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    return _one_request(request, caller, request_id, mine=True)


@router.post(REQUESTS + "/retrieveRequestStatus")
def retrieve_request_status(
    request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    body = parse_body(StatusQuery, json_body(request))
    with context(request).db.read() as session:
        status = queries.retrieve_request_status(
            session, caller, body.entity_id, body.entity_type, clock_now(request)
        )
    return {
        "@odata.context": f"{base_url(request)}/beta/$metadata#{STATUS_TYPE}",
        **status,
    }


@router.post(REQUESTS + "/cancelMyRequest", status_code=204)
def cancel_my_request(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = parse_body(CancelBody, json_body(request))
    cancel_request.cancel_my_request(context(request).db, caller, body.id, clock_now(request))
    return Response(status_code=204)


@router.get(REQUESTS)
def list_requests(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    return _list_requests(request, caller, mine=False)


@router.get(REQUESTS + "/{request_id}")
def get_request(
    request_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    return _one_request(request, caller, request_id, mine=False)


Decide = Callable[[Database, Caller, str, str | None, datetime], dict[str, Any]]


def _decision(decide: Decide) -> Callable[..., dict[str, Any]]:
    """approve, reject and cancelApproval: Graph's body in, Graph's string result out."""

    def endpoint(
        request_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> dict[str, Any]:
        body = parse_body(DecisionBody, json_body(request))
        result = decide(
            context(request).db, caller, request_id, body.justification, clock_now(request)
        )
        return _string_result(request, result["status"])

    return endpoint


for _action, _decide in (
    ("approve", approve_request.approve_request),
    ("reject", reject_request.reject_request),
    ("cancelApproval", cancel_request.cancel_approval),
):
    router.add_api_route(
        REQUESTS + "/{request_id}/" + _action,
        _decision(_decide),
        methods=["POST"],
        name=f"{_action}_request",
    )


@router.post(REQUESTS + "/{request_id}/complete")
def complete(
    request_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Response:
    """Countersign extension: the requester completes without replaying the operation."""
    json_body(request)
    result = complete_request.complete_request(
        context(request).db, caller, request_id, clock_now(request)
    )
    if result.body is None:
        return Response(status_code=204)
    return JSONResponse(result.body, status_code=result.status)


@router.post(REQUESTS + "/{request_id}/scheduleCompletion")
def schedule(
    request_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    """Countersign extension: `{"scheduledCompletionDateTime": ...}` (or null), by the
    requester; the worker completes the approved request at that time."""
    return schedule_completion.schedule_completion(
        context(request).db, caller, request_id, json_body(request), clock_now(request)
    )


# -- access policies -------------------------------------------------------------------------

POLICIES = CollectionSpec(
    path="/operationApprovalPolicies",
    collection="operationApprovalPolicies",
    table=t.ApprovalPolicy,
    serialize=policy_json,
    read_permission=p.ROLES_READ,
    get_row=get_policy,
    fields=columns(t.ApprovalPolicy, "id", "displayName", "policyType", "lastModifiedDateTime"),
)


def _policy_sets(pairs: list[tuple[str, str]], request: Request) -> dict[str, Any]:
    return {
        "@odata.context": f"{base_url(request)}/beta/$metadata#{POLICY_SETS}",
        "value": [
            {
                "@odata.type": "#microsoft.graph.operationApprovalPolicySet",
                "policyType": policy_type,
                "policyPlatform": platform,
            }
            for policy_type, platform in pairs
        ],
    }


@router.get("/operationApprovalPolicies/retrieveApprovableOperations()")
def retrieve_approvable_operations(
    request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    return _policy_sets(queries.approvable_operations(caller), request)


@router.get("/operationApprovalPolicies/retrieveOperationsRequiringApproval()")
def retrieve_operations_requiring_approval(
    request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    return _policy_sets(queries.operations_requiring_approval(caller), request)


mount(router, POLICIES)
