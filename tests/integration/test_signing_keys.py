"""Signing keys live in the database, so every server process accepts every process's tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from countersign.auth.tokens import TokenService
from countersign.config import Settings
from countersign.domain.errors import Unauthorized
from countersign.store.db import Database
from countersign.store.migrate import upgrade
from tests.factories import mint_token


def _claims() -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "iss": "countersign",
        "aud": "countersign",
        "sub": "someone",
        "tid": "some-tenant",
        "idtyp": "user",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }


def test_a_key_added_by_another_process_is_accepted(fresh_database_url: Callable[[], str]) -> None:
    """Two processes starting at once on an empty PostgreSQL database each create a key; a
    token signed with the other's key must still verify."""
    url = fresh_database_url()
    upgrade(url)
    db = Database(url)
    try:
        settings = Settings(database_url=url)
        first = TokenService(db, settings)
        first.jwks()  # loads (creates) its key and caches the key set
        with db.write() as session:
            other = TokenService._generate(session)  # the other process's key
            kid, pem = other.kid, other.private_key_pem
        key = serialization.load_pem_private_key(pem.encode(), None)
        claims = first.verify(mint_token(_claims(), key, kid=kid))
        assert claims.principal_id == "someone"
        for bad_kid in ("not-in-the-database", "a\x00b", "k" * 500):
            with pytest.raises(Unauthorized):
                first.verify(mint_token(_claims(), key, kid=bad_kid))
    finally:
        db.dispose()
