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
    issuer: str = "countersign"
    audience: str = "countersign"
    access_token_minutes: int = 60
    trusted_issuers: list[TrustedIssuer] = []
    max_body_bytes: int = 1024 * 1024
    public_url: str = "http://127.0.0.1:8000"
    session_secure_cookie: bool = False
    lockout_attempts: int = 5
    lockout_minutes: int = 15
