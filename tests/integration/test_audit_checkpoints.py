"""Anchored audit (services/audit_checkpoints.py): signed checkpoints published outside the
database catch the rewrites a keyless hash chain cannot (issue 15)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from countersign.config import Settings
from countersign.services import audit_checkpoints as ac
from countersign.services.audit import GENESIS_HASH, entry_hash
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import TenantFactory
from tests.integration.test_audit import busy_tenant
from tests.integration.test_audit import restored_afterwards as audit_restored

Tamper = Callable[[Database, str], str]


@pytest.fixture()
def anchor(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a key and a checkpoint log of this test's own."""
    return settings.model_copy(
        update={
            "audit_checkpoint_key_file": str(tmp_path / "keys" / "audit.pem"),
            "audit_checkpoint_log": str(tmp_path / "checkpoints.jsonl"),
        }
    )


def restored_afterwards(db: Database, tenant_id: str) -> AbstractContextManager[None]:
    """Tamper inside; the tenant's log, head and stored checkpoints are put back after."""
    return audit_restored(db, tenant_id, t.AuditEvent.__table__, t.AuditCheckpoint.__table__)


def _set_head(session: Any, tenant_id: str, sequence: int, head: str) -> None:
    """Move the head, and (the keeper covering tracks) drop the checkpoints the database keeps."""
    session.execute(delete(t.AuditCheckpoint).where(t.AuditCheckpoint.tenant_id == tenant_id))
    session.execute(
        update(t.Tenant)
        .where(t.Tenant.id == tenant_id)
        .values(audit_sequence=sequence, audit_head_hash=head)
    )


def rewrite_and_rehash(db: Database, tenant_id: str) -> str:
    """Edit entry 3, then re-hash it and everything after it, and move the head along."""
    with db.write() as session:
        rows = session.scalars(
            select(t.AuditEvent)
            .where(t.AuditEvent.tenant_id == tenant_id)
            .order_by(t.AuditEvent.sequence)
        ).all()
        previous = GENESIS_HASH
        for row in rows:
            if row.sequence == 3:
                row.actor_name = "Somebody Else"
            if row.sequence >= 3:
                row.previous_hash = previous
                row.hash = entry_hash(row, previous)
            previous = row.hash
        session.flush()
        _set_head(session, tenant_id, rows[-1].sequence, previous)
    return "the chain was rewritten"


def cut_tail(db: Database, tenant_id: str) -> str:
    """Delete the entries after the second and rewind the head to it."""
    with db.write() as session:
        second = session.scalars(
            select(t.AuditEvent).where(
                t.AuditEvent.tenant_id == tenant_id, t.AuditEvent.sequence == 2
            )
        ).one()
        session.execute(
            delete(t.AuditEvent).where(
                t.AuditEvent.tenant_id == tenant_id, t.AuditEvent.sequence > 2
            )
        )
        _set_head(session, tenant_id, 2, second.hash)
    return "the log was cut or wiped"


def wipe(db: Database, tenant_id: str) -> str:
    """Delete the tenant's whole log and reset the head to genesis."""
    with db.write() as session:
        session.execute(delete(t.AuditEvent).where(t.AuditEvent.tenant_id == tenant_id))
        _set_head(session, tenant_id, 0, GENESIS_HASH)
    return "the log was cut or wiped"


def checkpointed_tenant(tenants: TenantFactory, db: Database, anchor: Settings) -> str:
    tenant = busy_tenant(tenants)
    assert ac.write_due_checkpoints(db, anchor, datetime.now(UTC)) >= 1
    lines = Path(anchor.audit_checkpoint_log).read_text().splitlines()
    assert any(json.loads(line)["tenantId"] == tenant.id for line in lines)
    return tenant.id


def verify(cli: Any, anchor: Settings, tenant_id: str, *extra: str) -> Any:
    return cli(
        "audit",
        "verify",
        "--tenant",
        tenant_id,
        "--checkpoints",
        anchor.audit_checkpoint_log,
        "--public-key",
        f"{anchor.audit_checkpoint_key_file}.pub",
        *extra,
    )


@pytest.mark.parametrize("tamper", [rewrite_and_rehash, cut_tail, wipe])
def test_each_rewrite_passes_the_chain_but_not_the_checkpoints(
    tenants: TenantFactory, db: Database, cli: Any, anchor: Settings, tamper: Tamper
) -> None:
    tenant_id = checkpointed_tenant(tenants, db, anchor)
    assert verify(cli, anchor, tenant_id).exit_code == 0
    with restored_afterwards(db, tenant_id):
        expected = tamper(db, tenant_id)
        keyless = cli("audit", "verify", "--tenant", tenant_id)
        assert keyless.exit_code == 0, keyless.output  # the weakness issue 15 describes
        anchored = verify(cli, anchor, tenant_id)
        output = " ".join(anchored.output.split())
        assert anchored.exit_code == 1, output
        assert expected in output, output
    assert verify(cli, anchor, tenant_id).exit_code == 0


def test_an_untouched_log_verifies_and_names_the_last_checkpoint(
    tenants: TenantFactory, db: Database, cli: Any, anchor: Settings
) -> None:
    tenant_id = checkpointed_tenant(tenants, db, anchor)
    with db.read() as session:
        (row,) = session.scalars(
            select(t.AuditCheckpoint)
            .where(t.AuditCheckpoint.tenant_id == tenant_id)
            .order_by(t.AuditCheckpoint.sequence.desc())
            .limit(1)
        ).all()
    result = verify(cli, anchor, tenant_id)
    assert result.exit_code == 0, result.output
    when = row.checkpoint_date_time.isoformat().replace("+00:00", "Z")
    assert f"last verified checkpoint: {when}" in result.output
    assert "intact" in result.output


def test_a_checkpoint_signed_by_another_key_is_refused(
    tenants: TenantFactory, db: Database, cli: Any, anchor: Settings, tmp_path: Path
) -> None:
    tenant_id = checkpointed_tenant(tenants, db, anchor)
    with db.read() as session:
        tenant = session.get(t.Tenant, tenant_id)
        assert tenant is not None
        head = tenant.audit_sequence, tenant.audit_head_hash
    forger = ac.generate_key_file(tmp_path / "forger.pem")
    forged = ac.signed(forger, tenant_id, head[0], head[1], datetime.now(UTC))
    with open(anchor.audit_checkpoint_log, "a") as log:
        log.write(forged.line() + "\n")
    result = verify(cli, anchor, tenant_id)
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "refused" in output, output

    altered = json.loads(Path(anchor.audit_checkpoint_log).read_text().splitlines()[0])
    altered["sequence"] += 1  # a genuine signature over other content
    Path(anchor.audit_checkpoint_log).write_text(json.dumps(altered) + "\n")
    result = verify(cli, anchor, str(altered["tenantId"]))
    assert result.exit_code == 1 and "refused" in " ".join(result.output.split())


def test_the_worker_checkpoints_every_n_entries_or_m_minutes(
    tenants: TenantFactory, db: Database, anchor: Settings
) -> None:
    now = datetime.now(UTC)
    worker = Worker(db, anchor.model_copy(update={"audit_checkpoint_entries": 5}))
    tenant = tenants()
    worker.run_once(now)  # the first checkpoint comes as soon as there are entries

    def sequences() -> list[int]:
        with db.read() as session:
            return list(
                session.scalars(
                    select(t.AuditCheckpoint.sequence)
                    .where(t.AuditCheckpoint.tenant_id == tenant.id)
                    .order_by(t.AuditCheckpoint.sequence)
                )
            )

    first = sequences()
    assert len(first) == 1
    for _ in range(2):
        tenant.ok("POST", "/beta/deviceManagement/deviceCategories", json={"displayName": "c"})
    worker.run_once(now + timedelta(minutes=1))
    assert sequences() == first  # neither 5 entries nor 5 minutes yet
    worker.run_once(now + timedelta(minutes=6))
    assert sequences() == [first[0], first[0] + 2]  # 5 minutes: the moved head is anchored
    for _ in range(5):
        tenant.ok("POST", "/beta/deviceManagement/deviceCategories", json={"displayName": "c"})
    worker.run_once(now + timedelta(minutes=7))
    assert sequences()[-1] == first[0] + 7  # 5 entries
    worker.run_once(now + timedelta(minutes=30))
    assert len(sequences()) == 3  # an unmoved head needs no new checkpoint
    key_file = Path(anchor.audit_checkpoint_key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_broken_chain_is_not_anchored(
    tenants: TenantFactory, db: Database, anchor: Settings
) -> None:
    tenant = busy_tenant(tenants)
    with restored_afterwards(db, tenant.id):
        with db.write() as session:
            session.execute(
                update(t.AuditEvent)
                .where(t.AuditEvent.tenant_id == tenant.id, t.AuditEvent.sequence == 2)
                .values(actor_name="Somebody Else")
            )
        ac.write_due_checkpoints(db, anchor, datetime.now(UTC))
        with db.read() as session:
            assert (
                session.scalar(
                    select(t.AuditCheckpoint.id).where(t.AuditCheckpoint.tenant_id == tenant.id)
                )
                is None
            )


def test_keygen_makes_a_private_key_file_and_never_overwrites_it(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "audit.pem"
    monkeypatch.setenv("COUNTERSIGN_AUDIT_CHECKPOINT_KEY_FILE", str(path))
    made = cli("audit", "keygen")
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in made.output
    before = path.read_bytes()
    again = cli("audit", "keygen")
    assert again.exit_code == 1 and path.read_bytes() == before
    assert ac.load_key(Path(f"{path}.pub")).key_id == ac.load_key(path).key_id


def test_checkpoints_can_also_go_to_the_tenants_webhooks(
    tenants: TenantFactory, db: Database, anchor: Settings
) -> None:
    from tests.integration.receivers import http_receiver

    tenant = tenants()
    publishing = anchor.model_copy(update={"audit_checkpoint_webhooks": True})
    with http_receiver() as receiver:
        tenant.ok(
            "POST",
            "/beta/deviceManagement/notificationChannels",
            json={
                "displayName": "Evidence",
                "channelType": "webhook",
                "url": receiver.url + "/anchors",
                "secret": "a-webhook-secret-of-some-length",
            },
        )
        worker = Worker(db, publishing)
        worker.run_once(datetime.now(UTC))
        worker.run_once(datetime.now(UTC) + timedelta(seconds=1))  # deliver
        (sent,) = [r.json() for r in receiver.at("/anchors")]
    assert sent["event"] == "auditCheckpoint"
    checkpoint = ac.Checkpoint.from_line(json.dumps(sent["checkpoint"]))
    assert checkpoint.tenant_id == tenant.id
    key = ac.load_key(Path(anchor.audit_checkpoint_key_file))
    assert key.verifies(checkpoint.payload(), checkpoint.signature)


def test_plain_verify_checks_the_stored_checkpoints_when_the_key_is_at_hand(
    tenants: TenantFactory,
    db: Database,
    cli: Any,
    anchor: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant_id = checkpointed_tenant(tenants, db, anchor)
    monkeypatch.setenv("COUNTERSIGN_AUDIT_CHECKPOINT_KEY_FILE", anchor.audit_checkpoint_key_file)
    intact = cli("audit", "verify", "--tenant", tenant_id)
    assert intact.exit_code == 0 and "last verified checkpoint:" in intact.output
    with restored_afterwards(db, tenant_id):
        with db.write() as session:  # wiped, but the checkpoint rows were overlooked
            session.execute(delete(t.AuditEvent).where(t.AuditEvent.tenant_id == tenant_id))
            session.execute(
                update(t.Tenant)
                .where(t.Tenant.id == tenant_id)
                .values(audit_sequence=0, audit_head_hash=GENESIS_HASH)
            )
        wiped = cli("audit", "verify", "--tenant", tenant_id)
        assert wiped.exit_code == 1
        assert "the log was cut or wiped" in " ".join(wiped.output.split())


def test_the_worker_makes_its_key_on_first_start(db: Database, anchor: Settings) -> None:
    worker = Worker(db, anchor)
    worker.stop.set()  # start, then stop before the first cycle
    worker.run_forever()
    key_file = Path(anchor.audit_checkpoint_key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ac.load_key(key_file).private is not None
