"""Bad input gets a Graph-shaped 400 or 413, never a 500, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, row_counts, unique

DM = "/beta/deviceManagement"
MIB = 1024 * 1024


def assert_graph_error(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    assert "Traceback" not in error["message"] and "SELECT" not in error["message"]
    return error


@pytest.fixture(scope="module")
def tenant(app: FastAPI, db: Database) -> Iterator[Tenant]:
    """One tenant for the whole module: nothing here may change it anyway."""
    with TestClient(app) as client:
        yield TenantFactory(client, db)()


def _targets(tenant: Tenant) -> dict[str, str]:
    user = tenant.user()
    group = tenant.group(unique("g"))
    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": unique("app")})
    tag = tenant.scope_tag(unique("tag"))
    role = tenant.ok("POST", f"{DM}/roleDefinitions", json={"displayName": unique("role")})
    assignment = tenant.assign(role["id"], [group])
    return {
        "user": user.id,
        "group": group,
        "sp": sp["id"],
        "tag": tag,
        "role": role["id"],
        "assignment": assignment,
    }


def test_invalid_bodies_are_refused_and_change_nothing(tenant: Tenant, db: Database) -> None:
    ids = _targets(tenant)
    upn = f"new@{tenant.domain}"
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/beta/users", {"displayName": "x", "userPrincipalName": upn, "bogus": 1}),
        ("POST", "/beta/users", {"displayName": 5, "userPrincipalName": upn}),
        ("POST", "/beta/users", {"displayName": ["x"], "userPrincipalName": upn}),
        ("POST", "/beta/users", {"displayName": "x", "userPrincipalName": "not-an-upn"}),
        (
            "POST",
            "/beta/users",
            {"displayName": "x", "userPrincipalName": upn, "accountEnabled": {}},
        ),
        (
            "POST",
            "/beta/users",
            {"displayName": "x", "userPrincipalName": upn, "passwordProfile": "p"},
        ),
        (
            "POST",
            "/beta/users",
            {
                "displayName": "x",
                "userPrincipalName": upn,
                "passwordProfile": {"password": "short"},
            },
        ),
        ("POST", "/beta/users", {"userPrincipalName": upn}),
        ("POST", "/beta/users", {"displayName": "a\u0000b", "userPrincipalName": upn}),
        ("POST", "/beta/users", {"displayName": "x" * 300, "userPrincipalName": upn}),
        ("PATCH", f"/beta/users/{ids['user']}", {"displayName": None}),
        ("PATCH", f"/beta/users/{ids['user']}", {"accountEnabled": None}),
        ("PATCH", f"/beta/users/{ids['user']}", {"userPrincipalName": None}),
        ("PATCH", f"/beta/users/{ids['user']}", {"id": "mine"}),
        ("PATCH", f"/beta/groups/{ids['group']}", {"displayName": None}),
        ("PATCH", f"/beta/groups/{ids['group']}", {"securityEnabled": "maybe"}),
        ("PATCH", f"/beta/servicePrincipals/{ids['sp']}", {"displayName": None}),
        ("PATCH", f"/beta/servicePrincipals/{ids['sp']}", {"accountEnabled": None}),
        ("POST", "/beta/groups", {"displayName": "x", "members@odata.bind": [ids["user"]] * 2}),
        ("POST", "/beta/groups", {"displayName": "x", "members@odata.bind": ["nonsense"]}),
        ("POST", "/beta/groups", {"displayName": "x", "groupTypes": ["Unified"]}),
        ("POST", f"/beta/groups/{ids['group']}/members/$ref", {"@odata.id": "nonsense"}),
        ("POST", f"/beta/groups/{ids['group']}/members/$ref", {"@odata.id": 5}),
        ("POST", f"/beta/groups/{ids['group']}/members/$ref", {}),
        (
            "POST",
            f"/beta/servicePrincipals/{ids['sp']}/addPassword",
            {"passwordCredential": {"endDateTime": "yesterday"}},
        ),
        (
            "POST",
            f"/beta/servicePrincipals/{ids['sp']}/addPassword",
            {"passwordCredential": {"endDateTime": "2001-01-01T00:00:00Z"}},
        ),
        ("POST", f"/beta/servicePrincipals/{ids['sp']}/removePassword", {"keyId": "nope"}),
        ("POST", f"{DM}/roleDefinitions", {"displayName": "x", "isBuiltIn": True}),
        ("POST", f"{DM}/roleDefinitions", {"displayName": "x", "roleScopeTagIds": ["999"]}),
        (
            "POST",
            f"{DM}/roleDefinitions",
            {
                "displayName": "x",
                "rolePermissions": [
                    {"resourceActions": [{"allowedResourceActions": ["Microsoft.Made_Up"]}]}
                ],
            },
        ),
        ("POST", f"{DM}/roleDefinitions", {"displayName": "x", "rolePermissions": "all"}),
        ("PATCH", f"{DM}/roleDefinitions/{ids['role']}", {"displayName": None}),
        ("PATCH", f"{DM}/roleDefinitions/{ids['role']}", {"roleScopeTagIds": None}),
        ("POST", f"{DM}/roleAssignments", {"displayName": "x", "members": [ids["group"]]}),
        (
            "POST",
            f"{DM}/roleAssignments",
            {"displayName": "x", "members": ["nope"], "roleDefinitionId": ids["role"]},
        ),
        (
            "POST",
            f"{DM}/roleAssignments",
            {
                "displayName": "x",
                "members": [ids["group"]],
                "roleDefinitionId": ids["role"],
                "allScopeTags": True,
            },
        ),
        ("PATCH", f"{DM}/roleAssignments/{ids['assignment']}", {"members": None}),
        ("PATCH", f"{DM}/roleAssignments/{ids['assignment']}", {"roleScopeTagIds": ["999"]}),
        ("POST", f"{DM}/roleScopeTags", {"displayName": ""}),
        ("PATCH", f"{DM}/roleScopeTags/{ids['tag']}", {"displayName": None}),
        ("PATCH", f"{DM}/roleScopeTags/0", {"displayName": "mine"}),
    ]
    before = row_counts(db, tenant.id)
    for method, path, body in cases:
        response = tenant.call(method, path, json=body)
        error = assert_graph_error(response, 400)
        assert error["code"] == "BadRequest", (method, path, body, error)
    assert row_counts(db, tenant.id) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b'{"displayName": "x",}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[]", "application/json"),
        (b'"text"', "application/json"),
        (b"5", "application/json"),
        (b"null", "application/json"),
        (b'{"displayName": NaN}', "application/json"),
        (b'{"displayName": Infinity}', "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
        (b"displayName=x", "application/x-www-form-urlencoded"),
        (b"<group/>", "application/xml"),
    ],
)
def test_malformed_json_is_refused(
    tenant: Tenant, db: Database, content: bytes, content_type: str
) -> None:
    before = row_counts(db, tenant.id)
    for path in ("/beta/groups", f"{DM}/roleDefinitions", f"{DM}/roleScopeTags"):
        response = tenant.call(
            "POST", path, content=content, headers={"Content-Type": content_type}
        )
        assert_graph_error(response, 400)
    assert row_counts(db, tenant.id) == before


def test_bodies_over_one_mebibyte_get_413(tenant: Tenant, db: Database) -> None:
    before = row_counts(db, tenant.id)
    big = b'{"displayName": "' + b"x" * MIB + b'"}'
    error = assert_graph_error(
        tenant.call(
            "POST", "/beta/groups", content=big, headers={"Content-Type": "application/json"}
        ),
        413,
    )
    assert error["code"] == "RequestEntityTooLarge"

    def chunks() -> Iterator[bytes]:
        yield b'{"displayName": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    response = tenant.call(
        "POST", "/beta/groups", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_graph_error(response, 413)
    # Even without a token: the cap comes before anything else.
    assert_graph_error(tenant.client.post("/oauth2/token", content=big), 413)
    assert row_counts(db, tenant.id) == before
    # Just under the limit is read (and refused for what it says, not for its size).
    fits = b'{"displayName": "' + b"x" * (MIB - 100) + b'"}'
    response = tenant.call(
        "POST", "/beta/groups", content=fits, headers={"Content-Type": "application/json"}
    )
    assert_graph_error(response, 400)


BAD_QUERIES = [
    "$filter=displayName eq",
    "$filter=displayName eq 'x",
    "$filter=(displayName eq 'x'",
    "$filter=displayName eq 'x')",
    "$filter=displayName eq 'x' and",
    "$filter=displayName zz 'x'",
    "$filter=nosuchfield eq 'x'",
    "$filter=passwordHash eq 'x'",
    "$filter=displayName eq 5",
    "$filter=displayName eq true",
    "$filter=displayName eq 2024-01-01T00:00:00Z",
    "$filter=accountEnabled eq 'yes'",
    "$filter=accountEnabled eq 1",
    "$filter=createdDateTime gt 5",
    "$filter=createdDateTime gt 'yesterday'",
    "$filter=createdDateTime gt 2024-13-45T00:00:00Z",
    "$filter=startswith(accountEnabled, 'x')",
    "$filter=startswith(createdDateTime, '2')",
    "$filter=startswith(displayName, 5)",
    "$filter=startswith(displayName 'x')",
    "$filter=displayName in ()",
    "$filter=displayName in ('a', 5)",
    "$filter=displayName eq 'a%00b'",
    "$filter=displayName eq 99999999999999999999999999",
    "$filter=" + "(" * 5000 + "displayName eq 'x'" + ")" * 5000,
    "$filter=" + "not " * 5000 + "accountEnabled eq true",
    "$filter=",
    "$filter=%25%5E%26",
    "$orderby=displayName sideways",
    "$orderby=nosuchfield",
    "$orderby=mail",
    "$top=-1",
    "$top=abc",
    "$top=1000",
    "$top=²",
    "$top=1.5",
    "$skip=-3",
    "$skip=x",
    "$skip=¹",
    "$count=maybe",
    "$skiptoken=%%%",
    "$skiptoken=bm90IGpzb24",
    "$skiptoken=WzFd",
    "$skiptoken=W3siYSI6IDF9LCAieCJd",
    "$skiptoken=WzEsIDJd",
    "$skiptoken=W3RydWUsIGZhbHNlXQ",
    "$skiptoken=WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ&$orderby=createdDateTime",
    "$skiptoken=WyJub3QgYSBkYXRlIiwgIngiXQ&$orderby=createdDateTime",
    "$skiptoken=W251bGwsIG51bGxd",
    "$unknown=1",
    "$expandx=1",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_malformed_odata_is_refused(tenant: Tenant, query: str) -> None:
    error = assert_graph_error(tenant.call("GET", f"/beta/users?{query}"), 400)
    assert error["code"] == "BadRequest"


def test_nul_in_path_or_query_is_refused(tenant: Tenant) -> None:
    for path in (
        "/beta/users/a%00b",
        f"{DM}/roleScopeTags/%00",
        f"{DM}/roleDefinitions/%00",
        "/beta/groups/%00/members",
        "/beta/users?$search=%00",
    ):
        response = tenant.call("GET", path)
        assert response.status_code in (400, 404), (path, response.text)
        assert_graph_error(response, response.status_code)
    response = tenant.call("PATCH", "/beta/users/%00", json={"displayName": "x"})
    assert response.status_code in (400, 404), response.text


def test_unknown_routes_and_methods_are_graph_errors(tenant: Tenant) -> None:
    assert assert_graph_error(tenant.call("GET", "/beta/nothingHere"), 404)["code"]
    assert_graph_error(tenant.call("PUT", "/beta/users"), 405)


# -- the $filter parser, fuzzed -------------------------------------------------------------

FILTER_WORDS = [
    "displayName",
    "userPrincipalName",
    "accountEnabled",
    "createdDateTime",
    "id",
    "mail",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "and",
    "or",
    "not",
    "in",
    "startswith",
    "contains",
    "endswith",
    "true",
    "false",
    "null",
    "(",
    ")",
    ",",
    "'a'",
    "'it''s'",
    "''",
    "5",
    "-1",
    "1.5",
    "2024-01-01T00:00:00Z",
    "2024-02-30T00:00:00+01:00",
    "00000000-0000-0000-0000-000000000000",
    "'",
    "''''",
    "@x",
    "$",
    "/",
    "%",
    "_",
    "\\",
    "\x00",
    "é",
    "😀",
]


@settings(
    max_examples=300,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(FILTER_WORDS) | st.text(max_size=4), max_size=12).map(" ".join),
    )
)
def test_random_filters_never_fail_the_server(tenant: Tenant, text: str) -> None:
    response = tenant.client.get(
        "/beta/users", params={"$filter": text}, headers=tenant.admin.headers
    )
    assert response.status_code in (200, 400), (text, response.text)
    if response.status_code == 400:
        assert_graph_error(response, 400)


# -- request bodies, fuzzed -------------------------------------------------------------------

BODY_KEYS = [
    "displayName",
    "userPrincipalName",
    "accountEnabled",
    "passwordProfile",
    "password",
    "mail",
    "description",
    "securityEnabled",
    "mailEnabled",
    "members",
    "members@odata.bind",
    "roleScopeTagIds",
    "rolePermissions",
    "resourceActions",
    "allowedResourceActions",
    "roleDefinition@odata.bind",
    "roleDefinitionId",
    "@odata.type",
    "@odata.id",
    "keyId",
    "passwordCredential",
    "endDateTime",
    "isBuiltIn",
    "x",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["0", "1", "Microsoft.Intune_Roles_Read", "2030-01-01T00:00:00Z"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(BODY_KEYS) | st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(
        [
            ("POST", "/beta/users"),
            ("PATCH", "/beta/users/{user}"),
            ("POST", "/beta/groups"),
            ("PATCH", "/beta/groups/{group}"),
            ("POST", "/beta/groups/{group}/members/$ref"),
            ("POST", "/beta/servicePrincipals/{sp}/addPassword"),
            ("POST", "/beta/servicePrincipals/{sp}/removePassword"),
            ("POST", f"{DM}/roleDefinitions"),
            ("PATCH", f"{DM}/roleDefinitions/{{role}}"),
            ("POST", f"{DM}/roleAssignments"),
            ("PATCH", f"{DM}/roleAssignments/{{assignment}}"),
            ("PATCH", f"{DM}/roleScopeTags/{{tag}}"),
        ]
    ),
    body=st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUES, max_size=5),
)
def test_random_bodies_never_fail_the_server(
    tenant: Tenant, fuzz_targets: dict[str, str], target: tuple[str, str], body: dict[str, Any]
) -> None:
    method, path = target
    response = tenant.call(method, path.format(**fuzz_targets), json=body)
    assert response.status_code < 500, (method, path, body, response.text)
    if response.status_code >= 400:
        assert_graph_error(response, response.status_code)


@pytest.fixture(scope="module")
def fuzz_targets(tenant: Tenant) -> dict[str, str]:
    return _targets(tenant)
