"""A lone administrator, and every identity it makes or whose credentials it sets, try random
sequences of calls through the HTTP API to get a protected change through without a second
person (SPEC §4 rule 10).

The tenant: admin1 (the attacker: Intune Administrator, in the approver group), admin2 (a
genuine approver who never acts here), an `app` access policy, one app. The attacker controls
admin1 and every principal whose password or secret it sets. After every step:

- no request whose requester the attacker controls carries an approval by an identity the
  attacker controls (none but controlled identities act, so: no approval of such a request);
- no protected object (the app, the access policy) changed.

Hypothesis prints the failing sequence and how to reproduce it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from countersign.auth import passwords
from countersign.domain import permissions as p
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, Principal, TenantFactory, unique
from tests.maa import POLICIES, REQUESTS, SCOPE_TAGS, b64, seed

APPS = "/beta/deviceAppManagement/mobileApps"
ASSIGNMENTS = "/beta/deviceManagement/roleAssignments"
ROLES = "/beta/deviceManagement/roleDefinitions"
ON_POSTGRES = bool(os.environ.get("COUNTERSIGN_TEST_DATABASE_URL"))
EXAMPLES = int(os.environ.get("LONE_ADMIN_EXAMPLES", 50 if ON_POSTGRES else 200))
PERMISSION_CHOICES = [
    p.APPROVAL_FOR_MAA,
    p.MOBILE_APPS_READ,
    p.MOBILE_APPS_CREATE,
    p.MOBILE_APPS_DELETE,
    p.ROLES_ASSIGN,
    p.ROLES_READ,
]
WIN32 = {
    "@odata.type": "#microsoft.graph.win32LobApp",
    "fileName": "setup.intunewin",
    "installCommandLine": "setup.exe /quiet",
    "uninstallCommandLine": "setup.exe /uninstall",
}
BUILT_IN = ["Intune Administrator", "Multi Admin Approval Approver", "Application Manager"]


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


@pytest.fixture()
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id still, with the smallest cost: hundreds of accounts are made and signed in."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@dataclass
class Actor:
    principal: Principal
    kind: str  # "user" or "servicePrincipal"


def test_a_lone_administrator_never_gets_a_protected_change_through(
    client: TestClient, db: Database, cheap_hashes: None
) -> None:
    tenants = TenantFactory(client, db)

    class LoneAdministrator(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.s = seed(tenants)
            self.t = self.s.tenant
            self.app_id = self.t.ok(
                "POST",
                APPS,
                json={**WIN32, "displayName": "7-Zip"},
            )["id"]
            self.policy_id = self.s.activate_policy("app")
            self.controlled: dict[str, Actor] = {self.s.admin1.id: Actor(self.s.admin1, "user")}
            self.users = [self.s.admin1.id, self.s.admin2.id]
            self.groups = [self.s.approvers]
            self.roles = [self.t.roles[name] for name in BUILT_IN]
            self.assignments = [
                a["id"] for a in self.t.ok("GET", ASSIGNMENTS, self.s.admin1)["value"]
            ]
            self.sps: list[dict[str, Any]] = []
            self.requests: list[str] = []
            self.protected = self._protected_state()

        # -- helpers ----------------------------------------------------------------------
        def _protected_state(self) -> tuple[Any, ...]:
            with db.read() as session:
                apps = session.execute(
                    select(t.Resource.id, t.Resource.version).where(
                        t.Resource.tenant_id == self.t.id
                    )
                ).all()
                policies = session.execute(
                    select(t.ApprovalPolicy.id, t.ApprovalPolicy.version).where(
                        t.ApprovalPolicy.tenant_id == self.t.id
                    )
                ).all()
            return tuple(sorted(apps)), tuple(sorted(policies))

        def _actor(self, data: st.DataObject) -> Actor:
            return self.controlled[data.draw(st.sampled_from(list(self.controlled)))]

        def _write(
            self, data: st.DataObject, method: str, path: str, body: dict[str, Any] | None
        ) -> Any:
            """A write by a controlled identity, sometimes with a justification (a request)."""
            actor = self._actor(data)
            headers = {}
            if data.draw(st.booleans()):
                headers["x-msft-approval-justification"] = b64("lone")
            response = self.t.call(method, path, actor.principal, json=body, headers=headers)
            assert response.status_code < 500, response.text
            code = response.headers.get("x-msft-approval-code")
            if code:
                self.requests.append(code)
            return response

        def _take(self, user_id: str, password: str) -> None:
            """The attacker set this user's password: it now controls the account."""
            with db.read() as session:
                upn = session.scalar(select(t.User.user_principal_name).where(t.User.id == user_id))
            token = self.t.client.post(
                "/oauth2/token",
                data={"grant_type": "password", "username": upn, "password": password},
            )
            if token.status_code == 200:
                principal = Principal(user_id, upn, token.json()["access_token"])
                self.controlled[user_id] = Actor(principal, "user")

        # -- identities -------------------------------------------------------------------
        @rule(data=st.data())
        def create_user(self, data: st.DataObject) -> None:
            upn = f"{unique('u')}@{self.t.domain}"
            body = {
                "displayName": upn,
                "userPrincipalName": upn,
                "passwordProfile": {"password": PASSWORD},
            }
            response = self._write(data, "POST", "/beta/users", body)
            if response.status_code == 201:
                self.users.append(response.json()["id"])
                self._take(response.json()["id"], PASSWORD)

        @rule(data=st.data())
        def reset_password(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(self.users))
            password = f"Reset-{unique('p')}"
            body = {"passwordProfile": {"password": password}}
            if self._write(data, "PATCH", f"/beta/users/{target}", body).status_code == 204:
                self._take(target, password)

        @rule(data=st.data(), enabled=st.booleans())
        def set_account_enabled(self, data: st.DataObject, enabled: bool) -> None:
            target = data.draw(st.sampled_from(self.users))
            self._write(data, "PATCH", f"/beta/users/{target}", {"accountEnabled": enabled})

        @rule(data=st.data())
        def change_upn(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(self.users))
            body = {"userPrincipalName": f"{unique('moved')}@{self.t.domain}"}
            self._write(data, "PATCH", f"/beta/users/{target}", body)

        @rule(data=st.data())
        def create_service_principal(self, data: st.DataObject) -> None:
            response = self._write(
                data, "POST", "/beta/servicePrincipals", {"displayName": unique("sp")}
            )
            if response.status_code == 201:
                self.sps.append(response.json())

        @rule(data=st.data())
        def add_secret(self, data: st.DataObject) -> None:
            if not self.sps:
                return
            sp = data.draw(st.sampled_from(self.sps))
            response = self._write(
                data, "POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", {}
            )
            if response.status_code == 200:
                token = self.t.client.post(
                    "/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": sp["appId"],
                        "client_secret": response.json()["secretText"],
                    },
                )
                assert token.status_code == 200
                principal = Principal(sp["id"], sp["appId"], token.json()["access_token"])
                self.controlled[sp["id"]] = Actor(principal, "servicePrincipal")

        # -- groups -----------------------------------------------------------------------
        @rule(data=st.data(), with_members=st.booleans())
        def create_group(self, data: st.DataObject, with_members: bool) -> None:
            body: dict[str, Any] = {"displayName": unique("g"), "securityEnabled": True}
            if with_members:
                member = data.draw(st.sampled_from(list(self.controlled)))
                body["members@odata.bind"] = [ref(member)["@odata.id"]]
            response = self._write(data, "POST", "/beta/groups", body)
            if response.status_code == 201:
                self.groups.append(response.json()["id"])

        @rule(data=st.data())
        def add_member(self, data: st.DataObject) -> None:
            group = data.draw(st.sampled_from(self.groups))
            member = data.draw(st.sampled_from(list(self.controlled) + self.groups))
            self._write(data, "POST", f"/beta/groups/{group}/members/$ref", ref(member))

        @rule(data=st.data())
        def remove_member(self, data: st.DataObject) -> None:
            group = data.draw(st.sampled_from(self.groups))
            member = data.draw(st.sampled_from(self.users + self.groups))
            self._write(data, "DELETE", f"/beta/groups/{group}/members/{member}/$ref", None)

        @rule(data=st.data())
        def delete_group(self, data: st.DataObject) -> None:
            group = data.draw(st.sampled_from(self.groups))
            self._write(data, "DELETE", f"/beta/groups/{group}", None)

        # -- RBAC -------------------------------------------------------------------------
        @rule(data=st.data(), permissions=st.sets(st.sampled_from(PERMISSION_CHOICES)))
        def create_role(self, data: st.DataObject, permissions: set[str]) -> None:
            body = {
                "displayName": unique("role"),
                "rolePermissions": [
                    {"resourceActions": [{"allowedResourceActions": sorted(permissions)}]}
                ],
            }
            response = self._write(data, "POST", ROLES, body)
            if response.status_code == 201:
                self.roles.append(response.json()["id"])

        @rule(data=st.data(), permissions=st.sets(st.sampled_from(PERMISSION_CHOICES)))
        def edit_role(self, data: st.DataObject, permissions: set[str]) -> None:
            role = data.draw(st.sampled_from(self.roles))
            body = {
                "rolePermissions": [
                    {"resourceActions": [{"allowedResourceActions": sorted(permissions)}]}
                ]
            }
            self._write(data, "PATCH", f"{ROLES}/{role}", body)

        @rule(data=st.data())
        def delete_role(self, data: st.DataObject) -> None:
            self._write(data, "DELETE", f"{ROLES}/{data.draw(st.sampled_from(self.roles))}", None)

        @rule(data=st.data())
        def assign_role(self, data: st.DataObject) -> None:
            role = data.draw(st.sampled_from(self.roles))
            groups = data.draw(st.lists(st.sampled_from(self.groups), min_size=1, max_size=2))
            body = {
                "displayName": unique("a"),
                "members": sorted(set(groups)),
                "roleScopeTagIds": ["0"],
                "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role}')",
            }
            response = self._write(data, "POST", ASSIGNMENTS, body)
            if response.status_code == 201:
                self.assignments.append(response.json()["id"])

        @rule(data=st.data())
        def edit_assignment(self, data: st.DataObject) -> None:
            assignment = data.draw(st.sampled_from(self.assignments))
            groups = data.draw(st.lists(st.sampled_from(self.groups), min_size=1, max_size=3))
            body = {"members": sorted(set(groups))}
            self._write(data, "PATCH", f"{ASSIGNMENTS}/{assignment}", body)

        @rule(data=st.data())
        def delete_assignment(self, data: st.DataObject) -> None:
            assignment = data.draw(st.sampled_from(self.assignments))
            self._write(data, "DELETE", f"{ASSIGNMENTS}/{assignment}", None)

        @rule(data=st.data())
        def create_scope_tag(self, data: st.DataObject) -> None:
            self._write(data, "POST", SCOPE_TAGS, {"displayName": unique("tag")})

        # -- protected objects and the approval flow --------------------------------------
        @rule(data=st.data())
        def delete_the_app(self, data: st.DataObject) -> None:
            self._write(data, "DELETE", f"{APPS}/{self.app_id}", None)

        @rule(data=st.data())
        def create_an_app(self, data: st.DataObject) -> None:
            body = {**WIN32, "displayName": unique("app")}
            self._write(data, "POST", APPS, body)

        @rule(data=st.data())
        def delete_the_policy(self, data: st.DataObject) -> None:
            self._write(data, "DELETE", f"{POLICIES}/{self.policy_id}", None)

        @rule(data=st.data())
        def edit_the_policy(self, data: st.DataObject) -> None:
            group = data.draw(st.sampled_from(self.groups))
            self._write(
                data, "PATCH", f"{POLICIES}/{self.policy_id}", {"approverGroupIds": [group]}
            )

        @rule(data=st.data(), verb=st.sampled_from(["approve", "reject", "cancelApproval"]))
        def decide(self, data: st.DataObject, verb: str) -> None:
            if not self.requests:
                return
            request_id = data.draw(st.sampled_from(self.requests))
            actor = self._actor(data)
            response = self.t.call(
                "POST",
                f"{REQUESTS}/{request_id}/{verb}",
                actor.principal,
                json={"justification": "ok", "approvalSource": "adminConsole"},
            )
            assert response.status_code < 500, response.text

        @rule(data=st.data())
        def complete(self, data: st.DataObject) -> None:
            if not self.requests:
                return
            request_id = data.draw(st.sampled_from(self.requests))
            response = self.t.call(
                "POST", f"{REQUESTS}/{request_id}/complete", self._actor(data).principal
            )
            assert response.status_code < 500, response.text

        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            if not self.requests:
                return
            request_id = data.draw(st.sampled_from(self.requests))
            response = self.t.call(
                "POST",
                f"{REQUESTS}/cancelMyRequest",
                self._actor(data).principal,
                json={"id": request_id},
            )
            assert response.status_code < 500, response.text

        # -- what must always hold ----------------------------------------------------------
        @invariant()
        def no_self_approval_and_no_protected_change(self) -> None:
            controlled = set(self.controlled)
            with db.read() as session:
                approvals = session.execute(
                    select(t.ApprovalRequest.id, t.ApprovalDecision.approver_id)
                    .join(t.ApprovalDecision, t.ApprovalDecision.request_id == t.ApprovalRequest.id)
                    .where(
                        t.ApprovalRequest.tenant_id == self.t.id,
                        t.ApprovalRequest.requestor_id.in_(controlled),
                        t.ApprovalDecision.decision == "approve",
                    )
                ).all()
            assert [row for row in approvals if row.approver_id in controlled] == []
            assert self._protected_state() == self.protected
            # The genuine approver's credentials were never set by the attacker.
            assert self.s.admin2.id not in controlled

    run_state_machine_as_test(
        LoneAdministrator,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=30,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
