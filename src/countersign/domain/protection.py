"""Does a planned change need approval, and from whom: the tenant's covering access policies
folded into one `Protection` (approvers, quorum, auto-complete, lifetime), and the directory
guard's verdict (SPEC §4 rule 10) folded in by `guarded`.

Pure: the gate passes the plan's facts as plain values (policy type, platform, the object's
JSON before and after) and the policies from the directory snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from countersign.domain import resource_types
from countersign.domain.approval import ACCESS_POLICY_TYPE, ActivePolicy, covering
from countersign.domain.eligibility import Approvers, object_tag_sets
from countersign.domain.guards import AccessChange

# Requests on access policies, and the directory changes of rule 10: every holder of the
# approval permission approves (no approver groups, no read permission).
EVERYONE_WITH_PERMISSION = Approvers((), None)


@dataclass(frozen=True)
class Protection:
    policy_type: str
    policies: tuple[ActivePolicy, ...]
    approvers: Approvers
    approvals_required: int
    auto_complete: bool
    lifetime_days: int | None
    # What the change does to who can do what, when it touches the directory.
    access_change: AccessChange | None = None


def protection_for(
    policies: Iterable[ActivePolicy],
    *,
    collection: str,
    policy_type: str | None,
    platform: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> Protection | None:
    """The approval a planned change needs from the tenant's active policies, or None."""
    if policy_type == ACCESS_POLICY_TYPE:
        return Protection(ACCESS_POLICY_TYPE, (), EVERYONE_WITH_PERMISSION, 1, False, None)
    if policy_type is None:
        return None
    chosen = tuple(covering(policies, policy_type, platform))
    if not chosen:
        return None
    groups = tuple(dict.fromkeys(g for policy in chosen for g in policy.approver_group_ids))
    lifetimes = [policy.request_lifetime_days for policy in chosen if policy.request_lifetime_days]
    return Protection(
        policy_type=policy_type,
        policies=chosen,
        approvers=Approvers(
            groups,
            resource_types.approver_read_permission(collection),
            object_tag_sets(before, after),
        ),
        approvals_required=max(policy.approvals_required for policy in chosen),
        # Auto-complete only when every covering policy asks for it.
        auto_complete=all(policy.auto_complete for policy in chosen),
        lifetime_days=min(lifetimes) if lifetimes else None,
    )


def guarded(protection: Protection | None, effect: AccessChange | None) -> Protection | None:
    """The protection a change needs once its effect on the directory is known: a change that
    grants access, or sets the credentials of a principal holding an Intune permission, is a
    `role` request that holders of the approval permission approve; and the principals a change
    is about are never its approvers."""
    if effect is None:
        return protection
    if protection is None:
        if not effect.needs_approval:
            return None
        protection = Protection("role", (), EVERYONE_WITH_PERMISSION, 1, False, None)
    excluded = tuple(sorted(set(protection.approvers.excluded_ids) | effect.subjects))
    return dataclasses.replace(
        protection,
        approvers=dataclasses.replace(protection.approvers, excluded_ids=excluded),
        access_change=effect,
    )
