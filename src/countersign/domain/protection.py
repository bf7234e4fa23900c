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

from countersign.domain import policy_rules, resource_types
from countersign.domain.approval import ACCESS_POLICY_TYPE, ActivePolicy
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
    # The covering policies' stages combined (domain/policy_rules.py); () is one stage of
    # `approvers` and `approvals_required`.
    stages: tuple[policy_rules.Stage, ...] = ()
    approval_window_hours: int | None = None
    completion_window_hours: int | None = None

    @property
    def request_stages(self) -> tuple[policy_rules.Stage, ...]:
        return self.stages or (
            policy_rules.Stage(self.approvers.group_ids, self.approvals_required),
        )


def coverage(
    policies: Iterable[ActivePolicy],
    *,
    caller_id: str,
    policy_type: str,
    platform: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> policy_rules.Coverage:
    """Which policies cover the change (type, platform, the objects' scope tags before and
    after it) and which of those exclude its caller."""
    tags = object_tag_sets(before, None) + object_tag_sets(None, after)
    return policy_rules.coverage(policies, policy_type, platform, tags, caller_id)


def protection_for(
    policies: Iterable[ActivePolicy],
    *,
    caller_id: str,
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
    # An access-policy change (its exclusion list too) is protected above: no scope or
    # exclusion applies to it.
    chosen = coverage(
        policies,
        caller_id=caller_id,
        policy_type=policy_type,
        platform=platform,
        before=before,
        after=after,
    ).protecting
    if not chosen:
        return None
    stages = policy_rules.combined_stages(chosen)
    groups = tuple(dict.fromkeys(g for stage in stages for g in stage.approver_group_ids))
    lifetimes = [policy.request_lifetime_days for policy in chosen if policy.request_lifetime_days]
    return Protection(
        policy_type=policy_type,
        policies=chosen,
        approvers=Approvers(
            groups,
            resource_types.approver_read_permission(collection),
            object_tag_sets(before, after),
        ),
        approvals_required=sum(stage.approvals_required for stage in stages),
        # Auto-complete only when every covering policy asks for it.
        auto_complete=all(policy.auto_complete for policy in chosen),
        lifetime_days=min(lifetimes) if lifetimes else None,
        stages=stages,
        approval_window_hours=policy_rules.strictest(p.rules.approval_window_hours for p in chosen),
        completion_window_hours=policy_rules.strictest(
            p.rules.completion_window_hours for p in chosen
        ),
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
