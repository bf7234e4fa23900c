"""domain/approval.py and eligibility.py: policy coverage, who may approve, the diff (the
request state machine: test_request_domain.py)."""

from __future__ import annotations

import pytest

from countersign.domain import approval as a
from countersign.domain import eligibility as e
from countersign.domain.permissions import MOBILE_APPS_READ
from tests.unit.snapshots import snapshot


def test_a_policy_covers_its_type_on_its_platforms() -> None:
    windows = a.ActivePolicy("p", "Windows apps", "app", frozenset(a.WINDOWS), ("g",))
    everything = a.ActivePolicy("q", "All scripts", "script", frozenset({a.NOT_APPLICABLE}), ("g",))
    assert windows.covers("app", "windows10AndLater")
    assert not windows.covers("app", "iOSiPadOS")
    assert not windows.covers("script", "windows10AndLater")
    assert everything.covers("script", "notApplicable") and everything.covers("script", "macOS")


def test_platform_flags_parse_and_format_as_graph_does() -> None:
    assert a.parse_platforms("macOS, iOSiPadOS") == {"macOS", "iOSiPadOS"}
    assert a.parse_platforms("") == {a.NOT_APPLICABLE}
    assert a.format_platforms({"macOS", "iOSiPadOS"}) == "iOSiPadOS,macOS"
    with pytest.raises(ValueError, match="linux"):
        a.parse_platforms("linux")


def test_each_check_of_an_approver_fails_with_its_own_reason() -> None:
    snap = snapshot(
        members={
            "approvers": {"ann", "nested"},
            "nested": {"bob"},
            "weak": {"cat"},
            "lonely": {"dan"},
        },
        assignments=[("approver", "approvers", {"0"}), ("reader", "weak", {"0"})],
        users={"ann", "bob", "cat", "dan", "eve", "req"},
    )
    approvers = e.Approvers(("approvers", "weak", "lonely"), MOBILE_APPS_READ, (("0",),))

    def blocker(who: str, is_user: bool = True) -> str | None:
        refusal = e.approval_blocker(snap, who, is_user, "req", approvers)
        return refusal.reason if refusal else None

    assert blocker("ann") is None
    assert blocker("bob") is None  # nested membership counts
    assert blocker("req") == "approverIsRequester"
    assert blocker("ann", is_user=False) == "approverIsNotAUser"
    assert blocker("eve") == "notInApproverGroup"
    assert blocker("dan") == "approverGroupHasNoRoleAssignment"
    assert blocker("cat") == "missingApprovalPermission"
    assert blocker("ghost") == "approverIsDisabled"
    far = e.Approvers(("approvers",), MOBILE_APPS_READ, (("0",), ("7",)))
    refusal = e.approval_blocker(snap, "ann", True, "req", far)
    assert refusal is not None and refusal.reason == "scopeTagNotReached"
    assert e.eligible_approvers(snap, "req", approvers) == ["ann", "bob"]


def test_object_tag_sets_come_from_one_object_or_each_device() -> None:
    assert e.object_tag_sets({"roleScopeTagIds": ["0", "3"]}, None) == (("0", "3"),)
    bulk = {"value": [{"roleScopeTagIds": ["0"]}, {"roleScopeTagIds": ["5"]}]}
    assert e.object_tag_sets(bulk, None) == (("0",), ("5",))
    assert e.object_tag_sets(None, {"displayName": "new"}) == ()


def test_the_diff_names_each_changed_path() -> None:
    before = {"displayName": "Old", "settings": {"a": 1, "b": 2}, "gone": True}
    after = {"displayName": "New", "settings": {"a": 1, "b": 3}, "added/x": [1]}
    assert a.json_diff(before, after) == [
        {"path": "/added~1x", "op": "add", "before": None, "after": [1]},
        {"path": "/displayName", "op": "replace", "before": "Old", "after": "New"},
        {"path": "/gone", "op": "remove", "before": True, "after": None},
        {"path": "/settings/b", "op": "replace", "before": 2, "after": 3},
    ]
    assert a.json_diff(before, before) == []


def test_may_approve_anything_is_the_request_independent_part_of_approval_blocker() -> None:
    snap = snapshot(
        members={"approvers": {"ann", "off"}, "readers": {"rex"}},
        assignments=[("approver", "approvers", {"0"}), ("reader", "readers", {"0"})],
        users={"ann", "rex"},  # "off" is disabled
    )
    requests = [
        e.Approvers((), None),
        e.Approvers(("approvers",), None),
        e.Approvers(("approvers",), MOBILE_APPS_READ, (("0",),)),
    ]
    for who, is_user in [("ann", True), ("ann", False), ("off", True), ("rex", True)]:
        may = e.may_approve_anything(snap, who, is_user)
        assert may is (who == "ann" and is_user)
        if not may:  # then every request refuses the principal
            assert all(e.approval_blocker(snap, who, is_user, "req", r) for r in requests)
    assert any(e.approval_blocker(snap, "ann", True, "req", r) is None for r in requests)
