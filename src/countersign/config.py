"""Settings: one object, read from COUNTERSIGN_* environment variables, passed into create_app()."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrustedIssuer(BaseModel):
    """An external identity provider whose bearer tokens are accepted."""

    issuer: str
    audience: str
    jwks_url: str
    tenant_id: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUNTERSIGN_", extra="ignore")

    database_url: str = "sqlite:///./countersign.db"
    # PostgreSQL: write transactions one process runs at once (SQLite writers always queue).
    write_concurrency: int = 2
    issuer: str = "countersign"
    audience: str = "countersign"
    access_token_minutes: int = 60
    trusted_issuers: list[TrustedIssuer] = []
    max_body_bytes: int = 1024 * 1024
    public_url: str = "http://127.0.0.1:8000"
    session_secure_cookie: bool = False
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    # Notifications and the worker (notify/dispatcher.py, cli/operator.py `worker`).
    worker_poll_seconds: float = 5.0
    outbox_max_attempts: int = 8  # then the message is dead-lettered
    outbox_backoff_seconds: float = 30.0  # first retry; doubles each attempt
    outbox_backoff_max_seconds: float = 3600.0
    outbox_lease_seconds: float = 300.0  # a claim older than this is taken over
    outbox_retention_days: int = 14  # delivered messages are deleted after this
    delivery_timeout_seconds: float = 10.0
    # Channel targets (webhook URLs, SMTP hosts) on loopback, link-local, private or multicast
    # addresses are refused unless this is set (notify/targets.py).
    allow_private_channel_targets: bool = False
    reminder_hours_before_expiry: float = 24.0
    # Anchored audit (services/audit_checkpoints.py): the worker signs a checkpoint of a
    # tenant's chain every N entries or M minutes with the Ed25519 key in the key file (kept
    # outside the database; created 0600 on first use, or by `countersign audit keygen`) and
    # appends it to the checkpoint log (JSON lines).
    audit_checkpoint_entries: int = 100
    audit_checkpoint_minutes: float = 5.0
    audit_checkpoint_key_file: str = "countersign-audit-key.pem"
    audit_checkpoint_log: str = "countersign-checkpoints.jsonl"
    # Also send each checkpoint to the tenant's enabled webhook channels (through the outbox).
    audit_checkpoint_webhooks: bool = False
    log_format: str = "json"  # "json" (one object per line) or "text"
    log_level: str = "INFO"
