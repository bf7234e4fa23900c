"""POST /oauth2/token: the password and client-credentials grants, lockout, disabled accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select

from countersign.domain.errors import AccountLocked, Unauthorized
from countersign.services.identity import password_sign_in
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, Tenant, TenantFactory


def _password(tenant: Tenant, username: str, password: str, path: str = "/oauth2/token"):  # type: ignore[no-untyped-def]
    return tenant.client.post(
        path, data={"grant_type": "password", "username": username, "password": password}
    )


def _failures(db: Database, tenant_id: str) -> list[t.AuditEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(t.AuditEvent)
                .where(t.AuditEvent.tenant_id == tenant_id)
                .where(t.AuditEvent.activity_type == "signInFailure")
                .order_by(t.AuditEvent.sequence)
            )
        )


def test_password_grant_issues_a_token_naming_tenant_and_user(tenants: TenantFactory) -> None:
    tenant = tenants()
    response = _password(tenant, tenant.admin.upn.upper(), PASSWORD)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tid"] == tenant.id and claims["oid"] == tenant.admin.id
    assert claims["upn"] == tenant.admin.upn
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    # The Entra-style path answers the same.
    assert _password(
        tenant, tenant.admin.upn, PASSWORD, f"/{tenant.id}/oauth2/v2.0/token"
    ).is_success


def test_jwks_and_discovery_are_public(tenants: TenantFactory) -> None:
    client = tenants().client
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kty"] == "RSA" and "d" not in k for k in keys)
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["token_endpoint"].endswith("/oauth2/token")
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")


def test_wrong_password_and_unknown_user_are_invalid_grant(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    for username in (tenant.admin.upn, f"nobody@{tenant.domain}"):
        response = _password(tenant, username, "Wrong-Password-1")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert response.json()["error_description"] == "The user name or password is incorrect."
    failures = _failures(db, tenant.id)
    assert len(failures) == 1
    assert failures[0].target_id == tenant.admin.id and failures[0].result == "failure"
    assert failures[0].actor_name == tenant.admin.upn


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "password", "username": "x@y.example"}, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": "x"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
    ],
)
def test_incomplete_token_requests(
    tenants: TenantFactory, data: dict[str, str], error: str
) -> None:
    response = tenants().client.post("/oauth2/token", data=data)
    assert response.status_code == 400 and response.json()["error"] == error


def test_token_request_must_be_form_encoded(tenants: TenantFactory) -> None:
    tenant = tenants()
    response = tenant.client.post(
        "/oauth2/token",
        json={"grant_type": "password", "username": tenant.admin.upn, "password": PASSWORD},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_client_credentials(tenants: TenantFactory) -> None:
    tenant = tenants()
    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": "automation"})
    secret = tenant.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})
    assert secret["secretText"] and secret["hint"] == secret["secretText"][:3]
    listed = tenant.ok("GET", f"/beta/servicePrincipals/{sp['id']}")
    assert all(c["secretText"] is None for c in listed["passwordCredentials"])

    def grant(client_id: str, client_secret: str):  # type: ignore[no-untyped-def]
        return tenant.client.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    ok = grant(sp["appId"], secret["secretText"])
    assert ok.status_code == 200, ok.text
    claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
    assert claims["idtyp"] == "app" and claims["oid"] == sp["id"] and claims["tid"] == tenant.id
    for client_id, client_secret in (
        (sp["appId"], "wrong"),
        ("00000000-0000-0000-0000-000000000000", secret["secretText"]),
    ):
        refused = grant(client_id, client_secret)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    # A removed secret no longer works; a disabled service principal neither.
    tenant.ok(
        "POST",
        f"/beta/servicePrincipals/{sp['id']}/removePassword",
        json={"keyId": secret["keyId"]},
    )
    assert grant(sp["appId"], secret["secretText"]).status_code == 401
    second = tenant.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})
    token = grant(sp["appId"], second["secretText"]).json()["access_token"]
    tenant.ok("PATCH", f"/beta/servicePrincipals/{sp['id']}", json={"accountEnabled": False})
    assert grant(sp["appId"], second["secretText"]).status_code == 401
    me = tenant.client.get("/beta/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_five_failures_lock_the_account_over_http(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    user = tenant.user()
    for _ in range(5):
        assert _password(tenant, user.upn, "Wrong-Password-1").json()["error"] == "invalid_grant"
    refused = _password(tenant, user.upn, PASSWORD)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "locked" in refused.json()["error_description"]
    failures = _failures(db, tenant.id)
    assert len(failures) == 5 and "locked" in failures[-1].activity
    # An administrator resetting the password unlocks the account.
    tenant.ok("PATCH", f"/beta/users/{user.id}", json={"passwordProfile": {"password": PASSWORD}})
    assert _password(tenant, user.upn, PASSWORD).is_success


def test_lockout_lasts_fifteen_minutes(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    upn = tenant.user().upn
    start = datetime.now(UTC)

    def sign_in(password: str, minutes: float) -> None:
        password_sign_in(db, upn, password, now=start + timedelta(minutes=minutes))

    for attempt in range(4):
        with pytest.raises(Unauthorized):
            sign_in("Wrong-Password-1", attempt)
    sign_in(PASSWORD, 4)  # a success resets the count
    for attempt in range(4):
        with pytest.raises(Unauthorized):
            sign_in("Wrong-Password-1", 5 + attempt)
    with pytest.raises(AccountLocked):
        sign_in("Wrong-Password-1", 9)  # the fifth in a row
    with pytest.raises(AccountLocked):
        sign_in(PASSWORD, 10)  # even the right password
    with pytest.raises(AccountLocked):
        sign_in(PASSWORD, 9 + 14.9)
    sign_in(PASSWORD, 9 + 15.1)


def test_disabled_account_cannot_sign_in(tenants: TenantFactory) -> None:
    tenant = tenants()
    user = tenant.user()
    tenant.ok("PATCH", f"/beta/users/{user.id}", json={"accountEnabled": False})
    refused = _password(tenant, user.upn, PASSWORD)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    tenant.ok("PATCH", f"/beta/users/{user.id}", json={"accountEnabled": True})
    assert _password(tenant, user.upn, PASSWORD).is_success


def test_user_without_password_cannot_sign_in(tenants: TenantFactory) -> None:
    tenant = tenants()
    upn = f"nopassword@{tenant.domain}"
    tenant.ok("POST", "/beta/users", json={"displayName": "n", "userPrincipalName": upn})
    assert _password(tenant, upn, "").json()["error"] == "invalid_request"
    assert _password(tenant, upn, "anything-at-all").json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "password", "username": "a\x00b@x.example", "password": "p"},
        {"grant_type": "password", "username": "a@x.example", "password": "p\x00"},
        {"grant_type": "client_credentials", "client_id": "\x00", "client_secret": "s"},
        {"grant_type": "pass\x00word", "username": "a@x.example", "password": "p"},
    ],
)
def test_nul_characters_in_the_form_are_refused(
    tenants: TenantFactory, data: dict[str, str]
) -> None:
    response = tenants().client.post("/oauth2/token", data=data)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_passwords_and_secrets_are_stored_only_as_hashes(
    tenants: TenantFactory, db: Database
) -> None:
    tenant = tenants()
    password = "Unique-Passw0rd-For-This-Test"
    user = tenant.ok(
        "POST",
        "/beta/users",
        json={
            "displayName": "hashed",
            "userPrincipalName": f"hashed@{tenant.domain}",
            "passwordProfile": {"password": password},
        },
    )
    tenant.ok(
        "PATCH", f"/beta/users/{user['id']}", json={"passwordProfile": {"password": password}}
    )
    sp = tenant.ok("POST", "/beta/servicePrincipals", json={"displayName": "hashed-app"})
    secret = tenant.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})
    with db.read() as session:
        stored = [
            repr(row.__dict__)
            for model in (t.AuditEvent, t.User, t.ServicePrincipalSecret)
            for row in session.scalars(select(model).where(model.tenant_id == tenant.id))
        ]
    everything = "\n".join(stored)
    assert password not in everything and secret["secretText"] not in everything
    assert "$argon2id$" in everything
