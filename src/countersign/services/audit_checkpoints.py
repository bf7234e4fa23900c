"""Anchored audit: signed checkpoints of each tenant's hash chain, published outside the database.

The hash chain (services/audit.py) shows that entries were not edited, removed or reordered
*relative to the head the database records*. Someone who can write the database can still
rewrite an entry and re-hash everything after it, cut the tail and rewind the head, or wipe a
tenant's log and reset the head to genesis: the chain is then consistent again. A checkpoint --
tenant, sequence, head hash, time -- signed with an Ed25519 key that is kept **outside** the
database (a key file, 0600) and appended to a JSON-lines log file (also outside the database)
pins the chain as it was: `countersign audit verify --checkpoints FILE` then requires that every
checkpointed entry still exists with the hash the checkpoint names, which each of those three
rewrites breaks.

Where checkpoints are made: in the worker loop (`write_due_checkpoints`, one step of each
cycle), not in the server after each commit. So the signing key lives only on the worker's
host, never in the internet-facing server processes; and a checkpoint is derived only from
committed state (the tenant's recorded head), so a crash at any moment -- of a server between
commit and anything else, or of the worker mid-checkpoint -- cannot make the chain
unverifiable: at worst a checkpoint is made one cycle later. Before signing, the worker checks
the entries since the previous checkpoint link up to the head (a chain already broken is not
anchored; the failure is logged). Order within a checkpoint: the row is inserted (the unique
(tenant, sequence) index stops a second worker making the same one), the line is appended to
the log file and fsynced, then the transaction commits; a crash between the append and the
commit leaves a line for a head that was committed anyway, so it is still true.

A tenant gets a checkpoint when its head is `audit_checkpoint_entries` (default 100) entries
past its last checkpoint, or has moved at all and the last checkpoint is older than
`audit_checkpoint_minutes` (default 5); its first checkpoint as soon as it has entries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from countersign.config import Settings
from countersign.notify.channels import CHECKPOINT_EVENT
from countersign.notify.outbox import PENDING
from countersign.services.audit import GENESIS_HASH, entry_hash
from countersign.store import tables as t
from countersign.store.db import Database

log = logging.getLogger("countersign.audit")


# -- the key ---------------------------------------------------------------------------------


class CheckpointKeyError(Exception):
    """The key file is missing, unreadable or not an Ed25519 key."""


@dataclass(frozen=True)
class CheckpointKey:
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None = None

    @property
    def key_id(self) -> str:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, payload: bytes) -> str:
        if self.private is None:
            raise CheckpointKeyError("this key file holds only a public key; it cannot sign")
        return base64.b64encode(self.private.sign(payload)).decode()

    def verifies(self, payload: bytes, signature: str) -> bool:
        try:
            self.public.verify(base64.b64decode(signature, validate=True), payload)
        except (InvalidSignature, ValueError):
            return False
        return True


def generate_key_file(path: Path) -> CheckpointKey:
    """A new Ed25519 key in `path` (PKCS#8 PEM, created 0600; refuses to overwrite) and its
    public half in `path`.pub."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never replace a key (old checkpoints would stop verifying); 0600 from the start.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    key = CheckpointKey(private.public_key(), private)
    Path(f"{path}.pub").write_text(key.public_pem(), encoding="utf-8")
    return key


def load_key(path: Path) -> CheckpointKey:
    """The key in `path`: a private key (can sign) or a public key (verify only)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read the checkpoint key {path}: {exc.strerror}") from None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise CheckpointKeyError(f"{path} is not an Ed25519 key")
            return CheckpointKey(private.public_key(), private)
        public = serialization.load_pem_public_key(data)
    except ValueError:
        raise CheckpointKeyError(f"{path} is not a PEM key") from None
    if not isinstance(public, Ed25519PublicKey):
        raise CheckpointKeyError(f"{path} is not an Ed25519 key")
    return CheckpointKey(public)


def load_or_create_key(path: Path) -> CheckpointKey:
    """The signing key, made (0600) on first start."""
    if not path.exists():
        key = generate_key_file(path)
        log.warning(
            "created the audit checkpoint key",
            extra={"path": str(path), "keyId": key.key_id},
        )
        return key
    return load_key(path)


# -- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: str
    sequence: int
    head_hash: str
    time: datetime
    key_id: str
    signature: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "sequence": self.sequence,
            "headHash": self.head_hash,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "keyId": self.key_id,
        }

    def payload(self) -> bytes:
        """What the signature covers: the document as canonical JSON."""
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        return json.dumps({**self.document(), "signature": self.signature}, sort_keys=True)

    @classmethod
    def from_line(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(
            tenant_id=str(data["tenantId"]),
            sequence=int(data["sequence"]),
            head_hash=str(data["headHash"]),
            time=datetime.fromisoformat(str(data["time"]).replace("Z", "+00:00")),
            key_id=str(data.get("keyId", "")),
            signature=str(data["signature"]),
        )


def signed(
    key: CheckpointKey, tenant_id: str, sequence: int, head: str, now: datetime
) -> Checkpoint:
    unsigned = Checkpoint(tenant_id, sequence, head, now, key.key_id)
    return Checkpoint(tenant_id, sequence, head, now, key.key_id, key.sign(unsigned.payload()))


def _append(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and fsync it (O_APPEND: lines of several writers never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, (checkpoint.line() + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class _Due:
    tenant_id: str
    sequence: int
    head_hash: str
    last_sequence: int
    last_hash: str


def _due(session: Session, settings: Settings, now: datetime) -> list[_Due]:
    c = t.AuditCheckpoint
    last = (
        select(c.tenant_id, func.max(c.sequence).label("sequence")).group_by(c.tenant_id).subquery()
    )
    rows = session.execute(
        select(
            t.Tenant.id,
            t.Tenant.audit_sequence,
            t.Tenant.audit_head_hash,
            c.sequence,
            c.head_hash,
            c.checkpoint_date_time,
        )
        .outerjoin(last, last.c.tenant_id == t.Tenant.id)
        .outerjoin(c, (c.tenant_id == last.c.tenant_id) & (c.sequence == last.c.sequence))
        .where(t.Tenant.audit_sequence > func.coalesce(last.c.sequence, 0))
    ).all()
    every = settings.audit_checkpoint_entries
    stale = now - timedelta(minutes=settings.audit_checkpoint_minutes)
    due = []
    for tenant_id, sequence, head, last_sequence, last_hash, last_time in rows:
        if last_sequence is None or sequence - last_sequence >= every or last_time <= stale:
            due.append(
                _Due(tenant_id, sequence, head, last_sequence or 0, last_hash or GENESIS_HASH)
            )
    return due


def _links_up(session: Session, due: _Due) -> str | None:
    """None when the entries after the last checkpoint link up to the head; else the problem."""
    previous, expected = due.last_hash, due.last_sequence + 1
    rows = session.scalars(
        select(t.AuditEvent)
        .where(t.AuditEvent.tenant_id == due.tenant_id)
        .where(t.AuditEvent.sequence > due.last_sequence)
        .where(t.AuditEvent.sequence <= due.sequence)
        .order_by(t.AuditEvent.sequence)
    )
    for row in rows:
        if row.sequence != expected:
            return f"entry {expected} is missing"
        if row.previous_hash != previous or entry_hash(row, previous) != row.hash:
            return f"entry {row.sequence} does not link up"
        previous, expected = row.hash, expected + 1
    if expected - 1 != due.sequence or previous != due.head_hash:
        return f"the chain does not reach the recorded head {due.sequence}"
    return None


def write_due_checkpoints(db: Database, settings: Settings, now: datetime) -> int:
    """Checkpoint every tenant that is due; returns how many checkpoints were written."""
    with db.read() as session:
        due = _due(session, settings, now)
    if not due:
        return 0
    key = load_or_create_key(Path(settings.audit_checkpoint_key_file))
    written = 0
    for item in due:
        written += _checkpoint(db, settings, key, item, now)
    return written


def _checkpoint(
    db: Database, settings: Settings, key: CheckpointKey, due: _Due, now: datetime
) -> int:
    checkpoint = signed(key, due.tenant_id, due.sequence, due.head_hash, now)
    try:
        with db.write() as session:
            problem = _links_up(session, due)
            if problem is not None:
                log.error(
                    "audit chain broken: not checkpointed",
                    extra={"tenantId": due.tenant_id, "problem": problem},
                )
                return 0
            session.add(
                t.AuditCheckpoint(
                    id=str(uuid.uuid4()),
                    tenant_id=due.tenant_id,
                    sequence=due.sequence,
                    head_hash=due.head_hash,
                    checkpoint_date_time=now,
                    key_id=key.key_id,
                    signature=checkpoint.signature,
                )
            )
            session.flush()  # a second worker's same checkpoint stops here
            if settings.audit_checkpoint_webhooks:
                _publish_to_webhooks(session, checkpoint, now)
            _append(Path(settings.audit_checkpoint_log), checkpoint)
    except IntegrityError:
        return 0
    return 1


def _publish_to_webhooks(session: Session, checkpoint: Checkpoint, now: datetime) -> None:
    """One outbox message per enabled webhook channel of the tenant, in this transaction."""
    hooks = session.scalars(
        select(t.NotificationChannel.id).where(
            t.NotificationChannel.tenant_id == checkpoint.tenant_id,
            t.NotificationChannel.kind == "webhook",
            t.NotificationChannel.enabled.is_(True),
        )
    ).all()
    for channel_id in hooks:
        session.add(
            t.OutboxMessage(
                id=str(uuid.uuid4()),
                tenant_id=checkpoint.tenant_id,
                channel_id=channel_id,
                event=CHECKPOINT_EVENT,
                recipients=[],
                content={"checkpoint": json.loads(checkpoint.line())},
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_date_time=now,
            )
        )


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointProblem:
    tenant_id: str
    sequence: int
    problem: str


@dataclass(frozen=True)
class CheckpointReport:
    problems: list[CheckpointProblem]
    verified: int
    last_verified: Checkpoint | None


def read_checkpoint_file(path: Path) -> list[tuple[int, Checkpoint | None]]:
    """(line number, checkpoint) for every non-blank line; None for an unreadable line."""
    found: list[tuple[int, Checkpoint | None]] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            found.append((number, Checkpoint.from_line(text)))
        except (ValueError, KeyError, TypeError):
            found.append((number, None))
    return found


def stored_checkpoints(
    session: Session, key: CheckpointKey, tenant_id: str | None = None
) -> list[tuple[int, Checkpoint | None]]:
    """The checkpoints the database keeps that `key` signed (others, of an earlier key, are
    left out), as verify_checkpoints takes them."""
    c = t.AuditCheckpoint
    query = select(c).where(c.key_id == key.key_id).order_by(c.tenant_id, c.sequence)
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    return [
        (
            number,
            Checkpoint(
                row.tenant_id,
                row.sequence,
                row.head_hash,
                row.checkpoint_date_time,
                row.key_id,
                row.signature,
            ),
        )
        for number, row in enumerate(session.scalars(query), start=1)
    ]


def verify_checkpoints(
    session: Session,
    lines: Iterable[tuple[int, Checkpoint | None]],
    key: CheckpointKey,
    tenant_ids: set[str] | None = None,
) -> CheckpointReport:
    """Check the database's chains against every checkpoint (of `tenant_ids`, default all): a
    checkpoint must carry a valid signature of `key` (else it is refused), and the entry it
    names must exist with the hash it names, at or below the tenant's recorded head."""
    problems: list[CheckpointProblem] = []
    verified = 0
    last: Checkpoint | None = None
    heads: dict[str, tuple[int, str] | None] = {}
    for number, checkpoint in lines:
        if checkpoint is None:
            problems.append(CheckpointProblem("?", 0, f"line {number} is not a checkpoint"))
            continue
        if tenant_ids is not None and checkpoint.tenant_id not in tenant_ids:
            continue
        if not key.verifies(checkpoint.payload(), checkpoint.signature):
            problems.append(
                CheckpointProblem(
                    checkpoint.tenant_id,
                    checkpoint.sequence,
                    f"checkpoint on line {number} refused: its signature does not verify with "
                    f"key {key.key_id} (forged, altered, or signed by another key)",
                )
            )
            continue
        problem = _against_chain(session, checkpoint, heads)
        if problem is not None:
            problems.append(CheckpointProblem(checkpoint.tenant_id, checkpoint.sequence, problem))
            continue
        verified += 1
        if last is None or checkpoint.time >= last.time:
            last = checkpoint
    return CheckpointReport(problems, verified, last)


def _against_chain(
    session: Session, checkpoint: Checkpoint, heads: dict[str, tuple[int, str] | None]
) -> str | None:
    when = checkpoint.document()["time"]
    if checkpoint.tenant_id not in heads:
        tenant = session.get(t.Tenant, checkpoint.tenant_id)
        heads[checkpoint.tenant_id] = (
            None if tenant is None else (tenant.audit_sequence, tenant.audit_head_hash)
        )
    head = heads[checkpoint.tenant_id]
    if head is None:
        return (
            f"the tenant is gone, but a checkpoint of {when} anchors {checkpoint.sequence} entries"
        )
    stored = session.scalar(
        select(t.AuditEvent.hash).where(
            t.AuditEvent.tenant_id == checkpoint.tenant_id,
            t.AuditEvent.sequence == checkpoint.sequence,
        )
    )
    if stored is None:
        return (
            f"entry {checkpoint.sequence}, anchored by the checkpoint of {when}, is missing: "
            f"the log was cut or wiped (the head now records {head[0]} entries)"
        )
    if stored != checkpoint.head_hash:
        return (
            f"entry {checkpoint.sequence} does not match the checkpoint of {when}: the chain "
            "was rewritten"
        )
    if head[0] < checkpoint.sequence:
        return (
            f"the head records {head[0]} entries, fewer than the checkpoint of {when} "
            f"({checkpoint.sequence}): the head was rewound"
        )
    return None
