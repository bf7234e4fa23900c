"""Who is acting: a signed-in user or service principal, with what it may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from countersign.domain.errors import Forbidden
from countersign.domain.rbac import Access, DirectorySnapshot

USER = "user"
SERVICE_PRINCIPAL = "servicePrincipal"
SYSTEM = "system"


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    id: str
    type: str  # USER, SERVICE_PRINCIPAL or SYSTEM
    display_name: str
    upn: str | None
    access: Access
    snapshot: DirectorySnapshot
    correlation_id: str | None = None

    @property
    def is_user(self) -> bool:
        return self.type == USER

    def can(self, permission: str, object_tags: Iterable[str] | None = None) -> bool:
        return self.access.can(permission, object_tags)

    def require(self, permission: str, object_tags: Iterable[str] | None = None) -> None:
        """Raise Forbidden unless the caller holds `permission` (over the object's tags)."""
        if not self.access.has(permission):
            raise Forbidden(
                f"The caller does not have the permission '{permission}'.",
                reason="missingPermission",
            )
        if object_tags is not None and not self.access.can(permission, object_tags):
            raise Forbidden(
                f"The caller's role assignments for '{permission}' do not reach the "
                "object's scope tags.",
                reason="scopeTagNotReached",
            )

    def identity_set(self) -> dict[str, dict[str, str]]:
        """Graph's identitySet for this caller."""
        key = "application" if self.type == SERVICE_PRINCIPAL else "user"
        return {key: {"id": self.id, "displayName": self.display_name}}
