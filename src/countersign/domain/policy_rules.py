"""Access policies that fit how organisations work (issue 17): scope tags, excluded applications,
ordered stages with a quorum each, approval and completion windows, change-freeze windows.

Pure functions of values. The services load the policies (domain/approval.py's `ActivePolicy`
carries a `PolicyRules`), the request's frozen stages and its decisions, and persist what these
functions decide.

- **Scope**: a policy with scope tags covers only objects carrying one of them (an object
  without tags carries the default tag "0"); a policy without scope tags covers every object.
- **Exclusions**: a policy does not intercept the writes of the service principals it excludes
  (by `appId`). A write is protected by the policies that cover it and do not exclude its
  caller; when every covering policy excludes the caller, it applies at once.
- **Stages**: a request passes its stages in order; each stage needs its own quorum of approvals
  from its own groups; one person decides in one stage of a request only. A policy without
  stages is one stage of its approver groups and quorum. Several policies combine stage by
  stage: stage N is the union of their stage-N groups with the strictest stage-N quorum.
- **Windows**: a request waits for approval at most `approvalWindowHours` and, once approved,
  for completion at most `completionWindowHours` from its approval; never past its lifetime.
- **Freeze**: no protected request completes while a tenant freeze window is open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from typing import TYPE_CHECKING, Any

from countersign.domain.eligibility import Approvers, Refusal, approval_blocker
from countersign.domain.rbac import DEFAULT_SCOPE_TAG, DirectorySnapshot

if TYPE_CHECKING:
    from countersign.domain.approval import ActivePolicy

MAX_EXCLUDED_APPLICATIONS = 50
MAX_STAGES = 5
MAX_SCOPE_TAGS = 50
MAX_FREEZE_WINDOWS = 50
APPROVE, REJECT = "approve", "reject"


@dataclass(frozen=True)
class Stage:
    """One stage of approval: `approvals_required` distinct approvers from its groups (no
    groups: every holder of the approval permission)."""

    approver_group_ids: tuple[str, ...]
    approvals_required: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "approverGroupIds": list(self.approver_group_ids),
            "approvalsRequired": self.approvals_required,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stage:
        return cls(tuple(data.get("approverGroupIds") or ()), int(data["approvalsRequired"]))


@dataclass(frozen=True)
class PolicyRules:
    """The Countersign extensions of one access policy."""

    scope_tag_ids: frozenset[str] = frozenset()
    # The service principals (ids, resolved from the policy's appIds) it does not intercept.
    excluded_principal_ids: frozenset[str] = frozenset()
    # Empty: the one stage of the policy's approverGroupIds and approvalsRequired.
    stages: tuple[Stage, ...] = ()
    approval_window_hours: int | None = None
    completion_window_hours: int | None = None


# -- which policies protect a write ----------------------------------------------------------


def in_scope(scope_tag_ids: frozenset[str], object_tag_sets: Iterable[Iterable[str]]) -> bool:
    """A policy without scope tags covers every object; one with scope tags covers a change
    when an object it touches carries one of them (before or after the change)."""
    if not scope_tag_ids:
        return True
    return any(scope_tag_ids & set(tags or (DEFAULT_SCOPE_TAG,)) for tags in object_tag_sets)


@dataclass(frozen=True)
class Coverage:
    """The policies that cover a write: those that intercept it, and those that would but
    exclude its caller (the write is then audited as applied without their approval)."""

    protecting: tuple[ActivePolicy, ...] = ()
    excluded_by: tuple[ActivePolicy, ...] = ()


def coverage(
    policies: Iterable[ActivePolicy],
    policy_type: str,
    platform: str,
    object_tag_sets: Iterable[Iterable[str]],
    caller_id: str,
) -> Coverage:
    tag_sets = [tuple(tags) for tags in object_tag_sets]
    covering = [
        policy
        for policy in policies
        if policy.covers(policy_type, platform) and in_scope(policy.rules.scope_tag_ids, tag_sets)
    ]
    return Coverage(
        tuple(p for p in covering if caller_id not in p.rules.excluded_principal_ids),
        tuple(p for p in covering if caller_id in p.rules.excluded_principal_ids),
    )


# -- stages ----------------------------------------------------------------------------------


def stages_of(policy: ActivePolicy) -> tuple[Stage, ...]:
    """A policy's stages; a policy without `stages` is the one stage it always was."""
    return policy.rules.stages or (Stage(policy.approver_group_ids, policy.approvals_required),)


def combined_stages(policies: Sequence[ActivePolicy]) -> tuple[Stage, ...]:
    """Stage N of several policies: the union of their stage-N groups, the strictest quorum."""
    staged = [stages_of(policy) for policy in policies]
    depth = max((len(stages) for stages in staged), default=0)
    combined = []
    for index in range(depth):
        present = [stages[index] for stages in staged if index < len(stages)]
        groups = dict.fromkeys(g for stage in present for g in stage.approver_group_ids)
        combined.append(Stage(tuple(groups), max(stage.approvals_required for stage in present)))
    return tuple(combined)


@dataclass(frozen=True)
class Decision:
    approver_id: str
    decision: str  # APPROVE or REJECT
    stage: int


def current_stage(stages: Sequence[Stage], decisions: Iterable[Decision]) -> int:
    """The first stage without its quorum of approvals (len(stages) once every stage has it)."""
    approvals = [0] * len(stages)
    for decision in decisions:
        if decision.decision == APPROVE and decision.stage < len(stages):
            approvals[decision.stage] += 1
    for index, stage in enumerate(stages):
        if approvals[index] < max(stage.approvals_required, 1):
            return index
    return len(stages)


def stage_blocker(
    stages: Sequence[Stage],
    current: int,
    own_stages: Iterable[int],
    blockers: Sequence[Refusal | None],
) -> Refusal | None:
    """Why an approver may not decide in stage `current` of a request now, or None.

    `blockers[i]` is domain/eligibility.py's `approval_blocker` for stage i's groups;
    `own_stages` the stages the approver already decided in. One who decided in an earlier
    stage never decides again (one person, one stage); one eligible only for a later stage
    waits for the stages before it."""
    earlier = sorted(stage for stage in own_stages if stage < current)
    if earlier:
        return Refusal(
            "decidedInAnotherStage",
            f"You decided in stage {earlier[0] + 1} of this request; an approver decides in "
            "one stage only.",
        )
    if current >= len(stages) or blockers[current] is None:
        return None
    later = [i for i in range(current + 1, len(stages)) if blockers[i] is None]
    if later:
        return Refusal(
            "stageNotReached",
            f"You approve in stage {later[0] + 1}; stage {current + 1} must be approved first.",
        )
    if any(blockers[i] is None for i in range(current)):
        return Refusal(
            "stagePassed",
            f"Your stage already has its approvals; stage {current + 1} is deciding now.",
        )
    return blockers[current]


def stages_from(
    stored: Iterable[dict[str, Any]] | None, group_ids: tuple[str, ...], approvals_required: int
) -> tuple[Stage, ...]:
    """A request's stages as frozen at submission; a request without is one stage of its
    approvers and quorum."""
    frozen = tuple(Stage.from_json(stage) for stage in stored or ())
    return frozen or (Stage(group_ids, approvals_required),)


def decision_blocker(
    snapshot: DirectorySnapshot,
    approver_id: str,
    approver_is_user: bool,
    requestor_id: str,
    approvers: Approvers,
    stages: Sequence[Stage],
    *,
    waiting: bool,
    current: int,
    own_stages: Iterable[int] = (),
) -> Refusal | None:
    """None when the principal may decide the request now, else why not: while it waits for
    approval, in its current stage (`stage_blocker`); once approved (to cancel the approval),
    as an approver of any stage."""
    blockers = [
        approval_blocker(
            snapshot,
            approver_id,
            approver_is_user,
            requestor_id,
            dataclasses.replace(approvers, group_ids=stage.approver_group_ids),
        )
        for stage in stages
    ]
    if not waiting:
        return None if None in blockers else blockers[0]
    return stage_blocker(stages, current, own_stages, blockers)


def understaffed(eligible: Sequence[frozenset[str]], stages: Sequence[Stage]) -> tuple[int, ...]:
    """The stages (indices) that cannot all reach their quorums with distinct people, given who
    is eligible in each, or () when every stage can. One person decides in one stage, so a set
    of stages needs at least as many distinct eligible people as their quorums add up to
    (Hall's condition: it is also enough)."""
    indices = range(len(stages))
    for size in range(1, len(stages) + 1):
        for chosen in combinations(indices, size):
            people = frozenset().union(*(eligible[i] for i in chosen))
            if len(people) < sum(max(stages[i].approvals_required, 1) for i in chosen):
                return chosen
    return ()


# -- windows ---------------------------------------------------------------------------------


def strictest(hours: Iterable[int | None]) -> int | None:
    """The shortest window of several policies (None: no policy sets one)."""
    given = [value for value in hours if value]
    return min(given) if given else None


def approval_deadline(
    submitted: datetime, lifetime: timedelta, approval_window_hours: int | None
) -> datetime:
    """Until when a new request may wait for approval."""
    window = timedelta(hours=approval_window_hours) if approval_window_hours else lifetime
    return submitted + min(lifetime, window)


def completion_deadline(
    submitted: datetime,
    lifetime: timedelta,
    approved: datetime,
    completion_window_hours: int | None,
) -> datetime:
    """Until when an approved request may wait for completion: the completion window counted
    from its approval, never past the request's lifetime."""
    end = submitted + lifetime
    if not completion_window_hours:
        return end
    return min(end, approved + timedelta(hours=completion_window_hours))


def window_within_lifetime(hours: int | None, lifetime_days: int) -> bool:
    return hours is None or hours <= lifetime_days * 24


# -- change freeze ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FreezeWindow:
    start: datetime
    end: datetime
    reason: str


def freeze_windows_of(stored: Iterable[dict[str, Any]]) -> list[FreezeWindow]:
    """Freeze windows as the tenant settings store them (ISO 8601 with a zone)."""
    return [
        FreezeWindow(
            datetime.fromisoformat(w["startDateTime"]),
            datetime.fromisoformat(w["endDateTime"]),
            w["reason"],
        )
        for w in stored
    ]


def freeze_at(windows: Iterable[FreezeWindow], now: datetime) -> FreezeWindow | None:
    """The freeze window open at `now` (start inclusive, end exclusive), if any."""
    return next((w for w in windows if w.start <= now < w.end), None)
