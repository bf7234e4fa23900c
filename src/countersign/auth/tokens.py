"""Signed JWT access tokens: our own (RS256, keys kept in the database) and trusted issuers'."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from countersign.clock import Clock, system_clock
from countersign.config import Settings, TrustedIssuer
from countersign.domain.errors import Unauthorized
from countersign.store import tables as t
from countersign.store.db import Database

JWKS_MAX_AGE = 300.0  # seconds a trusted issuer's keys are used before they are refetched
JWKS_MIN_AGE = 60.0  # seconds before an unknown kid may trigger another fetch
LEEWAY_SECONDS = 30  # clock skew allowed on exp/nbf/iat
VERIFIED_CACHE_SIZE = 4096  # own tokens kept verified per process


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    principal_id: str | None  # None: an external token mapped by upn
    principal_type: str  # "user" or "servicePrincipal"
    upn: str | None = None
    # The `iat` claim, seconds since the epoch (to the millisecond for our own tokens). None
    # only for callers built inside Countersign without a token (a web session, which is
    # revoked by deleting it; a request's requester at auto-completion; a local operator).
    issued_at: float | None = None


class TokenService:
    def __init__(self, db: Database, settings: Settings, clock: Clock = system_clock):
        self.db = db
        self.settings = settings
        self.clock = clock  # exp, nbf and iat are checked against it (countersign/clock.py)
        self._keys: dict[str, Any] = {}  # kid -> public key
        self._signing: tuple[str, Any] | None = None
        self._lock = threading.Lock()
        self._external_jwks: dict[str, tuple[float, dict[str, Any]]] = {}
        # Our own tokens already verified in this process: token -> (claims, exp). A signature
        # verifies the same way every time, so only the expiry is checked again; what may change
        # (the account disabled, its tokens revoked) is checked by resolve_caller on every call.
        self._verified: dict[str, tuple[TokenClaims, int]] = {}

    # -- keys ---------------------------------------------------------------------------
    def _load_keys(self) -> None:
        with self._lock:
            if self._signing is not None:
                return
            with self.db.write() as session:
                rows = session.scalars(
                    select(t.SigningKey).order_by(t.SigningKey.created_date_time)
                ).all()
                if not rows:
                    rows = [self._generate(session)]
            for row in rows:
                self._keys[row.kid] = jwt.PyJWK(row.public_jwk, "RS256").key
            first = rows[0]
            self._signing = (
                first.kid,
                serialization.load_pem_private_key(first.private_key_pem.encode(), None),
            )

    @staticmethod
    def _generate(session: Any) -> t.SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = uuid.uuid4().hex
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        row = t.SigningKey(
            kid=kid, private_key_pem=pem, public_jwk=jwk, created_date_time=system_clock()
        )
        session.add(row)
        return row

    def jwks(self) -> dict[str, Any]:
        self._load_keys()
        with self.db.read() as session:
            return {"keys": [row.public_jwk for row in session.scalars(select(t.SigningKey))]}

    # -- issue and verify ---------------------------------------------------------------
    def issue(
        self,
        *,
        tenant_id: str,
        principal_id: str,
        principal_type: str,
        name: str,
        upn: str | None = None,
        now: datetime | None = None,
    ) -> tuple[str, int]:
        self._load_keys()
        assert self._signing is not None
        kid, key = self._signing
        now = now or self.clock()
        lifetime = self.settings.access_token_minutes * 60
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": principal_id,
            "oid": principal_id,
            "tid": tenant_id,
            "idtyp": "app" if principal_type == "servicePrincipal" else "user",
            "name": name,
            # To the millisecond (rounded down), so a token issued the same second as a
            # credentials change is still refused (NumericDate may carry a fraction).
            "iat": int(now.timestamp() * 1000) / 1000,
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if upn:
            claims["upn"] = upn
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}), lifetime

    def verify(self, token: str) -> TokenClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if self.clock().timestamp() < cached[1] + LEEWAY_SECONDS:
                return cached[0]
            self._verified.pop(token, None)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized("Access token is malformed.") from exc
        if header.get("alg") != "RS256":
            raise Unauthorized("Access token uses an unsupported algorithm.")
        issuer = unverified.get("iss")
        if issuer == self.settings.issuer:
            return self._verify_own(token, header)
        for trusted in self.settings.trusted_issuers:
            if trusted.issuer == issuer:
                return self._verify_external(token, header, trusted)
        raise Unauthorized("Access token is from an untrusted issuer.")

    def _verify_own(self, token: str, header: dict[str, Any]) -> TokenClaims:
        self._load_keys()
        kid = header.get("kid", "")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str):
            key = self._key_created_elsewhere(kid)
        if key is None:
            raise Unauthorized("Access token is signed with an unknown key.")
        claims = self._decode(token, key, self.settings.audience, self.settings.issuer)
        for claim in ("tid", "sub", "idtyp"):
            if not isinstance(claims.get(claim), str):
                raise Unauthorized(f"Access token lacks the '{claim}' claim.")
        verified = TokenClaims(
            tenant_id=claims["tid"],
            principal_id=claims["sub"],
            principal_type="servicePrincipal" if claims["idtyp"] == "app" else "user",
            issued_at=_issued_at(claims),
        )
        if isinstance(claims.get("exp"), int):
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()  # bounded; the tokens in use come back at once
            self._verified[token] = (verified, claims["exp"])
        return verified

    def _key_created_elsewhere(self, kid: str) -> Any:
        """A key another process added after this one loaded its keys: processes that start at
        once on an empty database each create one, and all of them sign valid tokens."""
        if not (0 < len(kid) <= 64 and kid.isascii() and kid.isalnum()):
            return None  # not one of ours (they are hex), and not worth a query
        with self.db.read() as session:
            row = session.get(t.SigningKey, kid)
        if row is None:
            return None
        key = jwt.PyJWK(row.public_jwk, "RS256").key
        self._keys[kid] = key
        return key

    def _verify_external(
        self, token: str, header: dict[str, Any], trusted: TrustedIssuer
    ) -> TokenClaims:
        jwk = self._external_key(trusted, header.get("kid", ""))
        claims = self._decode(token, jwk, trusted.audience, trusted.issuer)
        oid = claims.get("oid")
        upn = claims.get("upn") or claims.get("preferred_username")
        if not isinstance(oid, str) and not isinstance(upn, str):
            raise Unauthorized("Access token names no user (no 'oid' or 'upn' claim).")
        return TokenClaims(
            tenant_id=trusted.tenant_id,
            principal_id=oid if isinstance(oid, str) else None,
            principal_type="user",
            upn=upn if isinstance(upn, str) else None,
            issued_at=_issued_at(claims),
        )

    def _external_key(self, trusted: TrustedIssuer, kid: str) -> Any:
        now = time.monotonic()
        fetched_at, keys = self._external_jwks.get(trusted.jwks_url, (float("-inf"), {}))
        # Keys are refetched every five minutes, and at once for an unknown kid (the issuer
        # rotated) -- but at most once a minute, so that tokens with made-up kids, or an issuer
        # that is down, cannot make every request wait on a call to the issuer.
        if now - fetched_at > JWKS_MAX_AGE or (kid not in keys and now - fetched_at > JWKS_MIN_AGE):
            self._external_jwks[trusted.jwks_url] = (now, keys)
            try:
                document = httpx.get(trusted.jwks_url, timeout=5).json()
                keys = {k["kid"]: jwt.PyJWK(k).key for k in document["keys"] if "kid" in k}
            except (httpx.HTTPError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
                if kid not in keys:
                    raise Unauthorized("Keys of the token's issuer could not be fetched.") from exc
            else:
                self._external_jwks[trusted.jwks_url] = (now, keys)
        if kid not in keys:
            raise Unauthorized("Access token is signed with an unknown key.")
        return keys[kid]

    def _decode(self, token: str, key: Any, audience: str, issuer: str) -> dict[str, Any]:
        """The verified claims. PyJWT checks the signature, audience, issuer and that exp and
        iat are there; the times are checked here, against the injected clock."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=audience,
                issuer=issuer,
                options={
                    "require": ["exp", "iat"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("Access token validation failed.") from exc
        now = self.clock().timestamp()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
        if not (_is_time(exp) and _is_time(iat) and _is_time(nbf)):
            raise Unauthorized("Access token validation failed.")
        if now > exp + LEEWAY_SECONDS:
            raise Unauthorized("Access token has expired.")
        if max(iat, nbf) > now + LEEWAY_SECONDS:
            raise Unauthorized("Access token is not valid yet.")
        return claims


def _is_time(value: Any) -> TypeGuard[int | float]:
    """A NumericDate: seconds since the epoch, a number (never a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _issued_at(claims: dict[str, Any]) -> float:
    """A token's `iat` (required by _decode); a token without a usable one counts as issued at
    the epoch, so any credentials change revokes it."""
    iat = claims.get("iat")
    return float(iat) if _is_time(iat) else 0.0
