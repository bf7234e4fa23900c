"""Object pages: Home, the generic lists and details of every section, create/edit/delete through
the gate, device actions (single and bulk), and the audit log."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select

from countersign.api.odata import list_page
from countersign.domain import permissions as p
from countersign.domain.errors import DomainError, NotFound, ValidationFailed
from countersign.services.changes import ACTION, CREATE, DELETE, UPDATE, Change, Result
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.core import (
    HtmlRoute,
    WebSession,
    form_data,
    form_lists,
    redirect,
    render,
    signed_in,
)
from countersign.web.sections import SECTIONS, Section

router = APIRouter(prefix="/admin", route_class=HtmlRoute, dependencies=[Depends(signed_in)])

PAGE_SIZE = 25
MAX_JUSTIFICATION = 1024

NOTICES = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "done": "Done.",
}

DEVICE_ACTIONS = {
    "wipe": ("Wipe", "Wipe erases the device and restores its factory settings."),
    "retire": ("Retire", "Retire removes company data and management from the device."),
    "delete": ("Delete", "Delete removes the device from the inventory."),
}


def section_for(slug: str) -> Section:
    section = SECTIONS.get(slug)
    if section is None:
        raise NotFound(f"There is no page '/admin/{slug}'.")
    return section


def _value(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if key == "@odata.type" and isinstance(value, str):
        return value.removeprefix("#microsoft.graph.")
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def after_write(section: Section, outcome: Result | str, notice: str) -> Response:
    """Where the browser goes after a write: the request page, or back to the objects."""
    if isinstance(outcome, str):
        return redirect(f"/admin/requests/{outcome}?notice=submitted")
    if notice == "created" and outcome.target_id:
        return redirect(f"/admin/{section.slug}/{outcome.target_id}?notice=created")
    return redirect(f"/admin/{section.slug}?notice={notice}")


def justification_of(form: dict[str, str]) -> str | None:
    text = form.get("justification", "").strip()
    return text or None


def _check_justification(protected: bool, justification: str | None) -> None:
    """The form's own check, so the page can say it in words; the gate checks again."""
    if protected and not justification:
        raise ValidationFailed("A business justification is required to submit for approval.")
    if justification and len(justification) > MAX_JUSTIFICATION:
        raise ValidationFailed(
            f"The business justification is {len(justification)} characters; at most "
            f"{MAX_JUSTIFICATION} are allowed."
        )


# -- home ------------------------------------------------------------------------------------


@router.get("")
def home(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    caller = web.caller
    with web.ctx.db.read() as session:
        waiting = engine.waiting_rows(session, web)
        mine_open = session.scalar(
            select(func.count())
            .select_from(t.ApprovalRequest)
            .where(
                t.ApprovalRequest.tenant_id == caller.tenant_id,
                t.ApprovalRequest.requestor_id == caller.id,
                t.ApprovalRequest.status.in_(engine.ACTIVE_STATUSES),
                t.ApprovalRequest.expiration_date_time > web.now,
            )
        )
        policies = session.scalar(
            select(func.count())
            .select_from(t.ApprovalPolicy)
            .where(t.ApprovalPolicy.tenant_id == caller.tenant_id)
        )
        recent = session.scalars(
            select(t.ApprovalRequest)
            .where(t.ApprovalRequest.tenant_id == caller.tenant_id)
            .order_by(t.ApprovalRequest.request_date_time.desc())
            .limit(5)
        ).all()
        recent_rows = [(row, engine.effective_status(row, web.now)) for row in recent]
    return render(
        request,
        "home.html",
        nav="home",
        waiting=waiting[:5],
        waiting_count=len(waiting),
        mine_open=mine_open or 0,
        policies=policies or 0,
        recent=recent_rows,
    )


# -- audit log -------------------------------------------------------------------------------


@router.get("/audit")
def audit_log(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    web.caller.require(p.AUDIT_READ)
    params = request.query_params
    category = params.get("category", "")
    page = max(int(params.get("page", "1")) if params.get("page", "1").isdigit() else 1, 1)
    with web.ctx.db.read() as session:
        query = select(t.AuditEvent).where(t.AuditEvent.tenant_id == web.caller.tenant_id)
        if category:
            query = query.where(t.AuditEvent.category == category)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        events = session.scalars(
            query.order_by(t.AuditEvent.sequence.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        categories = session.scalars(
            select(t.AuditEvent.category)
            .where(t.AuditEvent.tenant_id == web.caller.tenant_id)
            .distinct()
            .order_by(t.AuditEvent.category)
        ).all()
    return render(
        request,
        "audit.html",
        nav="audit",
        events=events,
        categories=categories,
        category=category,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
    )


# -- device actions (single and bulk) --------------------------------------------------------


def device_change(action: str, device_ids: list[str]) -> Change:
    """The same Change the API builds for /wipe, /retire, DELETE and executeAction."""
    if len(device_ids) == 1:
        if action == "delete":
            return Change("managedDevices", DELETE, device_ids[0])
        return Change("managedDevices", ACTION, device_ids[0], action_name=action)
    return Change("managedDevices", ACTION, action_name=action, target_ids=tuple(device_ids))


@router.post("/devices/action")
def device_action(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for("devices")
    form = form_data(request)
    device_ids = form_lists(request, "device_id")
    action = form.get("action", "")
    if action not in DEVICE_ACTIONS:
        raise ValidationFailed("Choose Wipe, Retire or Delete.")
    if not device_ids:
        raise ValidationFailed("Select at least one device.")
    spec = section.spec
    if spec is None:
        raise NotFound("Devices are not available on this server yet.")
    with web.ctx.db.read() as session:
        devices = [spec.serialize(spec.load_visible(session, web.caller, i)) for i in device_ids]
    change = device_change(action, device_ids)
    label, explanation = DEVICE_ACTIONS[action]
    error = None
    protected = False
    try:
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if form.get("step") == "submit":
            justification = justification_of(form)
            _check_justification(protected, justification)
            outcome = engine.run(web, change, justification)
            return after_write(section, outcome, "done")
    except DomainError as exc:
        error = exc.message
    return render(
        request,
        "confirm.html",
        nav="devices",
        section=section,
        heading=f"{label} {len(device_ids)} device{'s' if len(device_ids) > 1 else ''}",
        explanation=explanation,
        rows=[(d.get("deviceName") or d.get("id"), d.get("operatingSystem", "")) for d in devices],
        hidden={"action": action},
        hidden_lists={"device_id": device_ids},
        action_url="/admin/devices/action",
        protected=protected,
        button=label,
        error=error,
        justification=form.get("justification", ""),
        cancel_url="/admin/devices",
    )


# -- generic sections ------------------------------------------------------------------------


@router.get("/{slug}")
def list_objects(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for(slug)
    spec = section.spec
    if spec is None:
        return render(request, "unavailable.html", nav=section.nav, section=section)
    params = request.query_params
    sort = params.get("sort", "")
    descending = params.get("dir") == "desc"
    sortable = {name for name, f in spec.fields.items() if f.sortable}
    odata: dict[str, str] = {"$top": str(PAGE_SIZE), "$count": "true"}
    if sort in sortable:
        odata["$orderby"] = f"{sort} {'desc' if descending else 'asc'}"
    if params.get("after"):
        odata["$skiptoken"] = params["after"]
    with web.ctx.db.read() as session:
        page = list_page(
            session,
            spec.visible_query(web.caller),
            params=odata,
            fields=spec.fields,
            id_column=spec.table.id,
            serialize=spec.serialize,
            base_url=f"/admin/{slug}",
            context="",
            default_order=spec.default_order,
        )
    next_url = None
    if "@odata.nextLink" in page:
        token = parse_qs(urlsplit(page["@odata.nextLink"]).query).get("$skiptoken", [""])[0]
        keep = {k: v for k, v in (("sort", sort), ("dir", params.get("dir", ""))) if v}
        next_url = f"/admin/{slug}?{urlencode({**keep, 'after': token})}"
    items = page["value"]
    rows = [
        (
            item.get("id", ""),
            _value(item, section.name_key),
            [_value(item, k) for _, k in section.columns],
        )
        for item in items
    ]
    return render(
        request,
        "list.html",
        nav=section.nav,
        section=section,
        tabs=[SECTIONS[s] for s in section.tabs],
        rows=rows,
        total=page.get("@odata.count", len(items)),
        sortable=sortable,
        sort=sort,
        descending=descending,
        next_url=next_url,
        first_url=f"/admin/{slug}" if params.get("after") else None,
        can_create=section.creatable and CREATE in spec.operations,
        notice=NOTICES.get(params.get("notice", "")),
    )


def _new_values(section: Section, form: dict[str, str] | None = None) -> dict[str, str]:
    form = form or {}
    return {
        "displayName": form.get("displayName", ""),
        "description": form.get("description", ""),
        "odataType": form.get("odataType", section.new_odata_type or ""),
        "properties": form.get("properties", section.new_properties),
    }


def _body_from(
    values: dict[str, str], name_field: str = "displayName", *, partial: bool = False
) -> dict[str, Any]:
    try:
        extra = json.loads(values.get("properties") or "{}")
    except ValueError:
        raise ValidationFailed("Other properties must be a JSON object.") from None
    if not isinstance(extra, dict):
        raise ValidationFailed("Other properties must be a JSON object.")
    body: dict[str, Any] = {}
    if values.get("odataType"):
        body["@odata.type"] = values["odataType"]
    if values.get("displayName") or not partial:
        body[name_field] = values.get("displayName", "").strip()
    if values.get("description"):
        body["description"] = values["description"]
    body.update(extra)
    return body


@router.get("/{slug}/new")
def new_object(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for(slug)
    if section.spec is None or not section.creatable:
        raise NotFound(f"{section.title} cannot be created here.")
    return render(
        request,
        "object_form.html",
        nav=section.nav,
        section=section,
        mode="create",
        values=_new_values(section),
        action_url=f"/admin/{slug}/new",
        error=None,
    )


@router.post("/{slug}/new")
def create_object(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for(slug)
    form = form_data(request)
    values = _new_values(section, form)
    error = None
    try:
        change = Change(section.collection, CREATE, body=_body_from(values, section.name_field))
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if form.get("step") == "submit":
            justification = justification_of(form)
            try:
                _check_justification(protected, justification)
                return after_write(section, engine.run(web, change, justification), "created")
            except DomainError as exc:
                error = exc.message
        return render(
            request,
            "confirm.html",
            nav=section.nav,
            section=section,
            heading=f"Create {section.singular}",
            explanation=None,
            rows=[(k, _value(change.body, k)) for k in change.body],
            hidden=values,
            hidden_lists={},
            action_url=f"/admin/{slug}/new",
            protected=protected,
            button="Create",
            create=True,
            error=error,
            justification=form.get("justification", ""),
            cancel_url=f"/admin/{slug}",
        )
    except DomainError as exc:
        return render(
            request,
            "object_form.html",
            nav=section.nav,
            section=section,
            mode="create",
            values=values,
            action_url=f"/admin/{slug}/new",
            error=exc.message,
        )


def _load(web: WebSession, section: Section, object_id: str) -> tuple[Any, dict[str, Any]]:
    spec = section.spec
    if spec is None:
        raise NotFound(f"{section.title} are not available on this server yet.")
    with web.ctx.db.read() as session:
        row = spec.load_visible(session, web.caller, object_id)
        return row, spec.serialize(row)


@router.get("/{slug}/{object_id}")
def show_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    spec = section.spec
    assert spec is not None
    with web.ctx.db.read() as session:
        # An open request locks the object (one active request per object): say where it is.
        pending = session.scalar(
            select(t.RequestLock.request_id).where(
                t.RequestLock.tenant_id == web.caller.tenant_id,
                t.RequestLock.entity_key == f"{section.collection}:{object_id}",
            )
        )
    properties = [(k, _value(item, k)) for k in item if not k.startswith("@odata.etag")]
    return render(
        request,
        "object.html",
        nav=section.nav,
        section=section,
        item=item,
        name=_value(item, section.name_key),
        properties=properties,
        can_edit=UPDATE in spec.operations,
        can_delete=DELETE in spec.operations or section.slug == "devices",
        device_actions=DEVICE_ACTIONS if section.slug == "devices" else {},
        pending=pending,
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


def _edit_values(item: dict[str, Any], form: dict[str, str] | None = None) -> dict[str, str]:
    if form is not None:
        return {
            "displayName": form.get("displayName", ""),
            "description": form.get("description", ""),
            "odataType": "",
            "properties": form.get("properties", "{}"),
            "version": form.get("version", ""),
        }
    version = item.get("version")
    return {
        "displayName": str(item.get("displayName") or ""),
        "description": str(item.get("description") or ""),
        "odataType": "",
        "properties": "{}",
        "version": str(version) if isinstance(version, int) else "",
    }


@router.get("/{slug}/{object_id}/edit")
def edit_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    return render(
        request,
        "object_form.html",
        nav=section.nav,
        section=section,
        mode="edit",
        name=_value(item, section.name_key),
        values=_edit_values(item),
        action_url=f"/admin/{slug}/{object_id}/edit",
        error=None,
    )


@router.post("/{slug}/{object_id}/edit")
def update_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    form = form_data(request)
    values = _edit_values(item, form)
    error = None
    try:
        body = _body_from(values, section.name_field, partial=True)
        body = {k: v for k, v in body.items() if item.get(k) != v}  # only what changed
        if not body:
            raise ValidationFailed("Nothing was changed.")
        version = int(values["version"]) if values["version"].isdigit() else None
        change = Change(section.collection, UPDATE, object_id, body, expected_version=version)
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if form.get("step") == "submit":
            justification = justification_of(form)
            try:
                _check_justification(protected, justification)
                return after_write(section, engine.run(web, change, justification), "saved")
            except DomainError as exc:
                error = exc.message
        return render(
            request,
            "confirm.html",
            nav=section.nav,
            section=section,
            heading=f"Edit {_value(item, section.name_key)}",
            explanation=None,
            rows=[(k, f"{_value(item, k)} → {_value(body, k)}") for k in body],
            hidden=values,
            hidden_lists={},
            action_url=f"/admin/{slug}/{object_id}/edit",
            protected=protected,
            button="Save",
            error=error,
            justification=form.get("justification", ""),
            cancel_url=f"/admin/{slug}/{object_id}",
        )
    except DomainError as exc:
        return render(
            request,
            "object_form.html",
            nav=section.nav,
            section=section,
            mode="edit",
            name=_value(item, section.name_key),
            values=values,
            action_url=f"/admin/{slug}/{object_id}/edit",
            error=exc.message,
        )


@router.get("/{slug}/{object_id}/delete")
@router.post("/{slug}/{object_id}/delete")
def delete_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    name = _value(item, section.name_key)
    if section.slug == "devices":
        change = device_change("delete", [object_id])
    else:
        version = item.get("version")
        change = Change(
            section.collection,
            DELETE,
            object_id,
            expected_version=version if isinstance(version, int) else None,
        )
    form = form_data(request) if request.method == "POST" else {}
    error = None
    protected = False
    try:
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if request.method == "POST":
            justification = justification_of(form)
            _check_justification(protected, justification)
            return after_write(section, engine.run(web, change, justification), "deleted")
    except DomainError as exc:
        error = exc.message
    return render(
        request,
        "confirm.html",
        nav=section.nav,
        section=section,
        heading=f"Delete {name}",
        explanation=f"Delete the {section.singular} '{name}'. This cannot be undone.",
        rows=[],
        hidden={},
        hidden_lists={},
        action_url=f"/admin/{slug}/{object_id}/delete",
        protected=protected,
        button="Delete",
        error=error,
        justification=form.get("justification", ""),
        cancel_url=f"/admin/{slug}/{object_id}",
    )
