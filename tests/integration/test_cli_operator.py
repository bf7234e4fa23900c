"""The operator's commands on the database itself: they refuse a missing or un-migrated
database with one line (and create nothing), `audit verify` names an unreadable entry, and
`devices import` refuses a time without a zone and is idempotent by serial number."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from countersign.cli import app as command
from countersign.store.db import Database
from tests.factories import TenantFactory

DEVICES = "/beta/deviceManagement/managedDevices"
ON_POSTGRES = bool(os.environ.get("COUNTERSIGN_TEST_DATABASE_URL"))

# Every command that opens the database (db upgrade, serve and demo create or migrate it).
DATABASE_COMMANDS = [
    ["audit", "verify"],
    ["audit", "export", "--tenant", "00000000-0000-0000-0000-000000000000"],
    ["tenant", "create", "--name", "Fabrikam", "--admin-upn", "admin@fabrikam.example"],
    ["devices", "import", "devices.csv", "--tenant", "00000000-0000-0000-0000-000000000000"],
    ["worker", "--once"],
]


@pytest.fixture()
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with only a CSV file in it, and no database configured: the default,
    ./countersign.db, does not exist."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COUNTERSIGN_DATABASE_URL", raising=False)
    (tmp_path / "devices.csv").write_text("deviceName,operatingSystem\nPC-1,Windows\n")
    return tmp_path


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_missing_database_is_one_line_exit_2_and_nothing_is_created(
    empty_dir: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no database at" in lines[0] and "countersign db upgrade" in lines[0]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in empty_dir.iterdir()) == ["devices.csv"]  # nothing created


def test_audit_verify_in_an_empty_directory_with_json(empty_dir: Path) -> None:
    result = CliRunner().invoke(command, ["audit", "verify", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "badRequest"
    assert sorted(p.name for p in empty_dir.iterdir()) == ["devices.csv"]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unmigrated_database_is_refused(empty_dir: Path, args: list[str]) -> None:
    sqlite3.connect(empty_dir / "countersign.db").close()  # a file, but no schema
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not at the latest schema" in lines[0] and "db upgrade" in lines[0]
    with sqlite3.connect(empty_dir / "countersign.db") as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert tables == []  # still nothing: the command migrated nothing either


def test_audit_verify_of_an_unknown_tenant_is_not_found(cli: Any, db: Database) -> None:
    result = cli("audit", "verify", "--tenant", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code == 4  # not 1: nothing was tampered with
    assert "no tenant" in result.stderr


# -- audit verify: an entry whose stored value does not parse -------------------------------


@pytest.fixture()
def corrupted(db: Database) -> Iterator[Any]:
    """Overwrites one column of one audit entry with raw text, and puts it back afterwards."""
    undo: list[tuple[str, str, Any]] = []

    def corrupt(event_id: str, column: str, raw: str) -> None:
        with db.write() as session:
            original = session.execute(
                text(f'SELECT "{column}" FROM audit_events WHERE id = :id'), {"id": event_id}
            ).scalar_one()
            undo.append((event_id, column, original))
            session.execute(
                text(f'UPDATE audit_events SET "{column}" = :raw WHERE id = :id'),
                {"raw": raw, "id": event_id},
            )

    yield corrupt
    with db.write() as session:
        for event_id, column, original in reversed(undo):
            session.execute(
                text(f'UPDATE audit_events SET "{column}" = :value WHERE id = :id'),
                {"value": original, "id": event_id},
            )


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL's timestamptz and jsonb refuse such values")
@pytest.mark.parametrize(
    ("column", "raw"),
    [("activity_date_time", "the 3rd of never"), ("after", '{"displayName": "bro')],
)
def test_audit_verify_names_the_entry_it_cannot_read(
    tenants: TenantFactory,
    db: Database,
    cli: Any,
    corrupted: Any,
    column: str,
    raw: str,
    tmp_path: Path,
) -> None:
    tenant = tenants()
    tenant.user()  # a few more entries
    with db.read() as session:
        entries = session.execute(
            text(
                "SELECT sequence, id FROM audit_events WHERE tenant_id = :t "
                'AND "after" IS NOT NULL ORDER BY sequence'
            ),
            {"t": tenant.id},
        ).all()
    assert len(entries) >= 2
    sequence, event_id = entries[1]
    corrupted(event_id, column, raw)
    result = cli("audit", "verify", "--tenant", tenant.id)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"broken at entry {sequence} ({event_id})" in lines[0]
    assert f"entry {sequence} cannot be read" in lines[0]
    result = cli("audit", "verify", "--tenant", tenant.id, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["intact"] is False and report["brokenLinks"][0]["sequence"] == sequence
    exported = cli("audit", "export", "--tenant", tenant.id, "-o", str(tmp_path / "a.jsonl"))
    assert exported.exit_code == 1 and "Traceback" not in exported.output
    assert len(exported.stderr.strip().splitlines()) == 1 and "cannot be read" in exported.stderr


# -- devices import ---------------------------------------------------------------------------


def test_import_refuses_a_time_without_a_zone(tenants: TenantFactory, import_devices: Any) -> None:
    tenant = tenants()
    result = import_devices(
        "deviceName,operatingSystem,serialNumber,lastSyncDateTime\n"
        "LAB-PC-01,Windows,SN-LAB-01,2026-11-30 10:00\n"
        "LAB-PC-02,Windows,SN-LAB-02,2026-11-30T10:00:00Z\n",
        tenant.id,
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "Line 2: Property 'lastSyncDateTime'" in lines[0] and "timezone" in lines[0]
    assert "Nothing was imported" in lines[0]
    assert tenant.ok("GET", DEVICES)["value"] == []


def test_importing_the_same_file_twice_updates_by_serial_number(
    tenants: TenantFactory, import_devices: Any
) -> None:
    tenant = tenants()
    first = import_devices(
        "deviceName,operatingSystem,serialNumber,complianceState\n"
        "LAB-PC-01,Windows,SN-LAB-01,compliant\n"
        "LAB-MAC-01,macOS,SN-LAB-02,\n"
        "NO-SERIAL,iOS,,\n",
        tenant.id,
    )
    assert first.exit_code == 0, first.output
    assert "3 created, 0 updated" in first.stdout
    before = {d["serialNumber"]: d for d in tenant.ok("GET", DEVICES)["value"]}

    again = import_devices(
        "deviceName,operatingSystem,serialNumber,complianceState\n"
        "LAB-PC-01,Windows,SN-LAB-01,noncompliant\n"
        "LAB-MAC-01,macOS,SN-LAB-02,\n",
        tenant.id,
        "--json",
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"tenantId": tenant.id, "created": 0, "updated": 2}
    after = tenant.ok("GET", DEVICES)["value"]
    assert len(after) == 3  # no duplicate
    by_serial = {d["serialNumber"]: d for d in after}
    assert by_serial["SN-LAB-01"]["id"] == before["SN-LAB-01"]["id"]
    assert by_serial["SN-LAB-01"]["complianceState"] == "noncompliant"
    assert by_serial["SN-LAB-02"]["complianceState"] == before["SN-LAB-02"]["complianceState"]
    assert by_serial["SN-LAB-01"]["version"] == before["SN-LAB-01"]["version"] + 1
    activities = [
        e["activity"]
        for e in tenant.ok(
            "GET",
            "/beta/deviceManagement/auditEvents",
            params={"$filter": f"resources/resourceId eq '{before['SN-LAB-01']['id']}'"},
        )["value"]
    ]
    assert activities == ["Update managedDevice", "Create managedDevice"]  # newest first


def test_a_serial_number_twice_in_one_file_is_one_device(
    tenants: TenantFactory, import_devices: Any
) -> None:
    tenant = tenants()
    result = import_devices(
        "deviceName,operatingSystem,serialNumber\nOLD-NAME,Windows,SN-9\nNEW-NAME,Windows,SN-9\n",
        tenant.id,
    )
    assert result.exit_code == 0, result.output
    assert "1 created, 1 updated" in result.stdout
    assert [d["deviceName"] for d in tenant.ok("GET", DEVICES)["value"]] == ["NEW-NAME"]


def test_an_unreachable_database_server_is_one_line_exit_6(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", "postgresql://ops:secret@127.0.0.1:1/nothing")
    result = CliRunner().invoke(command, ["audit", "verify"])
    assert result.exit_code == 6
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open" in lines[0] and "secret" not in lines[0]


@pytest.mark.skipif(not ON_POSTGRES, reason="needs a PostgreSQL server")
def test_a_missing_postgresql_database_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    server = os.environ["COUNTERSIGN_TEST_DATABASE_URL"]
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", server.rsplit("/", 1)[0] + "/cs_not_there")
    result = CliRunner().invoke(command, ["audit", "verify"])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "does not exist" in result.stderr
