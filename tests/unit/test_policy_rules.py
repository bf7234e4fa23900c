"""domain/policy_rules.py: scope, exclusions, stages, windows and freezes, on plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from countersign.domain import approval as a
from countersign.domain import policy_rules as r
from countersign.domain.eligibility import Approvers, Refusal
from countersign.domain.guards import lockout
from countersign.domain.permissions import APPROVAL_FOR_MAA
from countersign.domain.rbac import DirectorySnapshot, RoleAssignment

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ALL = frozenset({a.NOT_APPLICABLE})


def policy(
    policy_id: str = "p",
    groups: tuple[str, ...] = ("approvers",),
    required: int = 1,
    **rules: object,
) -> a.ActivePolicy:
    return a.ActivePolicy(
        policy_id, policy_id, "app", ALL, groups, required, rules=r.PolicyRules(**rules)
    )


def stage(*groups: str, required: int = 1) -> r.Stage:
    return r.Stage(groups, required)


# -- scope and exclusions ------------------------------------------------------------------------


def test_a_scoped_policy_covers_only_objects_carrying_one_of_its_tags() -> None:
    finance = policy(scope_tag_ids=frozenset({"finance"}))
    assert r.coverage([finance], "app", "macOS", [("finance",)], "u").protecting == (finance,)
    assert r.coverage([finance], "app", "macOS", [("0",)], "u").protecting == ()
    # An object without tags carries the default tag.
    assert r.in_scope(frozenset({"0"}), [()])
    # Any object of a bulk action carrying the tag brings the change in scope.
    assert r.in_scope(frozenset({"finance"}), [("0",), ("finance", "x")])


def test_a_policy_without_scope_tags_covers_everything() -> None:
    assert r.in_scope(frozenset(), [("anything",)])
    assert r.in_scope(frozenset(), [])


def test_an_excluded_application_is_not_intercepted_but_others_are() -> None:
    excluding = policy("ex", excluded_principal_ids=frozenset({"sp-1"}))
    plain = policy("plain")
    by_app = r.coverage([excluding], "app", "macOS", [("0",)], "sp-1")
    assert by_app.protecting == () and by_app.excluded_by == (excluding,)
    by_user = r.coverage([excluding], "app", "macOS", [("0",)], "user-1")
    assert by_user.protecting == (excluding,) and by_user.excluded_by == ()
    # A second policy that does not exclude the application still protects its write.
    both = r.coverage([excluding, plain], "app", "macOS", [("0",)], "sp-1")
    assert both.protecting == (plain,)


# -- stages ------------------------------------------------------------------------------------


def test_a_policy_without_stages_is_one_stage_of_its_groups() -> None:
    assert r.stages_of(policy(groups=("g",), required=2)) == (stage("g", required=2),)


def test_policies_combine_stage_by_stage() -> None:
    two = policy("two", stages=(stage("leads"), stage("security", required=2)))
    one = policy("one", groups=("auditors",), required=3)
    assert r.combined_stages([two, one]) == (
        stage("leads", "auditors", required=3),
        stage("security", required=2),
    )


STAGES = (stage("leads", required=2), stage("security"))


def test_the_current_stage_is_the_first_without_its_quorum() -> None:
    assert r.current_stage(STAGES, []) == 0
    one = [r.Decision("a", r.APPROVE, 0)]
    assert r.current_stage(STAGES, one) == 0
    two = [*one, r.Decision("b", r.APPROVE, 0)]
    assert r.current_stage(STAGES, two) == 1
    assert r.current_stage(STAGES, [*two, r.Decision("c", r.APPROVE, 1)]) == 2


def test_a_later_stage_waits_for_the_earlier_ones() -> None:
    refusal = Refusal("notInApproverGroup", "")
    # Eligible in stage 2 only, while stage 1 is open.
    found = r.stage_blocker(STAGES, 0, [], [refusal, None])
    assert found is not None and found.reason == "stageNotReached"
    # Eligible in the current stage: may decide.
    assert r.stage_blocker(STAGES, 0, [], [None, refusal]) is None
    # Eligible nowhere: the current stage's own refusal.
    assert r.stage_blocker(STAGES, 0, [], [refusal, refusal]) is refusal
    # Eligible only in a stage already passed.
    found = r.stage_blocker(STAGES, 1, [], [None, refusal])
    assert found is not None and found.reason == "stagePassed"


def test_one_person_decides_in_one_stage_only() -> None:
    found = r.stage_blocker(STAGES, 1, [0], [None, None])
    assert found is not None and found.reason == "decidedInAnotherStage"
    assert r.stage_blocker(STAGES, 1, [], [None, None]) is None


def test_an_approved_request_is_decided_by_an_approver_of_any_stage() -> None:
    snapshot = _snapshot(())
    approvers = Approvers(("leads",), None)
    stages = (stage("leads"), stage("security"))
    for person, allowed in (("l1", True), ("l2", True), ("admin", False)):
        found = r.decision_blocker(
            snapshot, person, True, "x", approvers, stages, waiting=False, current=2
        )
        assert (found is None) == allowed, person
    # While it waits, l2 (a lead only) decides stage 1, not stage 2.
    found = r.decision_blocker(
        snapshot, "l2", True, "x", approvers, stages, waiting=True, current=1
    )
    assert found is not None and found.reason == "stagePassed"


def test_stages_need_distinct_people_for_their_quorums() -> None:
    both = frozenset({"a", "b"})
    # Two people in both groups cannot staff a quorum of 2 and then 1 more.
    assert r.understaffed([both, both], STAGES) == (0, 1)
    assert r.understaffed([both, frozenset({"a", "c"})], STAGES) == ()
    assert r.understaffed([frozenset({"a"}), both], STAGES) == (0,)


def _snapshot(policies: tuple[a.ActivePolicy, ...]) -> DirectorySnapshot:
    members = {"leads": frozenset({"l1", "l2"}), "security": frozenset({"l1"})}
    return DirectorySnapshot(
        version=1,
        members=members,
        security_groups=frozenset(members),
        role_permissions={"approver": frozenset({APPROVAL_FOR_MAA})},
        assignments=(RoleAssignment("ra", "ra", "approver", frozenset(members), frozenset({"0"})),),
        enabled_users=frozenset({"l1", "l2", "admin"}),
        policies=policies,
    )


def test_the_lockout_guard_counts_every_stage() -> None:
    # leads: l1, l2; security: l1. Stage 1 needs 2, stage 2 needs 1: l1 cannot do both.
    staged = policy(stages=(stage("leads", required=2), stage("security")))
    message = lockout(_snapshot((staged,)), "admin")
    assert message is not None and "stage(s) 1, 2" in message
    staffed = policy(stages=(stage("leads"), stage("security")))
    assert lockout(_snapshot((staffed,)), "admin") is None


# -- windows and freezes -----------------------------------------------------------------------


def test_the_approval_window_cuts_the_wait_for_approval() -> None:
    lifetime = timedelta(days=3)
    assert r.approval_deadline(NOW, lifetime, 4) == NOW + timedelta(hours=4)
    assert r.approval_deadline(NOW, lifetime, None) == NOW + lifetime
    assert r.approval_deadline(NOW, lifetime, 1000) == NOW + lifetime


def test_the_completion_window_counts_from_approval_within_the_lifetime() -> None:
    lifetime = timedelta(days=3)
    approved = NOW + timedelta(hours=10)
    assert r.completion_deadline(NOW, lifetime, approved, 2) == approved + timedelta(hours=2)
    assert r.completion_deadline(NOW, lifetime, approved, None) == NOW + lifetime
    late = NOW + timedelta(days=2, hours=23)
    assert r.completion_deadline(NOW, lifetime, late, 24) == NOW + lifetime


def test_windows_combine_to_the_strictest_and_stay_within_the_lifetime() -> None:
    assert r.strictest([None, 12, 4]) == 4
    assert r.strictest([None, None]) is None
    assert r.window_within_lifetime(72, 3) and not r.window_within_lifetime(73, 3)


def test_a_freeze_window_is_open_from_its_start_until_its_end() -> None:
    window = r.FreezeWindow(NOW, NOW + timedelta(hours=2), "Year-end close")
    assert r.freeze_at([window], NOW) == window
    assert r.freeze_at([window], NOW + timedelta(hours=1, minutes=59)) == window
    assert r.freeze_at([window], NOW + timedelta(hours=2)) is None
    assert r.freeze_at([window], NOW - timedelta(seconds=1)) is None
