"""Sign-in (password and client-credentials grants) and turning a verified token into a Caller."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, null, select
from sqlalchemy.orm import Session

from countersign.auth.passwords import hash_secret, verify_secret
from countersign.auth.tokens import TokenClaims
from countersign.domain.actors import SERVICE_PRINCIPAL, USER, Caller
from countersign.domain.errors import AccountLocked, Unauthorized, ValidationFailed
from countersign.domain.rbac import DirectorySnapshot
from countersign.services import audit
from countersign.store import tables as t
from countersign.store.db import Database, bump_directory_version, current_snapshot

INVALID_GRANT = "The user name or password is incorrect."


# Only the columns needed (not the whole entity), as Core statements built once (their compiled
# form is cached): this runs on every request.
_USERS = t.Base.metadata.tables["users"]
_SPS = t.Base.metadata.tables["service_principals"]
_TENANTS = t.Base.metadata.tables["tenants"]
_USER_COLUMNS = select(
    _USERS.c.id,
    _USERS.c.display_name,
    _USERS.c.user_principal_name,
    _USERS.c.account_enabled,
    _USERS.c.tokens_valid_after,
    _TENANTS.c.directory_version,
).join(_TENANTS, _TENANTS.c.id == _USERS.c.tenant_id)
_USER_BY_ID = _USER_COLUMNS.where(
    _USERS.c.tenant_id == bindparam("caller_tenant_id"), _USERS.c.id == bindparam("caller_id")
)
_USER_BY_UPN = _USER_COLUMNS.where(
    _USERS.c.tenant_id == bindparam("caller_tenant_id"),
    _USERS.c.user_principal_name == bindparam("caller_upn"),
)
_SP_BY_ID = (
    select(
        _SPS.c.id,
        _SPS.c.display_name,
        null().label("user_principal_name"),
        _SPS.c.account_enabled,
        null().label("tokens_valid_after"),
        _TENANTS.c.directory_version,
    )
    .join(_TENANTS, _TENANTS.c.id == _SPS.c.tenant_id)
    .where(_SPS.c.tenant_id == bindparam("caller_tenant_id"), _SPS.c.id == bindparam("caller_id"))
)


@dataclasses.dataclass(frozen=True)
class _Resolved:
    """A principal as its row stood at a directory version: sound to reuse while the version
    stands, because every change to a user's or service principal's row bumps it (their
    handlers are `directory_cached`; a user's own password change bumps it too)."""

    caller: Caller  # without a correlation id
    enabled: bool
    tokens_valid_after: float | None


def resolve_caller(
    session: Session, db: Database, claims: TokenClaims, correlation_id: str | None = None
) -> Caller:
    """Load the principal a token names, in its tenant, and what it may do right now."""
    if claims.principal_type == SERVICE_PRINCIPAL:
        found = session.execute(
            _SP_BY_ID, {"caller_tenant_id": claims.tenant_id, "caller_id": claims.principal_id}
        ).first()
    elif claims.principal_id is not None:
        found = session.execute(
            _USER_BY_ID, {"caller_tenant_id": claims.tenant_id, "caller_id": claims.principal_id}
        ).first()
    else:
        found = None
    by_upn = claims.principal_type != SERVICE_PRINCIPAL and (
        claims.principal_id is None or bool(claims.upn)
    )
    if found is None and by_upn:
        found = session.execute(
            _USER_BY_UPN,
            {"caller_tenant_id": claims.tenant_id, "caller_upn": (claims.upn or "").lower()},
        ).first()
    if found is None:
        return _checked(claims, None, correlation_id)
    snapshot = db.snapshot(session, claims.tenant_id, found.directory_version)
    revoked = found.tokens_valid_after
    resolved = _Resolved(
        Caller(
            tenant_id=claims.tenant_id,
            id=found.id,
            type=claims.principal_type if claims.principal_type == SERVICE_PRINCIPAL else USER,
            display_name=found.display_name,
            upn=found.user_principal_name,
            access=snapshot.access_for(found.id),
            snapshot=snapshot,
        ),
        bool(found.account_enabled),
        None if revoked is None else revoked.timestamp(),
    )
    db.remember(claims.tenant_id, _principal_key(claims), found.directory_version, resolved)
    return _checked(claims, resolved, correlation_id)


def cached_caller(
    db: Database, claims: TokenClaims, correlation_id: str | None = None
) -> Caller | None:
    """`resolve_caller` at the cost of one statement outside any transaction (the tenant's
    directory version), when this process resolved the principal at that version; else None."""
    version = db.directory_version(claims.tenant_id)
    if version is None:
        return None
    resolved = db.remembered(claims.tenant_id, _principal_key(claims), version)
    if not isinstance(resolved, _Resolved):
        return None
    return _checked(claims, resolved, correlation_id)


def _principal_key(claims: TokenClaims) -> tuple[str, str, str, str]:
    """What a token names in its tenant: a principal, by id or (external tokens) by upn."""
    return ("caller", claims.principal_type, claims.principal_id or "", claims.upn or "")


def _checked(claims: TokenClaims, resolved: _Resolved | None, correlation_id: str | None) -> Caller:
    """The caller, unless its account is gone or disabled or the token predates a revocation."""
    if resolved is None or not resolved.enabled:
        if claims.principal_type == SERVICE_PRINCIPAL:
            raise Unauthorized(
                "The service principal of the token no longer exists or is disabled."
            )
        raise Unauthorized("The user of the token no longer exists or is disabled.")
    revoked = resolved.tokens_valid_after
    if revoked is not None and claims.issued_at is not None and claims.issued_at < revoked:
        raise Unauthorized(
            "The token was issued before the account's credentials changed; sign in again."
        )
    if correlation_id is None:
        return resolved.caller
    return dataclasses.replace(resolved.caller, correlation_id=correlation_id)


def caller_as_of(session: Session, db: Database, caller: Caller) -> Caller:
    """The caller as of this transaction: policies or roles may have changed since sign-in."""
    snapshot = snapshot_as_of(session, db, caller.tenant_id)
    if snapshot is caller.snapshot:
        return caller
    return dataclasses.replace(caller, snapshot=snapshot, access=snapshot.access_for(caller.id))


def snapshot_as_of(session: Session, db: Database, tenant_id: str) -> DirectorySnapshot:
    """The tenant's directory snapshot as of this transaction.

    In a SQLite write transaction the database's write lock is held from BEGIN IMMEDIATE, so
    the tenant's lock costs nothing more: the version is read with the audit chain's head, and
    the transaction's audit entry then needs no read of its own."""
    if db.is_sqlite and session.connection().get_execution_options().get("countersign_write"):
        audit.lock_chain(session, tenant_id)
    return current_snapshot(session, db, tenant_id)


# The lockout rule of a password sign-in, unless configured (Settings.lockout_attempts and
# lockout_minutes, which the API and the admin center pass): this many failures in a row
# lock the account for this long.
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)


def sign_in_with_password(
    session: Session,
    upn: str,
    password: str,
    *,
    now: datetime,
    max_attempts: int = MAX_FAILED_SIGN_INS,
    lockout: timedelta = LOCKOUT,
) -> t.User:
    """Check a user's password. `max_attempts` failures in a row lock the account for `lockout`.

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
    max_attempts: int = MAX_FAILED_SIGN_INS,
    lockout: timedelta = LOCKOUT,
    then: Callable[[Session, t.User], None] | None = None,
) -> t.User:
    """Run `sign_in_with_password` in a write transaction that commits the failure count;
    `then` runs in the same transaction once the password is proved."""
    deferred: Exception | None = None
    with db.write() as session:
        try:
            user = sign_in_with_password(
                session, upn, password, now=now, max_attempts=max_attempts, lockout=lockout
            )
        except _Deferred as wrapped:
            deferred = wrapped.error
        else:
            if then is not None:
                then(session, user)
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
    max_attempts: int = MAX_FAILED_SIGN_INS,
    lockout: timedelta = LOCKOUT,
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

    def set_new_password(session: Session, user: t.User) -> None:
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

    try:
        return password_sign_in(
            db,
            caller.upn,
            current_password,
            now=now,
            max_attempts=max_attempts,
            lockout=lockout,
            then=set_new_password,
        )
    except Unauthorized:
        raise ValidationFailed(
            "The current password is incorrect.", target="currentPassword"
        ) from None


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
