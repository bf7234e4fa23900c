"""domain/rbac.py: nested groups, cycles, role assignments and scope-tag reach (pure rules)."""

from __future__ import annotations

from countersign.domain.rbac import DEFAULT_SCOPE_TAG, DirectorySnapshot, RoleAssignment

READ, WRITE, APPROVE = "Read", "Write", "Approve"


def snapshot(
    members: dict[str, set[str]], assignments: tuple[RoleAssignment, ...] = ()
) -> DirectorySnapshot:
    return DirectorySnapshot(
        version=1,
        members={group: frozenset(ids) for group, ids in members.items()},
        security_groups=frozenset(members),
        role_permissions={"reader": frozenset({READ}), "writer": frozenset({READ, WRITE})},
        assignments=assignments,
    )


def assignment(
    role: str, groups: set[str], tags: set[str], all_tags: bool = False
) -> RoleAssignment:
    return RoleAssignment(
        id=f"{role}-{sorted(groups)}-{sorted(tags)}",
        display_name=role,
        role_definition_id=role,
        member_group_ids=frozenset(groups),
        scope_tag_ids=frozenset(tags),
        all_scope_tags=all_tags,
    )


def test_nested_groups_are_followed_to_any_depth() -> None:
    directory = snapshot({"g1": {"alice"}, "g2": {"g1"}, "g3": {"g2"}, "other": {"bob"}})
    assert directory.groups_of("alice") == {"g1", "g2", "g3"}
    assert directory.groups_of("bob") == {"other"}
    assert directory.groups_of("nobody") == frozenset()
    assert directory.transitive_members("g3") == {"g2", "g1", "alice"}
    assert directory.is_member("alice", "g3") and not directory.is_member("bob", "g3")


def test_cycles_do_not_hang() -> None:
    directory = snapshot({"a": {"b", "alice"}, "b": {"c"}, "c": {"a"}, "self": {"self"}})
    assert directory.groups_of("alice") == {"a", "b", "c"}
    assert directory.transitive_members("a") == {"a", "b", "c", "alice"}
    assert directory.groups_of("self") == {"self"}
    assert directory.transitive_members("self") == {"self"}


def test_permissions_come_from_assignments_on_any_enclosing_group() -> None:
    directory = snapshot(
        {"inner": {"alice"}, "outer": {"inner"}, "readers": {"bob"}},
        (assignment("writer", {"outer"}, {"1"}), assignment("reader", {"readers"}, {"0"})),
    )
    alice, bob, carol = (directory.access_for(p) for p in ("alice", "bob", "carol"))
    assert alice.permissions == {READ, WRITE} and alice.has(WRITE)
    assert bob.permissions == {READ} and not bob.has(WRITE)
    assert carol.permissions == frozenset() and not carol.has(READ)
    assert directory.group_is_on_role_assignment("outer")
    assert not directory.group_is_on_role_assignment("inner")


def test_scope_tag_reach() -> None:
    directory = snapshot(
        {"paris": {"alice"}, "both": {"bob"}},
        (
            assignment("writer", {"paris"}, {"1"}),
            assignment("reader", {"both"}, {"0", "1"}),
        ),
    )
    alice, bob = directory.access_for("alice"), directory.access_for("bob")
    assert alice.can(WRITE, ["1"]) and alice.can(WRITE, ["2", "1"])
    assert not alice.can(WRITE, ["0"]) and not alice.can(WRITE, ["2"])
    assert not alice.can(WRITE, [])  # an object without tags carries Default (0)
    assert alice.can(WRITE)  # no tags asked: the permission alone (directory objects)
    assert bob.can(READ, []) and bob.can(READ, ["1"]) and not bob.can(WRITE, ["1"])
    assert [a.display_name for a in alice.assignments_granting(WRITE)] == ["writer"]


def test_permission_and_reach_must_come_from_the_same_assignment() -> None:
    """Write over tag 1 and Read over tag 2 do not add up to Write over tag 2."""
    directory = snapshot(
        {"g": {"alice"}},
        (assignment("writer", {"g"}, {"1"}), assignment("reader", {"g"}, {"2"})),
    )
    alice = directory.access_for("alice")
    assert alice.can(READ, ["2"]) and alice.can(WRITE, ["1"])
    assert not alice.can(WRITE, ["2"])


def test_all_scope_tags_reaches_every_tag_present_and_future() -> None:
    directory = snapshot(
        {"admins": {"root"}}, (assignment("writer", {"admins"}, {DEFAULT_SCOPE_TAG}, True),)
    )
    root = directory.access_for("root")
    for tags in ([], ["0"], ["1"], ["999", "a-new-tag"]):
        assert root.can(WRITE, tags)
    assert RoleAssignment("x", "x", "r", frozenset(), frozenset(), True).reaches([])
    assert not RoleAssignment("x", "x", "r", frozenset(), frozenset({"1"})).reaches(["2"])
