"""The database handle: engines, sessions and the directory snapshot cache.

SQLite runs in WAL mode with foreign keys and a busy timeout. Write transactions on SQLite start
with BEGIN IMMEDIATE, so two writers never both read a row and then race to update it (a deferred
transaction that reads first fails with SQLITE_BUSY when it later tries to write). On PostgreSQL,
races are settled with row locks and conditional updates in the services.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, event, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from countersign.domain.errors import Conflict
from countersign.domain.rbac import DirectorySnapshot, RoleAssignment
from countersign.store import tables as t
from countersign.store.policy_rows import active_policy


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)
    # Pool as many connections as the server has request threads (40), so busy moments reuse
    # connections instead of opening (and setting up) new ones.
    in_memory = ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:")
    pool = {} if in_memory else {"pool_size": 20, "max_overflow": 30}
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **pool, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("countersign_autocommit", False):
            return  # the driver is in autocommit (isolation_level None) until a BEGIN
        immediate = connection.get_execution_options().get("countersign_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engine, hands out read and write sessions, caches directory snapshots."""

    def __init__(self, url: str, write_concurrency: int = 2):
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # Each session knows its Database (`Database.of`), so code handed only a session (the
        # outbox) can use the caches below.
        info = {_DATABASE_KEY: self}
        self._read = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._write = sessionmaker(
            self.engine.execution_options(countersign_write=True),
            expire_on_commit=False,
            info=info,
        )
        self._snapshots: dict[str, DirectorySnapshot] = {}
        self._channels: dict[str, tuple[int, tuple[EnabledChannel, ...]]] = {}
        # Per tenant: the directory version, and what was derived from its rows at it.
        self._remembered: dict[str, tuple[int, dict[tuple[str, ...], object]]] = {}
        # One-statement reads outside any transaction (no BEGIN, no COMMIT). The sqlite3
        # driver is in autocommit whenever no BEGIN was issued (make_engine), so there only
        # the BEGIN is skipped; psycopg is switched to autocommit (client-side).
        self._autocommit = self.engine.execution_options(
            countersign_autocommit=True,
            **({} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}),
        )
        self._lock = threading.Lock()
        self._writers = _SQLiteWriterQueue(self.engine.url.database) if self.is_sqlite else None
        # On PostgreSQL, how many write transactions this process runs at once. Writes of one
        # tenant take turns on its row (the audit chain) anyway; letting every request thread
        # hold a transaction open while it waits only builds a convoy (bench/lifecycle.py:
        # 37 lifecycles/s unbounded, 44-46 with 1 or 2 per process).
        self._pg_writers = threading.BoundedSemaphore(max(1, write_concurrency))

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any exception. A versioned
        row (tables.Versioned) that another transaction changed since it was read is a 409,
        with nothing written."""
        try:
            if self._writers is None:
                if not self._pg_writers.acquire(timeout=30):
                    raise TimeoutError("waited 30 s for a write slot")
                try:
                    with self._write() as session, session.begin():
                        yield session
                finally:
                    self._pg_writers.release()
                return
            with self._writers, self._write() as session, session.begin():
                yield session
        except StaleDataError:
            raise Conflict(
                "The object was changed by another request meanwhile; read it again and retry.",
                reason="objectChanged",
            ) from None

    def refresh_statistics(self) -> None:
        """Give SQLite's query planner fresh table statistics (PostgreSQL's autovacuum keeps
        its own). Without them SQLite may pick the expiry index for "All requests" filtered by
        status and sort the whole status instead of reading 50 rows in index order. Sampled
        (analysis_limit), so it takes milliseconds even on millions of rows."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()

    def snapshot(self, session: Session, tenant_id: str, version: int) -> DirectorySnapshot:
        """The tenant's directory at `version` or newer, from the cache when it is current."""
        cached = self._snapshots.get(tenant_id)
        if cached is not None and cached.version == version:
            return cached
        snapshot = load_snapshot(session, tenant_id, version)
        with self._lock:
            self._snapshots[tenant_id] = snapshot
        return snapshot

    def enabled_channels(
        self, session: Session, tenant_id: str, version: int
    ) -> tuple[EnabledChannel, ...]:
        """The tenant's enabled notification channels at directory `version` or newer, from the
        cache when it is current. Sound because every channel change bumps the version in its
        own transaction (services/notification_channels.py), and an entry is always loaded
        after its version was read, so it is never older than its label."""
        cached = self._channels.get(tenant_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        channels = load_enabled_channels(session, tenant_id)
        with self._lock:
            self._channels[tenant_id] = (version, channels)
        return channels

    def directory_version(self, tenant_id: str) -> int | None:
        """The tenant's directory version (None for no such tenant), read by one statement in
        autocommit: a version read in no transaction is as current as one read at a
        transaction's start."""
        with self._autocommit.connect() as connection:
            version = connection.execute(_DIRECTORY_VERSION, {"version_tenant_id": tenant_id})
            return version.scalar()

    def remember(self, tenant_id: str, key: tuple[str, ...], version: int, value: object) -> None:
        """Keep `value`, derived from the tenant's rows read at its directory version `version`
        (it must change only with that version), until the version moves. One version is kept
        per tenant: a newer one replaces all that was kept at the older."""
        with self._lock:
            kept = self._remembered.get(tenant_id)
            if kept is not None and kept[0] > version:
                return  # read before a change this process has already seen
            if kept is None or kept[0] != version:
                kept = self._remembered[tenant_id] = (version, {})
            if len(kept[1]) >= REMEMBERED_SIZE:
                kept[1].clear()
            kept[1][key] = value

    def remembered(self, tenant_id: str, key: tuple[str, ...], version: int) -> object | None:
        """What `remember` kept for the tenant under `key` at exactly this version, if anything."""
        kept = self._remembered.get(tenant_id)
        return kept[1].get(key) if kept is not None and kept[0] == version else None

    @staticmethod
    def of(session: Session) -> Database | None:
        """The Database that opened `session` (None for a session made elsewhere)."""
        found = session.info.get(_DATABASE_KEY)
        return found if isinstance(found, Database) else None


_DATABASE_KEY = "countersign.database"
REMEMBERED_SIZE = 10_000
_DIRECTORY_VERSION = select(t.Tenant.directory_version).where(
    t.Tenant.id == bindparam("version_tenant_id")
)


@dataclass(frozen=True)
class EnabledChannel:
    """What the outbox needs of an enabled channel: where a message goes and for which events
    (empty: all)."""

    id: str
    kind: str
    events: frozenset[str]

    def takes(self, event: str) -> bool:
        return not self.events or event in self.events


def load_enabled_channels(session: Session, tenant_id: str) -> tuple[EnabledChannel, ...]:
    """In creation order, as the outbox writes their messages."""
    rows = session.execute(
        select(t.NotificationChannel.id, t.NotificationChannel.kind, t.NotificationChannel.events)
        .where(
            t.NotificationChannel.tenant_id == tenant_id,
            t.NotificationChannel.enabled.is_(True),
        )
        .order_by(t.NotificationChannel.created_date_time, t.NotificationChannel.id)
    )
    return tuple(EnabledChannel(id, kind, frozenset(events or ())) for id, kind, events in rows)


class _SQLiteWriterQueue:
    """Writers to one SQLite file take turns in a queue rather than by SQLite's busy handler.

    SQLite admits one writer at a time; the others, refused, sleep in growing steps (up to
    100 ms) and retry, so under contention most of the time goes to sleeping. Here each writer
    first takes a thread lock (its process's turn) and then an exclusive flock on a file beside
    the database (the turn among processes): the kernel wakes the next waiter the moment the
    lock is released. SQLite's own locking still guards correctness; this only orders writers.
    """

    def __init__(self, database: str | None):
        self._thread_lock = threading.Lock()
        self._path = None if not database or database == ":memory:" else f"{database}-writer.lock"
        self._file: Any = None

    def __enter__(self) -> None:
        # Bounded like SQLite's busy timeout, so a mistake (a write opened inside another
        # write on the same thread) fails instead of hanging.
        if not self._thread_lock.acquire(timeout=30):
            raise TimeoutError("waited 30 s for the SQLite writer lock")
        if self._path is None:
            return
        try:
            if self._file is None:
                self._file = open(self._path, "a+b")
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def load_snapshot(session: Session, tenant_id: str, version: int) -> DirectorySnapshot:
    members: dict[str, set[str]] = {}
    for group_id, member_id in session.execute(
        select(t.GroupMember.group_id, t.GroupMember.member_id).where(
            t.GroupMember.tenant_id == tenant_id
        )
    ):
        members.setdefault(group_id, set()).add(member_id)
    security_groups = session.scalars(
        select(t.Group.id).where(
            t.Group.tenant_id == tenant_id,
            t.Group.security_enabled.is_(True),
            t.Group.mail_enabled.is_(False),
        )
    ).all()
    roles = {
        role.id: frozenset(role.permissions)
        for role in session.scalars(
            select(t.RoleDefinition).where(t.RoleDefinition.tenant_id == tenant_id)
        )
    }
    assignments = tuple(
        RoleAssignment(
            id=a.id,
            display_name=a.display_name,
            role_definition_id=a.role_definition_id,
            member_group_ids=frozenset(a.members),
            scope_tag_ids=frozenset(a.role_scope_tag_ids),
            all_scope_tags=a.all_scope_tags,
        )
        for a in session.scalars(
            select(t.RoleAssignment).where(t.RoleAssignment.tenant_id == tenant_id)
        )
    )
    credentials: dict[str, str] = {}
    enabled_users: list[str] = []
    for user_id, enabled, upn, mail, password_hash in session.execute(
        select(
            t.User.id,
            t.User.account_enabled,
            t.User.user_principal_name,
            t.User.mail,
            t.User.password_hash,
        ).where(t.User.tenant_id == tenant_id)
    ):
        credentials[user_id] = _digest("user", upn, mail, password_hash)
        if enabled:
            enabled_users.append(user_id)
    secrets: dict[str, list[str]] = {}
    for sp_id, key_id in session.execute(
        select(t.ServicePrincipalSecret.service_principal_id, t.ServicePrincipalSecret.key_id)
        .where(t.ServicePrincipalSecret.tenant_id == tenant_id)
        .order_by(t.ServicePrincipalSecret.key_id)
    ):
        secrets.setdefault(sp_id, []).append(key_id)
    enabled_service_principals: list[str] = []
    principal_by_app_id: dict[str, str] = {}
    for sp_id, app_id, enabled in session.execute(
        select(
            t.ServicePrincipal.id, t.ServicePrincipal.app_id, t.ServicePrincipal.account_enabled
        ).where(t.ServicePrincipal.tenant_id == tenant_id)
    ):
        credentials[sp_id] = _digest("servicePrincipal", app_id, *secrets.get(sp_id, ()))
        principal_by_app_id[app_id] = sp_id
        if enabled:
            enabled_service_principals.append(sp_id)
    policies = tuple(
        active_policy(row, principal_by_app_id)
        for row in session.scalars(
            select(t.ApprovalPolicy).where(t.ApprovalPolicy.tenant_id == tenant_id)
        )
    )
    return DirectorySnapshot(
        version=version,
        members={k: frozenset(v) for k, v in members.items()},
        security_groups=frozenset(security_groups),
        role_permissions=roles,
        assignments=assignments,
        enabled_users=frozenset(enabled_users),
        credentials=credentials,
        enabled_service_principals=frozenset(enabled_service_principals),
        policies=policies,
    )


def _digest(*parts: str | None) -> str:
    """What signs in as a principal, as a digest: the snapshot is cached in memory, and the
    comparison needs only to know whether it changed."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def current_snapshot(session: Session, db: Database, tenant_id: str) -> DirectorySnapshot:
    """The snapshot as of this transaction (reads the tenant's version: one primary-key read)."""
    version = locked_directory_version(session, tenant_id)
    if version is None:
        version = session.scalar(select(t.Tenant.directory_version).where(t.Tenant.id == tenant_id))
    if version is None:
        raise LookupError(tenant_id)
    return db.snapshot(session, tenant_id, version)


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Hold the tenant row until commit: writers that derive something from the tenant's rows
    (the next scope-tag id, the next audit entry) take turns. FOR NO KEY UPDATE, as audit.record
    takes it, so foreign-key checks of rows inserted meanwhile do not deadlock with it."""
    session.execute(
        select(t.Tenant.id).where(t.Tenant.id == tenant_id).with_for_update(key_share=True)
    )


def bump_directory_version(session: Session, tenant_id: str) -> None:
    """Call in the transaction of any change to groups, members, roles, access policies or
    notification channels: the cached snapshot and channel list are keyed by this version."""
    session.info.get(_LOCKED_VERSIONS, {}).pop(tenant_id, None)
    session.execute(
        update(t.Tenant)
        .where(t.Tenant.id == tenant_id)
        .values(directory_version=t.Tenant.directory_version + 1)
    )


# -- the directory version read under the tenant lock ----------------------------------------

_LOCKED_VERSIONS = "countersign.locked_directory_versions"


def remember_locked_directory_version(session: Session, tenant_id: str, version: int) -> None:
    """Record the version read while holding the tenant row's lock (audit.record takes it): no
    other transaction can change it before this one ends."""
    session.info.setdefault(_LOCKED_VERSIONS, {})[tenant_id] = version


def locked_directory_version(session: Session, tenant_id: str) -> int | None:
    """The version `remember_locked_directory_version` recorded in this transaction, if any."""
    found: int | None = session.info.get(_LOCKED_VERSIONS, {}).get(tenant_id)
    return found


@event.listens_for(Session, "after_transaction_end")
def _forget_locked_versions(session: Session, transaction: SessionTransaction) -> None:
    # Also on the end of a savepoint: one rolled back may have released the lock. (Not on the
    # end of the ORM's internal flush transactions.)
    if transaction.nested or transaction.parent is None:
        session.info.pop(_LOCKED_VERSIONS, None)
