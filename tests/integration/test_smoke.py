from tests.factories import TenantFactory


def test_admin_signs_in_and_reads_itself(tenants: TenantFactory) -> None:
    tenant = tenants()
    me = tenant.ok("GET", "/beta/me")
    assert me["userPrincipalName"] == tenant.admin.upn
    assert me["tenantId"] == tenant.id


def test_user_with_role_is_created_and_signs_in(tenants: TenantFactory) -> None:
    tenant = tenants()
    operator = tenant.user(roles=("Read Only Operator",))
    listed = tenant.ok("GET", "/beta/deviceManagement/roleDefinitions", operator)
    assert {"Intune Administrator", "Multi Admin Approval Approver"} <= {
        r["displayName"] for r in listed["value"]
    }
    refused = tenant.call("POST", "/beta/groups", operator, json={"displayName": "x"})
    assert refused.status_code == 403
