"""Who may do what: nested group membership, role assignments and scope-tag reach.

A `DirectorySnapshot` is an immutable picture of one tenant's groups and role assignments. The
store builds it and caches it per tenant version; every rule here is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from countersign.domain.approval import ActivePolicy

DEFAULT_SCOPE_TAG = "0"


def _reachable(edges: Mapping[str, frozenset[str]], start: str) -> frozenset[str]:
    """Every id reached from `start` by following edges, however many steps (cycles end)."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for next_id in edges.get(stack.pop(), ()):
            if next_id not in seen:
                seen.add(next_id)
                stack.append(next_id)
    return frozenset(seen)


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    display_name: str
    role_definition_id: str
    member_group_ids: frozenset[str]
    scope_tag_ids: frozenset[str]
    all_scope_tags: bool = False

    def reaches(self, object_tags: Iterable[str]) -> bool:
        """An assignment reaches an object when they share a scope tag (or it spans all tags)."""
        return self.all_scope_tags or bool(self.scope_tag_ids & set(object_tags))


@dataclass(frozen=True)
class DirectorySnapshot:
    version: int
    # group id -> ids of its direct members (users, service principals, groups)
    members: dict[str, frozenset[str]]
    security_groups: frozenset[str]
    role_permissions: dict[str, frozenset[str]]
    assignments: tuple[RoleAssignment, ...]
    # Users whose account is enabled (principals that may sign in and approve).
    enabled_users: frozenset[str] = frozenset()
    # Every user and service principal -> a digest of what signs in as it (password hash,
    # sign-in name, notification address, secrets, enabled state): what a takeover changes.
    credentials: dict[str, str] = field(default_factory=dict)
    # Service principals whose account is enabled.
    enabled_service_principals: frozenset[str] = frozenset()
    # Active access policies (domain.approval.ActivePolicy), cached with the directory.
    policies: tuple[ActivePolicy, ...] = ()
    _parents: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        parents: dict[str, set[str]] = {}
        for group_id, member_ids in self.members.items():
            for member_id in member_ids:
                parents.setdefault(member_id, set()).add(group_id)
        object.__setattr__(self, "_parents", {k: frozenset(v) for k, v in parents.items()})

    def groups_of(self, principal_id: str) -> frozenset[str]:
        """Every group the principal belongs to, directly or through nested groups."""
        return _reachable(self._parents, principal_id)

    def transitive_members(self, group_id: str) -> frozenset[str]:
        """Every principal and group inside a group, however deeply nested."""
        return _reachable(self.members, group_id)

    def is_member(self, principal_id: str, group_id: str) -> bool:
        return group_id in self.groups_of(principal_id)

    def group_is_on_role_assignment(self, group_id: str) -> bool:
        return any(group_id in a.member_group_ids for a in self.assignments)

    def is_enabled(self, principal_id: str) -> bool:
        return principal_id in self.enabled_users or principal_id in self.enabled_service_principals

    def access_for(self, principal_id: str) -> Access:
        groups = self.groups_of(principal_id)
        grants = tuple(
            (a, self.role_permissions.get(a.role_definition_id, frozenset()))
            for a in self.assignments
            if a.member_group_ids & groups
        )
        return Access(principal_id=principal_id, groups=groups, grants=grants)


@dataclass(frozen=True)
class Access:
    """What one principal may do: its role assignments with the permissions each grants."""

    principal_id: str
    groups: frozenset[str]
    grants: tuple[tuple[RoleAssignment, frozenset[str]], ...]

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset().union(*(perms for _, perms in self.grants))

    def has(self, permission: str) -> bool:
        return any(permission in perms for _, perms in self.grants)

    def can(self, permission: str, object_tags: Iterable[str] | None = None) -> bool:
        """Holds `permission` through an assignment that reaches the object's scope tags.

        Objects without scope tags (directory objects) need only the permission.
        """
        if object_tags is None:
            return self.has(permission)
        tags = list(object_tags) or [DEFAULT_SCOPE_TAG]
        return any(permission in perms and a.reaches(tags) for a, perms in self.grants)

    def assignments_granting(self, permission: str) -> tuple[RoleAssignment, ...]:
        return tuple(a for a, perms in self.grants if permission in perms)
