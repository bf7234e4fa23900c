"""Bearer tokens of a configured external identity provider, mapped to users by oid or upn."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from countersign.api.app import create_app
from countersign.config import Settings, TrustedIssuer
from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, mint_token, rsa_key

ISSUER = "https://idp.example/tenant/v2.0"
AUDIENCE = "api://countersign"
KID = "idp-key-1"


class JwksServer:
    """A JWKS endpoint on 127.0.0.1, in a thread."""

    def __init__(self) -> None:
        self.key = rsa_key()
        self.hits = 0
        outer = self
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        document = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = document.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keys"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture()
def tenant(tenants: TenantFactory) -> Tenant:
    return tenants()


@pytest.fixture()
def federated(
    idp: JwksServer, tenant: Tenant, database_url: str, db: Database
) -> Iterator[TestClient]:
    """A second app instance that trusts the IdP for `tenant` (plus one whose keys are gone)."""
    settings = Settings(
        database_url=database_url,
        trusted_issuers=[
            TrustedIssuer(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url, tenant_id=tenant.id),
            TrustedIssuer(
                issuer="https://gone.example/",
                audience=AUDIENCE,
                jwks_url="http://127.0.0.1:9/keys",
                tenant_id=tenant.id,
            ),
        ],
    )
    with TestClient(create_app(settings, db)) as client:
        yield client


def _token(idp: JwksServer, **claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=30)).timestamp()),
        **claims,
    }
    key = claims.pop("key", None) or idp.key
    body.pop("key", None)
    token = mint_token(body, key, kid=body.pop("kid", KID))
    return {"Authorization": f"Bearer {token}"}


def test_mapped_by_oid(idp: JwksServer, tenant: Tenant, federated: TestClient) -> None:
    response = federated.get("/beta/me", headers=_token(idp, oid=tenant.admin.id))
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == tenant.admin.upn
    # The caller's roles apply as for a local sign-in.
    assert federated.get("/beta/users", headers=_token(idp, oid=tenant.admin.id)).is_success


def test_mapped_by_upn(idp: JwksServer, tenant: Tenant, federated: TestClient) -> None:
    user = tenant.user()
    for claims in (
        {"upn": user.upn.upper()},
        {"oid": str(uuid.uuid4()), "upn": user.upn},  # the IdP's own oid, unknown here
        {"preferred_username": user.upn},
    ):
        response = federated.get("/beta/me", headers=_token(idp, **claims))
        assert response.status_code == 200, (claims, response.text)
        assert response.json()["id"] == user.id
    assert federated.get("/beta/users", headers=_token(idp, upn=user.upn)).status_code == 403


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "api://someone-else"},
        {"exp": 1_000_000},
        {"kid": "another-key"},
        {"key": "forged"},
        {},  # names no user
        {"oid": str(uuid.uuid4())},  # an unknown user
        {"iss": "https://gone.example/"},  # its keys cannot be fetched
    ],
)
def test_refused(
    idp: JwksServer, tenant: Tenant, federated: TestClient, claims: dict[str, Any]
) -> None:
    if claims.get("key") == "forged":
        claims = {"key": rsa_key(), "upn": tenant.admin.upn}
    elif claims and "oid" not in claims:
        claims = {**claims, "upn": tenant.admin.upn}
    response = federated.get("/beta/me", headers=_token(idp, **claims))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_user_of_another_tenant_is_not_reachable(
    idp: JwksServer, tenants: TenantFactory, federated: TestClient
) -> None:
    other = tenants()
    for claims in ({"oid": other.admin.id}, {"upn": other.admin.upn}):
        assert federated.get("/beta/me", headers=_token(idp, **claims)).status_code == 401


def test_the_default_app_does_not_trust_the_idp(
    idp: JwksServer, tenant: Tenant, client: TestClient
) -> None:
    assert client.get("/beta/me", headers=_token(idp, oid=tenant.admin.id)).status_code == 401


def test_made_up_kids_do_not_make_us_call_the_issuer_each_time(
    idp: JwksServer, tenant: Tenant, federated: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from countersign.auth import tokens

    assert federated.get("/beta/me", headers=_token(idp, oid=tenant.admin.id)).is_success
    fetched = idp.hits
    monkeypatch.setattr(tokens, "JWKS_MIN_AGE", 1e9)  # "within the minute", without a clock
    for _ in range(3):
        response = federated.get("/beta/me", headers=_token(idp, kid=str(uuid.uuid4())))
        assert response.status_code == 401
    assert idp.hits == fetched
    assert federated.get("/beta/me", headers=_token(idp, oid=tenant.admin.id)).is_success
    monkeypatch.setattr(tokens, "JWKS_MIN_AGE", -1.0)  # a minute later: a rotation is picked up
    assert federated.get("/beta/me", headers=_token(idp, kid="rotated")).status_code == 401
    assert idp.hits == fetched + 1
