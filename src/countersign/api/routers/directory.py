"""/beta/users, /beta/groups (+ members), /beta/servicePrincipals, /beta/me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field as BodyField
from sqlalchemy import select

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.odata import Field, list_page
from countersign.api.writes import json_body, run_change
from countersign.domain import permissions as p
from countersign.domain.actors import SERVICE_PRINCIPAL, Caller
from countersign.services import directory as d
from countersign.services.changes import ACTION, Change, GraphBody, parse_body
from countersign.services.identity import change_own_password
from countersign.store import tables as t

router = APIRouter(prefix="/beta", tags=["directory"])

USERS = CollectionSpec(
    path="/users",
    collection="users",
    table=t.User,
    serialize=d.user_json,
    read_permission=p.DIRECTORY_USERS_READ,
    get_row=d.get_user,
    fields={
        "id": Field(t.User.id),
        "displayName": Field(t.User.display_name),
        "userPrincipalName": Field(t.User.user_principal_name),
        "mail": Field(t.User.mail, sortable=False),
        "accountEnabled": Field(t.User.account_enabled),
        "createdDateTime": Field(t.User.created_date_time),
    },
)
GROUPS = CollectionSpec(
    path="/groups",
    collection="groups",
    table=t.Group,
    serialize=d.group_json,
    read_permission=p.DIRECTORY_GROUPS_READ,
    get_row=d.get_group,
    fields={
        "id": Field(t.Group.id),
        "displayName": Field(t.Group.display_name),
        "securityEnabled": Field(t.Group.security_enabled),
        "mailEnabled": Field(t.Group.mail_enabled),
        "createdDateTime": Field(t.Group.created_date_time),
    },
)


def _sp_json(sp: t.ServicePrincipal) -> dict[str, Any]:
    return d.service_principal_json(sp, [])


SERVICE_PRINCIPALS = CollectionSpec(
    path="/servicePrincipals",
    collection="servicePrincipals",
    table=t.ServicePrincipal,
    serialize=_sp_json,
    read_permission=p.DIRECTORY_SERVICE_PRINCIPALS_READ,
    get_row=d.get_service_principal,
    fields={
        "id": Field(t.ServicePrincipal.id),
        "displayName": Field(t.ServicePrincipal.display_name),
        "appId": Field(t.ServicePrincipal.app_id),
    },
)

for spec in (USERS, GROUPS, SERVICE_PRINCIPALS):
    mount(router, spec)


@router.get("/me")
def me(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    """The signed-in principal (any principal may read itself)."""
    with context(request).db.read() as session:
        if caller.type == SERVICE_PRINCIPAL:
            body = _sp_json(d.get_service_principal(session, caller.tenant_id, caller.id))
        else:
            body = d.user_json(d.get_user(session, caller.tenant_id, caller.id))
    return {
        "@odata.context": f"{base_url(request)}/beta/$metadata#directoryObjects/$entity",
        **body,
        "tenantId": caller.tenant_id,
    }


class ChangePassword(GraphBody):
    current_password: str = BodyField(max_length=256)
    new_password: str = BodyField(max_length=256)


@router.post("/me/changePassword", status_code=204)
def change_password(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    """The signed-in user changes their own password with the current one (Graph's
    changePassword). Earlier tokens end: sign in again with the new password."""
    body = parse_body(ChangePassword, json_body(request))
    ctx = context(request)
    change_own_password(
        ctx.db,
        caller,
        body.current_password,
        body.new_password,
        now=datetime.now(UTC),
        max_attempts=ctx.settings.lockout_attempts,
        lockout=timedelta(minutes=ctx.settings.lockout_minutes),
    )
    return Response(status_code=204)


@router.get("/groups/{group_id}/members")
def list_members(
    group_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    caller.require(p.DIRECTORY_GROUPS_READ)
    url = base_url(request)
    with context(request).db.read() as session:
        d.get_group(session, caller.tenant_id, group_id)
        query = select(t.GroupMember).where(
            t.GroupMember.group_id == group_id, t.GroupMember.tenant_id == caller.tenant_id
        )
        page = list_page(
            session,
            query,
            params=dict(request.query_params),
            fields={"id": Field(t.GroupMember.member_id)},
            id_column=t.GroupMember.member_id,
            serialize=lambda m: d.member_json(session, m) or {"id": m.member_id},
            base_url=f"{url}{request.url.path}",
            context=f"{url}/beta/$metadata#directoryObjects",
        )
    return page


@router.post("/groups/{group_id}/members/$ref", status_code=204)
def add_member(
    group_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Response:
    body = parse_body(d.MemberRef, json_body(request)).model_dump(by_alias=True)
    return run_change(
        request, caller, Change("groups", ACTION, group_id, body, action_name="addMember")
    )


@router.delete("/groups/{group_id}/members/{member_id}/$ref", status_code=204)
def remove_member(
    group_id: str, member_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Response:
    body = {"@odata.id": member_id}
    return run_change(
        request, caller, Change("groups", ACTION, group_id, body, action_name="removeMember")
    )


@router.post("/servicePrincipals/{sp_id}/addPassword")
def add_password(
    sp_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Response:
    body = json_body(request)
    return run_change(
        request, caller, Change("servicePrincipals", ACTION, sp_id, body, action_name="addPassword")
    )


@router.post("/servicePrincipals/{sp_id}/removePassword", status_code=204)
def remove_password(
    sp_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Response:
    body = json_body(request)
    return run_change(
        request,
        caller,
        Change("servicePrincipals", ACTION, sp_id, body, action_name="removePassword"),
    )
