"""Who may approve a request (SPEC §4 rule 4): the approvers a request froze at submission,
and the one check, `approval_blocker`, that says whether a principal is one of them now.

Pure functions of a directory snapshot; the SQL pre-filter of "waiting for me"
(services/queries.py) narrows candidates by the same approver groups and then asks this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from countersign.domain import permissions as p
from countersign.domain.rbac import DEFAULT_SCOPE_TAG, DirectorySnapshot


@dataclass(frozen=True)
class Approvers:
    """Who may approve one request, frozen at submission.

    `group_ids` empty means: every holder of the approval permission (requests on access
    policies, and the directory changes of rule 10)."""

    group_ids: tuple[str, ...]
    read_permission: str | None
    # The scope tags of each object the change touches (one set; one per device of a bulk
    # action): an approver must reach at least one tag of every object.
    object_tag_sets: tuple[tuple[str, ...], ...] = ()
    # The principals the change is about (rule 10): never approvers of it.
    excluded_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "groupIds": list(self.group_ids),
            "readPermission": self.read_permission,
            "objectTagSets": [list(tags) for tags in self.object_tag_sets],
            "excludedIds": list(self.excluded_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Approvers:
        return cls(
            tuple(data.get("groupIds") or ()),
            data.get("readPermission"),
            tuple(tuple(tags) for tags in data.get("objectTagSets") or ()),
            tuple(data.get("excludedIds") or ()),
        )


@dataclass(frozen=True)
class Refusal:
    reason: str  # machine-readable, goes to innerError.reason
    explanation: str  # for people


def object_tag_sets(before: Any, after: Any) -> tuple[tuple[str, ...], ...]:
    """The scope tags of the objects a change touches, from its Graph JSON before (or after):
    one object's `roleScopeTagIds`, or each device's of a bulk action (`{"value": [...]}`)."""
    document = before or after or {}
    value = document.get("value")
    objects: list[Any] = value if isinstance(value, list) else [document]
    return tuple(
        tuple(item["roleScopeTagIds"])
        for item in objects
        if isinstance(item, dict) and isinstance(item.get("roleScopeTagIds"), list)
    )


def approval_blocker(
    snapshot: DirectorySnapshot,
    approver_id: str,
    approver_is_user: bool,
    requestor_id: str,
    approvers: Approvers,
) -> Refusal | None:
    """None when the principal is an eligible approver of the request, else the failed check."""
    if not approver_is_user:
        return Refusal("approverIsNotAUser", "Service principals can never approve or reject.")
    if approver_id == requestor_id:
        return Refusal(
            "approverIsRequester", "You are the requester: a second administrator must approve."
        )
    if approver_id in approvers.excluded_ids:
        return Refusal(
            "approverIsSubject",
            "The change alters your own access or credentials: another administrator must "
            "approve it.",
        )
    if approver_id not in snapshot.enabled_users:
        return Refusal("approverIsDisabled", "The account is disabled.")
    access = snapshot.access_for(approver_id)
    if approvers.group_ids:
        groups = [g for g in approvers.group_ids if g in access.groups]
        if not groups:
            return Refusal(
                "notInApproverGroup",
                "You are not a member of an approver group of the access policy.",
            )
        if not any(snapshot.group_is_on_role_assignment(g) for g in groups):
            return Refusal(
                "approverGroupHasNoRoleAssignment",
                "Your approver group is not a member group of any role assignment.",
            )
    if not access.has(p.APPROVAL_FOR_MAA):
        return Refusal(
            "missingApprovalPermission",
            "You do not hold the 'Approval for Multi Admin Approval' permission.",
        )
    if approvers.read_permission and not access.has(approvers.read_permission):
        return Refusal(
            "missingReadPermission",
            f"You cannot read objects of this type ({approvers.read_permission}).",
        )
    # The scope tags are reached through the assignment that grants the approval permission
    # (and the read permission): reach through another role does not make one an approver.
    needed = {p.APPROVAL_FOR_MAA}
    if approvers.read_permission:
        needed.add(approvers.read_permission)
    approving = [a for a, granted in access.grants if needed <= granted]
    for tags in approvers.object_tag_sets:
        if not any(a.reaches(list(tags) or [DEFAULT_SCOPE_TAG]) for a in approving):
            return Refusal(
                "scopeTagNotReached",
                "The role assignment that makes you an approver does not reach the object's "
                "scope tags.",
            )
    return None


def may_approve_anything(
    snapshot: DirectorySnapshot, approver_id: str, approver_is_user: bool
) -> bool:
    """False when `approval_blocker` refuses the principal whatever the request: not a user,
    disabled, or without the approval permission. Lets a caller skip looking at requests."""
    if not approver_is_user or approver_id not in snapshot.enabled_users:
        return False
    return snapshot.access_for(approver_id).has(p.APPROVAL_FOR_MAA)


def eligible_approvers(
    snapshot: DirectorySnapshot, requestor_id: str, approvers: Approvers
) -> list[str]:
    """Every user who could approve the request now."""
    return sorted(
        user_id
        for user_id in snapshot.enabled_users
        if approval_blocker(snapshot, user_id, True, requestor_id, approvers) is None
    )
