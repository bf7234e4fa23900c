"""Object pages: Home, the generic lists and details of every section, create/edit/delete through
the gate, device actions (single and bulk), and the audit log."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Depends, Request, Response
from sqlalchemy import func, or_, select

from countersign.api.body import form_files
from countersign.api.odata import list_page
from countersign.domain import permissions as p
from countersign.domain.errors import DomainError, NotFound, ValidationFailed
from countersign.domain.justification import check_justification
from countersign.domain.resource_types import lock_key
from countersign.services import queries
from countersign.services.changes import ACTION, CREATE, DELETE, UPDATE, Change, Result
from countersign.services.handlers.resources import KINDS
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.core import (
    WebSession,
    form_data,
    form_lists,
    full_time,
    may_open,
    page_router,
    redirect,
    render,
    session_token,
    signed_in,
    when,
)
from countersign.web.forms import (
    SWITCH,
    TEXT,
    TYPE_NAMES,
    FormField,
    ObjectForm,
    body_from_form,
    changed_only,
    decode_script,
    display,
    encode_script,
    form_for,
    form_values,
    permission_choices,
    review_rows,
    values_from_form,
)
from countersign.web.sections import SECTIONS, Section

router = page_router()

PAGE_SIZE = 25

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
        name = value.removeprefix("#microsoft.graph.")
        return TYPE_NAMES.get(name, name)
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
    """The form's own check, the gate's rule (domain/justification.py), so the page can say it
    beside the field; the gate checks again."""
    check_justification(justification, required=protected, field="business justification")


def submit(web: WebSession, form: dict[str, str], change: Change, protected: bool) -> Result | str:
    """A Review page's Submit: its justification checked, then the change through the gate."""
    justification = justification_of(form)
    _check_justification(protected, justification)
    return engine.run(web, change, justification)


def review(
    web: WebSession, form: dict[str, str], change: Change, submitting: bool
) -> tuple[bool, Result | str | None, str | None]:
    """A confirmation page's change: whether it needs approval, its outcome when the page was
    submitted, and the refusal to show on the page."""
    protected = False
    try:
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if submitting:
            return protected, submit(web, form, change, protected), None
    except DomainError as exc:
        return protected, None, exc.message
    return protected, None, None


def confirm_or_write(
    request: Request,
    web: WebSession,
    section: Section,
    form: dict[str, str],
    change: Change,
    *,
    submitting: bool,
    notice: str,
    **page: Any,
) -> Response:
    """A change's confirmation page; submitted and done, where the browser goes after it."""
    protected, outcome, error = review(web, form, change, submitting)
    if outcome is not None:
        return after_write(section, outcome, notice)
    return confirm_page(request, section, form, protected=protected, error=error, **page)


def confirm_page(
    request: Request, section: Section | None, form: dict[str, str], **page: Any
) -> Response:
    """The last step of a write (templates/confirm.html): `heading`, the `rows` it changes,
    the justification box (`form`'s, carried back after an error) when `protected`, and the
    `button` posting to `action_url`, beside `cancel_url`; `error` on top. A page of no section
    names its `nav`."""
    defaults: dict[str, Any] = {"explanation": None, "hidden": {}, "hidden_lists": {}}
    if section is not None:
        defaults["nav"] = section.nav
    justification = form.get("justification", "")
    return render(
        request, "confirm.html", **defaults | page, section=section, justification=justification
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
                queries.is_active(web.now),
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


# Intune's wipe options, sent as Graph's wipe body (services/devices.py WipeBody).
WIPE_OPTIONS = (
    FormField(
        "keepEnrollmentData",
        "Wipe device, but keep enrollment state and associated user account",
        SWITCH,
    ),
    FormField(
        "keepUserData", "Wipe device, but keep user data (not for Windows 10 before 1709)", SWITCH
    ),
    FormField(
        "useProtectedWipe",
        "Protected wipe: the device cannot be restarted to get around it; the wipe keeps going "
        "if power is lost",
        SWITCH,
    ),
)
MACOS_UNLOCK = FormField(
    "macOsUnlockCode",
    "macOS unlock code (6 digits, for devices with a T2 chip or Apple silicon)",
    TEXT,
    maxlength=16,
)


def device_change(action: str, device_ids: list[str], body: dict[str, Any] | None = None) -> Change:
    """The same Change the API builds for /wipe, /retire, DELETE and executeAction."""
    body = body or {}
    if len(device_ids) == 1:
        if action == "delete":
            return Change("managedDevices", DELETE, device_ids[0])
        return Change("managedDevices", ACTION, device_ids[0], body, action_name=action)
    return Change(
        "managedDevices", ACTION, body=body, action_name=action, target_ids=tuple(device_ids)
    )


def wipe_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {f.name: True for f in WIPE_OPTIONS if form.get(f.key) == "on"}
    code = form.get(MACOS_UNLOCK.key, "").strip()
    if code:
        body[MACOS_UNLOCK.name] = code
    return body


@router.post("/devices/action")
def device_action(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for("devices")
    form = form_data(request)
    device_ids = form_lists(request, "device_id")
    action = form.get("action", "")
    if action not in DEVICE_ACTIONS:
        raise ValidationFailed("Choose Wipe, Retire or Delete.")
    if not device_ids:  # in place, on the list (the buttons are disabled until a choice)
        return render_list(request, web, section, error="Select at least one device first.")
    spec = section.spec
    if spec is None:
        raise NotFound("Devices are not available on this server yet.")
    with web.ctx.db.read() as session:
        devices = [spec.serialize(spec.load_visible(session, web.caller, i)) for i in device_ids]
    body = wipe_body(form) if action == "wipe" else {}
    change = device_change(action, device_ids, body)
    label, explanation = DEVICE_ACTIONS[action]
    options: list[FormField] = []
    if action == "wipe":
        options = list(WIPE_OPTIONS)
        if any(d.get("operatingSystem") == "macOS" for d in devices):
            options.append(MACOS_UNLOCK)
    return confirm_or_write(
        request,
        web,
        section,
        form,
        change,
        submitting=form.get("step") == "submit",
        notice="done",
        option_fields=options,
        option_values={
            **{f.key: form.get(f.key) == "on" for f in WIPE_OPTIONS},
            MACOS_UNLOCK.key: form.get(MACOS_UNLOCK.key, ""),
        },
        options_legend="Wipe options",
        nav="devices",
        heading=f"{label} {len(device_ids)} device{'s' if len(device_ids) > 1 else ''}",
        explanation=explanation,
        rows=[(d.get("deviceName") or d.get("id"), d.get("operatingSystem", "")) for d in devices],
        hidden={"action": action},
        hidden_lists={"device_id": device_ids},
        action_url="/admin/devices/action",
        button=label,
        cancel_url="/admin/devices",
    )


# -- generic sections ------------------------------------------------------------------------


def _list_query(
    section: Section, spec: Any, web: WebSession, params: Any
) -> tuple[Any, dict[str, str]]:
    """The list's rows after its search box and filters (applied in SQL, before paging)."""
    query = spec.visible_query(web.caller)
    chosen: dict[str, str] = {}
    text = params.get("q", "").strip()
    if text:
        chosen["q"] = text
        names = (
            section.search
            or tuple(k for k in (section.name_key, section.name_field) if k in spec.fields)[:1]
        )
        pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(or_(*(func.lower(spec.fields[n].column).like(pattern) for n in names)))
    for _, name, choices in section.filters:
        value = params.get(name, "")
        if value and value in dict(choices) and name in spec.fields:
            chosen[name] = value
            query = query.where(spec.fields[name].column == value)
    return query, chosen


def render_list(
    request: Request, web: WebSession, section: Section, error: str | None = None
) -> Response:
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
    query, chosen = _list_query(section, spec, web, params)
    with web.ctx.db.read() as session:
        page = list_page(
            session,
            query,
            params=odata,
            fields=spec.fields,
            id_column=spec.table.id,
            serialize=spec.serialize,
            base_url=f"/admin/{section.slug}",
            context="",
            default_order=spec.default_order,
        )
        names = names_of(session, web)
    next_url = None
    if "@odata.nextLink" in page:
        token = parse_qs(urlsplit(page["@odata.nextLink"]).query).get("$skiptoken", [""])[0]
        keep = {k: v for k, v in (("sort", sort), ("dir", params.get("dir", ""))) if v}
        next_url = f"/admin/{section.slug}?{urlencode({**keep, **chosen, 'after': token})}"
    items = page["value"]
    rows = [
        (
            item.get("id", ""),
            _value(item, section.name_key),
            [cell(item, k, names) for _, k in section.columns],
        )
        for item in items
    ]
    keep_query = urlencode(chosen)
    return render(
        request,
        "list.html",
        nav=section.nav,
        section=section,
        tabs=[SECTIONS[s] for s in section.tabs if may_open(web, s)],
        rows=rows,
        total=page.get("@odata.count", len(items)),
        sortable=sortable,
        sort=sort,
        descending=descending,
        next_url=next_url,
        first_url=f"/admin/{section.slug}?{keep_query}" if params.get("after") else None,
        can_create=section.creatable and CREATE in spec.operations,
        notice=NOTICES.get(params.get("notice", "")),
        error=error,
        chosen=chosen,
        keep_query=("&" + keep_query) if keep_query else "",
    )


@router.get("/{slug}")
def list_objects(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return render_list(request, web, section_for(slug))


def _form_of(section: Section) -> ObjectForm:
    return form_for(section.slug) or ObjectForm(fields=())


def _assignable(section: Section) -> bool:
    kind = KINDS.get(section.collection)
    return kind is not None and kind.assignment_type is not None


def _field_errors(exc: DomainError, fields: list[FormField]) -> dict[str, str]:
    """The API's ValidationFailed `target` (a Graph property) -> the form field it belongs to."""
    target = exc.target or ""
    if target == "properties":
        return {"properties": exc.message}
    for f in fields:
        if target and (target == f.name or target.startswith(f.name + ".")):
            return {f.key: exc.message}
    return {}


def _seal_key(request: Request) -> bytes:
    # Derived from the session cookie (HttpOnly, never in a page): only this session opens it.
    token = session_token(request) or ""
    return hashlib.sha256(("seal:" + token).encode()).digest()


def seal(request: Request, text: str) -> str:
    """A secret carried from one step of a form to the next without being in the page."""
    nonce = os.urandom(12)
    sealed = AESGCM(_seal_key(request)).encrypt(nonce, text.encode(), b"form")
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(request: Request, blob: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(blob.encode())
        return AESGCM(_seal_key(request)).decrypt(raw[:12], raw[12:], b"form").decode()
    except (ValueError, InvalidTag):
        raise ValidationFailed(
            "The password could not be carried to this step; type it again.",
            target="passwordProfile.password",
        ) from None


def _submitted_values(request: Request, fields: list[FormField]) -> dict[str, Any]:
    form = form_data(request)
    lists = {
        f.key: form_lists(request, f.key) for f in fields if f.control in ("multi", "permissions")
    }
    carried = dict(form)
    for f in fields:
        if f.control == "script" and form.get(f.key + "_b64") is not None:
            carried[f.key] = decode_script(form[f.key + "_b64"])
        if f.control == "password" and form.get(f.key + "_sealed"):
            carried[f.key] = unseal(request, form[f.key + "_sealed"])
    return values_from_form(fields, carried, lists, form_files(request))


def _carried(
    request: Request, fields: list[FormField], values: dict[str, Any], form: dict[str, str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Hidden inputs that carry a form's values to its Review step (a password sealed)."""
    hidden: dict[str, str] = {
        k: form[k] for k in ("odataType", "properties", "version") if form.get(k) is not None
    }
    lists: dict[str, list[str]] = {}
    for f in fields:
        value = values[f.key]
        if f.control in ("multi", "permissions"):
            lists[f.key] = list(value)
        elif f.control == "switch":
            if value:
                hidden[f.key] = "on"
        elif f.control == "script":
            hidden[f.key + "_b64"] = encode_script(value)
        elif f.control == "password":
            if value:
                hidden[f.key + "_sealed"] = seal(request, value)
        else:
            hidden[f.key] = str(value)
    return hidden, lists


# The pickers that list a tenant's objects by name: the source a form field names -> its table.
_PICKER_TABLES: dict[str, Any] = {
    "groups": t.Group,
    "scopeTags": t.RoleScopeTag,
    "roles": t.RoleDefinition,
}


def _options(web: WebSession, fields: list[FormField]) -> dict[str, list[tuple[str, str]]]:
    sources = {f.source for f in fields if f.source}
    if not sources:
        return {}
    tenant = web.caller.tenant_id
    found: dict[str, list[tuple[str, str]]] = {}
    with web.ctx.db.read() as session:
        for source, table in _PICKER_TABLES.items():
            if source in sources:
                found[source] = [
                    (row.id, row.display_name)
                    for row in session.scalars(
                        select(table).where(table.tenant_id == tenant).order_by(table.display_name)
                    )
                ]
    if "permissions" in sources:
        found["permissions"] = [(name, name) for name in permission_choices()]
    return found


def _names_for(web: WebSession, fields: list[FormField]) -> dict[str, dict[str, str]]:
    return {source: dict(pairs) for source, pairs in _options(web, fields).items()}


def display_names(session: Any, table: Any, tenant_id: str) -> dict[str, str]:
    """A tenant's objects of one table: id -> display name."""
    rows = session.execute(select(table.id, table.display_name).where(table.tenant_id == tenant_id))
    return {row[0]: row[1] for row in rows}


def names_of(session: Any, web: WebSession) -> dict[str, dict[str, str]]:
    """Names for the ids objects carry (groups, scope tags, roles), by the property naming them."""
    groups, tags, roles = (
        display_names(session, _PICKER_TABLES[source], web.caller.tenant_id)
        for source in ("groups", "scopeTags", "roles")
    )
    return {
        "members": groups,
        "roleScopeTagIds": tags,
        "roleDefinitionId": roles,
        "groupId": groups,
    }


def cell(item: dict[str, Any], key: str, names: dict[str, dict[str, str]]) -> tuple[str, str]:
    """A value as a list shows it, and what its hover shows (the full time of a date)."""
    value = item.get(key)
    if key in names and value:
        lookup = names[key]
        if isinstance(value, list):
            return ", ".join(lookup.get(str(v), str(v)) for v in value) or "—", ""
        return lookup.get(str(value), str(value)), ""
    if key.endswith("DateTime") and isinstance(value, str):
        return when(value), full_time(value)
    return _value(item, key), ""


def _form_page(
    request: Request,
    web: WebSession,
    section: Section,
    *,
    mode: str,
    fields: list[FormField],
    values: dict[str, Any],
    odata_type: str | None,
    action_url: str,
    properties: str,
    name: str = "",
    version: str = "",
    error: str | None = None,
    field_errors: dict[str, str] | None = None,
    protected: bool = False,
) -> Response:
    the_form = _form_of(section)
    return render(
        request,
        "object_form.html",
        nav=section.nav,
        section=section,
        mode=mode,
        name=name,
        fields=fields,
        values=values,
        values_properties=properties,
        field_errors=field_errors or {},
        options=_options(web, fields),
        odata_type=odata_type or "",
        type_label=the_form.type_label(odata_type) if the_form.types and odata_type else "",
        multipart=any(f.control == "script" for f in fields),
        assignable=_assignable(section),
        protected=protected,
        version=version,
        action_url=action_url,
        cancel_url=f"/admin/{section.slug}",
        error=error,
    )


def _form_again(
    again: Callable[..., Response],
    form: dict[str, str],
    fields: list[FormField],
    values: dict[str, Any],
    exc: DomainError,
) -> Response:
    """The form as it was filled in, the error beside the field it is about (else on top)."""
    return again(
        values=values,
        properties=form.get("properties", "{}"),
        error=exc.message,
        field_errors=_field_errors(exc, fields),
    )


def _new_type(section: Section, raw: str | None) -> str | None:
    the_form = _form_of(section)
    if not the_form.types:
        return section.new_odata_type
    name = (raw or "").removeprefix("#microsoft.graph.")
    return name if name in dict(the_form.types) else None


@router.get("/{slug}/new")
def new_object(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for(slug)
    if section.spec is None or not section.creatable:
        raise NotFound(f"{section.title} cannot be created here.")
    the_form = _form_of(section)
    odata_type = _new_type(section, request.query_params.get("type"))
    if the_form.types and odata_type is None:
        return render(
            request, "type_picker.html", nav=section.nav, section=section, types=the_form.types
        )
    fields = the_form.fields_for(odata_type, create=True)
    return _form_page(
        request,
        web,
        section,
        mode="create",
        fields=fields,
        values=form_values(fields, None),
        odata_type=odata_type,
        action_url=f"/admin/{slug}/new",
        properties="{}" if the_form.fields else section.new_properties,
    )


@router.post("/{slug}/new")
def create_object(slug: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    section = section_for(slug)
    if section.spec is None or not section.creatable:
        raise NotFound(f"{section.title} cannot be created here.")
    form = form_data(request)
    the_form = _form_of(section)
    odata_type = _new_type(section, form.get("odataType")) or form.get("odataType") or None
    fields = the_form.fields_for(odata_type, create=True)
    values: dict[str, Any] = {f.key: "" for f in fields}
    again = partial(
        _form_page,
        request,
        web,
        section,
        mode="create",
        fields=fields,
        odata_type=odata_type,
        action_url=f"/admin/{slug}/new",
    )
    error = None
    protected = False
    try:
        values = _submitted_values(request, fields)
        if not fields:  # a type without a form: name, description and the JSON box
            values = {}
        body = body_from_form(fields, values, odata_type, form.get("properties", ""))
        if not fields:
            body = {
                section.name_field: form.get("displayName", "").strip(),
                **({"description": form["description"]} if form.get("description") else {}),
                **body,
            }
        change = Change(section.collection, CREATE, body=body)
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
    except DomainError as exc:
        return _form_again(again, form, fields, values, exc)
    if form.get("step") == "submit":
        try:
            outcome = submit(web, form, change, protected)
            if not isinstance(outcome, str) and outcome.target_id and _assignable(section):
                return redirect(f"/admin/{slug}/{outcome.target_id}/assignments?notice=created")
            return after_write(section, outcome, "created")
        except DomainError as exc:
            error = exc.message
    hidden, hidden_lists = _carried(request, fields, values, form)
    if not fields:
        hidden.update({k: form.get(k, "") for k in ("displayName", "description")})
    return confirm_page(
        request,
        section,
        form,
        heading=f"Create {_form_of(section).type_label(odata_type) or section.singular}"
        if the_form.types
        else f"Create {section.singular}",
        note=(
            "Assignments can be added once the request is approved and completed."
            if protected and _assignable(section)
            else None
        ),
        rows=([("Type", the_form.type_label(odata_type))] if the_form.types and odata_type else [])
        + review_rows(fields, body, _names_for(web, fields))
        if fields
        else [(k, _value(body, k)) for k in body],
        hidden=hidden,
        hidden_lists=hidden_lists,
        action_url=f"/admin/{slug}/new",
        protected=protected,
        button="Create",
        create=True,
        error=error,
        cancel_url=f"/admin/{slug}",
    )


def _load(web: WebSession, section: Section, object_id: str) -> tuple[Any, dict[str, Any]]:
    spec = section.spec
    if spec is None:
        raise NotFound(f"{section.title} are not available on this server yet.")
    with web.ctx.db.read() as session:
        row = spec.load_visible(session, web.caller, object_id)
        return row, spec.serialize(row)


def pending_request(web: WebSession, collection: str, object_id: str) -> str | None:
    """The open approval request that locks the object (one active request per object)."""
    with web.ctx.db.read() as session:
        request_id: str | None = session.scalar(
            select(t.RequestLock.request_id).where(
                t.RequestLock.tenant_id == web.caller.tenant_id,
                t.RequestLock.entity_key == lock_key(collection, object_id),
            )
        )
        return request_id


HIDDEN_PROPERTIES = {"version", "passwordProfile"}
COMMON_LABELS = {
    "@odata.type": "Type",
    "id": "ID",
    "description": "Description",
    "createdDateTime": "Created",
    "lastModifiedDateTime": "Last modified",
    "platform": "Platform",
}


@router.get("/{slug}/{object_id}")
def show_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    spec = section.spec
    assert spec is not None
    pending = pending_request(web, section.collection, object_id)
    fields = {f.name: f for f in _form_of(section).fields_for(item.get("@odata.type"), create=True)}
    with web.ctx.db.read() as session:
        names = names_of(session, web)
    properties = []
    for key in item:
        if key.startswith("@odata.etag") or key in HIDDEN_PROPERTIES or key == "assignments":
            continue
        if key == "displayName" and section.name_field != "displayName":
            continue  # settings-catalog policies: `name` says it, once
        f = fields.get(key)
        if f is None and item.get(key) in (None, "", []) and key not in COMMON_LABELS:
            continue  # a property of another type (an iOS app's store URL on a Win32 app)
        label = f.label if f else COMMON_LABELS.get(key, key)
        if f is not None and (
            f.control in ("script", "permissions") or (f.control == "select" and f.choices)
        ):
            text, title = display(f, item.get(key)), ""
        else:
            text, title = cell(item, key, names)
        properties.append((label, text, title))
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
        assignable=_assignable(section),
        members_page=section.slug == "groups",
        pending=pending,
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


def _edit_fields(section: Section, item: dict[str, Any]) -> list[FormField]:
    return _form_of(section).fields_for(item.get("@odata.type"), create=False)


@router.get("/{slug}/{object_id}/edit")
def edit_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    fields = _edit_fields(section, item)
    version = item.get("version")
    pending = pending_request(web, section.collection, object_id)
    return _form_page(
        request,
        web,
        section,
        mode="edit",
        name=_value(item, section.name_key),
        fields=fields
        or [
            FormField(section.name_field, "Name"),
            FormField("description", "Description", "textarea"),
        ],
        values=form_values(
            fields
            or [
                FormField(section.name_field, "Name"),
                FormField("description", "Description", "textarea"),
            ],
            item,
        ),
        odata_type=None,
        action_url=f"/admin/{slug}/{object_id}/edit",
        properties="{}",
        version=str(version) if isinstance(version, int) else "",
        error=(
            "An approval request for this object is open; no other change can be requested "
            "until it ends."
            if pending
            else None
        ),
    )


@router.post("/{slug}/{object_id}/edit")
def update_object(
    slug: str, object_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    section = section_for(slug)
    _, item = _load(web, section, object_id)
    form = form_data(request)
    fields = _edit_fields(section, item) or [
        FormField(section.name_field, "Name"),
        FormField("description", "Description", "textarea"),
    ]
    values: dict[str, Any] = form_values(fields, item)
    version_text = form.get("version", "")
    again = partial(
        _form_page,
        request,
        web,
        section,
        mode="edit",
        name=_value(item, section.name_key),
        fields=fields,
        odata_type=None,
        action_url=f"/admin/{slug}/{object_id}/edit",
        version=version_text,
    )
    error = None
    try:
        values = _submitted_values(request, fields)
        body = changed_only(fields, values, item, form.get("properties", ""))
        if not body:
            raise ValidationFailed("Nothing was changed.")
        version = int(version_text) if version_text.isdigit() else None
        change = Change(section.collection, UPDATE, object_id, body, expected_version=version)
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
    except DomainError as exc:
        return _form_again(again, form, fields, values, exc)
    if form.get("step") == "submit":
        try:
            return after_write(section, submit(web, form, change, protected), "saved")
        except DomainError as exc:
            error = exc.message
    hidden, hidden_lists = _carried(request, fields, values, form)
    rows = []
    names = _names_for(web, fields)
    for label, after in review_rows(fields, body, names):
        f = next((g for g in fields if g.label == label), None)
        if f is None or f.control == "password":
            rows.append((label, after))
            continue
        rows.append((label, f"{display(f, _get_path(item, f.name), names)} → {after}"))
    return confirm_page(
        request,
        section,
        form,
        heading=f"Edit {_value(item, section.name_key)}",
        rows=rows,
        hidden=hidden,
        hidden_lists=hidden_lists,
        action_url=f"/admin/{slug}/{object_id}/edit",
        protected=protected,
        button="Save",
        error=error,
        cancel_url=f"/admin/{slug}/{object_id}",
    )


def _get_path(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


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
    return confirm_or_write(
        request,
        web,
        section,
        form,
        change,
        submitting=request.method == "POST",
        notice="deleted",
        heading=f"Delete {name}",
        explanation=f"Delete the {section.singular} '{name}'. This cannot be undone.",
        rows=[],
        action_url=f"/admin/{slug}/{object_id}/delete",
        button="Delete",
        cancel_url=f"/admin/{slug}/{object_id}",
    )
