"""Sign-in (password and client-credentials grants) and turning a verified token into a Caller."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from countersign.auth.passwords import hash_secret, verify_secret
from countersign.auth.tokens import TokenClaims
from countersign.domain.actors import SERVICE_PRINCIPAL, USER, Caller
from countersign.domain.errors import AccountLocked, Unauthorized, ValidationFailed
from countersign.services import audit
from countersign.store import tables as t
from countersign.store.db import Database, bump_directory_version, current_snapshot

INVALID_GRANT = "The user name or password is incorrect."


def resolve_caller(
    session: Session, db: Database, claims: TokenClaims, correlation_id: str | None = None
) -> Caller:
    """Load the principal a token names, in its tenant, and what it may do right now."""
    if claims.principal_type == SERVICE_PRINCIPAL:
        sp = session.execute(
            select(t.ServicePrincipal, t.Tenant.directory_version)
            .join(t.Tenant, t.Tenant.id == t.ServicePrincipal.tenant_id)
            .where(
                t.ServicePrincipal.id == claims.principal_id,
                t.ServicePrincipal.tenant_id == claims.tenant_id,
            )
        ).first()
        if sp is None or not sp[0].account_enabled:
            raise Unauthorized(
                "The service principal of the token no longer exists or is disabled."
            )
        principal_id, name, upn, version = sp[0].id, sp[0].display_name, None, sp[1]
        principal_type = SERVICE_PRINCIPAL
    else:
        # Only the columns needed (not the whole user entity): this runs on every request.
        user_columns = (
            t.User.id,
            t.User.display_name,
            t.User.user_principal_name,
            t.User.account_enabled,
            t.User.tokens_valid_after,
            t.Tenant.directory_version,
        )
        query = (
            select(*user_columns)
            .join(t.Tenant, t.Tenant.id == t.User.tenant_id)
            .where(t.User.tenant_id == claims.tenant_id)
        )
        if claims.principal_id is not None:
            query = query.where(t.User.id == claims.principal_id)
        else:
            query = query.where(t.User.user_principal_name == (claims.upn or "").lower())
        found = session.execute(query).first()
        if found is None and claims.principal_id is not None and claims.upn:
            found = session.execute(
                select(*user_columns)
                .join(t.Tenant, t.Tenant.id == t.User.tenant_id)
                .where(
                    t.User.tenant_id == claims.tenant_id,
                    t.User.user_principal_name == claims.upn.lower(),
                )
            ).first()
        if found is None or not found.account_enabled:
            raise Unauthorized("The user of the token no longer exists or is disabled.")
        revoked = found.tokens_valid_after
        if (
            revoked is not None
            and claims.issued_at is not None
            and claims.issued_at < revoked.timestamp()
        ):
            raise Unauthorized(
                "The token was issued before the account's credentials changed; sign in again."
            )
        principal_id, name, upn, version = (
            found.id,
            found.display_name,
            found.user_principal_name,
            found.directory_version,
        )
        principal_type = USER
    snapshot = db.snapshot(session, claims.tenant_id, version)
    return Caller(
        tenant_id=claims.tenant_id,
        id=principal_id,
        type=principal_type,
        display_name=name,
        upn=upn,
        access=snapshot.access_for(principal_id),
        snapshot=snapshot,
        correlation_id=correlation_id,
    )


def caller_as_of(session: Session, db: Database, caller: Caller) -> Caller:
    """The caller as of this transaction: policies or roles may have changed since sign-in."""
    snapshot = current_snapshot(session, db, caller.tenant_id)
    if snapshot is caller.snapshot:
        return caller
    return dataclasses.replace(caller, snapshot=snapshot, access=snapshot.access_for(caller.id))


def sign_in_with_password(
    session: Session,
    upn: str,
    password: str,
    *,
    now: datetime,
    max_attempts: int = 5,
    lockout: timedelta = timedelta(minutes=15),
) -> t.User:
    """Check a user's password. Five failures in a row lock the account for `lockout`.

    The failure count is committed even though the caller raises afterwards, so the service
    commits before raising: callers run this in its own write transaction.
    """
    user = session.execute(
        select(t.User).where(t.User.user_principal_name == upn.strip().lower()).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        verify_secret(None, password)  # same work as a real check: UPNs are not revealed by time
        raise Unauthorized(INVALID_GRANT)
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(
            "The account is locked after too many failed sign-ins. Try again later.",
            reason="accountLocked",
        )
    if not verify_secret(user.password_hash, password):
        user.failed_sign_ins += 1
        locked = user.failed_sign_ins >= max_attempts
        if locked:
            user.locked_until = now + lockout
            user.failed_sign_ins = 0
        audit.record(
            session,
            tenant_id=user.tenant_id,
            actor=None,
            actor_name=user.user_principal_name,
            activity="Sign-in failed" + (" (account locked)" if locked else ""),
            activity_type="signInFailure",
            category="Authentication",
            target_type="user",
            target_id=user.id,
            target_name=user.user_principal_name,
            result="failure",
            now=now,
        )
        raise _Deferred(
            AccountLocked(
                "The account is locked after too many failed sign-ins. Try again later.",
                reason="accountLocked",
            )
            if locked
            else Unauthorized(INVALID_GRANT)
        )
    if not user.account_enabled:
        raise Unauthorized("The account is disabled.")
    user.failed_sign_ins = 0
    user.locked_until = None
    return user


class _Deferred(Exception):
    """Carries an error out of a transaction that must still commit (the failure count)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def password_sign_in(
    db: Database,
    upn: str,
    password: str,
    *,
    now: datetime,
    max_attempts: int = 5,
    lockout: timedelta = timedelta(minutes=15),
) -> t.User:
    """Run `sign_in_with_password` in a write transaction that commits the failure count."""
    deferred: Exception | None = None
    with db.write() as session:
        try:
            user = sign_in_with_password(
                session, upn, password, now=now, max_attempts=max_attempts, lockout=lockout
            )
        except _Deferred as wrapped:
            deferred = wrapped.error
    if deferred is not None:
        raise deferred
    return user


MIN_PASSWORD, MAX_PASSWORD = 8, 256


def change_own_password(
    db: Database,
    caller: Caller,
    current_password: str,
    new_password: str,
    *,
    now: datetime,
    max_attempts: int = 5,
    lockout: timedelta = timedelta(minutes=15),
) -> t.User:
    """Graph's `/me/changePassword`: a user sets their own password by proving the current one.

    Not an approval-protected change (SPEC §4 rule 10): whoever knows the current password
    already controls the account. A wrong current password counts as a failed sign-in (five
    lock the account), so a stolen token cannot be used to guess it. Every earlier token and
    admin center session of the user ends; the caller signs in again with the new password."""
    if caller.type != USER or caller.upn is None:
        raise ValidationFailed("Only users have passwords; service principals use secrets.")
    if not MIN_PASSWORD <= len(new_password) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"The new password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
            target="newPassword",
        )
    if new_password == current_password:
        raise ValidationFailed(
            "The new password must differ from the current one.", target="newPassword"
        )
    deferred: Exception | None = None
    with db.write() as session:
        try:
            user = sign_in_with_password(
                session,
                caller.upn,
                current_password,
                now=now,
                max_attempts=max_attempts,
                lockout=lockout,
            )
        except _Deferred as wrapped:
            deferred = wrapped.error
        else:
            user.password_hash = hash_secret(new_password)
            user.tokens_valid_after = now
            user.version += 1
            user.last_modified_date_time = now
            session.execute(delete(t.WebSession).where(t.WebSession.user_id == user.id))
            bump_directory_version(session, user.tenant_id)
            audit.record(
                session,
                tenant_id=user.tenant_id,
                actor=caller,
                activity="Change own password",
                activity_type="Change own password",
                category="Directory",
                target_type="user",
                target_id=user.id,
                target_name=user.user_principal_name,
                now=now,
            )
            return user
    if isinstance(deferred, Unauthorized):
        raise ValidationFailed("The current password is incorrect.", target="currentPassword")
    assert deferred is not None
    raise deferred


def client_credentials_sign_in(
    session: Session, app_id: str, secret: str, *, now: datetime
) -> t.ServicePrincipal:
    sp = session.execute(
        select(t.ServicePrincipal).where(t.ServicePrincipal.app_id == app_id.strip().lower())
    ).scalar_one_or_none()
    if sp is None or not sp.account_enabled:
        verify_secret(None, secret)
        raise Unauthorized("The client id or secret is incorrect.")
    secrets = session.scalars(
        select(t.ServicePrincipalSecret).where(
            t.ServicePrincipalSecret.service_principal_id == sp.id,
            t.ServicePrincipalSecret.end_date_time > now,
        )
    ).all()
    if not any(verify_secret(s.secret_hash, secret) for s in secrets):
        raise Unauthorized("The client id or secret is incorrect.")
    return sp


def upn_taken(session: Session, upn: str) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(t.User)
            .where(t.User.user_principal_name == upn.lower())
        )
    )
