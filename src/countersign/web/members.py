"""Groups > a group > Members: the members (with nested groups' members), Add members through a
picker that searches users, groups and service principals, and Remove.

Adding or removing a member is the same `addMember` / `removeMember` Change the API's
`/groups/{id}/members/$ref` builds, through the one gate: it applies at once, or becomes an
approval request (the Review step then reads "Review + submit for approval").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain.actors import SERVICE_PRINCIPAL, USER
from countersign.domain.errors import DomainError, ValidationFailed
from countersign.services.changes import ACTION, Change
from countersign.services.handlers.directory import GRAPH as DIRECTORY_OBJECTS
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.core import (
    WebSession,
    form_data,
    form_lists,
    page_router,
    redirect,
    render,
    signed_in,
)
from countersign.web.objects import (
    _check_justification,
    justification_of,
    pending_request,
    section_for,
)

router = page_router()

TYPE_LABELS = {USER: "User", SERVICE_PRINCIPAL: "Service principal", "group": "Group"}
MAX_DEPTH = 5
PICKER_LIMIT = 25


@dataclass(frozen=True)
class Member:
    id: str
    type: str  # user, servicePrincipal, group
    name: str
    upn: str  # a user's UPN, a service principal's appId, "" for a group
    depth: int = 0  # 0: direct; more: through nested groups
    via: str = ""  # the nested group it comes through

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)


def _describe(session: Session, tenant_id: str, member_id: str, kind: str) -> tuple[str, str]:
    if kind == USER:
        user = session.get(t.User, member_id)
        return (user.display_name, user.user_principal_name) if user else (member_id, "")
    if kind == SERVICE_PRINCIPAL:
        sp = session.get(t.ServicePrincipal, member_id)
        return (sp.display_name, f"appId {sp.app_id}") if sp else (member_id, "")
    group = session.get(t.Group, member_id)
    return (group.display_name, "") if group else (member_id, "")


def members_of(session: Session, tenant_id: str, group_id: str) -> list[Member]:
    """Direct members, each nested group followed by its own members (indented, `via`)."""
    found: list[Member] = []

    def walk(current: str, depth: int, via: str, seen: frozenset[str]) -> None:
        rows = session.scalars(
            select(t.GroupMember).where(
                t.GroupMember.group_id == current, t.GroupMember.tenant_id == tenant_id
            )
        ).all()
        described = [
            (row, *_describe(session, tenant_id, row.member_id, row.member_type)) for row in rows
        ]
        for row, name, upn in sorted(described, key=lambda d: (d[1].lower(), d[0].member_id)):
            found.append(Member(row.member_id, row.member_type, name, upn, depth, via))
            if row.member_type == "group" and row.member_id not in seen and depth < MAX_DEPTH:
                walk(row.member_id, depth + 1, name, seen | {row.member_id})

    walk(group_id, 0, "", frozenset({group_id}))
    return found


def search_directory(
    session: Session, tenant_id: str, text: str, exclude: set[str]
) -> list[Member]:
    """Users, groups and service principals whose name (or UPN) contains the text."""
    pattern = "%" + text.lower().replace("%", "").replace("_", "") + "%"
    results: list[Member] = []
    for user in session.scalars(
        select(t.User)
        .where(
            t.User.tenant_id == tenant_id,
            or_(
                func.lower(t.User.display_name).like(pattern),
                func.lower(t.User.user_principal_name).like(pattern),
            ),
        )
        .order_by(t.User.display_name)
        .limit(PICKER_LIMIT)
    ):
        results.append(Member(user.id, USER, user.display_name, user.user_principal_name))
    for group in session.scalars(
        select(t.Group)
        .where(t.Group.tenant_id == tenant_id, func.lower(t.Group.display_name).like(pattern))
        .order_by(t.Group.display_name)
        .limit(PICKER_LIMIT)
    ):
        results.append(Member(group.id, "group", group.display_name, ""))
    for sp in session.scalars(
        select(t.ServicePrincipal)
        .where(
            t.ServicePrincipal.tenant_id == tenant_id,
            func.lower(t.ServicePrincipal.display_name).like(pattern),
        )
        .order_by(t.ServicePrincipal.display_name)
        .limit(PICKER_LIMIT)
    ):
        results.append(Member(sp.id, SERVICE_PRINCIPAL, sp.display_name, f"appId {sp.app_id}"))
    return [m for m in results if m.id not in exclude]


def member_change(group_id: str, member_id: str, add: bool) -> Change:
    """The Change the API builds for POST members/$ref and DELETE members/{id}/$ref."""
    return Change(
        "groups",
        ACTION,
        group_id,
        {"@odata.id": DIRECTORY_OBJECTS + member_id},
        action_name="addMember" if add else "removeMember",
    )


def _group(web: WebSession, group_id: str) -> dict[str, Any]:
    spec = section_for("groups").spec
    assert spec is not None
    with web.ctx.db.read() as session:
        return spec.serialize(spec.load_visible(session, web.caller, group_id))


def _members_page(
    request: Request, web: WebSession, group_id: str, error: str | None = None
) -> Response:
    group = _group(web, group_id)
    text = request.query_params.get("q", "").strip()
    with web.ctx.db.read() as session:
        members = members_of(session, web.caller.tenant_id, group_id)
        direct = {m.id for m in members if m.depth == 0}
        results = (
            search_directory(session, web.caller.tenant_id, text, direct | {group_id})
            if text
            else []
        )
    notice = {"added": "Member added.", "removed": "Member removed."}.get(
        request.query_params.get("notice", "")
    )
    return render(
        request,
        "members.html",
        nav="directory",
        section=section_for("groups"),
        group=group,
        members=members,
        results=results,
        q=text,
        can_change=web.caller.can(p.DIRECTORY_GROUPS_MEMBERS_UPDATE),
        pending=pending_request(web, "groups", group_id),
        notice=notice,
        error=error,
    )


@router.get("/groups/{group_id}/members")
def group_members(
    group_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    return _members_page(request, web, group_id)


def _change_members(request: Request, web: WebSession, group_id: str, add: bool) -> Response:
    group = _group(web, group_id)
    form = form_data(request)
    member_ids = list(dict.fromkeys(form_lists(request, "member_id")))
    if not member_ids:
        return _members_page(request, web, group_id, error="Select at least one member first.")
    with web.ctx.db.read() as session:
        described = []
        for member_id in member_ids:
            kind = (
                "group"
                if session.get(t.Group, member_id)
                else (USER if session.get(t.User, member_id) else SERVICE_PRINCIPAL)
            )
            name, upn = _describe(session, web.caller.tenant_id, member_id, kind)
            described.append(Member(member_id, kind, name, upn))
    changes = [member_change(group_id, m.id, add) for m in described]
    verb = "Add" if add else "Remove"
    error = None
    protected = False
    try:
        protected = any(engine.needs_approval(web.ctx.db, web.caller, c, web.now) for c in changes)
        if protected and len(changes) > 1:
            raise ValidationFailed(
                f"This change needs approval, and one request holds the group until it ends: "
                f"{verb.lower()} one member at a time."
            )
        if form.get("step") == "submit":
            justification = justification_of(form)
            _check_justification(protected, justification)
            outcome = None
            for change in changes:
                outcome = engine.run(web, change, justification)
            if isinstance(outcome, str):
                return redirect(f"/admin/requests/{outcome}?notice=submitted")
            notice = "added" if add else "removed"
            return redirect(f"/admin/groups/{group_id}/members?notice={notice}")
    except DomainError as exc:
        error = exc.message
    preposition = "to" if add else "from"
    return render(
        request,
        "confirm.html",
        nav="directory",
        section=section_for("groups"),
        heading=f"{verb} {'members' if len(described) > 1 else described[0].name} "
        f"{preposition} {group['displayName']}",
        explanation=None,
        rows=[(m.type_label, f"{m.name} {m.upn}".strip()) for m in described],
        hidden={},
        hidden_lists={"member_id": member_ids},
        action_url=f"/admin/groups/{group_id}/members/{'add' if add else 'remove'}",
        protected=protected,
        button=verb,
        error=error,
        justification=form.get("justification", ""),
        cancel_url=f"/admin/groups/{group_id}/members",
    )


@router.post("/groups/{group_id}/members/add")
def add_members(group_id: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _change_members(request, web, group_id, add=True)


@router.post("/groups/{group_id}/members/remove")
def remove_members(
    group_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    return _change_members(request, web, group_id, add=False)
