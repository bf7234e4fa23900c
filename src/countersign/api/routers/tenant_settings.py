"""/beta/deviceManagement/multiAdminApprovalSettings (a Countersign extension): the tenant's
request lifetime and reminder window; GET, and PATCH through the approval gate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from countersign.api.deps import base_url, context, current_caller
from countersign.api.writes import if_match_version, json_body, run_change
from countersign.domain.actors import Caller
from countersign.services.changes import UPDATE, Change
from countersign.services.handlers import tenant_settings as ts

router = APIRouter(prefix="/beta", tags=["multiAdminApproval"])
PATH = "/deviceManagement/multiAdminApprovalSettings"


@router.get(PATH)
def get_settings(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    with context(request).db.read() as session:
        body = ts.get_settings(session, caller)
    return {
        "@odata.context": f"{base_url(request)}/beta/$metadata#deviceManagement/"
        "multiAdminApprovalSettings/$entity",
        **body,
    }


@router.patch(PATH, status_code=204)
def update_settings(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    change = Change(
        ts.COLLECTION,
        UPDATE,
        caller.tenant_id,  # the settings object's id is its tenant's
        json_body(request),
        expected_version=if_match_version(request),
    )
    return run_change(request, caller, change)
