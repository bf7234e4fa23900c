"""The audit log: /beta/deviceManagement/auditEvents, `countersign audit verify` and `export`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import Tenant, TenantFactory, unique

EVENTS = "/beta/deviceManagement/auditEvents"
CATEGORIES = "/beta/deviceManagement/deviceCategories"


def busy_tenant(tenants: TenantFactory) -> Tenant:
    """A tenant with a few changes on record besides its creation."""
    tenant = tenants()
    for _ in range(3):
        category = tenant.ok("POST", CATEGORIES, json={"displayName": unique("cat")})
        tenant.ok("PATCH", f"{CATEGORIES}/{category['id']}", json={"description": "edited"})
    return tenant


def test_events_in_graphs_shape_with_filters_and_paging(tenants: TenantFactory) -> None:
    tenant = busy_tenant(tenants)
    listed = tenant.ok("GET", EVENTS, params={"$count": "true"})
    events = listed["value"]
    assert listed["@odata.count"] == len(events) >= 7
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences, reverse=True)  # newest first
    created = next(e for e in events if e["activity"] == "Create deviceCategory")
    assert created["@odata.type"] == "#microsoft.graph.auditEvent"
    assert created["actor"]["userId"] == tenant.admin.id
    assert created["actor"]["auditActorType"] == "ItPro"
    assert created["resources"][0]["type"] == "deviceCategory"
    assert created["activityResult"] == "success" and created["category"] == "Other"
    assert tenant.ok("GET", f"{EVENTS}/{created['id']}")["id"] == created["id"]

    def matching(expression: str) -> list[dict[str, Any]]:
        page = tenant.ok("GET", EVENTS, params={"$filter": expression, "$top": "999"})
        return list(page["value"])

    assert len(matching("activityType eq 'Update deviceCategory'")) == 3
    assert len(matching("activity eq 'Create deviceCategory' and category eq 'Other'")) == 3
    by_actor = matching(f"actor/userId eq '{tenant.admin.id}'")
    assert len(by_actor) == 6
    name = created["actor"]["userPrincipalName"]
    assert len(matching(f"actor/userPrincipalName eq '{name}'")) == 6
    when = created["activityDateTime"]
    assert created["id"] in {e["id"] for e in matching(f"activityDateTime ge {when}")}
    assert created["id"] not in {e["id"] for e in matching(f"activityDateTime lt {when}")}
    bad = tenant.call("GET", EVENTS, params={"$filter": "secret eq 'x'"})
    assert bad.status_code == 400 and "secret" in bad.text

    first = tenant.ok("GET", EVENTS, params={"$top": "4"})
    assert len(first["value"]) == 4
    second = tenant.ok("GET", first["@odata.nextLink"].removeprefix("http://testserver"))
    assert second["value"][0]["sequence"] == first["value"][-1]["sequence"] - 1


def test_events_need_audit_read_and_stay_in_their_tenant(tenants: TenantFactory) -> None:
    tenant, stranger = busy_tenant(tenants), tenants()
    event_id = tenant.ok("GET", EVENTS)["value"][0]["id"]
    reader = tenant.user(roles=("Read Only Operator",))
    assert tenant.ok("GET", EVENTS, reader)["value"]
    assert tenant.call("GET", EVENTS, tenant.user()).status_code == 403
    assert stranger.call("GET", f"{EVENTS}/{event_id}").status_code == 404
    assert event_id not in {e["id"] for e in stranger.ok("GET", EVENTS)["value"]}
    assert tenant.call("POST", EVENTS, json={}).status_code == 405


@contextmanager
def restored_afterwards(db: Database, tenant_id: str, *tables: Any) -> Iterator[None]:
    """Tamper inside; the tenant's rows of `tables` (its audit log unless told) and its audit
    head are put back after, so later runs of verify pass."""
    tables = tables or (t.AuditEvent.__table__,)
    with db.read() as session:
        saved = [
            [
                dict(r._mapping)
                for r in session.execute(select(tb).where(tb.c.tenant_id == tenant_id))
            ]
            for tb in tables
        ]
        tenant = session.get(t.Tenant, tenant_id)
        assert tenant is not None
        head = {"audit_sequence": tenant.audit_sequence, "audit_head_hash": tenant.audit_head_hash}
    try:
        yield
    finally:
        with db.write() as session:
            for table, rows in zip(tables, saved, strict=True):
                session.execute(delete(table).where(table.c.tenant_id == tenant_id))
                if rows:
                    session.execute(insert(table), rows)
            session.execute(update(t.Tenant).where(t.Tenant.id == tenant_id).values(**head))


def _event_id(db: Database, tenant_id: str, sequence: int) -> str:
    with db.read() as session:
        found = session.scalar(
            select(t.AuditEvent.id).where(
                t.AuditEvent.tenant_id == tenant_id, t.AuditEvent.sequence == sequence
            )
        )
    assert found is not None
    return found


def _last(db: Database, tenant_id: str) -> int:
    with db.read() as session:
        tenant = session.get(t.Tenant, tenant_id)
        assert tenant is not None
        return tenant.audit_sequence


def edit(db: Database, tenant_id: str) -> int:
    with db.write() as session:
        session.execute(
            update(t.AuditEvent)
            .where(t.AuditEvent.id == _event_id(db, tenant_id, 3))
            .values(actor_name="Somebody Else")
        )
    return 3


def delete_middle(db: Database, tenant_id: str) -> int:
    with db.write() as session:
        session.execute(delete(t.AuditEvent).where(t.AuditEvent.id == _event_id(db, tenant_id, 4)))
    return 4


def delete_last(db: Database, tenant_id: str) -> int:
    last = _last(db, tenant_id)
    with db.write() as session:
        session.execute(
            delete(t.AuditEvent).where(t.AuditEvent.id == _event_id(db, tenant_id, last))
        )
    return last


def swap(db: Database, tenant_id: str) -> int:
    second, third = _event_id(db, tenant_id, 2), _event_id(db, tenant_id, 3)
    with db.write() as session:
        for event_id, sequence in ((second, -1), (third, 2), (second, 3)):
            session.execute(
                update(t.AuditEvent).where(t.AuditEvent.id == event_id).values(sequence=sequence)
            )
    return 2


@pytest.mark.parametrize("tamper", [edit, delete_middle, delete_last, swap])
def test_verify_finds_the_first_broken_link(
    tenants: TenantFactory, db: Database, cli: Any, tamper: Any
) -> None:
    tenant = busy_tenant(tenants)
    intact = cli("audit", "verify", "--tenant", tenant.id)
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    with restored_afterwards(db, tenant.id):
        broken_at = tamper(db, tenant.id)
        result = cli("audit", "verify", "--tenant", tenant.id)
        output = " ".join(result.output.split())
        assert result.exit_code == 1, output
        assert f"broken at entry {broken_at}" in output, output
    assert cli("audit", "verify", "--tenant", tenant.id).exit_code == 0


def test_export_writes_json_lines(tenants: TenantFactory, cli: Any, tmp_path: Path) -> None:
    tenant = busy_tenant(tenants)
    target = tmp_path / "audit.jsonl"
    result = cli("audit", "export", "--tenant", tenant.id, "-o", str(target))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["sequence"] for e in lines] == list(range(1, len(lines) + 1))
    assert len(lines) == tenant.ok("GET", EVENTS, params={"$count": "true"})["@odata.count"]
    assert all(e["@odata.type"] == "#microsoft.graph.auditEvent" and e["hash"] for e in lines)
    assert lines[1]["previousHash"] == lines[0]["hash"]
