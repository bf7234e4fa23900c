"""The directory guards: one person can never act as two (SPEC §4 rule 10), and nobody can lock a
tenant out of its own approvals (the lockout guard, SPEC §9).

Both are pure functions of two directory snapshots: the tenant as it is, and as it would be
after a change. Every write that changes the directory is judged by comparing them, whatever
path made it -- a role assignment, a member added to a group nested three levels down, a custom
role given one more permission, an account enabled, a password reset, a secret minted, and any
path added later -- because the comparison looks at what each principal can do, not at which
call was made.

A person controls every identity whose credentials they set. So, once any access policy is
active, a change is protected when, for any principal:

- it gains anything: a permission, a scope tag it reaches with a permission (through the same
  assignment), eligibility to approve the requests of an access policy; or
- it holds any Intune permission and its credentials change (password, sign-in name,
  notification address, enabled state, secrets).

The principals whose standing or credentials a change alters are its *subjects*: they are never
eligible approvers of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from countersign.domain import permissions as p
from countersign.domain import policy_rules
from countersign.domain.eligibility import Approvers, approval_blocker, eligible_approvers
from countersign.domain.rbac import DirectorySnapshot

ALL_SCOPE_TAGS = "*"


@dataclass(frozen=True)
class Standing:
    """What one principal is and can do in one snapshot."""

    enabled: bool
    groups: frozenset[str]
    # (permission, scope tag id) pairs, ALL_SCOPE_TAGS for an assignment that spans every tag.
    permissions: frozenset[tuple[str, str]]
    approvable_policies: frozenset[str]
    credential: str | None  # None: the principal does not exist in the snapshot

    @property
    def effective_permissions(self) -> frozenset[tuple[str, str]]:
        """A disabled account can do nothing: enabling it gains everything it holds."""
        return self.permissions if self.enabled else frozenset()


def standing(snapshot: DirectorySnapshot, principal_id: str) -> Standing:
    access = snapshot.access_for(principal_id)
    permissions = frozenset(
        (permission, tag)
        for assignment, granted in access.grants
        for permission in granted
        for tag in ((ALL_SCOPE_TAGS,) if assignment.all_scope_tags else assignment.scope_tag_ids)
    )
    approvable: frozenset[str] = frozenset()
    if principal_id in snapshot.enabled_users and access.has(p.APPROVAL_FOR_MAA):
        approvable = frozenset(
            policy.id
            for policy in snapshot.policies
            if approval_blocker(
                snapshot, principal_id, True, "", Approvers(policy.approver_group_ids, None)
            )
            is None
        )
    return Standing(
        enabled=snapshot.is_enabled(principal_id),
        groups=access.groups,
        permissions=permissions,
        approvable_policies=approvable,
        credential=snapshot.credentials.get(principal_id),
    )


@dataclass(frozen=True)
class Gain:
    """What one principal can do after a change that it could not do before."""

    principal_id: str
    permissions: frozenset[tuple[str, str]]
    approvable_policies: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        by_permission: dict[str, list[str]] = {}
        for permission, tag in sorted(self.permissions):
            by_permission.setdefault(permission, []).append(tag)
        return {
            "principalId": self.principal_id,
            "permissions": [
                {"permission": permission, "scopeTagIds": tags}
                for permission, tags in by_permission.items()
            ],
            "approvalPolicyIds": sorted(self.approvable_policies),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gain:
        return cls(
            data["principalId"],
            frozenset(
                (item["permission"], tag)
                for item in data.get("permissions") or ()
                for tag in item["scopeTagIds"]
            ),
            frozenset(data.get("approvalPolicyIds") or ()),
        )


@dataclass(frozen=True)
class AccessChange:
    """The effect of a change on who can do what (before -> after)."""

    gains: tuple[Gain, ...] = ()
    # Principals whose memberships, permissions, enabled state or credentials change.
    subjects: frozenset[str] = frozenset()
    # Principals holding an Intune permission whose credentials (or enabled state) change.
    credentials: frozenset[str] = frozenset()

    @property
    def needs_approval(self) -> bool:
        return bool(self.gains or self.credentials)

    def exceeds(self, approved: AccessChange, existing_policy_ids: Iterable[str]) -> bool:
        """Whether this grants anything `approved` did not: completion applies only what the
        approvers saw. Eligibility under a policy the change itself creates is not compared
        (its id is new each time the change is applied)."""
        existing = frozenset(existing_policy_ids)
        allowed = {gain.principal_id: gain for gain in approved.gains}
        for gain in self.gains:
            seen = allowed.get(gain.principal_id)
            if seen is None and (gain.permissions or gain.approvable_policies & existing):
                return True
            if seen is not None and (
                not gain.permissions <= seen.permissions
                or not (gain.approvable_policies & existing) <= seen.approvable_policies
            ):
                return True
        return not self.credentials <= approved.credentials

    def to_json(self) -> dict[str, Any]:
        return {
            "gains": [gain.to_json() for gain in self.gains],
            "subjects": sorted(self.subjects),
            "credentials": sorted(self.credentials),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AccessChange:
        if not data:
            return cls()
        return cls(
            tuple(Gain.from_json(item) for item in data.get("gains") or ()),
            frozenset(data.get("subjects") or ()),
            frozenset(data.get("credentials") or ()),
        )


def access_change(before: DirectorySnapshot, after: DirectorySnapshot) -> AccessChange:
    """Compare every principal's standing in two snapshots of one tenant."""
    gains: list[Gain] = []
    subjects: set[str] = set()
    credentials: set[str] = set()
    principals = sorted(set(before.credentials) | set(after.credentials))
    if _same_structure(before, after):
        # Only credentials can differ (a rename, a password): no standing to recompute.
        principals = [
            principal_id
            for principal_id in principals
            if before.credentials.get(principal_id) != after.credentials.get(principal_id)
        ]
    for principal_id in principals:
        old, new = standing(before, principal_id), standing(after, principal_id)
        if old == new:
            continue
        if (old.enabled, old.groups, old.permissions, old.credential) != (
            new.enabled,
            new.groups,
            new.permissions,
            new.credential,
        ):
            subjects.add(principal_id)
        held = old.effective_permissions
        gained = frozenset(
            (permission, tag)
            for permission, tag in new.effective_permissions - held
            if (permission, ALL_SCOPE_TAGS) not in held
        )
        policies = new.approvable_policies - old.approvable_policies
        if gained or policies:
            gains.append(Gain(principal_id, gained, policies))
        existed = old.credential is not None and new.credential is not None
        if (
            existed
            and (old.permissions or new.permissions)
            and (old.credential, old.enabled) != (new.credential, new.enabled)
        ):
            credentials.add(principal_id)
    return AccessChange(tuple(gains), frozenset(subjects), frozenset(credentials))


def _same_structure(before: DirectorySnapshot, after: DirectorySnapshot) -> bool:
    """Whether two snapshots agree on everything a standing is computed from but credentials."""
    return (
        before.members == after.members
        and before.assignments == after.assignments
        and before.role_permissions == after.role_permissions
        and before.policies == after.policies
        and before.enabled_users == after.enabled_users
        and before.enabled_service_principals == after.enabled_service_principals
    )


# -- the lockout guard (SPEC §9) -------------------------------------------------------------


def lockout(after: DirectorySnapshot, requester_id: str) -> str | None:
    """Why the tenant would be locked out of its approvals after a change, or None: an active
    policy with fewer eligible approvers (other than the requester) than its quorum, or nobody
    but the requester holding the approval permission."""
    if not after.policies:
        return None
    for policy in after.policies:
        # Every stage keeps enough eligible approvers, one person deciding in one stage only.
        stages = policy_rules.stages_of(policy)
        eligible = [
            frozenset(
                eligible_approvers(after, requester_id, Approvers(stage.approver_group_ids, None))
            )
            for stage in stages
        ]
        short = policy_rules.understaffed(eligible, stages)
        if short:
            people = frozenset().union(*(eligible[i] for i in short))
            needed = sum(stages[i].approvals_required for i in short)
            where = (
                "" if len(stages) == 1 else f" in stage(s) {', '.join(str(i + 1) for i in short)}"
            )
            return (
                f"This change would leave the access policy '{policy.display_name}' with "
                f"{len(people)} eligible approver(s) other than you{where}; it needs "
                f"{needed}. Nobody could approve its requests any more."
            )
    if not eligible_approvers(after, requester_id, Approvers((), None)):
        return (
            "This change would leave nobody but you holding 'Approval for Multi Admin "
            "Approval'; access policies could never be changed again."
        )
    return None
