"""An assignable object's Assignments page (apps, scripts, compliance and configuration
policies): included and excluded groups, All users / All devices, and for apps the intent.

Saving is the object's `assign` Change (Graph's POST /{id}/assign body), through the one gate,
exactly as the API's assign: it applies at once or becomes an approval request.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response
from sqlalchemy import select

from countersign.domain.errors import NotFound
from countersign.services.changes import ASSIGN, Change
from countersign.services.handlers.resources import KINDS, Kind
from countersign.store import tables as t
from countersign.web.core import WebSession, form_data, page_router, redirect, render, signed_in
from countersign.web.objects import (
    confirm_page,
    display_names,
    pending_request,
    review,
    section_for,
)
from countersign.web.sections import Section

router = page_router()

GRAPH = "#microsoft.graph."
ALL_USERS, ALL_DEVICES = "allLicensedUsersAssignmentTarget", "allDevicesAssignmentTarget"
INCLUDE, EXCLUDE = "groupAssignmentTarget", "exclusionGroupAssignmentTarget"
INTENT_LABELS = {
    "required": "Required",
    "available": "Available for enrolled devices",
    "uninstall": "Uninstall",
    "availableWithoutEnrollment": "Available with or without enrollment",
}
SPECIAL = ((ALL_USERS, "All users"), (ALL_DEVICES, "All devices"))


def _kind(section: Section) -> Kind:
    kind = KINDS.get(section.collection)
    if kind is None or kind.assignment_type is None:
        raise NotFound(f"{section.title} have no assignments.")
    return kind


def choices_for(kind: Kind, group: bool) -> list[tuple[str, str]]:
    """What one row's select offers: not assigned, include (per intent for apps), exclude."""
    offered = [("", "Not assigned")]
    if kind.intents:
        offered += [(i, f"Include: {INTENT_LABELS.get(i, i)}") for i in kind.intents]
    else:
        offered.append(("include", "Include"))
    if group:
        offered.append(("exclude", "Exclude"))
    return offered


def current_choices(assignments: list[dict[str, Any]]) -> dict[str, str]:
    """Each target (a group id, or All users / All devices) -> the choice its row shows."""
    chosen: dict[str, str] = {}
    for a in assignments:
        target = a.get("target") or {}
        kind = str(target.get("@odata.type", "")).removeprefix(GRAPH)
        key = target.get("groupId") or kind
        if kind == EXCLUDE:
            chosen[key] = "exclude"
        else:
            chosen[key] = a.get("intent") or "include"
    return chosen


def assign_body(kind: Kind, chosen: dict[str, str]) -> dict[str, Any]:
    """Graph's assign body for the rows' choices."""
    assignments: list[dict[str, Any]] = []
    default_intent = "required"
    for key, choice in chosen.items():
        if not choice:
            continue
        special = key in (ALL_USERS, ALL_DEVICES)
        target_type = EXCLUDE if choice == "exclude" else key if special else INCLUDE
        target: dict[str, Any] = {"@odata.type": GRAPH + target_type}
        if not special:
            target["groupId"] = key
        assignment: dict[str, Any] = {"target": target}
        if kind.intents:
            intent = choice if choice in kind.intents else default_intent
            assignment["intent"] = intent
        assignments.append(assignment)
    return {"assignments": assignments}


def _page(
    request: Request,
    web: WebSession,
    section: Section,
    object_id: str,
    chosen: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    kind = _kind(section)
    spec = section.spec
    assert spec is not None
    with web.ctx.db.read() as session:
        item = spec.serialize(spec.load_visible(session, web.caller, object_id))
        groups = [
            (g.id, g.display_name)
            for g in session.scalars(
                select(t.Group)
                .where(t.Group.tenant_id == web.caller.tenant_id)
                .order_by(t.Group.display_name)
            )
        ]
    current = current_choices(item.get("assignments") or [])
    names = dict(groups) | dict(SPECIAL)
    labels = dict(choices_for(kind, True))
    summary = [(names.get(k, k), labels.get(v, v)) for k, v in current.items()]
    notice = {"created": "Created. Choose who gets it, or leave it unassigned.", "saved": "Saved."}
    return render(
        request,
        "assignments.html",
        nav=section.nav,
        section=section,
        item=item,
        name=item.get(section.name_key) or item.get("displayName") or object_id,
        summary=summary,
        special=[(k, label, choices_for(kind, False)) for k, label in SPECIAL],
        groups=[(gid, label, choices_for(kind, True)) for gid, label in groups],
        chosen=chosen if chosen is not None else current,
        pending=pending_request(web, section.collection, object_id),
        notice=notice.get(request.query_params.get("notice", "")),
        error=error,
    )


@router.get("/{slug}/{object_id}/assignments")
def assignments_page(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    return _page(request, web, section_for(slug), object_id)


@router.post("/{slug}/{object_id}/assignments")
def save_assignments(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    kind = _kind(section)
    spec = section.spec
    assert spec is not None
    form = form_data(request)
    chosen = {key.removeprefix("t_"): value for key, value in form.items() if key.startswith("t_")}
    with web.ctx.db.read() as session:
        item = spec.serialize(spec.load_visible(session, web.caller, object_id))
        group_names = display_names(session, t.Group, web.caller.tenant_id)
    version = item.get("version")
    body = assign_body(kind, chosen)
    change = Change(
        section.collection,
        ASSIGN,
        object_id,
        body,
        expected_version=version if isinstance(version, int) else None,
    )
    submitting = form.get("step") == "submit"
    protected, outcome, error = review(web, form, change, submitting)
    if isinstance(outcome, str):
        return redirect(f"/admin/requests/{outcome}?notice=submitted")
    if outcome is not None:
        return redirect(f"/admin/{slug}/{object_id}/assignments?notice=saved")
    if error and not submitting:
        return _page(request, web, section, object_id, chosen, error=error)
    names = group_names | dict(SPECIAL)
    labels = dict(choices_for(kind, True))
    rows = [(names.get(k, k), labels.get(v, v)) for k, v in chosen.items() if v] or [
        ("Assignments", "None (every assignment is removed)")
    ]
    name = item.get(section.name_key) or item.get("displayName") or object_id
    return confirm_page(
        request,
        section,
        form,
        heading=f"Assign {name}",
        rows=rows,
        hidden={f"t_{k}": v for k, v in chosen.items() if v},
        action_url=f"/admin/{slug}/{object_id}/assignments",
        protected=protected,
        button="Save",
        error=error,
        cancel_url=f"/admin/{slug}/{object_id}/assignments",
    )
