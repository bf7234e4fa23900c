"""/beta/users, /beta/groups (+ members), /beta/servicePrincipals, /beta/me."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field as BodyField
from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.odata import Field, apply_select, columns, list_page
from countersign.api.writes import json_body, run_change
from countersign.domain import permissions as p
from countersign.domain.actors import SERVICE_PRINCIPAL, Caller
from countersign.domain.errors import ValidationFailed
from countersign.services.changes import ACTION, Change, GraphBody, parse_body
from countersign.services.handlers import directory as d
from countersign.services.identity import change_own_password
from countersign.store import tables as t

router = APIRouter(prefix="/beta", tags=["directory"])


def _user_by_id_or_upn(session: Session, tenant_id: str, key: str) -> t.User:
    """GET /users/{id | userPrincipalName}, as Graph addresses a user."""
    if "@" in key:
        user_id = session.scalar(
            select(t.User.id).where(
                t.User.tenant_id == tenant_id, t.User.user_principal_name == key.lower()
            )
        )
        return d.get_user(session, tenant_id, user_id or key)
    return d.get_user(session, tenant_id, key)


USERS = CollectionSpec(
    path="/users",
    collection="users",
    table=t.User,
    serialize=d.user_json,
    read_permission=p.DIRECTORY_USERS_READ,
    get_row=_user_by_id_or_upn,
    fields={
        **columns(
            t.User, "id", "displayName", "userPrincipalName", "accountEnabled", "createdDateTime"
        ),
        "mail": Field(t.User.mail, sortable=False),
    },
)
GROUPS = CollectionSpec(
    path="/groups",
    collection="groups",
    table=t.Group,
    serialize=d.group_json,
    read_permission=p.DIRECTORY_GROUPS_READ,
    get_row=d.get_group,
    fields=columns(
        t.Group, "id", "displayName", "securityEnabled", "mailEnabled", "createdDateTime"
    ),
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
    fields=columns(t.ServicePrincipal, "id", "displayName", "appId"),
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
        now=ctx.clock(),
        max_attempts=ctx.settings.lockout_attempts,
        lockout=timedelta(minutes=ctx.settings.lockout_minutes),
    )
    return Response(status_code=204)


@router.get("/groups/{group_id}/members")
def list_members(
    group_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    url = base_url(request)
    with context(request).db.read() as session:
        GROUPS.load_visible(session, caller, group_id)
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


# -- navigations: memberOf, transitiveMembers, members/$ref -----------------------------------

DIRECTORY_OBJECTS = "https://graph.microsoft.com/v1.0/directoryObjects/"


def _page(request: Request, items: list[dict[str, Any]], context_name: str) -> dict[str, Any]:
    """A navigation's whole result as one Graph page ($select and $top applied)."""
    params = dict(request.query_params)
    top = params.get("$top")
    if top is not None:
        if not top.isdigit():
            raise ValidationFailed("$top must be a non-negative whole number.")
        items = items[: int(top)]
    items = [apply_select(item, params.get("$select")) for item in items]
    url = base_url(request)
    return {"@odata.context": f"{url}/beta/$metadata#{context_name}", "value": items}


def _direct_groups(session: Session, tenant_id: str, member_id: str) -> list[str]:
    return list(
        session.scalars(
            select(t.GroupMember.group_id)
            .where(t.GroupMember.member_id == member_id, t.GroupMember.tenant_id == tenant_id)
            .order_by(t.GroupMember.group_id)
        )
    )


def _member_of(kind: str) -> Any:
    read, get = {
        "users": (p.DIRECTORY_USERS_READ, d.get_user),
        "groups": (p.DIRECTORY_GROUPS_READ, d.get_group),
        "servicePrincipals": (p.DIRECTORY_SERVICE_PRINCIPALS_READ, d.get_service_principal),
    }[kind]

    def member_of(
        object_id: str, request: Request, caller: Caller = Depends(current_caller)
    ) -> dict[str, Any]:
        """The groups the object is a direct member of."""
        caller.require(read)
        caller.require(p.DIRECTORY_GROUPS_READ)
        with context(request).db.read() as session:
            if kind == "users":
                object_id = _user_by_id_or_upn(session, caller.tenant_id, object_id).id
            else:
                get(session, caller.tenant_id, object_id)
            groups = [
                d.group_json(d.get_group(session, caller.tenant_id, group_id))
                for group_id in _direct_groups(session, caller.tenant_id, object_id)
            ]
        return _page(request, groups, "directoryObjects")

    return member_of


for _kind in ("users", "groups", "servicePrincipals"):
    router.add_api_route(
        f"/{_kind}/{{object_id}}/memberOf",
        _member_of(_kind),
        methods=["GET"],
        name=f"memberOf_{_kind}",
    )


@router.get("/groups/{group_id}/transitiveMembers")
def transitive_members(
    group_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    """Every member of the group and of the groups nested in it (each once)."""
    with context(request).db.read() as session:
        GROUPS.load_visible(session, caller, group_id)
        seen_groups, found, queue = {group_id}, {}, [group_id]
        while queue:
            current = queue.pop(0)
            members = session.scalars(
                select(t.GroupMember).where(
                    t.GroupMember.group_id == current, t.GroupMember.tenant_id == caller.tenant_id
                )
            ).all()
            for member in members:
                if member.member_id in found or member.member_id == group_id:
                    continue
                body = d.member_json(session, member)
                if body is not None:
                    found[member.member_id] = body
                if member.member_type == "group" and member.member_id not in seen_groups:
                    seen_groups.add(member.member_id)
                    queue.append(member.member_id)
    return _page(request, list(found.values()), "directoryObjects")


@router.get("/groups/{group_id}/members/$ref")
def list_member_refs(
    group_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> dict[str, Any]:
    """The members as references ({"@odata.id": ...}), as Graph lists them."""
    with context(request).db.read() as session:
        GROUPS.load_visible(session, caller, group_id)
        ids = session.scalars(
            select(t.GroupMember.member_id)
            .where(t.GroupMember.group_id == group_id, t.GroupMember.tenant_id == caller.tenant_id)
            .order_by(t.GroupMember.member_id)
        ).all()
    url = base_url(request)
    return {
        "@odata.context": f"{url}/beta/$metadata#Collection($ref)",
        "value": [{"@odata.id": f"{DIRECTORY_OBJECTS}{member_id}"} for member_id in ids],
    }
