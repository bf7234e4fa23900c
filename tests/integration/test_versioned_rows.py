"""A write that lost a race changes nothing: every ORM UPDATE and DELETE of a versioned row
(store/tables.py `Versioned`) also matches the version the writer read, so when another
transaction moved the object meanwhile the write is a 409 and its transaction rolls back
(store/db.py). On PostgreSQL, two writers may both read version 1 before either commits; the
version in the UPDATE's WHERE is what refuses the second."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from countersign.services.handlers.resources import ResourceHandler
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, count_rows

APPS = "/beta/deviceAppManagement/mobileApps"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_to_an_object_changed_meanwhile_is_a_conflict_and_changes_nothing(
    tenants: TenantFactory, db: Database, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    tenant = tenants()
    app = tenant.ok(
        "POST",
        APPS,
        json={
            "@odata.type": "#microsoft.graph.webApp",
            "displayName": "Portal",
            "appUrl": "https://portal.contoso.example",
        },
    )
    original = ResourceHandler.get

    def read_then_moved(self: ResourceHandler, session: Session, *args: Any) -> t.Resource:
        """Another writer commits a new version right after this one read the row."""
        row = original(self, session, *args)
        session.execute(
            update(t.Resource)
            .where(t.Resource.id == row.id)
            .values(version=t.Resource.version + 1)
            .execution_options(synchronize_session=False)
        )
        return row

    monkeypatch.setattr(ResourceHandler, "get", read_then_moved)
    audited = count_rows(db, t.AuditEvent)
    body = {"json": {"displayName": "Renamed"}} if method == "PATCH" else {}
    refused = tenant.call(method, f"{APPS}/{app['id']}", **body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["innerError"]["reason"] == "objectChanged"
    monkeypatch.undo()
    with db.read() as session:
        stored = session.execute(
            select(t.Resource.display_name, t.Resource.version).where(t.Resource.id == app["id"])
        ).one()
    assert tuple(stored) == ("Portal", 1)  # the other writer's bump rolled back with it
    assert count_rows(db, t.AuditEvent) == audited
