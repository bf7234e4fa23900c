"""The Countersign extensions of operationApprovalPolicy (scopeTagIds, excludedApplicationIds,
stages, windows) and the tenant's change-freeze windows: what the API accepts, serves, and
refuses (Graph-shaped 400s that change nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from countersign.store.db import Database
from tests.factories import TenantFactory, row_counts
from tests.maa import POLICIES, Seed, b64, seed

SETTINGS = "/beta/deviceManagement/multiAdminApprovalSettings"


def submit_policy(s: Seed, **body: Any) -> Any:
    return s.tenant.call(
        "POST",
        POLICIES,
        json={"displayName": "P", "policyType": "app", "policyPlatform": "notApplicable", **body},
        headers={"x-msft-approval-justification": b64("policy")},
    )


def test_a_policy_serves_its_scope_exclusions_stages_and_windows(tenants: TenantFactory) -> None:
    s = seed(tenants)
    finance = s.tenant.scope_tag("Finance")
    security = s.tenant.group("Security")
    s.tenant.assign("Multi Admin Approval Approver", [security])
    for _ in range(2):
        s.tenant.user(groups=(security,))
    robot = s.tenant.service_principal()
    policy_id = s.activate_policy(
        "app",
        approvers=[s.approvers, security],  # their union, as the policy serves it
        scopeTagIds=[finance],
        excludedApplicationIds=[robot.upn.upper()],
        stages=[
            {"approverGroupIds": [s.approvers], "approvalsRequired": 1},
            {"approverGroupIds": [security], "approvalsRequired": 2},
        ],
        approvalWindowHours=12,
        completionWindowHours=4,
    )
    policy = s.tenant.ok("GET", f"{POLICIES}/{policy_id}")
    assert policy["scopeTagIds"] == [finance]
    assert policy["excludedApplicationIds"] == [robot.upn.lower()]
    assert [stage["approverGroupIds"] for stage in policy["stages"]] == [[s.approvers], [security]]
    # Graph clients still read who approves and how many approvals a request takes.
    assert policy["approverGroupIds"] == [s.approvers, security]
    assert policy["approvalsRequired"] == 3
    assert (policy["approvalWindowHours"], policy["completionWindowHours"]) == (12, 4)


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"scopeTagIds": ["no-such-tag"]}, "scopeTagIds"),
        (
            {"excludedApplicationIds": ["00000000-0000-0000-0000-000000000000"]},
            "excludedApplicationIds",
        ),
        ({"excludedApplicationIds": [f"app-{i}" for i in range(51)]}, "excludedApplicationIds"),
        ({"stages": [{"approverGroupIds": ["no-such-group"]}]}, "no-such-group"),
        ({"stages": [{"approverGroupIds": []}]}, "stages.0.approverGroupIds"),
        (
            {"stages": [{"approverGroupIds": ["g"], "approvalsRequired": 0}]},
            "stages.0.approvalsRequired",
        ),
        ({"approvalWindowHours": 73, "requestLifetimeInDays": 3}, "approvalWindowHours"),
        ({"completionWindowHours": 0}, "completionWindowHours"),
    ],
)
def test_bad_extensions_are_refused_and_change_nothing(
    tenants: TenantFactory, db: Database, body: dict[str, Any], target: str
) -> None:
    s = seed(tenants)
    before = row_counts(db, s.tenant.id)
    approvers = {} if "stages" in body else {"approverGroupIds": [s.approvers]}
    response = submit_policy(s, **approvers, **body)
    assert response.status_code == 400, response.text
    assert target.split(".")[-1] in response.json()["error"]["message"]
    assert row_counts(db, s.tenant.id) == before


def test_stages_and_other_approvers_must_agree(tenants: TenantFactory) -> None:
    s = seed(tenants)
    other = s.tenant.group("Other")
    s.tenant.assign("Multi Admin Approval Approver", [other])
    stages = [{"approverGroupIds": [s.approvers]}]
    assert submit_policy(s, stages=stages, approverGroupIds=[other]).status_code == 400
    assert submit_policy(s, stages=stages, approvalsRequired=2).status_code == 400
    assert submit_policy(s).status_code == 400  # neither stages nor approverGroupIds
    assert submit_policy(s, stages=stages, approverGroupIds=[s.approvers]).status_code == 403


def test_freeze_windows_are_settings(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    window = {
        "startDateTime": "2026-12-20T00:00:00+01:00",
        "endDateTime": "2027-01-04T00:00:00Z",
        "reason": "Year-end close",
    }
    tenant.ok("PATCH", SETTINGS, json={"changeFreezeWindows": [window]})
    served = tenant.ok("GET", SETTINGS)["changeFreezeWindows"]
    assert served == [{**window, "startDateTime": "2026-12-19T23:00:00Z"}]
    before = row_counts(db, tenant.id)
    for bad in (
        [{**window, "endDateTime": "2026-12-01T00:00:00Z"}],  # ends before it starts
        [{**window, "startDateTime": "2026-12-20T00:00:00"}],  # no zone: which hour?
        [{**window, "reason": ""}],
        [window] * 51,
    ):
        response = tenant.call("PATCH", SETTINGS, json={"changeFreezeWindows": bad})
        assert response.status_code == 400, response.text
    assert row_counts(db, tenant.id) == before
    tenant.ok("PATCH", SETTINGS, json={"changeFreezeWindows": []})
    assert tenant.ok("GET", SETTINGS)["changeFreezeWindows"] == []
