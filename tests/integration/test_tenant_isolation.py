"""Nothing of tenant A can be read, listed or changed with a token of tenant B."""

from __future__ import annotations

from typing import Any

from countersign.store.db import Database
from tests.factories import PASSWORD, Tenant, TenantFactory, row_counts, unique

DM = "/beta/deviceManagement"


def _populate(a: Tenant) -> dict[str, Any]:
    """One object of every directory and RBAC kind in tenant A."""
    user = a.user(roles=("Read Only Operator",))
    group = a.group(unique("group"))
    a.add_member(group, user.id)
    sp = a.ok("POST", "/beta/servicePrincipals", json={"displayName": unique("app")})
    secret = a.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})
    tag = a.scope_tag(unique("tag"))
    role = a.role_definition(unique("role"), ["Microsoft.Intune_Roles_Read"], ["0", tag])
    assignment = a.assign(role, [group], ("0", tag))
    return {
        "user": user.id,
        "upn": user.upn,
        "group": group,
        "sp": sp["id"],
        "key": secret["keyId"],
        "tag": tag,
        "role": role,
        "assignment": assignment,
        "builtin": a.roles["Intune Administrator"],
    }


def test_tenant_b_cannot_see_or_touch_tenant_a(tenants: TenantFactory, db: Database) -> None:
    a, b = tenants(), tenants()
    ids = _populate(a)
    before = row_counts(db, a.id)
    all_ids = set(ids.values()) - {ids["upn"]}

    reads = [
        f"/beta/users/{ids['user']}",
        f"/beta/groups/{ids['group']}",
        f"/beta/groups/{ids['group']}/members",
        f"/beta/servicePrincipals/{ids['sp']}",
        f"{DM}/roleDefinitions/{ids['role']}",
        f"{DM}/roleDefinitions/{ids['builtin']}",
        f"{DM}/roleAssignments/{ids['assignment']}",
    ]
    for path in reads:
        response = b.call("GET", path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "ResourceNotFound"

    # Tag ids are per tenant ("1" exists in both once B makes one); B's "1" is B's own.
    b_tag = b.scope_tag(unique("tag-b"))
    assert b_tag == ids["tag"]
    assert b.ok("GET", f"{DM}/roleScopeTags/{b_tag}")["displayName"].startswith("tag-b")

    for collection in (
        "/beta/users",
        "/beta/groups",
        "/beta/servicePrincipals",
        f"{DM}/roleDefinitions",
        f"{DM}/roleAssignments",
    ):
        listed = b.ok("GET", collection + "?$top=999")["value"]
        assert not all_ids & {item["id"] for item in listed}, collection
    names = {t["displayName"] for t in b.ok("GET", f"{DM}/roleScopeTags")["value"]}
    assert not any(name.startswith("tag-") and not name.startswith("tag-b") for name in names)

    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"/beta/users/{ids['user']}", {"displayName": "taken"}),
        ("PATCH", f"/beta/users/{ids['user']}", {"passwordProfile": {"password": "Owned-by-B-1"}}),
        ("DELETE", f"/beta/users/{ids['user']}", None),
        ("PATCH", f"/beta/groups/{ids['group']}", {"displayName": "taken"}),
        ("DELETE", f"/beta/groups/{ids['group']}", None),
        (
            "POST",
            f"/beta/groups/{ids['group']}/members/$ref",
            {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{b.admin.id}"},
        ),
        ("DELETE", f"/beta/groups/{ids['group']}/members/{ids['user']}/$ref", None),
        ("PATCH", f"/beta/servicePrincipals/{ids['sp']}", {"displayName": "taken"}),
        ("DELETE", f"/beta/servicePrincipals/{ids['sp']}", None),
        ("POST", f"/beta/servicePrincipals/{ids['sp']}/addPassword", {}),
        ("POST", f"/beta/servicePrincipals/{ids['sp']}/removePassword", {"keyId": ids["key"]}),
        ("PATCH", f"{DM}/roleDefinitions/{ids['role']}", {"displayName": "taken"}),
        ("DELETE", f"{DM}/roleDefinitions/{ids['role']}", None),
        ("PATCH", f"{DM}/roleAssignments/{ids['assignment']}", {"displayName": "taken"}),
        ("DELETE", f"{DM}/roleAssignments/{ids['assignment']}", None),
    ]
    for method, path, body in writes:
        response = b.call(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)

    # B cannot pull A's objects into its own groups and assignments either.
    b_group = b.group(unique("b-group"))
    role_of = f"{DM}/roleDefinitions('{{}}')"
    pulls = [
        *(
            (
                f"/beta/groups/{b_group}/members/$ref",
                {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member}"},
                404,
            )
            for member in (ids["user"], ids["group"], ids["sp"])
        ),
        ("/beta/groups", {"displayName": "pull", "members@odata.bind": [ids["user"]]}, 404),
        (
            f"{DM}/roleAssignments",
            {
                "displayName": "escalate",
                "members": [b_group],
                "roleDefinition@odata.bind": role_of.format(ids["builtin"]),
            },
            404,
        ),
        (
            f"{DM}/roleAssignments",
            {
                "displayName": "cross",
                "members": [ids["group"]],
                "roleDefinition@odata.bind": role_of.format(b.roles["Read Only Operator"]),
            },
            400,
        ),
    ]
    for path, body, status in pulls:
        response = b.call("POST", path, json=body)
        assert response.status_code == status, (path, body, response.text)

    assert row_counts(db, a.id) == before
    assert a.ok("GET", f"/beta/users/{ids['user']}")["displayName"] != "taken"
    assert a.ok("GET", f"/beta/groups/{ids['group']}/members")["value"][0]["id"] == ids["user"]
    # A's user still signs in with its own password (B's password change did not land).
    assert a.client.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": ids["upn"], "password": PASSWORD},
    ).is_success


def test_me_is_the_callers_own_tenant(tenants: TenantFactory) -> None:
    a, b = tenants(), tenants()
    assert a.ok("GET", "/beta/me")["tenantId"] == a.id
    assert b.ok("GET", "/beta/me")["tenantId"] == b.id
    assert a.call("GET", f"/beta/users/{b.admin.id}").status_code == 404
