"""Each numbered rule of SPEC §4 (and the lockout guard of §9), tried through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from countersign.services.approve_request import approve_request
from countersign.services.demo import caller_for
from countersign.services.request_json import request_json
from countersign.services.unit_of_work import get_request
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, unique
from tests.maa import POLICIES, REQUESTS, SCOPE_TAGS, b64, seed

ROLES = "/beta/deviceManagement/roleDefinitions"


def reason(response: object) -> str:
    return response.json()["error"]["innerError"]["reason"]  # type: ignore[attr-defined, no-any-return]


def test_submitting_needs_the_ordinary_permission(tenants: TenantFactory) -> None:
    s = seed(tenants)
    reader = s.tenant.user(roles=("Read Only Operator",))
    s.activate_policy("role")
    response = s.tenant.call(
        "POST",
        SCOPE_TAGS,
        reader,
        json={"displayName": "x"},
        headers={"x-msft-approval-justification": b64("please")},
    )
    assert response.status_code == 403
    assert reason(response) == "missingPermission"
    assert s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequests()", reader)["value"] == []


def test_a_change_that_could_never_apply_is_refused_at_submission(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    response = s.tenant.call(
        "POST",
        ROLES,
        json={
            "displayName": "Bad",
            "rolePermissions": [
                {"resourceActions": [{"allowedResourceActions": ["Microsoft.Intune_Nothing_Such"]}]}
            ],
        },
        headers={"x-msft-approval-justification": b64("please")},
    )
    assert response.status_code == 400
    assert "Microsoft.Intune_Nothing_Such" in response.json()["error"]["message"]


def test_one_active_request_per_object(tenants: TenantFactory) -> None:
    s = seed(tenants)
    tag = s.tenant.scope_tag("Berlin")
    s.activate_policy("role")
    first = s.submit("PATCH", f"{SCOPE_TAGS}/{tag}", json={"description": "one"})
    second = s.tenant.call(
        "PATCH",
        f"{SCOPE_TAGS}/{tag}",
        s.admin2,
        json={"description": "two"},
        headers={"x-msft-approval-justification": b64("mine")},
    )
    assert second.status_code == 409
    assert (
        second.json()["error"]["message"]
        == "An active Approval Request already exists for this entity."
    )
    status = s.request_status(tag, "microsoft.graph.roleScopeTag")
    assert status["requestId"] == first and status["entityLocked"] is True
    assert status["requestStatus"] == "needsApproval"
    # Creates lock nothing: two creates side by side are fine.
    s.submit("POST", SCOPE_TAGS, json={"displayName": "A"})
    s.submit("POST", SCOPE_TAGS, json={"displayName": "A"})
    # Once the first request ends, the object is free again.
    s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", json={"id": first})
    assert s.request_status(tag, "roleScopeTag")["entityLocked"] is False
    s.submit("PATCH", f"{SCOPE_TAGS}/{tag}", s.admin2, json={"description": "two"})


def test_who_may_approve(tenants: TenantFactory) -> None:
    s = seed(tenants)
    outsider = s.tenant.user(roles=("Intune Administrator",))
    app = s.tenant.service_principal(roles=("Intune Administrator",))
    s.tenant.add_member(s.approvers, app.id)
    weak_group = s.tenant.group(unique("weak"))
    s.tenant.assign("Read Only Operator", [weak_group])
    weak = s.tenant.user(groups=(weak_group,))
    nested = s.tenant.group(unique("nested"))
    s.tenant.assign("Read Only Operator", [nested])
    deputy = s.tenant.user(roles=("Multi Admin Approval Approver",), groups=(nested,))
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Madrid"})
    assert reason(s.approve(request_id, outsider)) == "notInApproverGroup"
    refused = s.approve(request_id, app)
    assert refused.status_code == 400 and reason(refused) == "approverIsNotAUser"
    # A policy whose only approvers could never approve is refused up front (lockout guard).
    useless = s.tenant.call(
        "POST",
        POLICIES,
        json={"displayName": "Scripts", "policyType": "script", "approverGroupIds": [weak_group]},
        headers={"x-msft-approval-justification": b64("scripts")},
    )
    assert useless.status_code == 400 and reason(useless) == "approverLockout"
    # In an approver group, but its role lacks the approval permission.
    s.activate_policy("script", approvers=[s.approvers, weak_group])
    script_request = s.submit(
        "POST",
        "/beta/deviceManagement/deviceManagementScripts",
        json={
            "displayName": "Protected",
            "scriptContent": b64("Write-Host hi"),
            "runAsAccount": "system",
            "fileName": "hi.ps1",
        },
    )
    assert reason(s.approve(script_request, weak)) == "missingApprovalPermission"
    # Nested membership counts: a group inside the approver group.
    add_nested = s.submit(
        "POST", f"/beta/groups/{s.approvers}/members/$ref", json={"@odata.id": nested}
    )
    assert s.approve(add_nested).status_code == 200
    assert s.complete(add_nested).status_code == 204
    assert s.approve(request_id, deputy).status_code == 200
    # The refused attempts are in the audit log.
    events = s.tenant.ok(
        "GET",
        "/beta/deviceManagement/auditEvents",
        params={"$filter": "activity eq 'Approve (refused) operationApprovalRequest'"},
    )["value"]
    assert len(events) >= 2


def test_approval_needs_read_permission_and_scope_tag_reach(tenants: TenantFactory) -> None:
    s = seed(tenants)
    tag = s.tenant.scope_tag("Tokyo")
    role = s.tenant.ok(
        "POST", ROLES, json={"displayName": "Tokyo helpers", "roleScopeTagIds": [tag]}
    )
    s.tenant.assign("Multi Admin Approval Approver", [s.approvers], scope_tags=(tag,))
    elsewhere = s.tenant.group(unique("apac"))
    s.tenant.assign("Multi Admin Approval Approver", [elsewhere], scope_tags=("0",))
    far = s.tenant.user(groups=(elsewhere,))
    s.activate_policy("role", approvers=[s.approvers, elsewhere])
    request_id = s.submit("PATCH", f"{ROLES}/{role['id']}", json={"description": "changed"})
    refused = s.approve(request_id, far)
    assert refused.status_code == 400 and reason(refused) == "scopeTagNotReached"
    assert s.approve(request_id).status_code == 200


def test_reject_needs_notes_that_the_requester_sees(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Rome"})
    empty = s.tenant.call(
        "POST", f"{REQUESTS}/{request_id}/reject", s.admin2, json={"justification": " "}
    )
    assert empty.status_code == 400
    rejected = s.tenant.call(
        "POST",
        f"{REQUESTS}/{request_id}/reject",
        s.admin2,
        json={"justification": "Use the existing tag"},
    )
    assert rejected.json()["value"] == "rejected"
    mine = s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequestById(id='{request_id}')")
    assert mine["status"] == "rejected"
    assert mine["approvalJustification"] == "Use the existing tag"
    assert s.complete(request_id).status_code == 409
    assert s.approve(request_id).status_code == 409


def test_completion_refuses_when_the_object_changed_and_stays_approved(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    tag = s.tenant.scope_tag("Oslo")
    role = s.tenant.ok("POST", ROLES, json={"displayName": "Oslo", "roleScopeTagIds": [tag]})
    s.tenant.assign("Multi Admin Approval Approver", [s.approvers], scope_tags=(tag,))
    s.activate_policy("role")
    request_id = s.submit("PATCH", f"{ROLES}/{role['id']}", json={"description": "v2"})
    assert s.approve(request_id).status_code == 200
    # The role moves on through another path: a direct database edit stands in for any change
    # that bumps the version (every path to it is protected, which is the point).
    from countersign.store import tables as t

    db: Database = s.tenant.client.app.state.ctx.db  # type: ignore[attr-defined]
    with db.write() as session:
        row = session.get(t.RoleDefinition, role["id"])
        assert row is not None
        row.version += 1
    refused = s.complete(request_id)
    assert refused.status_code == 409 and reason(refused) == "objectChanged"
    assert s.request(request_id)["status"] == "approved"
    assert s.tenant.ok("GET", f"{ROLES}/{role['id']}")["description"] is None


def test_expiry_is_exact_on_every_read_and_action(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Cairo"})
    admin2 = caller_for(db, s.tenant.id, s.admin2.id)
    with db.read() as session:
        row = get_request(session, s.tenant.id, request_id)
        expires = row.expiration_date_time
        assert expires - row.request_date_time == timedelta(days=30)
        assert request_json(row, expires - timedelta(seconds=1))["status"] == "needsApproval"
        assert request_json(row, expires)["status"] == "expired"
    try:
        approve_request(db, admin2, request_id, None, expires + timedelta(seconds=1))
    except Exception as error:
        assert getattr(error, "reason", None) == "requestExpired"
    else:
        raise AssertionError("an expired request was approved")
    assert s.request(request_id)["status"] == "expired"
    assert s.approve(request_id).status_code == 409
    listed = s.tenant.ok("GET", REQUESTS, params={"$filter": "status eq 'expired'"})["value"]
    assert [r["id"] for r in listed] == [request_id]


def test_quorum_needs_distinct_approvers_and_one_reject_rejects(tenants: TenantFactory) -> None:
    s = seed(tenants)
    third = s.tenant.user("admin3", roles=("Intune Administrator",), groups=(s.approvers,))
    s.activate_policy("role", approvalsRequired=2)
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Quorum"})
    assert s.approve(request_id).json()["value"] == "needsApproval"
    twice = s.approve(request_id)
    assert twice.status_code == 409 and reason(twice) == "alreadyApproved"
    assert s.approve(request_id, third).json()["value"] == "approved"
    assert len(s.request(request_id)["approvals"]) == 2
    other = s.submit("POST", SCOPE_TAGS, json={"displayName": "Quorum 2"})
    assert s.approve(other).json()["value"] == "needsApproval"
    s.tenant.ok("POST", f"{REQUESTS}/{other}/reject", third, json={"justification": "No"})
    assert s.request(other)["status"] == "rejected"


def test_auto_complete_applies_at_approval(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role", autoComplete=True)
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Auto"})
    assert s.approve(request_id).json()["value"] == "completed"
    names = [t["displayName"] for t in s.tenant.ok("GET", SCOPE_TAGS)["value"]]
    assert "Auto" in names


def test_cancel_paths(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Cancel me"})
    assert (
        s.tenant.call(
            "POST", f"{REQUESTS}/cancelMyRequest", s.admin2, json={"id": request_id}
        ).status_code
        == 403
    )
    assert s.approve(request_id).status_code == 200
    cancelled = s.tenant.call(
        "POST",
        f"{REQUESTS}/{request_id}/cancelApproval",
        s.admin2,
        json={"justification": "Wrong tag name"},
    )
    assert cancelled.json()["value"] == "cancelled"
    assert s.complete(request_id).status_code == 409


def test_lockout_guard_refuses_a_change_that_leaves_no_other_approver(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    response = s.tenant.call(
        "DELETE",
        f"/beta/groups/{s.approvers}/members/{s.admin2.id}/$ref",
        headers={"x-msft-approval-justification": b64("cleanup")},
    )
    assert response.status_code == 400
    assert reason(response) == "approverLockout"
    assert "Protect app" in response.json()["error"]["message"]


def test_requests_are_private_to_their_requester_unless_you_approve(tenants: TenantFactory) -> None:
    s = seed(tenants)
    reader = s.tenant.user(roles=("Read Only Operator",))
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Private"})
    assert s.tenant.call("GET", f"{REQUESTS}/{request_id}", reader).status_code == 404
    assert s.tenant.ok("GET", REQUESTS, reader)["value"] == []
    other = tenants()
    assert other.call("GET", f"{REQUESTS}/{request_id}").status_code == 404
    assert other.call("POST", f"{REQUESTS}/{request_id}/approve", json={}).status_code == 404


def test_expiry_uses_the_policy_lifetime(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role", requestLifetimeInDays=2)
    request = s.request(s.submit("POST", SCOPE_TAGS, json={"displayName": "Short"}))
    start = datetime.fromisoformat(request["requestDateTime"])
    end = datetime.fromisoformat(request["expirationDateTime"])
    assert end - start == timedelta(days=2)
    assert start.tzinfo is not None and start <= datetime.now(UTC)


def test_an_object_under_an_active_request_is_locked_for_unprotected_writes_too(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    tag = s.tenant.scope_tag("Locked")
    role = s.tenant.ok("POST", ROLES, json={"displayName": "Locked role"})
    s.activate_policy("role")
    request_id = s.submit("PATCH", f"{ROLES}/{role['id']}", json={"description": "pending"})
    # Remove the role policy through its own request; the role is no longer protected...
    [policy] = [p for p in s.tenant.ok("GET", POLICIES)["value"] if p["policyType"] == "role"]
    removal = s.submit("DELETE", f"{POLICIES}/{policy['id']}")
    assert s.approve(removal).status_code == 200 and s.complete(removal).status_code == 204
    # ...but the request still holds it, so a direct change is refused until the request ends.
    direct = s.tenant.call("PATCH", f"{ROLES}/{role['id']}", json={"description": "direct"})
    assert direct.status_code == 409
    assert (
        direct.json()["error"]["message"]
        == "An active Approval Request already exists for this entity."
    )
    assert (
        s.tenant.call("PATCH", f"{SCOPE_TAGS}/{tag}", json={"description": "free"}).status_code
        == 204
    )
    s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})
    assert (
        s.tenant.call("PATCH", f"{ROLES}/{role['id']}", json={"description": "direct"}).status_code
        == 204
    )


def test_a_bulk_action_needs_an_approver_who_reaches_every_device(tenants: TenantFactory) -> None:
    s = seed(tenants)
    paris = s.tenant.scope_tag("Paris")
    devices = "/beta/deviceManagement/managedDevices"
    here = s.tenant.ok(
        "POST", devices, json={"deviceName": unique("PC"), "operatingSystem": "Windows"}
    )
    there = s.tenant.ok(
        "POST",
        devices,
        json={"deviceName": unique("PC"), "operatingSystem": "Windows", "roleScopeTagIds": [paris]},
    )
    s.tenant.assign("Multi Admin Approval Approver", [s.approvers], scope_tags=(paris,))
    only_default = s.tenant.group(unique("default-only"))
    s.tenant.assign("Multi Admin Approval Approver", [only_default], scope_tags=("0",))
    local = s.tenant.user(groups=(only_default,))
    s.activate_policy("deviceWipe", approvers=[s.approvers, only_default])
    request_id = s.submit(
        "POST",
        f"{devices}/executeAction",
        json={"actionName": "wipe", "deviceIds": [here["id"], there["id"]]},
    )
    refused = s.approve(request_id, local)  # reaches the Default device, not the Paris one
    assert refused.status_code == 400 and reason(refused) == "scopeTagNotReached"
    assert s.approve(request_id).json()["value"] == "approved"


def test_an_approver_who_approved_may_still_reject_and_the_rejection_replaces_it(
    tenants: TenantFactory, db: Database
) -> None:
    """Quorum 2: one approval, then the same approver rejects; one decision each (the primary
    key), and it is the rejection."""
    s = seed(tenants)
    s.tenant.user(unique("third"), groups=(s.approvers,))  # a quorum of 2 needs 3 approvers
    s.activate_policy("role", approvalsRequired=2)
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Quorum"})
    assert s.approve(request_id).status_code == 200
    rejected = s.tenant.call(
        "POST",
        f"{REQUESTS}/{request_id}/reject",
        s.admin2,
        json={"justification": "on second thought"},
    )
    assert rejected.status_code == 200, rejected.text
    assert s.request(request_id)["status"] == "rejected"
    with db.read() as session:
        decisions = session.scalars(
            select(t.ApprovalDecision).where(t.ApprovalDecision.request_id == request_id)
        ).all()
    assert [(d.approver_id, d.decision) for d in decisions] == [(s.admin2.id, "reject")]
