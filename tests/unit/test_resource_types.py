"""domain/resource_types.py is the one table of per-type facts: complete, and what the engine
and the handlers read."""

from __future__ import annotations

import pytest

from countersign.domain import approval as a
from countersign.domain import permissions as p
from countersign.domain import resource_types as rt
from countersign.domain.protection import protection_for
from countersign.domain.summary import POLICY_TYPE_LABELS
from countersign.services.catalog import HANDLERS, handler_for
from countersign.services.handlers.resources import KINDS

REGISTERED = (
    *KINDS,
    "managedDevices",
    "users",
    "groups",
    "servicePrincipals",
    "roleDefinitions",
    "roleAssignments",
    "roleScopeTags",
    "operationApprovalPolicies",
    "multiAdminApprovalSettings",
    "notificationChannels",
)


@pytest.mark.parametrize("collection", REGISTERED)
def test_every_registered_handler_has_its_row(collection: str) -> None:
    handler = handler_for(collection)
    row = rt.RESOURCE_TYPES[handler.collection]
    assert (handler.entity_type, handler.category, handler.changes_access) == (
        row.entity_type,
        row.category,
        row.changes_access,
    )


def test_the_table_has_no_row_without_a_handler() -> None:
    assert set(HANDLERS) == set(rt.RESOURCE_TYPES)


def test_resource_kinds_read_their_facts_from_the_table() -> None:
    for kind in KINDS.values():
        row = rt.RESOURCE_TYPES[kind.collection]
        assert (kind.entity_type, kind.policy_type, kind.category) == (
            row.entity_type,
            row.policy_type,
            row.category,
        )
        assert kind.permissions.read == row.read_permission


def test_the_engine_asks_approvers_for_the_tables_read_permission() -> None:
    """protection_for takes the approver's read permission from the table, per collection."""
    policy = a.ActivePolicy("p1", "Protect", "app", frozenset({a.NOT_APPLICABLE}), ("g",))
    for collection, row in rt.RESOURCE_TYPES.items():
        protection = protection_for(
            (policy,),
            caller_id="requester",
            collection=collection,
            policy_type="app",
            platform=a.NOT_APPLICABLE,
            before=None,
            after=None,
        )
        assert protection is not None
        assert protection.approvers.read_permission == row.read_permission


def test_retrieve_request_status_types_come_from_the_table() -> None:
    names = rt.COLLECTIONS_BY_GRAPH_TYPE
    assert names["deviceAndAppManagementRoleDefinition"] == "roleDefinitions"
    assert names["mobileApp"] == "mobileApps"
    assert "notificationChannel" not in names


def test_lock_key() -> None:
    assert rt.lock_key("mobileApps", "abc") == "mobileApps:abc"


def test_read_permissions_are_known_actions() -> None:
    for row in rt.RESOURCE_TYPES.values():
        assert row.read_permission is None or row.read_permission in p.ALL


def test_changes_imports_no_handler() -> None:
    """The registry is an explicit list in catalog.py; changes.py (the values every handler
    imports) needs none of them, so there is no import cycle to hide inside a function."""
    import subprocess
    import sys

    code = (
        "import sys, countersign.services.changes; "
        "print(sorted(m for m in sys.modules if m.startswith('countersign.services.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "catalog" not in loaded and "resources" not in loaded


def test_every_protected_policy_type_has_one_label() -> None:
    """The admin center's wizard and the reviewer summary read one label table, and it names
    exactly the policy types Countersign protects."""
    assert POLICY_TYPE_LABELS.keys() == a.POLICY_TYPES.keys()
