"""domain/guards.py: what a change grants, judged from two snapshots, and the lockout guard."""

from __future__ import annotations

import dataclasses
from functools import partial

from countersign.domain import approval as a
from countersign.domain.guards import ALL_SCOPE_TAGS, AccessChange, Gain, access_change, lockout
from countersign.domain.permissions import APPROVAL_FOR_MAA, MOBILE_APPS_READ
from countersign.domain.rbac import DirectorySnapshot
from tests.unit import snapshots

POLICY = a.ActivePolicy("p1", "Protect apps", "app", frozenset({a.NOT_APPLICABLE}), ("approvers",))

snapshot = partial(snapshots.snapshot, policies=(POLICY,))

BASE_MEMBERS = {"approvers": {"alice"}, "readers": {"bob"}, "plain": set()}
BASE_ASSIGNMENTS = [("approver", "approvers", {"0"}), ("reader", "readers", {"0"})]


def base(**changes: object) -> DirectorySnapshot:
    return snapshot(BASE_MEMBERS, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"}, **changes)  # type: ignore[arg-type]


def test_a_permission_gained_is_a_gain() -> None:
    after = snapshot(
        {**BASE_MEMBERS, "readers": {"bob", "mallory"}},
        BASE_ASSIGNMENTS,
        {"alice", "bob", "mallory"},
    )
    change = access_change(base(), after)
    assert change.gains == (Gain("mallory", frozenset({(MOBILE_APPS_READ, "0")}), frozenset()),)
    assert change.subjects == {"mallory"} and change.needs_approval


def test_a_scope_tag_gained_through_the_same_assignment_is_a_gain() -> None:
    after = snapshot(
        BASE_MEMBERS,
        [("approver", "approvers", {"0"}), ("reader", "readers", {"0", "paris"})],
        {"alice", "bob", "mallory"},
    )
    change = access_change(base(), after)
    assert change.gains == (Gain("bob", frozenset({(MOBILE_APPS_READ, "paris")}), frozenset()),)


def test_all_scope_tags_is_a_gain_and_tags_under_it_are_not() -> None:
    wide = [("approver", "approvers", {"0"}), ("reader", "readers", {ALL_SCOPE_TAGS})]
    widened = snapshot(BASE_MEMBERS, wide, {"alice", "bob", "mallory"})
    assert access_change(base(), widened).gains[0].permissions == {
        (MOBILE_APPS_READ, ALL_SCOPE_TAGS)
    }
    both = [*wide, ("reader", "plain", {"paris"})]
    members = {**BASE_MEMBERS, "plain": {"bob"}}
    assert access_change(widened, snapshot(members, both, {"alice", "bob", "mallory"})).gains == ()


def test_eligibility_under_a_policy_is_a_gain() -> None:
    # mallory already holds the approval permission through another group, but is not in the
    # policy's approver group: joining it makes her eligible, with no new permission.
    members = {**BASE_MEMBERS, "others": {"mallory"}}
    assignments = [*BASE_ASSIGNMENTS, ("approver", "others", {"0"})]
    before = snapshot(members, assignments, {"alice", "bob", "mallory"})
    after = snapshot(
        {**members, "approvers": {"alice", "mallory"}}, assignments, {"alice", "bob", "mallory"}
    )
    change = access_change(before, after)
    assert change.gains == (Gain("mallory", frozenset(), frozenset({"p1"})),)


def test_the_approval_permission_gained_is_a_gain() -> None:
    after = snapshot(
        {**BASE_MEMBERS, "approvers": {"alice", "mallory"}},
        BASE_ASSIGNMENTS,
        {"alice", "bob", "mallory"},
    )
    (gain,) = access_change(base(), after).gains
    assert (APPROVAL_FOR_MAA, "0") in gain.permissions and gain.approvable_policies == {"p1"}


def test_nested_membership_counts() -> None:
    members = {**BASE_MEMBERS, "approvers": {"alice", "nested"}, "nested": set()}
    before = snapshot(members, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"})
    after = snapshot(
        {**members, "nested": {"mallory"}}, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"}
    )
    assert [g.principal_id for g in access_change(before, after).gains] == ["mallory"]


def test_enabling_an_account_gains_what_it_holds() -> None:
    before = snapshot(BASE_MEMBERS, BASE_ASSIGNMENTS, {"alice", "mallory"}, disabled={"bob"})
    after = base()
    change = access_change(before, after)
    assert [g.principal_id for g in change.gains] == ["bob"]
    assert change.credentials == {"bob"}  # enabled state counts as a credential change too


def test_credentials_of_a_privileged_principal_need_approval_of_others_not() -> None:
    after = base(credentials={"bob": "new", "mallory": "new"})
    change = access_change(base(), after)
    assert change.gains == ()
    assert change.credentials == {"bob"}  # mallory holds nothing: her password is hers to set
    assert change.subjects == {"bob", "mallory"}
    assert change.needs_approval


def test_changes_that_grant_nothing_need_no_approval() -> None:
    new_group = snapshot(
        {**BASE_MEMBERS, "fresh": set()}, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"}
    )
    new_user = snapshot(BASE_MEMBERS, BASE_ASSIGNMENTS, {"alice", "bob", "mallory", "newbie"})
    removed = snapshot(
        {**BASE_MEMBERS, "readers": set()}, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"}
    )
    for after in (base(), new_group, new_user, removed):
        assert not access_change(base(), after).needs_approval
    assert access_change(base(), removed).subjects == {"bob"}  # about bob, granting nothing


def test_completion_refuses_what_exceeds_the_approved_change() -> None:
    approved = AccessChange((Gain("bob", frozenset({(MOBILE_APPS_READ, "0")}), frozenset()),))
    same = dataclasses.replace(approved)
    more = AccessChange(
        (
            Gain("bob", frozenset({(MOBILE_APPS_READ, "0")}), frozenset()),
            Gain("eve", frozenset({(MOBILE_APPS_READ, "0")}), frozenset()),
        )
    )
    new_policy = AccessChange((Gain("bob", frozenset(), frozenset({"p-new"})),))
    assert not same.exceeds(approved, ["p1"])
    assert more.exceeds(approved, ["p1"])
    assert not new_policy.exceeds(AccessChange(), ["p1"])  # a policy the change itself creates
    assert AccessChange((Gain("bob", frozenset(), frozenset({"p1"})),)).exceeds(approved, ["p1"])
    assert AccessChange(credentials=frozenset({"bob"})).exceeds(approved, [])
    assert AccessChange.from_json(more.to_json()) == more


def test_lockout_names_the_policy_left_without_approvers() -> None:
    after = snapshot(
        {**BASE_MEMBERS, "approvers": {"mallory"}}, BASE_ASSIGNMENTS, {"alice", "bob", "mallory"}
    )
    assert "Protect apps" in (lockout(after, "mallory") or "")
    assert lockout(base(), "mallory") is None
    assert lockout(base(policies=()), "alice") is None
