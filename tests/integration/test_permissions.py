"""Permissions are checked on every endpoint, and scope tags hide what a caller cannot reach."""

from __future__ import annotations

from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, row_counts, unique

DM = "/beta/deviceManagement"


def _custom_role(tenant: Tenant, tags: list[str]) -> str:
    return tenant.role_definition(unique("tagged-role"), ["Microsoft.Intune_Audit_Read"], tags)


def test_principal_without_roles_is_refused_everything_but_itself(tenants: TenantFactory) -> None:
    tenant = tenants()
    nobody = tenant.user()
    assert tenant.ok("GET", "/beta/me", nobody)["id"] == nobody.id
    for path in (
        "/beta/users",
        f"/beta/users/{tenant.admin.id}",
        "/beta/groups",
        "/beta/servicePrincipals",
        f"{DM}/roleDefinitions",
        f"{DM}/roleAssignments",
        f"{DM}/roleScopeTags",
    ):
        response = tenant.call("GET", path, nobody)
        assert response.status_code == 403, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "Forbidden"
        assert error["innerError"]["reason"] == "missingPermission"


def test_read_only_operator_reads_but_cannot_write(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    reader = tenant.user(roles=("Read Only Operator",))
    group = tenant.group(unique("g"))
    assert tenant.ok("GET", "/beta/users", reader)["value"]
    assert tenant.ok("GET", f"/beta/groups/{group}/members", reader)["value"] == []
    before = row_counts(db, tenant.id)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{reader.id}"}
    for method, path, body in [
        ("POST", "/beta/users", {"displayName": "x", "userPrincipalName": f"x@{tenant.domain}"}),
        ("PATCH", f"/beta/users/{tenant.admin.id}", {"displayName": "x"}),
        ("PATCH", f"/beta/users/{reader.id}", {"passwordProfile": {"password": "Whatever-123"}}),
        ("DELETE", f"/beta/users/{tenant.admin.id}", None),
        ("POST", "/beta/groups", {"displayName": "x"}),
        ("POST", f"/beta/groups/{group}/members/$ref", ref),
        ("POST", "/beta/servicePrincipals", {"displayName": "x"}),
        ("POST", f"{DM}/roleScopeTags", {"displayName": "x"}),
        ("POST", f"{DM}/roleDefinitions", {"displayName": "x"}),
        (
            "POST",
            f"{DM}/roleAssignments",
            {
                "displayName": "self-promotion",
                "members": [group],
                "roleDefinitionId": tenant.roles["Intune Administrator"],
            },
        ),
    ]:
        response = tenant.call(method, path, reader, json=body)
        assert response.status_code == 403, (method, path, response.text)
    assert row_counts(db, tenant.id) == before


def test_scope_tags_hide_role_definitions_outside_the_callers_tags(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    tag = tenant.scope_tag(unique("Paris"))
    hidden = _custom_role(tenant, [tag])
    visible = _custom_role(tenant, ["0"])
    default_only = tenant.user(roles=("Read Only Operator",), scope_tags=("0",))
    paris = tenant.user(roles=("Read Only Operator",), scope_tags=(tag,))

    listed = {r["id"] for r in tenant.ok("GET", f"{DM}/roleDefinitions", default_only)["value"]}
    assert visible in listed and hidden not in listed
    assert tenant.roles["Intune Administrator"] in listed  # built-ins carry tag 0
    assert tenant.call("GET", f"{DM}/roleDefinitions/{hidden}", default_only).status_code == 404
    counted = tenant.ok("GET", f"{DM}/roleDefinitions?$count=true&$top=1", default_only)
    assert counted["@odata.count"] == len(listed)

    listed = {r["id"] for r in tenant.ok("GET", f"{DM}/roleDefinitions", paris)["value"]}
    assert hidden in listed and visible not in listed
    assert tenant.ok("GET", f"{DM}/roleDefinitions/{hidden}", paris)["id"] == hidden

    # The first administrator spans every tag, present and future.
    listed = {r["id"] for r in tenant.ok("GET", f"{DM}/roleDefinitions?$top=999")["value"]}
    assert {hidden, visible} <= listed


def test_a_scoped_administrator_cannot_touch_or_hand_out_what_it_cannot_see(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    tag = tenant.scope_tag(unique("Lyon"))
    hidden = _custom_role(tenant, [tag])
    scoped_admin = tenant.user(roles=("Intune Administrator",), scope_tags=("0",))
    group = tenant.group(unique("g"))
    before = row_counts(db, tenant.id)

    for method, body in (("PATCH", {"displayName": "renamed"}), ("DELETE", None)):
        response = tenant.call(method, f"{DM}/roleDefinitions/{hidden}", scoped_admin, json=body)
        assert response.status_code == 404, (method, response.text)
    response = tenant.call(
        "POST",
        f"{DM}/roleAssignments",
        scoped_admin,
        json={"displayName": "x", "members": [group], "roleDefinitionId": hidden},
    )
    assert response.status_code == 404, response.text
    # Nor tag a new role, or an assignment, with a tag it does not hold.
    response = tenant.call(
        "POST",
        f"{DM}/roleDefinitions",
        scoped_admin,
        json={"displayName": "x", "roleScopeTagIds": [tag]},
    )
    assert response.status_code == 403, response.text
    response = tenant.call(
        "POST",
        f"{DM}/roleAssignments",
        scoped_admin,
        json={
            "displayName": "x",
            "members": [group],
            "roleDefinitionId": tenant.roles["Read Only Operator"],
            "roleScopeTagIds": [tag],
        },
    )
    assert response.status_code == 403, response.text
    assert row_counts(db, tenant.id) == before


def test_service_principal_signs_in_and_is_limited_to_its_roles(tenants: TenantFactory) -> None:
    tenant = tenants()
    bare = tenant.service_principal()
    reader = tenant.service_principal(roles=("Read Only Operator",))
    me = tenant.ok("GET", "/beta/me", reader)
    assert me["id"] == reader.id and me["tenantId"] == tenant.id
    assert me["@odata.type"] == "#microsoft.graph.servicePrincipal"
    assert tenant.call("GET", "/beta/users", bare).status_code == 403
    assert tenant.ok("GET", "/beta/users", reader)["value"]
    assert tenant.call("POST", "/beta/groups", reader, json={"displayName": "x"}).status_code == 403
    writer = tenant.service_principal(roles=("Intune Administrator",))
    assert tenant.call("POST", "/beta/groups", writer, json={"displayName": "x"}).status_code == 201


def test_nested_group_membership_grants_the_role(tenants: TenantFactory) -> None:
    tenant = tenants()
    user = tenant.user()
    outer, inner = tenant.group(unique("outer")), tenant.group(unique("inner"))
    tenant.add_member(outer, inner)
    tenant.add_member(inner, user.id)
    assert tenant.call("GET", "/beta/users", user).status_code == 403
    tenant.assign("Read Only Operator", [outer])
    assert tenant.call("GET", "/beta/users", user).status_code == 200
    tenant.ok("DELETE", f"/beta/groups/{outer}/members/{inner}/$ref")
    assert tenant.call("GET", "/beta/users", user).status_code == 403


def test_a_scoped_administrator_cannot_raise_its_own_reach(
    tenants: TenantFactory, db: Database
) -> None:
    """Intune Administrator over tag 0 only: it may not join, edit or take over what holds
    more reach (the first administrator's all-scope-tags assignment, or a wider one)."""
    tenant = tenants()
    tag = tenant.scope_tag(unique("Nice"))
    scoped = tenant.user(roles=("Intune Administrator",), scope_tags=("0",))
    admins_group = tenant.groups.get("Intune Administrators") or next(
        g["id"]
        for g in tenant.ok("GET", "/beta/groups?$top=999")["value"]
        if g["displayName"] == "Intune Administrators"
    )
    first_assignment = next(
        a for a in tenant.ok("GET", f"{DM}/roleAssignments?$top=999")["value"] if a["allScopeTags"]
    )
    nested = tenant.group(unique("nested"))
    tenant.add_member(admins_group, nested)
    wide_group = tenant.group(unique("wide"))
    tenant.assign("Read Only Operator", [wide_group], ("0", tag))
    wide_user = tenant.user(groups=(wide_group,))
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{scoped.id}"}
    before = row_counts(db, tenant.id)

    attempts = [
        ("POST", f"/beta/groups/{admins_group}/members/$ref", ref),
        ("POST", f"/beta/groups/{nested}/members/$ref", ref),
        ("POST", f"/beta/groups/{wide_group}/members/$ref", ref),
        ("DELETE", f"/beta/groups/{admins_group}/members/{tenant.admin.id}/$ref", None),
        ("DELETE", f"/beta/groups/{admins_group}", None),
        ("PATCH", f"{DM}/roleAssignments/{first_assignment['id']}", {"members": [nested]}),
        ("DELETE", f"{DM}/roleAssignments/{first_assignment['id']}", None),
        (
            "PATCH",
            f"/beta/users/{tenant.admin.id}",
            {"passwordProfile": {"password": "Taken-0ver!"}},
        ),
        ("PATCH", f"/beta/users/{tenant.admin.id}", {"accountEnabled": False}),
        ("PATCH", f"/beta/users/{tenant.admin.id}", {"userPrincipalName": f"x@{tenant.domain}"}),
        ("DELETE", f"/beta/users/{tenant.admin.id}", None),
        ("PATCH", f"/beta/users/{wide_user.id}", {"passwordProfile": {"password": "Taken-0ver!"}}),
    ]
    for method, path, body in attempts:
        response = tenant.call(method, path, scoped, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["innerError"]["reason"] == "scopeTagNotReached"
    assert row_counts(db, tenant.id) == before

    # Within its own reach it still manages the directory, and the first admin does it all.
    plain = tenant.user()
    tenant.ok("PATCH", f"/beta/users/{plain.id}", scoped, json={"displayName": "renamed"})
    tenant.ok("PATCH", f"/beta/users/{wide_user.id}", scoped, json={"displayName": "renamed"})
    tenant.ok("POST", f"/beta/groups/{wide_group}/members/$ref", json=ref)
    tenant.ok("PATCH", f"/beta/users/{wide_user.id}", json={"accountEnabled": False})


def test_a_service_principal_holding_more_reach_cannot_be_taken_over(
    tenants: TenantFactory,
) -> None:
    tenant = tenants()
    scoped = tenant.user(roles=("Intune Administrator",), scope_tags=("0",))
    group = tenant.groups.get("Intune Administrators") or next(
        g["id"]
        for g in tenant.ok("GET", "/beta/groups?$top=999")["value"]
        if g["displayName"] == "Intune Administrators"
    )
    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": unique("app")})
    tenant.add_member(group, sp["id"])
    for method, path, body in (
        ("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", {}),
        ("PATCH", f"/beta/servicePrincipals/{sp['id']}", {"accountEnabled": False}),
        ("DELETE", f"/beta/servicePrincipals/{sp['id']}", None),
    ):
        response = tenant.call(method, path, scoped, json=body)
        assert response.status_code == 403, (method, path, response.text)
    assert tenant.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})


def test_a_scope_tag_on_a_role_assignment_cannot_be_deleted(tenants: TenantFactory) -> None:
    """Otherwise the assignment would keep naming the id, and a later tag could inherit it."""
    tenant = tenants()
    tag = tenant.scope_tag(unique("Lille"))
    group = tenant.group(unique("g"))
    assignment = tenant.assign("Read Only Operator", [group], (tag,))
    refused = tenant.call("DELETE", f"{DM}/roleScopeTags/{tag}")
    assert refused.status_code == 409, refused.text
    tenant.ok("DELETE", f"{DM}/roleAssignments/{assignment}")
    tenant.ok("DELETE", f"{DM}/roleScopeTags/{tag}")
    assert tenant.call("GET", f"{DM}/roleScopeTags/{tag}").status_code == 404


def test_role_scope_tag_lists_are_checked(tenants: TenantFactory) -> None:
    """A role carries at least one tag, and a tag named twice counts once, so lists and reads
    agree about who sees the role."""
    tenant = tenants()
    reader = tenant.user(roles=("Read Only Operator",), scope_tags=("0",))
    role = _custom_role(tenant, ["0", "0"])
    assert tenant.ok("GET", f"{DM}/roleDefinitions/{role}")["roleScopeTagIds"] == ["0"]
    refused = tenant.call("PATCH", f"{DM}/roleDefinitions/{role}", json={"roleScopeTagIds": []})
    assert refused.status_code == 400, refused.text
    assert tenant.ok("GET", f"{DM}/roleDefinitions/{role}", reader)["roleScopeTagIds"] == ["0"]
    listed = tenant.ok("GET", f"{DM}/roleDefinitions?$top=999", reader)["value"]
    assert role in {r["id"] for r in listed}


def test_every_scope_tag_an_object_names_must_exist(tenants: TenantFactory) -> None:
    """The Default tag needs no read (every tenant has it and it cannot go), but a tag named
    beside it is still checked, and a deleted tag is refused on create and on update."""
    tenant = tenants()
    categories = f"{DM}/deviceCategories"
    for tags in (["0", "999"], ["999", "0"]):
        refused = tenant.call(
            "POST", categories, json={"displayName": "c", "roleScopeTagIds": tags}
        )
        assert refused.status_code == 400, refused.text
        assert "'999'" in refused.json()["error"]["message"]
    tag = tenant.scope_tag(unique("Gone"))
    tenant.ok("DELETE", f"{DM}/roleScopeTags/{tag}")
    refused = tenant.call("POST", categories, json={"displayName": "c", "roleScopeTagIds": [tag]})
    assert refused.status_code == 400, refused.text
    made = tenant.ok("POST", categories, json={"displayName": "c", "roleScopeTagIds": ["0"]})
    patched = tenant.call(
        "PATCH", f"{categories}/{made['id']}", json={"roleScopeTagIds": ["0", tag]}
    )
    assert patched.status_code == 400, patched.text
    assert tenant.call("DELETE", f"{DM}/roleScopeTags/0").status_code == 400
    assert tenant.ok("GET", f"{DM}/roleScopeTags/0")["isBuiltIn"] is True
