"""Access policies that fit how organisations work (issue 17), through the API on the real
database: scope tags, excluded applications, two stages, windows and change freezes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from countersign.domain.errors import Conflict
from countersign.services.approve_request import approve_request
from countersign.services.complete_request import complete_request
from countersign.services.demo import caller_for
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import Principal, TenantFactory, row_counts
from tests.integration.test_notifications import webhook
from tests.maa import REQUESTS, Seed, b64, seed

APPS = "/beta/deviceAppManagement/mobileApps"
AUDIT = "/beta/deviceManagement/auditEvents"
SETTINGS = "/beta/deviceManagement/multiAdminApprovalSettings"


def web_app(name: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.webApp",
        "displayName": name,
        "appUrl": "https://portal.contoso.example",
        **({"roleScopeTagIds": tags} if tags else {}),
    }


def reason(response: Any) -> str:
    return str(response.json()["error"]["innerError"].get("reason"))


def test_a_scoped_policy_protects_finance_apps_and_not_default_ones(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    finance = s.tenant.scope_tag("Finance")
    s.activate_policy("app", scopeTagIds=[finance])
    # The request shows which policies apply.
    request_id = s.submit("POST", APPS, json=web_app("Ledger", [finance]))
    assert [p["displayName"] for p in s.request(request_id)["appliedPolicies"]] == ["Protect app"]
    assert s.tenant.call("POST", APPS, json=web_app("Canteen menu", ["0"])).status_code == 201
    # Moving a Default app into Finance is a change to a Finance object: protected.
    menu = s.tenant.ok("GET", APPS, params={"$filter": "displayName eq 'Canteen menu'"})
    moved = s.tenant.call(
        "PATCH",
        f"{APPS}/{menu['value'][0]['id']}",
        json={"roleScopeTagIds": [finance]},
        headers={"x-msft-approval-justification": b64("move")},
    )
    assert moved.status_code == 403 and moved.json()["error"]["code"] == "ApprovalRequired"


def test_an_excluded_application_writes_at_once_and_is_audited(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    robot = s.tenant.service_principal("Packaging robot", roles=("Intune Administrator",))
    policy_id = s.activate_policy("app", excludedApplicationIds=[robot.upn])
    created = s.tenant.call("POST", APPS, robot, json=web_app("Built by CI"))
    assert created.status_code == 201, created.text
    entries = s.tenant.ok(
        "GET",
        AUDIT,
        params={"$filter": "activityType eq 'Applied without approval (excluded application)'"},
    )["value"]
    assert [e["resources"][0]["resourceId"] for e in entries] == [created.json()["id"]]
    assert entries[0]["actor"]["applicationId"] in (robot.id, robot.upn)
    assert policy_id in str(entries[0])
    # A delegated user's identical write still needs approval.
    s.submit("POST", APPS, json=web_app("Built by CI"))


def test_changing_an_exclusion_list_is_itself_protected(tenants: TenantFactory) -> None:
    s = seed(tenants)
    robot = s.tenant.service_principal("Robot", roles=("Intune Administrator",))
    policy_id = s.activate_policy("app", excludedApplicationIds=[robot.upn])
    # Even the excluded application itself cannot widen or drop the list without approval.
    for who in (s.admin1, robot):
        response = s.tenant.call(
            "PATCH",
            f"/beta/deviceManagement/operationApprovalPolicies/{policy_id}",
            who,
            json={"excludedApplicationIds": []},
            headers={"x-msft-approval-justification": b64("drop")},
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "ApprovalRequired"
        request_id = response.headers["x-msft-approval-code"]
        # The reviewer reads what it is: an exclusion-list change of that policy.
        title = s.request(request_id)["displayPayload"]["summary"]["title"]
        assert title == "Change access policy Protect app: exclusions", title
        s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", who, json={"id": request_id})


# -- stages -------------------------------------------------------------------------------------


def two_stages(s: Seed, security_quorum: int = 1) -> tuple[str, Principal, list[Principal]]:
    """Team leads (admin2, and `both`, who is in security too), then security (2 people)."""
    leads = s.approvers  # admin1 and admin2
    security = s.tenant.group("Security")
    s.tenant.assign("Multi Admin Approval Approver", [security])
    both = s.tenant.user("both", groups=(leads, security))
    officers = [s.tenant.user(f"officer{n}", groups=(security,)) for n in range(2)]
    s.activate_policy(
        "app",
        approvers=[leads, security],
        stages=[
            {"approverGroupIds": [leads], "approvalsRequired": 1},
            {"approverGroupIds": [security], "approvalsRequired": security_quorum},
        ],
    )
    return security, both, officers


def test_two_stages_are_approved_in_order_and_each_needs_its_quorum(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    _, both, officers = two_stages(s, security_quorum=2)
    request_id = s.submit("POST", APPS, json=web_app("Payroll"))
    early = s.approve(request_id, officers[0])
    assert early.status_code == 400 and reason(early) == "stageNotReached"
    assert s.approve(request_id, s.admin2).status_code == 200
    request = s.request(request_id)
    assert request["status"] == "needsApproval" and request["currentStage"] == 2
    # One person in both groups decided in stage 1 (admin2 did not; `both` may, in stage 2).
    late = s.approve(request_id, s.admin2)
    assert late.status_code == 400 and reason(late) == "decidedInAnotherStage"
    assert s.approve(request_id, officers[0]).status_code == 200
    assert s.request(request_id)["status"] == "needsApproval"  # stage 2 needs 2
    assert s.approve(request_id, both).status_code == 200
    request = s.request(request_id)
    assert request["status"] == "approved"
    assert [
        (stage["status"], [d["approver"]["user"]["id"] for d in stage["decisions"]])
        for stage in request["stages"]
    ] == [("approved", [s.admin2.id]), ("approved", [officers[0].id, both.id])]


def test_one_person_in_both_groups_decides_one_stage_only(tenants: TenantFactory) -> None:
    s = seed(tenants)
    _, both, officers = two_stages(s)
    request_id = s.submit("POST", APPS, json=web_app("Payroll"))
    assert s.approve(request_id, both).status_code == 200  # stage 1
    again = s.approve(request_id, both)
    assert again.status_code == 400 and reason(again) == "decidedInAnotherStage"
    assert s.approve(request_id, officers[1]).status_code == 200
    assert s.request(request_id)["status"] == "approved"


def test_one_reject_rejects_a_staged_request(tenants: TenantFactory) -> None:
    s = seed(tenants)
    _, _, officers = two_stages(s)
    request_id = s.submit("POST", APPS, json=web_app("Payroll"))
    assert s.approve(request_id, s.admin2).status_code == 200
    rejected = s.tenant.call(
        "POST", f"{REQUESTS}/{request_id}/reject", officers[0], json={"justification": "no"}
    )
    assert rejected.status_code == 200, rejected.text
    stages = s.request(request_id)["stages"]
    assert [stage["status"] for stage in stages] == ["approved", "rejected"]


def test_a_lockout_of_a_later_stage_is_refused(tenants: TenantFactory) -> None:
    s = seed(tenants)
    security, _, officers = two_stages(s, security_quorum=2)
    # Security: `both` and two officers; stage 2 needs 2 of them. Without one officer, `both`
    # and the other still make 2 (admin2 takes stage 1); without both officers, nobody could.
    s.tenant.ok("DELETE", f"/beta/groups/{security}/members/{officers[0].id}/$ref")
    response = s.tenant.call("DELETE", f"/beta/groups/{security}/members/{officers[1].id}/$ref")
    assert response.status_code == 400, response.text
    assert reason(response) == "approverLockout"
    assert "stage(s) 2" in response.json()["error"]["message"]


# -- windows and freezes ------------------------------------------------------------------------


def test_an_approval_after_the_approval_window_is_refused_as_expired(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("app", approvalWindowHours=4, completionWindowHours=2)
    request_id = s.submit("POST", APPS, json=web_app("Late"))
    request = s.request(request_id)
    submitted = datetime.fromisoformat(request["requestDateTime"])
    assert datetime.fromisoformat(request["expirationDateTime"]) == submitted + timedelta(hours=4)
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    late = submitted + timedelta(hours=4, seconds=1)
    with pytest.raises(Conflict) as refused:
        approve_request(db, admin2, request_id, None, late)
    assert refused.value.reason == "requestExpired"
    assert s.request(request_id)["status"] == "expired"


def test_the_completion_window_counts_from_approval(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    s.activate_policy("app", completionWindowHours=2)
    request_id = s.submit("POST", APPS, json=web_app("Soon"))
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    approved_at = datetime.now(UTC) + timedelta(days=1)
    approve_request(db, admin2, request_id, None, approved_at)
    expires = datetime.fromisoformat(s.request(request_id)["expirationDateTime"])
    assert expires == approved_at + timedelta(hours=2)


def test_a_freeze_window_blocks_completion_but_not_approval(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    now = datetime.now(UTC)
    window = {
        "startDateTime": (now - timedelta(hours=1)).isoformat(),
        "endDateTime": (now + timedelta(hours=1)).isoformat(),
        "reason": "Year-end close",
    }
    s.tenant.ok("PATCH", SETTINGS, json={"changeFreezeWindows": [window]})
    request_id = s.submit("POST", APPS, json=web_app("Frozen"))
    assert s.approve(request_id).status_code == 200
    before = row_counts(db, s.tenant.id)
    frozen = s.complete(request_id)
    assert frozen.status_code == 409, frozen.text
    assert reason(frozen) == "changeFreeze" and "Year-end close" in frozen.text
    assert s.request(request_id)["status"] == "approved"
    assert row_counts(db, s.tenant.id)["resources"] == before["resources"]
    # After the window, the same request completes.
    admin1 = caller_for(db, s.tenant.id, s.admin1.id)
    complete_request(db, admin1, request_id, now + timedelta(hours=1))
    assert s.request(request_id)["status"] == "completed"


def test_each_stage_is_asked_in_its_turn(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    webhook(s.tenant, "http://127.0.0.1:9/hook", events=["submitted"])
    _, both, officers = two_stages(s)
    request_id = s.submit("POST", APPS, json=web_app("Payroll"))
    assert asked(db, request_id) == [{s.admin2.id, both.id}]  # the team leads but the requester
    assert s.approve(request_id, s.admin2).status_code == 200
    assert asked(db, request_id)[1] == {both.id, officers[0].id, officers[1].id}


def asked(db: Database, request_id: str) -> list[set[str]]:
    """Who each `submitted` message of the request went to, in order."""
    m = t.OutboxMessage
    with db.read() as session:
        rows = session.scalars(
            select(m.recipients)
            .where(m.approval_request_id == request_id, m.event == "submitted")
            .order_by(m.created_date_time)
        ).all()
    return [{r["id"] for r in recipients} for recipients in rows]
