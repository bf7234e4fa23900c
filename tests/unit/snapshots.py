"""A `DirectorySnapshot` from plain sets, for the domain's unit tests: groups and their members,
role assignments as (role, group, scope tags), the enabled users."""

from __future__ import annotations

from countersign.domain import approval as a
from countersign.domain.guards import ALL_SCOPE_TAGS
from countersign.domain.permissions import APPROVAL_FOR_MAA, MOBILE_APPS_READ
from countersign.domain.rbac import DirectorySnapshot, RoleAssignment

ROLES = {
    "approver": frozenset({APPROVAL_FOR_MAA, MOBILE_APPS_READ}),
    "reader": frozenset({MOBILE_APPS_READ}),
}


def snapshot(
    members: dict[str, set[str]],
    assignments: list[tuple[str, str, set[str]]],
    users: set[str],
    *,
    disabled: set[str] = frozenset(),  # type: ignore[assignment]
    credentials: dict[str, str] | None = None,
    policies: tuple[a.ActivePolicy, ...] = (),
) -> DirectorySnapshot:
    """Every user (enabled or `disabled`) has a credential, `cred-<id>` unless given."""
    everyone = users | set(disabled)
    return DirectorySnapshot(
        version=1,
        members={g: frozenset(m) for g, m in members.items()},
        security_groups=frozenset(members),
        role_permissions=ROLES,
        assignments=tuple(
            RoleAssignment(
                f"{role}-{group}",
                role,
                role,
                frozenset({group}),
                frozenset(tags - {ALL_SCOPE_TAGS}),
                all_scope_tags=ALL_SCOPE_TAGS in tags,
            )
            for role, group, tags in assignments
        ),
        enabled_users=frozenset(users),
        credentials={u: (credentials or {}).get(u, f"cred-{u}") for u in everyone},
        policies=policies,
    )
