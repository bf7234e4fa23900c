"""The admin center's access-policy wizard offers scope tags, exclusions and stages (no browser;
tests/e2e/test_staged_request.py walks a two-stage request in Chromium)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory
from tests.integration.test_admin_center import approver_tenant, signed_in

NEW = "/admin/access-policies/new"


def test_the_wizard_submits_scope_exclusions_and_two_stages(
    tenants: TenantFactory, app: FastAPI, db: Database
) -> None:
    tenant, _, leads = approver_tenant(tenants)
    security = tenant.group("Security")
    tenant.assign("Multi Admin Approval Approver", [security])
    finance = tenant.scope_tag("Finance")
    robot = tenant.service_principal("Packaging robot")
    admin1 = signed_in(app, tenant.admin.upn)
    admin1.get(NEW)
    state = {
        "displayName": "Finance apps",
        "approvalWindowHours": "24",
        "completionWindowHours": "4",
        "policyType": "app",
        "platform": "windows",
    }
    scope = admin1.post(NEW, {**state, "step": "platforms", "go": "scope"})
    assert "Finance" in scope.text and "Packaging robot" in scope.text
    state |= {"scopeTagIds": finance, "excludedApplicationIds": robot.upn}
    approvers = admin1.post(NEW, {**state, "step": "scope", "go": "approvers"})
    assert 'id="add-stage"' in approvers.text and "Stage 2" not in approvers.text
    state |= {"approverGroupIds": leads, "approvalsRequired": "1"}
    two = admin1.post(NEW, {**state, "step": "approvers", "stageCount": "1", "addStage": "1"})
    assert "Stage 2: approvers: add groups" in two.text
    one = admin1.post(NEW, {**state, "step": "approvers", "stageCount": "2", "removeStage": "1"})
    assert "Stage 2" not in one.text and 'id="remove-stage"' not in one.text
    empty = admin1.post(NEW, {**state, "step": "approvers", "stageCount": "2", "go": "review"})
    assert "Add at least one approver group to stage 2." in empty.text
    state |= {"stageCount": "2", "stage2GroupIds": security, "stage2Required": "2"}
    review = admin1.post(NEW, {**state, "step": "approvers", "go": "review"})
    for shown in ("Finance", "Packaging robot", "Stage 2", "2 approval(s)", "24 hours"):
        assert shown in review.text, shown
    submitted = admin1.post(
        NEW, {**state, "step": "review", "go": "submit", "justification": "Finance controls"}
    )
    assert submitted.status_code == 303, submitted.text
    request_id = submitted.headers["location"].split("?")[0].rsplit("/", 1)[-1]
    with db.read() as session:
        row = session.scalars(
            select(t.ApprovalRequest).where(t.ApprovalRequest.id == request_id)
        ).one()
    body = row.payload["change"]["body"]
    assert body["stages"] == [
        {"approverGroupIds": [leads], "approvalsRequired": 1},
        {"approverGroupIds": [security], "approvalsRequired": 2},
    ]
    assert body["scopeTagIds"] == [finance]
    assert body["excludedApplicationIds"] == [robot.upn]
    assert (body["approvalWindowHours"], body["completionWindowHours"]) == (24, 4)
