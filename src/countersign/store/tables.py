"""SQLAlchemy table definitions. Every row belongs to exactly one tenant.

Alembic migrations under `migrations/` must match these; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every database (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JsonType, list[Any]: JsonType}


class Versioned:
    """A row with a `version` column that every change moves (services/handlers/base.py
    `touch`): each ORM UPDATE and DELETE of it also matches the version it was read at, so a
    write that lost a race to another changes nothing (store/db.py answers 409)."""

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        table = cast(Table, cls.__table__)  # type: ignore[attr-defined]
        return {"version_id_col": table.c.version, "version_id_generator": False}


def tenant_fk() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    created_date_time: Mapped[datetime]
    request_lifetime_days: Mapped[int] = mapped_column(Integer, default=30)
    # Hours before expiry a waiting request's reminder is sent; NULL: the server's default
    # (COUNTERSIGN_REMINDER_HOURS_BEFORE_EXPIRY). services/tenant_settings.py.
    reminder_hours_before_expiry: Mapped[int | None] = mapped_column(Integer)
    # Version of the settings above (request_lifetime_days, reminder_hours_before_expiry): an
    # approved change of them refuses to complete if they moved meanwhile.
    settings_version: Mapped[int] = mapped_column(Integer, default=1)
    # Change-freeze windows [{startDateTime, endDateTime, reason}] (ISO 8601, UTC): no protected
    # request completes while one is open (domain/policy_rules.py). Versioned with the above.
    freeze_windows: Mapped[list[Any]] = mapped_column(default=list)
    # Bumped in the same transaction as any change to groups, memberships, roles, assignments
    # or access policies; processes cache directory snapshots keyed by it.
    directory_version: Mapped[int] = mapped_column(BigInteger, default=1)
    # Head of the tenant's audit hash chain; updating it serialises audit writers per tenant.
    audit_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    audit_head_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)


class User(Versioned, Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    display_name: Mapped[str] = mapped_column(String(256))
    # Sign-in is by UPN, so it is unique across all tenants (stored lower-cased).
    user_principal_name: Mapped[str] = mapped_column(String(256), unique=True)
    mail: Mapped[str | None] = mapped_column(String(256))
    account_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    # Tokens issued before this moment are refused: set when the password, sign-in name or
    # enabled state changes, so a taken-over or disabled account's old tokens stop working.
    tokens_valid_after: Mapped[datetime | None]
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class ServicePrincipal(Base):
    __tablename__ = "service_principals"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    app_id: Mapped[str] = mapped_column(String(36), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    account_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]


class ServicePrincipalSecret(Base):
    __tablename__ = "service_principal_secrets"
    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    service_principal_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("service_principals.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str | None] = mapped_column(String(256))
    hint: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[str] = mapped_column(String(256))
    start_date_time: Mapped[datetime]
    end_date_time: Mapped[datetime]


class Group(Versioned, Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(1024))
    security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    mail_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mail_nickname: Mapped[str | None] = mapped_column(String(64))
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    tenant_id: Mapped[str] = tenant_fk()
    # "user", "servicePrincipal" or "group"
    member_type: Mapped[str] = mapped_column(String(32))


class RoleScopeTag(Versioned, Base):
    __tablename__ = "role_scope_tags"
    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(1024))
    is_built_in: Mapped[bool] = mapped_column(Boolean, default=False)
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)


class RoleDefinition(Versioned, Base):
    __tablename__ = "role_definitions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(1024))
    is_built_in: Mapped[bool] = mapped_column(Boolean, default=False)
    permissions: Mapped[list[Any]]
    role_scope_tag_ids: Mapped[list[Any]]
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class RoleAssignment(Versioned, Base):
    __tablename__ = "role_assignments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    role_definition_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("role_definitions.id"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(1024))
    members: Mapped[list[Any]]
    # Which scope tags the assignment reaches (Graph's roleScopeTagIds on an assignment).
    role_scope_tag_ids: Mapped[list[Any]]
    # Countersign extension: reaches every scope tag, present and future (the first admin).
    all_scope_tags: Mapped[bool] = mapped_column(Boolean, default=False)
    # Graph's other properties of the type (city, jobTitle, notes...), by Graph name, as the
    # schema (graph/schema.py) accepted them; none of them bears on sign-in or reach.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    created_date_time: Mapped[datetime]


class Resource(Versioned, Base):
    """A protected object of SPEC §2 (apps, scripts, policies, device categories)."""

    __tablename__ = "resources"
    __table_args__ = (Index(None, "tenant_id", "collection", "display_name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    collection: Mapped[str] = mapped_column(String(64))
    odata_type: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]]
    assignments: Mapped[list[Any]]
    role_scope_tag_ids: Mapped[list[Any]]
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class ManagedDevice(Versioned, Base):
    __tablename__ = "managed_devices"
    __table_args__ = (Index(None, "tenant_id", "device_name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    device_name: Mapped[str] = mapped_column(String(256))
    operating_system: Mapped[str] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(64))
    serial_number: Mapped[str | None] = mapped_column(String(128))
    user_principal_name: Mapped[str | None] = mapped_column(String(256))
    compliance_state: Mapped[str] = mapped_column(String(32), default="unknown")
    management_state: Mapped[str] = mapped_column(String(32), default="managed")
    last_sync_date_time: Mapped[datetime | None]
    role_scope_tag_ids: Mapped[list[Any]]
    device_action_results: Mapped[list[Any]]
    # Graph's other managedDevice properties (inventory and PATCH-able ones), by Graph name.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sequence"),
        Index(None, "tenant_id", "activity_date_time"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    activity_date_time: Mapped[datetime]
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_name: Mapped[str | None] = mapped_column(String(256))
    actor_type: Mapped[str] = mapped_column(String(32))
    activity: Mapped[str] = mapped_column(String(128))
    activity_type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(36))
    target_name: Mapped[str | None] = mapped_column(String(256))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    approval_request_id: Mapped[str | None] = mapped_column(String(36))
    result: Mapped[str] = mapped_column(String(32))
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed checkpoint of a tenant's audit chain (services/audit_checkpoints.py). The copy
    that counts is the one published outside the database (the checkpoint log file); this row
    says what was published, and where the next checkpoint starts."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("tenant_id", "sequence"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    checkpoint_date_time: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class ObjectScopeTag(Base):
    """Which scope tags an object carries, for filtering lists in SQL on every database.

    Mirrors the object's `role_scope_tag_ids`; write both through `store.scope.set_scope_tags`.
    """

    __tablename__ = "object_scope_tags"
    object_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()


class ApprovalPolicy(Versioned, Base):
    """An active access policy (operationApprovalPolicy). A row exists only once the request
    that created it was approved and completed."""

    __tablename__ = "approval_policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    display_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(1024))
    policy_type: Mapped[str] = mapped_column(String(64))
    # Graph flags value: comma-separated operationApprovalPolicyPlatform names.
    policy_platform: Mapped[str] = mapped_column(String(256))
    approver_group_ids: Mapped[list[Any]]
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    auto_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    request_lifetime_days: Mapped[int | None] = mapped_column(Integer)
    # Countersign extensions (domain/policy_rules.py). Empty scope: every object.
    scope_tag_ids: Mapped[list[Any]] = mapped_column(default=list)
    # appIds of the service principals whose writes the policy does not intercept (at most 50).
    excluded_application_ids: Mapped[list[Any]] = mapped_column(default=list)
    # [{approverGroupIds, approvalsRequired}] in order; empty: one stage of the columns above
    # (which then hold the union of the stages' groups and the sum of their quorums).
    stages: Mapped[list[Any]] = mapped_column(default=list)
    approval_window_hours: Mapped[int | None] = mapped_column(Integer)
    completion_window_hours: Mapped[int | None] = mapped_column(Integer)
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class ApprovalRequest(Base):
    """An operationApprovalRequest: one frozen change waiting for (or past) approval."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        # "All requests" filtered by status, newest first, keyset-paged.
        Index(None, "tenant_id", "status", "request_date_time", "id"),
        Index(None, "tenant_id", "request_date_time", "id"),
        Index(None, "tenant_id", "requestor_id", "request_date_time"),
        Index(None, "status", "expiration_date_time"),
        # The worker's scheduled completions (approved, due).
        Index(None, "status", "scheduled_completion_date_time"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    # needsApproval, approved, rejected, cancelled, completed, expired. Changed only by a
    # conditional UPDATE ... WHERE status = <expected> (services/unit_of_work.py).
    status: Mapped[str] = mapped_column(String(32))
    request_date_time: Mapped[datetime]
    expiration_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    requestor_id: Mapped[str] = mapped_column(String(36))
    requestor_type: Mapped[str] = mapped_column(String(32))
    requestor_name: Mapped[str] = mapped_column(String(256))
    approver_id: Mapped[str | None] = mapped_column(String(36))
    approver_type: Mapped[str | None] = mapped_column(String(32))
    approver_name: Mapped[str | None] = mapped_column(String(256))
    request_justification: Mapped[str] = mapped_column(String(1024))
    approval_justification: Mapped[str | None] = mapped_column(String(1024))
    policy_type: Mapped[str] = mapped_column(String(64))
    policy_ids: Mapped[list[Any]]
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    auto_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    payload_id: Mapped[str | None] = mapped_column(String(36))
    payload_type: Mapped[str] = mapped_column(String(64))
    payload_name: Mapped[str] = mapped_column(String(256))
    payload_operation: Mapped[str] = mapped_column(String(16))
    action_name: Mapped[str | None] = mapped_column(String(64))
    # The frozen Change (services.changes.Change.canonical()) and the versions it was planned at.
    payload: Mapped[dict[str, Any]]
    # What the reviewer sees: before, after and a JSON diff.
    display_payload: Mapped[dict[str, Any]]
    entity_keys: Mapped[list[Any]]
    completed_date_time: Mapped[datetime | None]
    reminder_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stages (domain/policy_rules.py), frozen at submission as [{approverGroupIds,
    # approvalsRequired}], and the index of the one now deciding (len(stages) once approved).
    stages: Mapped[list[Any]] = mapped_column(default=list)
    current_stage: Mapped[int] = mapped_column(Integer, default=0)
    # The end of the request's lifetime; expiration_date_time is the nearer of it and the
    # approval (then completion) window's end.
    lifetime_end_date_time: Mapped[datetime | None]
    completion_window_hours: Mapped[int | None] = mapped_column(Integer)
    # When the worker completes the approved request (once: it clears this as it claims it).
    scheduled_completion_date_time: Mapped[datetime | None]
    # The approvers' read permission (payload["approvers"]["readPermission"]), as a column for
    # the "waiting for me" count; with request_approver_groups, request_excluded_approvers and
    # request_object_tags it is the indexed form of the frozen approvers (services/queries.py).
    approver_read_permission: Mapped[str | None] = mapped_column(String(128))


class ApprovalDecision(Base):
    """One approver's approval or rejection; the primary key makes each approver count once."""

    __tablename__ = "approval_decisions"
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), primary_key=True
    )
    approver_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    approver_name: Mapped[str] = mapped_column(String(256))
    decision: Mapped[str] = mapped_column(String(16))  # "approve" or "reject"
    # The stage (index) decided in; the primary key keeps one person to one stage.
    stage: Mapped[int] = mapped_column(Integer, default=0)
    justification: Mapped[str | None] = mapped_column(String(1024))
    decided_date_time: Mapped[datetime]


class RequestApproverGroup(Base):
    """An approver group of a request's stage, frozen at submission; group_id "*" when every
    holder of the approval permission approves (a request without rows is waiting for nobody)."""

    __tablename__ = "request_approver_groups"
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), primary_key=True
    )
    # The stage (domain/policy_rules.py) the group approves in; 0 for a request of one stage.
    stage: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    group_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class RequestExcludedApprover(Base):
    """A principal the request's change is about, who may never approve it (rule 10)."""

    __tablename__ = "request_excluded_approvers"
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), primary_key=True
    )
    principal_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class RequestObjectTag(Base):
    """A scope tag of an object the request's change touches (object_index: which object of a
    bulk action); an approver must reach a tag of every object."""

    __tablename__ = "request_object_tags"
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), primary_key=True
    )
    object_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class RequestLock(Base):
    """One active request per object: a row per object an active request names. The primary
    key enforces the rule in the database, under any concurrency; rows go when the request
    leaves needsApproval/approved."""

    __tablename__ = "request_locks"
    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    entity_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )


class SubmissionKey(Base):
    """An idempotency key of a submission that became a request (services/submissions.py):
    the same caller's retry with the same key answers with the same request. The unique index
    makes a key name one request per caller."""

    __tablename__ = "submission_keys"
    __table_args__ = (Index(None, "tenant_id", "caller_id", "key", unique=True),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    caller_id: Mapped[str] = mapped_column(String(36))
    # As sent in Idempotency-Key, or else client-request-id.
    key: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the operation's canonical form (method, path, body): same key, other body: 409.
    fingerprint: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    created_date_time: Mapped[datetime]


class NotificationChannel(Versioned, Base):
    """Where a tenant's notifications go (SPEC §9): e-mail over SMTP, a signed webhook, Slack or
    Teams. `secret` (SMTP password or webhook HMAC key) is write-only in the API; it is kept in
    clear because delivery must use it (it is not a credential for Countersign itself)."""

    __tablename__ = "notification_channels"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    display_name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))  # email, webhook, slack, teams
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Non-secret settings: url, or smtp host/port/security/username/from.
    settings: Mapped[dict[str, Any]]
    secret: Mapped[str | None] = mapped_column(Text)
    # Which events it receives (empty list: all).
    events: Mapped[list[Any]]
    created_date_time: Mapped[datetime]
    last_modified_date_time: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class OutboxMessage(Base):
    """A notification written in the transaction of the event it announces, delivered later by
    `countersign worker` (notify/dispatcher.py). Status: pending -> delivering (claimed, with a
    lease until `claimed_until`) -> delivered | pending (retry at next_attempt_at) | dead."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    channel_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    # The channel as it was ({id, kind, settings, secret}) for a message that must go out
    # through a channel being disabled or deleted (the last channel's farewell,
    # services/notification_channels.py): delivered from here, whatever the channel is now.
    target: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    event: Mapped[str] = mapped_column(String(32))
    approval_request_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # [{id, displayName, address}]: address is the e-mail address (mail or UPN) or None.
    recipients: Mapped[list[Any]]
    # The message content, channel-neutral (notify/content.py); formatted at delivery.
    content: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # Fencing token of the current claim: only its holder may mark the outcome.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_date_time: Mapped[datetime]
    delivered_date_time: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in admin center session. Only a SHA-256 hash of the cookie's token is stored,
    so a leaked table cannot be replayed as sessions."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = tenant_fk()
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_date_time: Mapped[datetime]
    expiration_date_time: Mapped[datetime]
