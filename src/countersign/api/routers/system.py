"""Public endpoints: health, readiness, token issuance (RFC 6749) and discovery documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from countersign.api.body import form_fields
from countersign.api.deps import base_url, context
from countersign.domain.actors import SERVICE_PRINCIPAL, USER
from countersign.domain.errors import AccountLocked, DomainError, Unauthorized
from countersign.services.identity import client_credentials_sign_in, password_sign_in
from countersign.store.migrate import migrations_current

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    try:
        current = migrations_current(context(request).db.engine)
    except Exception:  # the database is unreachable: not ready, whatever the reason
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if not current:
        return JSONResponse(
            {"status": "unavailable", "database": "migrations pending"}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@router.post("/oauth2/token")
@router.post("/{tenant}/oauth2/v2.0/token", include_in_schema=False)
def token(request: Request) -> JSONResponse:
    """RFC 6749 token endpoint: `password` and `client_credentials` grants (form-encoded)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return _oauth_error(
            "invalid_request", "The body must be application/x-www-form-urlencoded."
        )
    values = dict(form_fields(request))
    if any("\x00" in k or "\x00" in v for k, v in values.items()):
        return _oauth_error("invalid_request", "The request cannot contain NUL characters.")
    ctx = context(request)
    now = ctx.clock()
    grant = values.get("grant_type")
    try:
        if grant == "password":
            if not values.get("username") or not values.get("password"):
                return _oauth_error("invalid_request", "username and password are required.")
            user = password_sign_in(
                ctx.db,
                values["username"],
                values["password"],
                now=now,
                max_attempts=ctx.settings.lockout_attempts,
                lockout=timedelta(minutes=ctx.settings.lockout_minutes),
            )
            access, lifetime = ctx.tokens.issue(
                tenant_id=user.tenant_id,
                principal_id=user.id,
                principal_type=USER,
                name=user.display_name,
                upn=user.user_principal_name,
                now=now,
            )
        elif grant == "client_credentials":
            if not values.get("client_id") or not values.get("client_secret"):
                return _oauth_error("invalid_request", "client_id and client_secret are required.")
            with ctx.db.read() as session:
                sp = client_credentials_sign_in(
                    session, values["client_id"], values["client_secret"], now=now
                )
            access, lifetime = ctx.tokens.issue(
                tenant_id=sp.tenant_id,
                principal_id=sp.id,
                principal_type=SERVICE_PRINCIPAL,
                name=sp.display_name,
                now=now,
            )
        else:
            return _oauth_error(
                "unsupported_grant_type", "grant_type must be 'password' or 'client_credentials'."
            )
    except AccountLocked as exc:
        return _oauth_error("invalid_grant", exc.message)
    except Unauthorized as exc:
        error = "invalid_client" if grant == "client_credentials" else "invalid_grant"
        return _oauth_error(error, exc.message, 401 if error == "invalid_client" else 400)
    except DomainError as exc:
        return _oauth_error("invalid_request", exc.message)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "access_token": access,
        "scope": values.get("scope", "https://graph.microsoft.com/.default"),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json")
def jwks(request: Request) -> dict[str, Any]:
    return context(request).tokens.jwks()


@router.get("/.well-known/openid-configuration")
def openid_configuration(request: Request) -> dict[str, Any]:
    url = base_url(request)
    return {
        "issuer": context(request).settings.issuer,
        "token_endpoint": f"{url}/oauth2/token",
        "jwks_uri": f"{url}/.well-known/jwks.json",
        "grant_types_supported": ["password", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }
