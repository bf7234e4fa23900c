"""Admin center sessions: a random token in an HttpOnly cookie, only its hash in the database.

The CSRF token of a session is derived from the session token (HMAC-free: a SHA-256 of a
distinct prefix), so nothing besides the token hash is stored and a page can always render it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from countersign.store import tables as t

SESSION_COOKIE = "countersign_session"
SIGN_IN_CSRF_COOKIE = "countersign_signin_csrf"
SESSION_LIFETIME = timedelta(hours=8)


def token_hash(token: str) -> str:
    return hashlib.sha256(("session:" + token).encode()).hexdigest()


def csrf_token_for(token: str) -> str:
    """The CSRF token that every form of this session carries."""
    return hashlib.sha256(("csrf:" + token).encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_random_token() -> str:
    return secrets.token_urlsafe(32)


def create_session(session: Session, user: t.User, now: datetime) -> str:
    """Store a new session for `user`; returns the token for the cookie (never stored)."""
    token = new_random_token()
    session.add(
        t.WebSession(
            token_hash=token_hash(token),
            tenant_id=user.tenant_id,
            user_id=user.id,
            created_date_time=now,
            expiration_date_time=now + SESSION_LIFETIME,
        )
    )
    # Housekeeping: the user's own expired sessions go when they sign in again.
    session.execute(
        delete(t.WebSession).where(
            t.WebSession.user_id == user.id, t.WebSession.expiration_date_time <= now
        )
    )
    return token


def find_session(session: Session, token: str, now: datetime) -> t.WebSession | None:
    row = session.execute(
        select(t.WebSession).where(t.WebSession.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if row is None or row.expiration_date_time <= now:
        return None
    return row


def end_session(session: Session, token: str) -> None:
    session.execute(delete(t.WebSession).where(t.WebSession.token_hash == token_hash(token)))
