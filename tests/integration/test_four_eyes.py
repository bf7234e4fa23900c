"""One person can never act as two (SPEC §4 rule 10), tried as an attacker would through the API.

The tenant of every test: admin1 (the attacker, an Intune Administrator and in the approver
group), admin2 (a genuine approver), an `app` access policy active, no `role` policy. Each
attack either becomes a request that none of the identities involved can approve, or is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from tests.factories import PASSWORD, Principal, TenantFactory, unique
from tests.integration.test_admin_center import Browser
from tests.maa import REQUESTS, SCOPE_TAGS, Seed, b64, seed

APPS = "/beta/deviceAppManagement/mobileApps"
ASSIGNMENTS = "/beta/deviceManagement/roleAssignments"
ROLES = "/beta/deviceManagement/roleDefinitions"
POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
JUSTIFY = {"x-msft-approval-justification": b64("Four-eyes test")}


def reason(response: Any) -> str:
    return str(response.json()["error"]["innerError"]["reason"])


def app_body(name: str | None = None) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.win32LobApp",
        "displayName": name or unique("app"),
        "fileName": "setup.intunewin",
        "installCommandLine": "setup.exe /quiet",
        "uninstallCommandLine": "setup.exe /uninstall",
    }


@dataclass
class Attack:
    s: Seed
    policy_id: str
    app_id: str

    @property
    def tenant(self) -> Any:
        return self.s.tenant

    def new_user(self, name: str | None = None, password: str = PASSWORD) -> Principal:
        """An account the attacker creates and so controls (it holds nothing yet)."""
        upn = f"{name or unique('puppet')}@{self.tenant.domain}".lower()
        created = self.tenant.ok(
            "POST",
            "/beta/users",
            json={
                "displayName": upn.split("@")[0],
                "userPrincipalName": upn,
                "passwordProfile": {"password": password},
            },
        )
        return Principal(created["id"], upn, self.tenant.sign_in(upn, password).token)

    def delete_policy_request(self) -> str:
        """The attacker's goal: the app policy deleted."""
        return self.s.submit("DELETE", f"{POLICIES}/{self.policy_id}")

    def cannot_approve(self, request_id: str, *who: Principal) -> None:
        for principal in who:
            refused = self.s.approve(request_id, principal)
            assert refused.status_code in (400, 401), refused.text
            assert self.s.request(request_id)["status"] == "needsApproval"


@pytest.fixture()
def attack(tenants: TenantFactory) -> Attack:
    s = seed(tenants)
    app_id = s.tenant.ok("POST", APPS, json=app_body("7-Zip"))["id"]
    policy_id = s.activate_policy("app")
    return Attack(s, policy_id, app_id)


def approver_role_assignment(attack: Attack, group_id: str) -> dict[str, Any]:
    role = attack.tenant.roles["Multi Admin Approval Approver"]
    return {
        "displayName": unique("assignment"),
        "members": [group_id],
        "roleScopeTagIds": ["0"],
        "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role}')",
    }


# -- 1. minting an approver through RBAC --------------------------------------------------------


def test_a_role_assignment_that_makes_a_new_approver_needs_approval(attack: Attack) -> None:
    puppet = attack.new_user()
    group = attack.tenant.group(unique("mine"))
    attack.tenant.add_member(group, puppet.id)  # an unassigned group: grants nothing, applies
    body = approver_role_assignment(attack, group)
    plain = attack.tenant.call("POST", ASSIGNMENTS, json=body)
    assert plain.status_code == 400 and reason(plain) == "justificationMissing"
    request_id = attack.s.submit("POST", ASSIGNMENTS, json=body)
    request = attack.s.request(request_id)
    assert request["requiredOperationApprovalPolicyTypes"] == ["role"]
    gains = request["displayPayload"]["accessChange"]["gains"]
    assert [g["principalId"] for g in gains] == [puppet.id]
    assert attack.tenant.ok("GET", ASSIGNMENTS)["value"]  # nothing was applied meanwhile
    assert all(a["members"] != [group] for a in attack.tenant.ok("GET", ASSIGNMENTS)["value"])
    goal = attack.delete_policy_request()
    attack.cannot_approve(goal, puppet)  # the puppet is no approver
    attack.cannot_approve(request_id, puppet, attack.s.admin1)  # nor can it approve itself in
    # The genuine approver decides; without them nothing happens.
    assert attack.s.approve(request_id, attack.s.admin2).status_code == 200


def test_every_other_door_into_the_approver_role_needs_approval(attack: Attack) -> None:
    t = attack.tenant
    puppet = attack.new_user()
    # A group created with the puppet already in it grants nothing by itself: it applies.
    group = t.ok(
        "POST",
        "/beta/groups",
        json={
            "displayName": unique("bound"),
            "securityEnabled": True,
            "mailEnabled": False,
            "members@odata.bind": [
                f"https://graph.microsoft.com/v1.0/directoryObjects/{puppet.id}"
            ],
        },
    )["id"]
    custom = t.ok("POST", ROLES, json=custom_role(["Microsoft.Intune_MobileApps_Read"]))
    existing = next(
        a for a in t.ok("GET", ASSIGNMENTS)["value"] if a["members"] == [attack.s.approvers]
    )
    doors = [
        ("POST", ASSIGNMENTS, approver_role_assignment(attack, group)),
        # even a role that can only read: the puppet gains a permission
        ("POST", ASSIGNMENTS, {**approver_role_assignment(attack, group), **bind(custom["id"])}),
        # an existing assignment of the approver role gains the puppet's group
        ("PATCH", f"{ASSIGNMENTS}/{existing['id']}", {"members": [attack.s.approvers, group]}),
        # the puppet's group nested into the approver group
        (
            "POST",
            f"/beta/groups/{attack.s.approvers}/members/$ref",
            {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{group}"},
        ),
    ]
    for method, path, body in doors:
        response = t.call(method, path, json=body)
        assert response.status_code == 400 and reason(response) == "justificationMissing", (
            method,
            path,
            response.text,
        )
    goal = attack.delete_policy_request()
    attack.cannot_approve(goal, puppet)


def custom_role(actions: list[str]) -> dict[str, Any]:
    return {
        "displayName": unique("custom"),
        "rolePermissions": [{"resourceActions": [{"allowedResourceActions": actions}]}],
    }


def bind(role_id: str) -> dict[str, str]:
    return {
        "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role_id}')"
    }


def test_widening_an_assigned_custom_role_needs_approval(tenants: TenantFactory) -> None:
    s = seed(tenants)
    read = "Microsoft.Intune_MobileApps_Read"
    custom = s.tenant.ok("POST", ROLES, json=custom_role([read]))
    helpers = s.tenant.group(unique("helpers"))
    helper = s.tenant.user("helper", groups=(helpers,))
    s.tenant.assign(custom["id"], [helpers])
    s.activate_policy("app")
    widened = {
        "rolePermissions": [
            {
                "resourceActions": [
                    {"allowedResourceActions": [read, "Microsoft.Intune_MobileApps_Delete"]}
                ]
            }
        ]
    }
    response = s.tenant.call("PATCH", f"{ROLES}/{custom['id']}", json=widened)
    assert response.status_code == 400 and reason(response) == "justificationMissing"
    request_id = s.submit("PATCH", f"{ROLES}/{custom['id']}", json=widened)
    gains = s.request(request_id)["displayPayload"]["accessChange"]["gains"]
    assert gains == [
        {
            "principalId": helper.id,
            "permissions": [
                {"permission": "Microsoft.Intune_MobileApps_Delete", "scopeTagIds": ["0"]}
            ],
            "approvalPolicyIds": [],
        }
    ]
    # Narrowing it again grants nothing: it applies at once.
    narrowed = {"rolePermissions": [{"resourceActions": [{"allowedResourceActions": []}]}]}
    s.tenant.ok("POST", f"{REQUESTS}/cancelMyRequest", json={"id": request_id})
    assert s.tenant.call("PATCH", f"{ROLES}/{custom['id']}", json=narrowed).status_code in (
        200,
        204,
    )


# -- 2. nested groups --------------------------------------------------------------------------


def test_a_member_added_to_a_group_nested_in_the_approver_group_needs_approval(
    attack: Attack,
) -> None:
    t = attack.tenant
    nested = t.group(unique("nested"))
    t.add_member(attack.s.approvers, nested)  # empty: nobody gains anything, applies at once
    puppet = attack.new_user()
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{puppet.id}"}
    plain = t.call("POST", f"/beta/groups/{nested}/members/$ref", json=ref)
    assert plain.status_code == 400 and reason(plain) == "justificationMissing"
    request_id = attack.s.submit("POST", f"/beta/groups/{nested}/members/$ref", json=ref)
    attack.cannot_approve(request_id, puppet, attack.s.admin1)
    goal = attack.delete_policy_request()
    attack.cannot_approve(goal, puppet)


# -- 3. taking over the other side -------------------------------------------------------------


@pytest.fixture()
def with_victim(tenants: TenantFactory) -> tuple[Attack, Principal, Principal]:
    """admin3: a third genuine approver; victim: an administrator without approval rights.
    Both made before any policy is active."""
    s = seed(tenants)
    admin3 = s.tenant.user("admin3", roles=("Intune Administrator",), groups=(s.approvers,))
    victim = s.tenant.user("victim", roles=("Application Manager",))
    app_id = s.tenant.ok("POST", APPS, json=app_body())["id"]
    policy_id = s.activate_policy("app")
    return Attack(s, policy_id, app_id), victim, admin3


def test_a_password_reset_of_an_administrator_becomes_a_request_they_cannot_approve(
    with_victim: tuple[Attack, Principal, Principal],
) -> None:
    attack, victim, admin3 = with_victim
    t, approver = attack.tenant, attack.s.admin2
    body = {"passwordProfile": {"password": "Hijacked-Passw0rd-1"}}
    plain = t.call("PATCH", f"/beta/users/{victim.id}", approver, json=body)
    assert plain.status_code == 400 and reason(plain) == "justificationMissing"
    request_id = attack.s.submit("PATCH", f"/beta/users/{victim.id}", approver, json=body)
    refused = attack.s.approve(request_id, victim)
    assert refused.status_code == 400 and reason(refused) in (
        "approverIsSubject",
        "missingApprovalPermission",
    )
    assert reason(attack.s.approve(request_id, approver)) == "approverIsRequester"
    assert attack.s.request(request_id, approver)["status"] == "needsApproval"
    # The victim can still sign in with their own password: nothing was applied.
    assert t.sign_in(victim.upn).id == victim.id
    # The same for the other credentials.
    for other in (
        {"accountEnabled": False},
        {"userPrincipalName": f"{unique('moved')}@{t.domain}"},
        {"mail": "attacker@elsewhere.example"},
    ):
        response = t.call("PATCH", f"/beta/users/{admin3.id}", approver, json=other)
        assert response.status_code == 400 and reason(response) == "justificationMissing", other
    # Whoever the target is: a privileged user's password, reset by a non-approver, too.
    own = t.call("PATCH", f"/beta/users/{approver.id}", victim, json=body)
    assert own.status_code in (400, 403), own.text
    # A harmless edit of the same user applies at once.
    assert (
        t.call(
            "PATCH", f"/beta/users/{victim.id}", approver, json={"displayName": "Victim Two"}
        ).status_code
        == 204
    )


def test_a_subject_of_a_request_is_refused_with_a_reason(
    with_victim: tuple[Attack, Principal, Principal],
) -> None:
    attack, _victim, admin3 = with_victim
    body = {"passwordProfile": {"password": "Hijacked-Passw0rd-1"}}
    request_id = attack.s.submit("PATCH", f"/beta/users/{admin3.id}", json=body)
    refused = attack.s.approve(request_id, admin3)
    assert refused.status_code == 400 and reason(refused) == "approverIsSubject"
    assert attack.s.approve(request_id, attack.s.admin2).status_code == 200
    assert attack.s.complete(request_id).status_code == 204
    assert attack.tenant.sign_in(admin3.upn, "Hijacked-Passw0rd-1").id == admin3.id


def test_a_secret_for_a_privileged_service_principal_needs_approval(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    sp = s.tenant.service_principal("deployer", roles=("Application Manager",))
    s.activate_policy("app")
    sp_id = s.tenant.ok("GET", "/beta/me", sp)["id"]
    plain = s.tenant.call("POST", f"/beta/servicePrincipals/{sp_id}/addPassword", s.admin2, json={})
    assert plain.status_code == 400 and reason(plain) == "justificationMissing"
    request_id = s.submit("POST", f"/beta/servicePrincipals/{sp_id}/addPassword", s.admin2, json={})
    assert reason(s.approve(request_id, s.admin2)) == "approverIsRequester"
    # A service principal never approves; the genuine second administrator can.
    assert s.approve(request_id, s.admin1).status_code == 200
    minted = s.complete(request_id, s.admin2)
    assert minted.status_code == 200 and minted.json()["secretText"]
    # A secret for a service principal that holds nothing applies at once.
    idle = s.tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": unique("idle")})
    assert (
        s.tenant.call(
            "POST", f"/beta/servicePrincipals/{idle['id']}/addPassword", json={}
        ).status_code
        == 200
    )


# -- 4. scope tags through another assignment --------------------------------------------------


def test_scope_tags_count_only_through_the_assignment_that_makes_one_an_approver(
    tenants: TenantFactory,
) -> None:
    s = seed(tenants)
    paris = s.tenant.scope_tag("Paris")
    mixed = s.tenant.user("mixed", groups=(s.approvers,))  # approver role over tag 0 only
    reader_group = s.tenant.group(unique("paris-readers"))
    s.tenant.add_member(reader_group, mixed.id)
    s.tenant.assign("Read Only Operator", [reader_group], (paris,))
    app_id = s.tenant.ok("POST", APPS, json={**app_body(), "roleScopeTagIds": [paris]})["id"]
    s.activate_policy("app")
    request_id = s.submit("DELETE", f"{APPS}/{app_id}")
    refused = s.approve(request_id, mixed)
    assert refused.status_code == 400 and reason(refused) == "scopeTagNotReached"


# -- pending secrets ---------------------------------------------------------------------------


def test_a_pending_password_is_never_readable(
    with_victim: tuple[Attack, Principal, Principal],
) -> None:
    attack, victim, admin3 = with_victim
    secret = "Fresh-Passw0rd-42"
    body = {"passwordProfile": {"password": secret}}
    request_id = attack.s.submit("PATCH", f"/beta/users/{victim.id}", json=body)
    t = attack.tenant
    outputs = [
        t.call("GET", f"{REQUESTS}/{request_id}").text,
        t.call("GET", REQUESTS).text,
        t.call("GET", f"{REQUESTS}/retrieveMyRequests()").text,
        t.call("GET", "/beta/deviceManagement/auditEvents", params={"$top": "999"}).text,
    ]
    for shown in outputs:
        assert secret not in shown and "$argon2" not in shown and "argon2id" not in shown
    shown_body = t.ok("GET", f"{REQUESTS}/{request_id}")["payload"]["body"]
    assert shown_body["passwordProfile"]["password"] == "set (hidden)"
    assert attack.s.approve(request_id, admin3).status_code == 200
    wrong = t.call(
        "PATCH",
        f"/beta/users/{victim.id}",
        json={"passwordProfile": {"password": "Other-Passw0rd-42"}},
        headers={"x-msft-approval-code": request_id},
    )
    assert wrong.status_code == 403 and reason(wrong) == "payloadMismatch"
    done = t.call(
        "PATCH", f"/beta/users/{victim.id}", json=body, headers={"x-msft-approval-code": request_id}
    )
    assert done.status_code == 204, done.text
    assert t.sign_in(victim.upn, secret).id == victim.id
    hashed = t.call(
        "PATCH",
        f"/beta/users/{victim.id}",
        json={"passwordProfile": {"passwordHash": "$argon2id$v=19$m=65536,t=3,p=4$x$y"}},
    )
    assert hashed.status_code == 400


# -- no needless requests ----------------------------------------------------------------------


def test_changes_that_grant_nothing_apply_at_once(attack: Attack) -> None:
    t = attack.tenant
    user = attack.new_user()
    group = t.group(unique("plain"))
    t.add_member(group, user.id)
    t.ok("PATCH", f"/beta/users/{user.id}", json={"displayName": "Renamed"})
    t.ok("PATCH", f"/beta/users/{user.id}", json={"passwordProfile": {"password": "Other-Pass-77"}})
    t.ok("POST", SCOPE_TAGS, json={"displayName": unique("tag")})
    sp = t.ok("POST", "/beta/servicePrincipals", json={"displayName": unique("sp")})
    t.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})
    # An app no policy covers for its platform (the policy is notApplicable: all) is protected;
    # an unassigned custom role is not.
    t.ok(
        "POST",
        ROLES,
        json={
            "displayName": unique("custom"),
            "rolePermissions": [
                {
                    "resourceActions": [
                        {"allowedResourceActions": ["Microsoft.Intune_MobileApps_Read"]}
                    ]
                }
            ],
        },
    )
    # Removing someone's access grants nothing either (the lockout guard still watches).
    t.ok("DELETE", f"/beta/groups/{group}/members/{user.id}/$ref")
    mine = t.ok("GET", f"{REQUESTS}/retrieveMyRequests()")["value"]
    assert [r for r in mine if r["status"] == "needsApproval"] == []


# -- completion applies only what was approved --------------------------------------------------


def test_completion_refuses_when_the_change_would_now_grant_more(
    with_victim: tuple[Attack, Principal, Principal],
) -> None:
    attack, _victim, admin3 = with_victim
    t, s = attack.tenant, attack.s
    outer = t.group(unique("outer"))
    puppet = attack.new_user()
    # Request 1: add the puppet to an unassigned group... which grants nothing, so it applies.
    t.add_member(outer, puppet.id)
    # Request 2 (approved, not completed): nest `outer` into the approver group.
    nest = s.submit(
        "POST",
        f"/beta/groups/{s.approvers}/members/$ref",
        json={"@odata.id": outer},
    )
    assert s.approve(nest, admin3).status_code == 200
    # Meanwhile another member joins `outer` through its own approval... (it would gain once
    # `outer` is nested): before the nest completes, nothing is granted, so it applies.
    other = attack.new_user()
    t.add_member(outer, other.id)
    completed = s.complete(nest)
    assert completed.status_code == 409 and reason(completed) == "accessChanged"


# -- the credential bugs -------------------------------------------------------------------------


def test_sign_in_to_the_admin_center_after_a_password_reset(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant = tenants()
    tenant.ok(
        "PATCH",
        f"/beta/users/{tenant.admin.id}",
        json={"passwordProfile": {"password": "New-Passw0rd-9"}},
    )
    web = Browser(app)
    signed = web.sign_in(tenant.admin.upn, "New-Passw0rd-9")
    assert signed.status_code == 303
    home = web.follow(signed)
    assert home.status_code == 200 and "sign-in" not in str(home.url)
    assert web.get("/admin/apps").status_code == 200
    web.client.close()


def test_auto_complete_after_the_requesters_password_changed(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("role", autoComplete=True)
    s.tenant.ok(
        "POST",
        "/beta/me/changePassword",
        json={"currentPassword": PASSWORD, "newPassword": "Changed-Passw0rd-3"},
    )
    admin1 = s.tenant.sign_in(s.admin1.upn, "Changed-Passw0rd-3")
    request_id = s.submit("POST", SCOPE_TAGS, admin1, json={"displayName": unique("auto")})
    approved = s.approve(request_id)
    assert approved.status_code == 200, approved.text
    assert s.request(request_id, admin1)["status"] == "completed"


def test_a_token_issued_just_before_a_password_change_is_revoked(tenants: TenantFactory) -> None:
    tenant = tenants()
    user = tenant.user("quick")
    # Issued and revoked within the same second, as fast as the API allows.
    tenant.ok(
        "PATCH",
        f"/beta/users/{user.id}",
        json={"passwordProfile": {"password": "Quick-Passw0rd-1"}},
    )
    assert tenant.call("GET", "/beta/me", user).status_code == 401
    fresh = tenant.sign_in(user.upn, "Quick-Passw0rd-1")
    assert tenant.call("GET", "/beta/me", fresh).status_code == 200


def test_change_own_password(tenants: TenantFactory) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    wrong = s.tenant.call(
        "POST",
        "/beta/me/changePassword",
        s.admin2,
        json={"currentPassword": "not-it-at-all", "newPassword": "Mine-Passw0rd-5"},
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["message"] == (
        "The current password is incorrect."
    )
    done = s.tenant.call(
        "POST",
        "/beta/me/changePassword",
        s.admin2,
        json={"currentPassword": PASSWORD, "newPassword": "Mine-Passw0rd-5"},
    )
    assert done.status_code == 204, done.text  # not protected: the owner proved the password
    assert s.tenant.call("GET", "/beta/me", s.admin2).status_code == 401  # old token ended
    assert s.tenant.sign_in(s.admin2.upn, "Mine-Passw0rd-5").id == s.admin2.id
    audit = s.tenant.ok(
        "GET",
        "/beta/deviceManagement/auditEvents",
        params={"$filter": "activity eq 'Change own password'"},
    )
    assert len(audit["value"]) == 1


def test_change_own_password_in_the_admin_center(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    web = Browser(app)
    assert web.sign_in(tenant.admin.upn).status_code == 303
    web.get("/admin/password")
    wrong = web.post(
        "/admin/password", {"current_password": "not-mine-at-all", "new_password": "Web-Passw0rd-8"}
    )
    assert wrong.status_code == 400 and "The current password is incorrect." in wrong.text
    done = web.post(
        "/admin/password", {"current_password": PASSWORD, "new_password": "Web-Passw0rd-8"}
    )
    page = web.follow(done)
    assert "Your password was" in page.text  # still signed in, on a new session
    assert "Web-Passw0rd-8" not in page.text
    assert tenant.call("GET", "/beta/me").status_code == 401  # the API token of before ended
    assert tenant.sign_in(tenant.admin.upn, "Web-Passw0rd-8").id == tenant.admin.id
    web.client.close()
