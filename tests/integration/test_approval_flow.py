"""The seed's story through the Graph API, and the approval handshake (SPEC §3, §4, §5)."""

from __future__ import annotations

from tests.factories import TenantFactory
from tests.maa import POLICIES, REQUESTS, SCOPE_TAGS, b64, seed


def test_access_policy_protects_nothing_until_its_request_is_approved_and_completed(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    body = {
        "displayName": "Protect apps",
        "policyType": "app",
        "policyPlatform": "windows10AndLater,windows81AndLater,windows10X",
        "approverGroupIds": [s.approvers],
    }
    without = s.tenant.call("POST", POLICIES, json=body)
    assert without.status_code == 400
    assert without.json()["error"]["message"] == (
        "Header 'x-msft-approval-justification' is required to request approval"
    )
    request_id = s.submit("POST", POLICIES, json=body, justification="Protect Windows apps")
    pending = s.request(request_id)
    assert pending["status"] == "needsApproval"
    assert pending["requestJustification"] == "Protect Windows apps"
    assert pending["requiredOperationApprovalPolicyTypes"] == ["operationApprovalPolicy"]
    assert pending["requestor"] == {"user": {"id": s.admin1.id, "displayName": "Administrator 1"}}
    assert s.tenant.ok("GET", POLICIES)["value"] == []

    own = s.approve(request_id, s.admin1)
    assert own.status_code == 400
    assert (
        own.json()["error"]["message"]
        == "Requesting user does not have proper permissions to approve"
    )
    assert own.json()["error"]["innerError"]["reason"] == "approverIsRequester"

    approved = s.approve(request_id, notes="Agreed in CAB")
    assert approved.status_code == 200
    assert approved.json()["value"] == "approved"
    assert s.tenant.ok("GET", POLICIES)["value"] == []  # approved, not yet completed
    seen = s.request(request_id)
    assert seen["approvalJustification"] == "Agreed in CAB"
    assert seen["approver"]["user"]["id"] == s.admin2.id

    assert s.complete(request_id, s.admin2).status_code == 403  # only the requester completes
    completed = s.complete(request_id)
    assert completed.status_code == 201
    policy = completed.json()
    assert policy["policySet"] == {"policyType": "app", "policyPlatform": policy["policyPlatform"]}
    assert s.request(request_id)["status"] == "completed"
    assert [p["id"] for p in s.tenant.ok("GET", POLICIES)["value"]] == [policy["id"]]


def test_replay_handshake_applies_only_the_identical_operation_by_the_requester(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    body = {"displayName": "Paris", "description": "Paris office"}
    request_id = s.submit("POST", SCOPE_TAGS, json=body)
    assert (
        s.tenant.ok("GET", SCOPE_TAGS, params={"$filter": "displayName eq 'Paris'"})["value"] == []
    )

    def replay(who: object = None, payload: object = body, code: str = request_id) -> object:
        return s.tenant.call(
            "POST",
            SCOPE_TAGS,
            who or s.admin1,  # type: ignore[arg-type]
            json=payload,
            headers={"x-msft-approval-code": code},
        )

    early = replay()
    assert early.status_code == 403
    assert early.json()["error"]["innerError"]["reason"] == "status:needsApproval"
    assert s.approve(request_id).status_code == 200
    changed = replay(payload={**body, "description": "Lyon office"})
    assert changed.status_code == 403
    assert changed.json()["error"]["innerError"]["reason"] == "payloadMismatch"
    other = replay(who=s.admin2)
    assert other.status_code == 403
    assert other.json()["error"]["innerError"]["reason"] == "notRequester"
    done = s.tenant.call(
        "POST",
        SCOPE_TAGS,
        s.admin1,
        content='{ "description": "Paris office",  "displayName": "Paris" }',
        headers={"x-msft-approval-code": request_id, "content-type": "application/json"},
    )
    assert done.status_code == 201, done.text
    assert done.json()["displayName"] == "Paris"
    assert s.request(request_id)["status"] == "completed"
    again = replay()
    assert again.status_code == 403
    assert again.json()["error"]["innerError"]["reason"] == "status:completed"


def test_bad_justifications_are_refused_and_create_nothing(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    for header, reason in (
        ("not base64!", "justificationNotBase64"),
        (b64("x" * 1025), "justificationTooLong"),
        (b64("   "), "justificationMissing"),
    ):
        response = s.tenant.call(
            "POST",
            SCOPE_TAGS,
            json={"displayName": "Lyon"},
            headers={"x-msft-approval-justification": header},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["innerError"]["reason"] == reason
    assert s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequests()")["value"][0]["payloadType"] == (
        "operationApprovalPolicy"
    )
    assert len(s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequests()")["value"]) == 1
    exactly = s.submit("POST", SCOPE_TAGS, json={"displayName": "Lyon"}, justification="y" * 1024)
    assert s.request(exactly)["requestJustification"] == "y" * 1024


def test_policy_functions_and_validation(tenants: TenantFactory) -> None:
    s = seed(tenants)
    approvable = s.tenant.ok("GET", f"{POLICIES}/retrieveApprovableOperations()")["value"]
    pairs = {(p["policyType"], p["policyPlatform"]) for p in approvable}
    assert ("app", "windows10AndLater") in pairs and ("script", "notApplicable") in pairs
    assert ("script", "macOS") not in pairs
    required = s.tenant.ok("GET", f"{POLICIES}/retrieveOperationsRequiringApproval()")["value"]
    assert [(p["policyType"], p["policyPlatform"]) for p in required] == [
        ("operationApprovalPolicy", "notApplicable")
    ]
    s.activate_policy("app", platform="iOSiPadOS,macOS")
    required = s.tenant.ok("GET", f"{POLICIES}/retrieveOperationsRequiringApproval()")["value"]
    assert ("app", "macOS") in {(p["policyType"], p["policyPlatform"]) for p in required}

    mail_group = s.tenant.group("Mail list", security=True, mail=True)
    unassigned = s.tenant.group("No role")
    for body, needle in (
        ({"policyType": "script", "policyPlatform": "windows10AndLater"}, "notApplicable"),
        ({"policyType": "printer"}, "printer"),
        ({"policyType": "app", "approverGroupIds": [mail_group]}, "security group"),
        ({"policyType": "app", "approverGroupIds": [unassigned]}, "role assignment"),
        ({"policyType": "app", "approverGroupIds": []}, "approverGroupIds"),
        ({"policyType": "app", "displayName": "x" * 129}, "displayName"),
    ):
        full = {"displayName": "P", "approverGroupIds": [s.approvers], **body}
        response = s.tenant.call(
            "POST", POLICIES, json=full, headers={"x-msft-approval-justification": b64("why")}
        )
        assert response.status_code == 400, (body, response.text)
        assert needle in response.json()["error"]["message"], (needle, response.text)
    mine = s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequests()")["value"]
    assert {r["status"] for r in mine} == {"completed"}


def test_request_lists_filter_and_page(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    ids = [s.submit("POST", SCOPE_TAGS, json={"displayName": f"Tag {i}"}) for i in range(5)]
    assert s.approve(ids[0]).status_code == 200
    waiting = s.tenant.ok(
        "GET",
        REQUESTS,
        s.admin2,
        params={"$filter": "status eq 'needsApproval'", "$top": "2", "$count": "true"},
    )
    assert waiting["@odata.count"] == 4 and len(waiting["value"]) == 2
    seen = [r["id"] for r in waiting["value"]]
    last = s.tenant.client.get(waiting["@odata.nextLink"], headers=s.admin2.headers).json()
    seen += [r["id"] for r in last["value"]]
    assert "@odata.nextLink" not in last
    assert seen == list(reversed(ids[1:]))  # newest first, each exactly once
    approved = s.tenant.ok(
        "GET",
        REQUESTS,
        params={
            "$filter": "status in ('approved', 'completed') "
            "and requiredOperationApprovalPolicyTypes eq 'role'"
        },
    )
    assert [r["id"] for r in approved["value"]] == [ids[0]]


def test_retrieve_my_request_by_id_shows_only_my_own(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Mine"})
    mine = s.tenant.ok("GET", f"{REQUESTS}/retrieveMyRequestById(id='{request_id}')")
    assert mine["id"] == request_id
    theirs = s.tenant.call("GET", f"{REQUESTS}/retrieveMyRequestById(id='{request_id}')", s.admin2)
    assert theirs.status_code == 404
    assert s.tenant.call("GET", f"{REQUESTS}/{request_id}", s.admin2).status_code == 200
