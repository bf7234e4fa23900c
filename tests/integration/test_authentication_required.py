"""Every non-public route refuses callers without a valid token, found by walking the route
table, so a route added later cannot slip through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from countersign.api.app import PUBLIC_PATHS
from countersign.api.deps import Context
from tests.factories import Tenant, TenantFactory, mint_token, rsa_key

PARAM = re.compile(r"\{[^}]+\}")


def _walk(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every route, through included routers and mounts."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(routes):
        route, path = context.original_route, prefix + str(context.path)
        if isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                continue  # static assets are public by nature
            found += _walk(list(route.routes), path)
        elif isinstance(route, Route):
            if path in PUBLIC_PATHS:
                continue
            if path == "/admin" or path.startswith("/admin/"):
                # The admin center authenticates with a session cookie and answers 303 to its
                # sign-in page instead; tests/integration/test_admin_center.py walks those.
                continue
            for method in sorted(context.methods or {"GET"}):
                if method != "HEAD":
                    found.append((method, path))
        else:
            raise AssertionError(f"unknown kind of route {route!r}: decide how it authenticates")
    return found


def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    return _walk(list(app.routes))


def _concrete(path: str) -> str:
    return PARAM.sub(lambda _: str(uuid.uuid4()), path)


def assert_401(client: TestClient, headers: dict[str, str], app: FastAPI) -> None:
    routes = protected_routes(app)
    assert len(routes) > 20, routes  # the walk found the API
    for method, path in routes:
        response = client.request(method, _concrete(path), headers=headers, json={})
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken", (method, path, error)
        assert error["message"]
        assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
        assert response.headers["request-id"] == error["innerError"]["request-id"]


def own_kid(app: FastAPI) -> str:
    ctx: Context = app.state.ctx
    kid: str = ctx.tokens.jwks()["keys"][0]["kid"]
    return kid


def good_claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": "countersign",
        "aud": "countersign",
        "sub": tenant.admin.id,
        "oid": tenant.admin.id,
        "tid": tenant.id,
        "idtyp": "user",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_walk_covers_the_directory_and_rbac_routes(app: FastAPI) -> None:
    routes = set(protected_routes(app))
    assert ("GET", "/beta/me") in routes
    assert ("POST", "/beta/groups/{group_id}/members/$ref") in routes
    assert ("PATCH", "/beta/deviceManagement/roleDefinitions/{object_id}") in routes
    assert not any(path in PUBLIC_PATHS for _, path in routes)


def test_no_token(client: TestClient, app: FastAPI) -> None:
    assert_401(client, {}, app)


@pytest.mark.parametrize(
    "authorization", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer ..."]
)
def test_malformed_authorization(client: TestClient, app: FastAPI, authorization: str) -> None:
    response = client.get("/beta/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_the_valid_token_works(tenants: TenantFactory) -> None:
    """The control: the tokens below differ from a working one only in what they test."""
    tenant = tenants()
    token = tenant.client.app.state.ctx.tokens.issue(  # type: ignore[attr-defined]
        tenant_id=tenant.id, principal_id=tenant.admin.id, principal_type="user", name="a"
    )[0]
    assert tenant.client.get("/beta/me", headers={"Authorization": f"Bearer {token}"}).is_success


def test_forged_signature_with_our_kid(
    client: TestClient, app: FastAPI, tenants: TenantFactory
) -> None:
    tenant = tenants()
    token = mint_token(good_claims(tenant), rsa_key(), kid=own_kid(app))
    assert_401(client, {"Authorization": f"Bearer {token}"}, app)


def test_expired_token(client: TestClient, app: FastAPI, tenants: TenantFactory) -> None:
    tenant = tenants()
    ctx: Context = app.state.ctx
    token, _ = ctx.tokens.issue(
        tenant_id=tenant.id,
        principal_id=tenant.admin.id,
        principal_type="user",
        name="admin",
        now=datetime.now(UTC) - timedelta(hours=3),
    )
    assert_401(client, {"Authorization": f"Bearer {token}"}, app)
    assert "expired" in client.get("/beta/me", headers={"Authorization": f"Bearer {token}"}).text


def test_token_verified_before_is_refused_once_expired(
    client: TestClient, app: FastAPI, tenants: TenantFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process keeps tokens it verified (auth/tokens.py); their expiry still counts."""
    tenant = tenants()
    ctx: Context = app.state.ctx
    token, lifetime = ctx.tokens.issue(
        tenant_id=tenant.id, principal_id=tenant.admin.id, principal_type="user", name="admin"
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/beta/me", headers=headers).status_code == 200
    assert client.get("/beta/me", headers=headers).status_code == 200  # from the cache
    later = datetime.now(UTC) + timedelta(seconds=lifetime + 3600)
    monkeypatch.setattr(ctx.tokens, "clock", lambda: later)  # the clock the app was given
    response = client.get("/beta/me", headers=headers)
    assert response.status_code == 401, response.text
    assert "expired" in response.text


def test_untrusted_issuer(client: TestClient, app: FastAPI, tenants: TenantFactory) -> None:
    tenant = tenants()
    claims = good_claims(tenant, iss="https://login.evil.example/")
    token = mint_token(claims, rsa_key(), kid=own_kid(app))
    assert_401(client, {"Authorization": f"Bearer {token}"}, app)


def test_alg_none_is_refused(client: TestClient, app: FastAPI, tenants: TenantFactory) -> None:
    tenant = tenants()
    token = mint_token(good_claims(tenant), None, kid=own_kid(app), algorithm="none")
    assert_401(client, {"Authorization": f"Bearer {token}"}, app)


def test_hs256_signed_with_the_public_key_is_refused(
    client: TestClient, app: FastAPI, tenants: TenantFactory
) -> None:
    """Algorithm confusion: an HMAC over the token with our public JWK as the secret."""
    tenant = tenants()
    ctx: Context = app.state.ctx
    public = json.dumps(ctx.tokens.jwks()["keys"][0]).encode()
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": own_kid(app)}).encode())
    payload = _b64(json.dumps(good_claims(tenant)).encode())
    signature = _b64(hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature}"
    assert_401(client, {"Authorization": f"Bearer {token}"}, app)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"tid": str(uuid.uuid4())},
        {"sub": str(uuid.uuid4()), "oid": None},
        {"exp": None},
        {"exp": "tomorrow"},
        {"exp": True},
        {"iat": None},
        {"iat": "now"},
        {"nbf": "now"},
        {"idtyp": None},
    ],
)
def test_our_key_but_wrong_claims(
    client: TestClient, app: FastAPI, tenants: TenantFactory, overrides: dict[str, Any]
) -> None:
    """Signed with our own key, but the claims do not name a live principal of ours."""
    tenant = tenants()
    ctx: Context = app.state.ctx
    ctx.tokens._load_keys()
    assert ctx.tokens._signing is not None
    kid, key = ctx.tokens._signing
    claims = {k: v for k, v in good_claims(tenant, **overrides).items() if v is not None}
    token = mint_token(claims, key, kid=kid)
    response = client.get("/beta/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


def test_odd_headers_are_refused_not_crashed(client: TestClient, app: FastAPI) -> None:
    for header in ({"alg": "RS256", "kid": ["a"]}, {"alg": "RS256", "kid": 7}, ["RS256"], 5):
        token = f"{_b64(json.dumps(header).encode())}.{_b64(b'{}')}.{_b64(b'sig')}"
        response = client.get("/beta/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (header, response.text)
    token = f"{_b64(b'{}')}.{_b64(json.dumps([1]).encode())}.{_b64(b'x')}"
    assert client.get("/beta/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_disabled_user_token_stops_working(tenants: TenantFactory) -> None:
    tenant = tenants()
    user = tenant.user()
    assert tenant.call("GET", "/beta/me", user).status_code == 200
    tenant.ok("PATCH", f"/beta/users/{user.id}", json={"accountEnabled": False})
    assert tenant.call("GET", "/beta/me", user).status_code == 401
