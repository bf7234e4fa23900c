"""Multi admin approval test helpers: the seed's tenant and the approval handshake."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tests.factories import Principal, Tenant, TenantFactory

POLICIES = "/beta/deviceManagement/operationApprovalPolicies"
REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
SCOPE_TAGS = "/beta/deviceManagement/roleScopeTags"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Seed:
    """The seed's tenant: two administrators, both in the Intune Change Approvers group, which
    is a member group of a role assignment of the Multi Admin Approval Approver role."""

    tenant: Tenant
    admin1: Principal
    admin2: Principal
    approvers: str

    def submit(
        self,
        method: str,
        path: str,
        who: Principal | None = None,
        justification: str = "Business need",
        **kwargs: Any,
    ) -> str:
        """Make a protected write with a justification; returns the new request's id."""
        response = self.tenant.call(
            method,
            path,
            who or self.admin1,
            headers={"x-msft-approval-justification": b64(justification)},
            **kwargs,
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "ApprovalRequired"
        return response.headers["x-msft-approval-code"]

    def approve(
        self, request_id: str, who: Principal | None = None, notes: str = "Looks right"
    ) -> Any:
        return self.tenant.call(
            "POST",
            f"{REQUESTS}/{request_id}/approve",
            who or self.admin2,
            json={"justification": notes, "approvalSource": "adminConsole"},
        )

    def request(self, request_id: str, who: Principal | None = None) -> Any:
        return self.tenant.ok("GET", f"{REQUESTS}/{request_id}", who or self.admin1)

    def request_status(self, entity_id: str, entity_type: str) -> Any:
        """retrieveRequestStatus: whether an object is locked, and by which request."""
        return self.tenant.ok(
            "POST",
            f"{REQUESTS}/retrieveRequestStatus",
            json={"entityId": entity_id, "entityType": entity_type},
        )

    def complete(self, request_id: str, who: Principal | None = None) -> Any:
        return self.tenant.call("POST", f"{REQUESTS}/{request_id}/complete", who or self.admin1)

    def activate_policy(
        self,
        policy_type: str,
        platform: str = "notApplicable",
        approvers: list[str] | None = None,
        **extra: Any,
    ) -> str:
        """Create an access policy through the whole approval flow; returns its id."""
        request_id = self.submit(
            "POST",
            POLICIES,
            json={
                "displayName": f"Protect {policy_type}",
                "policyType": policy_type,
                "policyPlatform": platform,
                "approverGroupIds": approvers or [self.approvers],
                **extra,
            },
        )
        assert self.approve(request_id).status_code == 200
        completed = self.complete(request_id)
        assert completed.status_code == 201, completed.text
        policy_id: str = completed.json()["id"]
        return policy_id


def seed(tenants: TenantFactory) -> Seed:
    tenant = tenants()
    approvers = tenant.group("Intune Change Approvers")
    tenant.assign("Multi Admin Approval Approver", [approvers])
    admin2 = tenant.user("admin2", roles=("Intune Administrator",), groups=(approvers,))
    tenant.add_member(approvers, tenant.admin.id)
    return Seed(tenant, tenant.admin, admin2, approvers)
