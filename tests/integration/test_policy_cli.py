"""`countersign policies create` with stages, scope tags, exclusions and windows, and
`countersign requests show|schedule` of a staged request, against a live server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.factories import TenantFactory
from tests.integration.test_approval_cli import as_user, run
from tests.maa import seed

APPS = "/beta/deviceAppManagement/mobileApps"


def test_a_staged_policy_and_its_requests_from_the_command_line(
    tenants: TenantFactory, live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = seed(tenants)
    finance = s.tenant.scope_tag("Finance")
    security = s.tenant.group("Security officers")
    # Approvers must reach the object's scope tag (through the approval role's assignment).
    s.tenant.assign("Multi Admin Approval Approver", [security, s.approvers], ("0", finance))
    officer = s.tenant.user("officer", groups=(security,))
    robot = s.tenant.service_principal("Build robot")
    as_user(monkeypatch, tmp_path, live_server, s.admin1)
    code, output = run(
        "policies", "create", "--name", "Finance apps", "--type", "app",
        "--stage", "Intune Change Approvers", "--stage", "Security officers:1",
        "--scope-tag", "Finance", "--exclude-app", "Build robot",
        "--approval-window-hours", "48", "--justification", "CAB-7", "--json",
    )  # fmt: skip
    assert code == 0, output
    policy_request = json.loads(output)["requestId"]
    code, output = run("policies", "create", "--name", "x", "--type", "app", "--justification", "y")
    assert code == 2 and "--approver-group or --stage" in output
    assert s.approve(policy_request).status_code == 200
    assert s.complete(policy_request).status_code == 201
    code, output = run("policies", "list", "--json")
    [policy] = json.loads(output)
    assert [stage["approverGroupIds"] for stage in policy["stages"]] == [[s.approvers], [security]]
    assert policy["excludedApplicationIds"] == [robot.upn]
    code, output = run("policies", "show", policy["id"])
    assert "stage 2" in output and "Security officers: 1 approval(s)" in output

    assert policy["scopeTagIds"] == [finance]
    request_id = s.submit(
        "POST",
        APPS,
        json={
            "@odata.type": "#microsoft.graph.webApp",
            "displayName": "Ledger",
            "appUrl": "https://ledger.example",
            "roleScopeTagIds": [finance],
        },
    )
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    code, output = run("requests", "schedule", request_id[:8], "--at", at.isoformat())
    assert code == 0 and "once approved" in output, output
    code, output = run("requests", "schedule", request_id[:8], "--at", "2026-12-24 10:00")
    assert code == 2 and "no zone" in output

    as_user(monkeypatch, tmp_path, live_server, officer)
    code, output = run("requests", "approve", request_id)
    assert code == 3 and "stageNotReached" in output
    as_user(monkeypatch, tmp_path, live_server, s.admin2)
    code, output = run("requests", "approve", request_id)
    assert code == 0, output
    code, output = run("requests", "show", request_id)
    assert "policies:       Finance apps" in output
    assert "stage 1:        approved -- Intune Change Approvers, 1 approval(s): admin2" in output
    assert "stage 2:        deciding now -- Security officers, 1 approval(s)" in output
    assert "completes at:" in output
