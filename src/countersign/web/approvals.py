"""Tenant administration > Multi Admin Approval: Access policies (with the create/edit wizard),
All requests, My requests, Received requests, and the request page.

Every decision is the approval engine's (services/<use case>.py, services/gate.py); these pages
collect input, call it, and show what it answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request, Response
from sqlalchemy import ColumnElement, func, select

from countersign.domain import approval as a
from countersign.domain import policy_rules as rules
from countersign.domain.errors import DomainError, NotEligibleToApprove, ValidationFailed
from countersign.domain.request import Status
from countersign.domain.summary import POLICY_TYPE_LABELS, row_text
from countersign.services import (
    approve_request,
    cancel_request,
    complete_request,
    queries,
    reject_request,
)
from countersign.services import summary as summary_service
from countersign.services.changes import CREATE, DELETE, UPDATE, Change
from countersign.services.handlers.policies import get_policy, policy_json
from countersign.services.unit_of_work import get_request
from countersign.store import tables as t
from countersign.web import engine
from countersign.web.core import (
    STATUS_LABELS,
    WebSession,
    form_data,
    form_lists,
    page_router,
    redirect,
    render,
    signed_in,
    templates,
)

router = page_router()

PAGE_SIZE = 25
POLICY_COLLECTION = "operationApprovalPolicies"

PLATFORM_CHOICES = {
    "windows": ("Windows only", ",".join(a.WINDOWS)),
    "nonWindows": ("Non-Windows only", ",".join(a.NON_WINDOWS)),
}
WIZARD_STEPS = (
    ("basics", "Basics"),
    ("type", "Policy type"),
    ("platforms", "Platforms"),
    ("scope", "Scope and exclusions"),
    ("approvers", "Approvers"),
    ("review", "Business justification"),
)
MAX_WIZARD_STAGES = rules.MAX_STAGES
STAGE_LABELS = {
    "approved": "Approved",
    "inProgress": "Deciding now",
    "notStarted": "Waiting for the stages before it",
    "rejected": "Rejected",
    "notReached": "Not reached",
}
NOTICES = {
    "submitted": "Submitted for approval. A second administrator must approve it before it "
    "can be completed.",
    "approved": "Approved.",
    "rejected": "Rejected.",
    "cancelled": "Cancelled.",
    "completed": "Completed: the change was applied.",
}


def platform_label(value: str) -> str:
    platforms = set(a.parse_platforms(value))
    for label, flags in PLATFORM_CHOICES.values():
        if platforms == set(flags.split(",")):
            return label
    return "All platforms" if platforms == {a.NOT_APPLICABLE} else value


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


# -- access policies -----------------------------------------------------------------------


@router.get("/access-policies")
def access_policies(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    with web.ctx.db.read() as session:
        rows = session.scalars(
            select(t.ApprovalPolicy)
            .where(t.ApprovalPolicy.tenant_id == web.caller.tenant_id)
            .order_by(t.ApprovalPolicy.display_name, t.ApprovalPolicy.id)
        ).all()
        groups = _group_names(session, web.caller.tenant_id)
    policies = [
        {
            "id": row.id,
            "name": row.display_name,
            "type": POLICY_TYPE_LABELS.get(row.policy_type, row.policy_type),
            "platform": platform_label(row.policy_platform),
            "approvers": ", ".join(groups.get(g, g) for g in row.approver_group_ids),
            "modified": row.last_modified_date_time,
        }
        for row in rows
    ]
    return render(
        request,
        "access_policies.html",
        nav="maa",
        tab="policies",
        policies=policies,
        notice=_notice(request),
    )


def _group_names(session: Any, tenant_id: str) -> dict[str, str]:
    return {
        g.id: g.display_name
        for g in session.scalars(select(t.Group).where(t.Group.tenant_id == tenant_id))
    }


def _scope_tags(session: Any, tenant_id: str) -> list[tuple[str, str]]:
    """The tenant's scope tags as (id, name), by name."""
    tag = t.RoleScopeTag
    query = select(tag.id, tag.display_name).where(tag.tenant_id == tenant_id)
    return [(i, n) for i, n in session.execute(query.order_by(tag.display_name))]


def _applications(session: Any, tenant_id: str) -> list[tuple[str, str]]:
    """The tenant's service principals as (appId, name), by name: what a policy may exclude."""
    sp = t.ServicePrincipal
    query = select(sp.app_id, sp.display_name).where(sp.tenant_id == tenant_id)
    return [(i, n) for i, n in session.execute(query.order_by(sp.display_name))]


@router.get("/access-policies/new")
def new_policy(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _wizard(request, web, _wizard_state({}, lambda _name: []), "basics", None)


@router.post("/access-policies/new")
def new_policy_step(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _wizard_post(request, web, None)


@router.get("/access-policies/{policy_id}")
def show_policy(policy_id: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    with web.ctx.db.read() as session:
        row = get_policy(session, web.caller.tenant_id, policy_id)
        groups = _group_names(session, web.caller.tenant_id)
        tag_names = dict(_scope_tags(session, web.caller.tenant_id))
        tags = [tag_names.get(tag, tag) for tag in row.scope_tag_ids or []]
        app_names = dict(_applications(session, web.caller.tenant_id))
        applications = [app_names.get(a, a) for a in row.excluded_application_ids or []]
        pending = session.scalar(
            select(t.ApprovalRequest.id).where(
                t.ApprovalRequest.tenant_id == web.caller.tenant_id,
                t.ApprovalRequest.payload_id == policy_id,
                queries.is_active(web.now),
            )
        )
    return render(
        request,
        "access_policy.html",
        nav="maa",
        tab="policies",
        policy=row,
        type_label=POLICY_TYPE_LABELS.get(row.policy_type, row.policy_type),
        platform=platform_label(row.policy_platform),
        approvers=[groups.get(g, g) for g in row.approver_group_ids],
        stages=[
            ([groups.get(g, g) for g in stage["approverGroupIds"]], stage["approvalsRequired"])
            for stage in row.stages or []
        ],
        tags=tags,
        applications=applications,
        pending=pending,
        notice=_notice(request),
    )


@router.get("/access-policies/{policy_id}/edit")
def edit_policy(policy_id: str, request: Request, web: WebSession = Depends(signed_in)) -> Response:
    with web.ctx.db.read() as session:
        body = policy_json(get_policy(session, web.caller.tenant_id, policy_id))
    return _wizard(request, web, _state_of_policy(body), "basics", None, policy_id=policy_id)


@router.post("/access-policies/{policy_id}/edit")
def edit_policy_step(
    policy_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    return _wizard_post(request, web, policy_id)


@router.get("/access-policies/{policy_id}/delete")
@router.post("/access-policies/{policy_id}/delete")
def delete_policy(
    policy_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    with web.ctx.db.read() as session:
        row = get_policy(session, web.caller.tenant_id, policy_id)
    change = Change(POLICY_COLLECTION, DELETE, policy_id, expected_version=row.version)
    form = form_data(request) if request.method == "POST" else {}
    error = None
    protected = True
    try:
        protected = engine.needs_approval(web.ctx.db, web.caller, change, web.now)
        if request.method == "POST":
            justification = form.get("justification", "").strip() or None
            if protected and not justification:
                raise ValidationFailed(
                    "A business justification is required to submit for approval."
                )
            outcome = engine.run(web, change, justification)
            if isinstance(outcome, str):
                return redirect(f"/admin/requests/{outcome}?notice=submitted")
            return redirect("/admin/access-policies?notice=completed")
    except DomainError as exc:
        error = exc.message
    return render(
        request,
        "confirm.html",
        nav="maa",
        section=None,
        heading=f"Delete access policy {row.display_name}",
        explanation="Deleting an access policy stops protecting its policy type. The deletion "
        "itself needs a second administrator's approval.",
        rows=[],
        hidden={},
        hidden_lists={},
        action_url=f"/admin/access-policies/{policy_id}/delete",
        protected=protected,
        button="Delete",
        error=error,
        justification=form.get("justification", ""),
        cancel_url=f"/admin/access-policies/{policy_id}",
    )


def _wizard_state(form: dict[str, str], lists: Callable[[str], list[str]]) -> dict[str, Any]:
    """The wizard's values from its form. Stage 1 is `approverGroupIds`/`approvalsRequired`
    (a one-stage policy, as before stages); stage N >= 2 is `stageNGroupIds`/`stageNRequired`."""
    count = int(form["stageCount"]) if form.get("stageCount", "").isdigit() else 1
    count += ("addStage" in form) - ("removeStage" in form)  # the step's own buttons
    count = min(max(count, 1), MAX_WIZARD_STAGES)
    return {
        "displayName": form.get("displayName", ""),
        "description": form.get("description", ""),
        "policyType": form.get("policyType", ""),
        "platform": form.get("platform", ""),
        "approvalsRequired": form.get("approvalsRequired", "1") or "1",
        "approverGroupIds": lists("approverGroupIds"),
        "stages": [
            {
                "approverGroupIds": lists(f"stage{n}GroupIds"),
                "approvalsRequired": form.get(f"stage{n}Required", "1") or "1",
            }
            for n in range(2, count + 1)
        ],
        "scopeTagIds": lists("scopeTagIds"),
        "excludedApplicationIds": lists("excludedApplicationIds"),
        "approvalWindowHours": form.get("approvalWindowHours", ""),
        "completionWindowHours": form.get("completionWindowHours", ""),
        "justification": form.get("justification", ""),
        "version": form.get("version", ""),
    }


def _state_of_policy(body: dict[str, Any]) -> dict[str, Any]:
    platforms = str(body.get("policyPlatform") or a.NOT_APPLICABLE)
    platform = next((key for key, (_, flags) in PLATFORM_CHOICES.items() if flags == platforms), "")
    stages = [
        {
            "approverGroupIds": list(stage["approverGroupIds"]),
            "approvalsRequired": str(stage["approvalsRequired"]),
        }
        for stage in body.get("stages") or []
    ]
    first = stages.pop(0) if stages else None
    return {
        "displayName": body.get("displayName") or "",
        "description": body.get("description") or "",
        "policyType": body.get("policyType") or "",
        "platform": platform,
        "approvalsRequired": first["approvalsRequired"]
        if first
        else str(body.get("approvalsRequired") or 1),
        "approverGroupIds": first["approverGroupIds"]
        if first
        else list(body.get("approverGroupIds") or []),
        "stages": stages,
        "scopeTagIds": list(body.get("scopeTagIds") or []),
        "excludedApplicationIds": list(body.get("excludedApplicationIds") or []),
        "approvalWindowHours": _text(body.get("approvalWindowHours")),
        "completionWindowHours": _text(body.get("completionWindowHours")),
        "justification": "",
        "version": str(body.get("version") or ""),
        "original": body,
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(text: Any) -> Any:
    """A form's number as the API takes it (anything else is passed on for the API to refuse)."""
    return int(text) if str(text).isdigit() else (text or None)


def _has_platforms(policy_type: str) -> bool:
    return a.POLICY_TYPES.get(policy_type, False)


def _policy_body(state: dict[str, Any]) -> dict[str, Any]:
    policy_type = state["policyType"]
    if _has_platforms(policy_type) and state["platform"] in PLATFORM_CHOICES:
        platform = PLATFORM_CHOICES[state["platform"]][1]
    else:
        platform = a.NOT_APPLICABLE
    first = {
        "approverGroupIds": state["approverGroupIds"],
        "approvalsRequired": state["approvalsRequired"],
    }
    stages = [
        {
            "approverGroupIds": s["approverGroupIds"],
            "approvalsRequired": _number(s["approvalsRequired"]),
        }
        for s in (first, *state["stages"])
    ]
    approvers: dict[str, Any] = (
        {"stages": stages}
        if len(stages) > 1
        else {
            **stages[0],
            **({"stages": []} if (state.get("original") or {}).get("stages") else {}),
        }
    )
    body: dict[str, Any] = {
        "displayName": state["displayName"].strip(),
        "policyType": policy_type,
        "policyPlatform": platform,
        **approvers,
        "scopeTagIds": state["scopeTagIds"],
        "excludedApplicationIds": state["excludedApplicationIds"],
        "approvalWindowHours": _number(state["approvalWindowHours"]),
        "completionWindowHours": _number(state["completionWindowHours"]),
    }
    if state["description"].strip():
        body["description"] = state["description"].strip()
    return body


def _step_problem(state: dict[str, Any], step: str) -> str | None:
    """What the form still lacks before `step` can be left (the service checks it all again)."""
    if step == "basics" and not state["displayName"].strip():
        return "Enter a name for the policy."
    if step == "type" and state["policyType"] not in POLICY_TYPE_LABELS:
        return "Choose the policy type to protect."
    if (
        step == "platforms"
        and _has_platforms(state["policyType"])
        and state["platform"] not in PLATFORM_CHOICES
    ):
        return "Choose Windows only or Non-Windows only."
    if step == "approvers" and not state["approverGroupIds"]:
        return "Add at least one approver group."
    if step == "approvers":
        for number, stage in enumerate(state["stages"], 2):
            if not stage["approverGroupIds"]:
                return f"Add at least one approver group to stage {number}."
    return None


def _change_of(state: dict[str, Any], policy_id: str | None) -> Change:
    body = _policy_body(state)
    if policy_id is None:
        return Change(POLICY_COLLECTION, CREATE, body=body)
    original = state.get("original") or {}
    changed = {k: v for k, v in body.items() if k != "policyType" and original.get(k) != v}
    version = int(state["version"]) if str(state["version"]).isdigit() else None
    return Change(POLICY_COLLECTION, UPDATE, policy_id, changed, expected_version=version)


def _wizard_post(request: Request, web: WebSession, policy_id: str | None) -> Response:
    form = form_data(request)
    state = _wizard_state(form, lambda name: form_lists(request, name))
    if policy_id is not None:
        with web.ctx.db.read() as session:
            original = policy_json(get_policy(session, web.caller.tenant_id, policy_id))
        state["original"] = original
        state["policyType"] = original["policyType"]  # the type of a policy cannot change
    names = [name for name, _ in WIZARD_STEPS]
    current = form.get("step", "basics")
    target = form.get("go", "review")
    if current not in names:
        current = "basics"
    if target == "submit":
        for step in names[:-1]:
            problem = _step_problem(state, step)
            if problem:
                return _wizard(request, web, state, step, problem, policy_id=policy_id)
        change = _change_of(state, policy_id)
        justification = state["justification"].strip() or None
        try:
            if not justification:
                raise ValidationFailed(
                    "A business justification is required to submit for approval."
                )
            if policy_id is not None and not change.body:
                raise ValidationFailed("Nothing was changed.")
            outcome = engine.run(web, change, justification)
        except DomainError as exc:
            return _wizard(request, web, state, "review", exc.message, policy_id=policy_id)
        if isinstance(outcome, str):
            return redirect(f"/admin/requests/{outcome}?notice=submitted")
        return redirect("/admin/access-policies?notice=completed")
    if target not in names or "addStage" in form or "removeStage" in form:
        target = current
    # Going forward checks every step on the way; going back never does.
    if names.index(target) > names.index(current):
        for step in names[names.index(current) : names.index(target)]:
            problem = _step_problem(state, step)
            if problem:
                return _wizard(request, web, state, step, problem, policy_id=policy_id)
    return _wizard(request, web, state, target, None, policy_id=policy_id)


def _wizard(
    request: Request,
    web: WebSession,
    state: dict[str, Any],
    step: str,
    error: str | None,
    *,
    policy_id: str | None = None,
) -> Response:
    with web.ctx.db.read() as session:
        groups = [
            {
                "id": g.id,
                "name": g.display_name,
                "security": g.security_enabled and not g.mail_enabled,
                "on_assignment": web.caller.snapshot.group_is_on_role_assignment(g.id),
            }
            for g in session.scalars(
                select(t.Group)
                .where(t.Group.tenant_id == web.caller.tenant_id)
                .order_by(t.Group.display_name)
            )
        ]
        scope_tags = _scope_tags(session, web.caller.tenant_id)
        applications = _applications(session, web.caller.tenant_id)
    protected = True
    if step == "review":
        try:
            protected = engine.needs_approval(
                web.ctx.db, web.caller, _change_of(state, policy_id), web.now
            )
        except DomainError as exc:
            error = error or exc.message
    names = {g["id"]: g["name"] for g in groups}
    chosen = {g: names.get(g, g) for g in state["approverGroupIds"]}
    stage_names = [
        [names.get(g, g) for g in stage["approverGroupIds"]]
        for stage in ({"approverGroupIds": state["approverGroupIds"]}, *state["stages"])
    ]
    return render(
        request,
        "policy_wizard.html",
        nav="maa",
        tab="policies",
        state=state,
        step=step,
        steps=WIZARD_STEPS,
        error=error,
        groups=groups,
        chosen=chosen,
        stage_names=stage_names,
        max_stages=MAX_WIZARD_STAGES,
        scope_tags=scope_tags,
        chosen_tags=[dict(scope_tags).get(tag, tag) for tag in state["scopeTagIds"]],
        applications=applications,
        chosen_applications=[
            dict(applications).get(app, app) for app in state["excludedApplicationIds"]
        ],
        policy_types=[
            (k, v)
            for k, v in POLICY_TYPE_LABELS.items()
            if k in a.POLICY_TYPES and k != a.ACCESS_POLICY_TYPE
        ],
        has_platforms=_has_platforms(state["policyType"]),
        platforms_by_type={k: v for k, v in a.POLICY_TYPES.items()},
        platform_choices=PLATFORM_CHOICES,
        type_label=POLICY_TYPE_LABELS.get(state["policyType"], state["policyType"] or "—"),
        platform_text=platform_label(_policy_body(state)["policyPlatform"])
        if state["policyType"]
        else "—",
        protected=protected,
        policy_id=policy_id,
        action_url=f"/admin/access-policies/{policy_id}/edit"
        if policy_id
        else "/admin/access-policies/new",
    )


# -- requests --------------------------------------------------------------------------------

SORTS = {
    "requested": t.ApprovalRequest.request_date_time,
    "expires": t.ApprovalRequest.expiration_date_time,
    "name": t.ApprovalRequest.payload_name,
    "status": t.ApprovalRequest.status,
}


def status_condition(status: str, now: Any) -> ColumnElement[bool]:
    """SQL for a status filter, with expiry exact as request_json.effective_status reads it."""
    return queries.status_is(status, now)


def _received_ids(session: Any, web: WebSession) -> list[str]:
    """Requests for me to decide: those I may approve now, and those I already decided."""
    waiting = [row.id for row in engine.waiting_rows(session, web)]
    decided = session.scalars(
        select(t.ApprovalDecision.request_id).where(
            t.ApprovalDecision.tenant_id == web.caller.tenant_id,
            t.ApprovalDecision.approver_id == web.caller.id,
        )
    ).all()
    return sorted(set(waiting) | set(decided))


@router.get("/requests")
def all_requests(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _requests(request, web, "all")


@router.get("/requests/mine")
def my_requests(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _requests(request, web, "mine")


@router.get("/requests/received")
def received_requests(request: Request, web: WebSession = Depends(signed_in)) -> Response:
    return _requests(request, web, "received")


def _requests(request: Request, web: WebSession, view: str) -> Response:
    params = request.query_params
    status = params.get("status", "")
    policy_type = params.get("type", "")
    requester = params.get("requester", "")
    sort = params.get("sort", "requested")
    sort = sort if sort in SORTS else "requested"
    descending = params.get("dir", "desc" if sort == "requested" else "asc") == "desc"
    page = int(params["page"]) if params.get("page", "").isdigit() else 1
    page = max(page, 1)
    caller = web.caller
    with web.ctx.db.read() as session:
        if view == "received":
            base = queries.tenant_requests(caller.tenant_id).where(
                t.ApprovalRequest.id.in_(_received_ids(session, web))
            )
        else:
            base = queries.visible_requests(caller, mine=view == "mine")
        requesters = session.execute(
            base.with_only_columns(t.ApprovalRequest.requestor_id, t.ApprovalRequest.requestor_name)
            .distinct()
            .order_by(t.ApprovalRequest.requestor_name)
        ).all()
        query = base
        if status in STATUS_LABELS:
            query = query.where(status_condition(status, web.now))
        if policy_type:
            query = query.where(t.ApprovalRequest.policy_type == policy_type)
        if requester:
            query = query.where(t.ApprovalRequest.requestor_id == requester)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        column = SORTS[sort]
        rows = session.scalars(
            query.order_by(column.desc() if descending else column.asc(), t.ApprovalRequest.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        items = [
            {
                "id": row.id,
                "title": request_title(row),
                "type": POLICY_TYPE_LABELS.get(row.policy_type, row.policy_type),
                "status": engine.effective_status(row, web.now),
                "requester": row.requestor_name,
                "requested": row.request_date_time,
                "expires": row.expiration_date_time,
                "justification": row.request_justification,
            }
            for row in rows
        ]
    filters = {"status": status, "type": policy_type, "requester": requester}
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)

    def url(**changes: Any) -> str:
        query = {**filters, "sort": sort, "dir": "desc" if descending else "asc", "page": page}
        query.update(changes)
        clean = {k: v for k, v in query.items() if v not in ("", None)}
        return f"{request.url.path}?{urlencode(clean)}"

    def sort_url(key: str) -> str:
        flip = "asc" if (sort == key and descending) else "desc"
        if sort != key:
            flip = "desc" if key == "requested" else "asc"
        return url(sort=key, dir=flip, page=1)

    return render(
        request,
        "requests.html",
        nav="maa",
        tab=view,
        items=items,
        total=total,
        page=page,
        pages=pages,
        prev_url=url(page=page - 1) if page > 1 else None,
        next_url=url(page=page + 1) if page < pages else None,
        sort=sort,
        descending=descending,
        sort_url=sort_url,
        filters=filters,
        statuses=STATUS_LABELS,
        policy_types=POLICY_TYPE_LABELS,
        requesters=requesters,
        sees_all=queries.can_see_all_requests(caller),
    )


@router.get("/requests/{request_id}")
def show_request(
    request_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    return _request_page(request, web, request_id, error=None)


def request_title(row: t.ApprovalRequest) -> str:
    """What a person calls the request: the summary's title (requests made before summaries
    existed fall back to operation and name)."""
    summary = (row.display_payload or {}).get("summary") or {}
    title = summary.get("title")
    if title:
        return str(title)
    verb = row.action_name or row.payload_operation
    return f"{verb} {row.payload_type} {row.payload_name}"


# Home (web/objects.py) and the request lists name requests by their summary's title.
templates.env.globals["request_title"] = request_title

REJECT_NOTES_REQUIRED = "Approver notes are required to reject."


def _request_page(
    request: Request,
    web: WebSession,
    request_id: str,
    *,
    error: str | None,
    status: int = 200,
    field_error: str | None = None,
    notes: str = "",
) -> Response:
    with web.ctx.db.read() as session:
        row = queries.visible_request(session, web.caller, request_id)
        decisions = queries.decisions_of(session, row.id)
        body = engine.request_json(row, web.now, decisions)
        blocked = engine.blocker(session, web, row)
        groups = _group_names(session, web.caller.tenant_id)
        display = body.get("displayPayload") or {}
        summary = display.get("summary") or {}
        renamed = summary_service.current_names(session, web.caller.tenant_id, summary)
    current = body["status"]
    is_requester = row.requestor_id == web.caller.id
    diff = [
        {
            "path": change.get("path", ""),
            "op": change.get("op", ""),
            "before": _shown(_named(change, "before", groups)),
            "after": _shown(_named(change, "after", groups)),
        }
        for change in _per_property(display.get("diff") or [])
    ]
    return render(
        request,
        "request.html",
        status_code=status,
        nav="maa",
        tab="all",
        req=body,
        row=row,
        status=current,
        type_label=POLICY_TYPE_LABELS.get(row.policy_type, row.policy_type),
        is_requester=is_requester,
        can_decide=current == Status.NEEDS_APPROVAL and blocked is None,
        can_cancel_approval=current == Status.APPROVED and blocked is None and not is_requester,
        blocked=blocked,
        title=request_title(row),
        summary=summary,
        renamed=renamed,
        row_text=row_text,
        field_error=field_error,
        diff=diff,
        before=_shown(display.get("before")),
        after=_shown(display.get("after")),
        approvals=body.get("approvals") or [],
        group_names=groups,
        stage_labels=STAGE_LABELS,
        notice=_notice(request),
        error=error,
        notes=notes,
    )


def _per_property(diff: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A whole object created or deleted reads better one property a row."""
    if len(diff) != 1 or diff[0].get("path") not in ("", "/"):
        return diff
    change = diff[0]
    whole = change.get("after") if change.get("op") == "add" else change.get("before")
    if not isinstance(whole, dict):
        return diff
    rows = []
    for key, value in whole.items():
        before, after = (None, value) if change.get("op") == "add" else (value, None)
        rows.append({"path": f"/{key}", "op": change.get("op"), "before": before, "after": after})
    return rows


GROUP_LISTS = ("/approverGroupIds", "/members")


def _named(change: dict[str, Any], side: str, groups: dict[str, str]) -> Any:
    """Group ids read as group names where a property lists groups (display only)."""
    value = change.get(side)
    if str(change.get("path", "")).endswith(GROUP_LISTS) and isinstance(value, list):
        return [f"{groups[v]} ({v})" if isinstance(v, str) and v in groups else v for v in value]
    if isinstance(value, str) and value in groups and "/approverGroupIds/" in change["path"]:
        return f"{groups[value]} ({value})"
    return value


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@router.get("/requests/{request_id}/cancel")
def confirm_cancel(
    request_id: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    """Cancel request asks first: a page that says what ends, with the one button that ends it."""
    with web.ctx.db.read() as session:
        row = get_request(session, web.caller.tenant_id, request_id)
        name, operation = row.payload_name, row.payload_operation
    return render(
        request,
        "cancel_request.html",
        nav="maa",
        request_id=request_id,
        title=f"{operation} {name}",
    )


@router.post("/requests/{request_id}/{action}")
def act_on_request(
    request_id: str, action: str, request: Request, web: WebSession = Depends(signed_in)
) -> Response:
    form = form_data(request)
    notes = form.get("notes", "").strip() or None
    db, caller, now = web.ctx.db, web.caller, web.now
    if action == "reject" and notes is None:
        # Said at the field, before the engine (which refuses it too) is asked.
        return _request_page(
            request, web, request_id, error=None, status=400, field_error=REJECT_NOTES_REQUIRED
        )
    try:
        if action == "approve":
            approve_request.approve_request(db, caller, request_id, notes, now)
            notice = "approved"
        elif action == "reject":
            reject_request.reject_request(db, caller, request_id, notes, now)
            notice = "rejected"
        elif action == "cancel-approval":
            cancel_request.cancel_approval(db, caller, request_id, notes, now)
            notice = "cancelled"
        elif action == "cancel":
            cancel_request.cancel_my_request(db, caller, request_id, now)
            notice = "cancelled"
        elif action == "complete":
            complete_request.complete_request(db, caller, request_id, now)
            notice = "completed"
        else:
            raise ValidationFailed(f"'{action}' is not something a request can do.")
    except DomainError as exc:
        # Words for people; the reason code (innerError.reason) is the API's, for machines.
        message = exc.message
        if isinstance(exc, NotEligibleToApprove):
            with db.read() as session:
                row = queries.visible_request(session, caller, request_id)
                why = engine.blocker(session, web, row)
            message = f"You cannot {action.replace('-', ' ')} this request: {why or message}"
        return _request_page(
            request, web, request_id, error=message, status=400, notes=form.get("notes", "")
        )
    return redirect(f"/admin/requests/{request_id}?notice={notice}")
