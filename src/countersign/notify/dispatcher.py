"""Delivers outbox messages: claim, deliver, mark, with retries, backoff and dead letters.

How several workers share one outbox without delivering a message twice:

1. **Claim** (one short transaction): pick due messages -- `pending` whose `next_attempt_at` has
   come, or `delivering` whose lease (`claimed_until`) ran out because its worker died -- with
   `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (two workers never pick the same row; each
   skips what the other locked), and mark them `delivering` with a fresh `claim_token`, a lease
   and `attempts + 1`. On SQLite write transactions are serialised (BEGIN IMMEDIATE, see
   store/db.py), so the same select-then-update cannot interleave with another claimer.
2. **Deliver**, outside any transaction (a slow SMTP server holds no lock).
3. **Mark** the outcome with `UPDATE ... WHERE id = :id AND claim_token = :token`: only the
   current claim holder can record it.

What this guarantees, honestly: while a delivery finishes within its lease
(`outbox_lease_seconds`, default 300 s, far above the delivery timeout), exactly one worker
delivers each message. If a worker is frozen or killed after the receiver accepted a message
but before it marked it, the lease runs out and another worker delivers it again: delivery is
at-least-once in that case, never at-most-once (no message is lost). Exactly-once end to end is
impossible without the receiver's help, so every message carries its id
(`X-Countersign-Delivery`, and `deliveryId` in webhook bodies) for the receiver to deduplicate.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update

from countersign import metrics
from countersign.config import Settings
from countersign.notify import channels as ch
from countersign.notify.outbox import DEAD, DELIVERED, DELIVERING, PENDING
from countersign.store import tables as t
from countersign.store.db import Database

log = logging.getLogger("countersign.notify")

Deliver = Callable[[ch.ChannelConfig, ch.Outgoing], None]


@dataclass(frozen=True)
class Claim:
    token: str
    message: ch.Outgoing
    channel: ch.ChannelConfig
    enabled: bool
    attempts: int


@dataclass
class DispatchResult:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retried + self.dead


def _channel_of(
    message: t.OutboxMessage, channel: t.NotificationChannel | None
) -> ch.ChannelConfig:
    if message.target is not None:
        target = message.target
        return ch.ChannelConfig(
            id=str(target["id"]),
            kind=str(target["kind"]),
            settings=dict(target["settings"]),
            secret=target.get("secret"),
        )
    if channel is None:  # cannot happen (the channel's deletion cascades); refused as disabled
        return ch.ChannelConfig(id=message.channel_id or "", kind="none", settings={}, secret=None)
    return ch.ChannelConfig(
        id=channel.id, kind=channel.kind, settings=dict(channel.settings), secret=channel.secret
    )


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        deliver: Deliver | None = None,
        stop: threading.Event | None = None,
    ):
        self.db = db
        self.settings = settings
        self.deliver = deliver or self._deliver
        # Set to stop after the message in hand (the worker's graceful shutdown).
        self.stop = stop or threading.Event()

    def _deliver(self, channel: ch.ChannelConfig, message: ch.Outgoing) -> None:
        ch.deliver(
            channel,
            message,
            public_url=self.settings.public_url,
            timeout=self.settings.delivery_timeout_seconds,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait before attempt `attempts + 1`: base, 2x base, 4x base ..., capped."""
        seconds = self.settings.outbox_backoff_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.settings.outbox_backoff_max_seconds))

    def claim(self, now: datetime, limit: int = 20) -> list[Claim]:
        m = t.OutboxMessage
        due = or_(
            and_(m.status == PENDING, m.next_attempt_at <= now),
            and_(m.status == DELIVERING, m.claimed_until <= now),
        )
        token = str(uuid.uuid4())
        with self.db.write() as session:
            ids = session.scalars(
                select(m.id)
                .where(due)
                .order_by(m.next_attempt_at, m.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not ids:
                return []
            session.execute(
                update(m)
                .where(m.id.in_(ids))
                .values(
                    status=DELIVERING,
                    claim_token=token,
                    claimed_until=now + timedelta(seconds=self.settings.outbox_lease_seconds),
                    attempts=m.attempts + 1,
                ),
                execution_options={"synchronize_session": False},
            )
            rows = session.execute(
                select(m, t.NotificationChannel)
                .outerjoin(t.NotificationChannel, t.NotificationChannel.id == m.channel_id)
                .where(m.id.in_(ids), m.claim_token == token)
                .order_by(m.next_attempt_at, m.id)
            ).all()
            return [
                Claim(
                    token=token,
                    message=ch.Outgoing(
                        id=row.id,
                        tenant_id=row.tenant_id,
                        event=row.event,
                        content=dict(row.content),
                        recipients=list(row.recipients),
                    ),
                    channel=_channel_of(row, channel),
                    # A message with its own target (a farewell through a channel being
                    # disabled or deleted) goes out whatever the channel is now.
                    enabled=row.target is not None or (channel is not None and channel.enabled),
                    attempts=row.attempts,
                )
                for row, channel in rows
            ]

    def run_once(
        self, now: datetime, clock: Callable[[], datetime] | None = None
    ) -> DispatchResult:
        """Claim due messages and deliver them one by one. `now` claims; `clock` (default: the
        same `now`) times each outcome. Stops after the message in hand when `stop` is set and
        hands the rest of the claim back."""
        result = DispatchResult()
        claims = self.claim(now)
        for index, claim in enumerate(claims):
            if self.stop.is_set():
                result.released += self._release(claims[index:])
                break
            self._handle(claim, clock() if clock else now, result)
        return result

    def _handle(self, claim: Claim, now: datetime, result: DispatchResult) -> None:
        error: str | None = None
        if not claim.enabled:
            error = "channel disabled"
        else:
            try:
                self.deliver(claim.channel, claim.message)
            except ch.DeliveryFailed as exc:
                error = str(exc)[:2000]
            except Exception as exc:  # a bug in a formatter must not stop the worker
                log.exception("delivery raised", extra={"message_id": claim.message.id})
                error = f"{exc.__class__.__name__}: {exc}"[:2000]
        m = t.OutboxMessage
        mine = and_(m.id == claim.message.id, m.claim_token == claim.token)
        if error is None:
            values: dict[str, object] = {
                "status": DELIVERED,
                "delivered_date_time": now,
                "last_error": None,
            }
            result.delivered += 1
        else:
            metrics.DELIVERY_FAILURES.labels(channel_kind=claim.channel.kind).inc()
            dead = not claim.enabled or claim.attempts >= self.settings.outbox_max_attempts
            values = {
                "status": DEAD if dead else PENDING,
                "next_attempt_at": now + self.backoff(claim.attempts),
                "last_error": error,
            }
            if dead:
                result.dead += 1
            else:
                result.retried += 1
        values.update(claim_token=None, claimed_until=None)
        with self.db.write() as session:
            marked = session.execute(
                update(m).where(mine).values(**values),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
        log.info(
            "outbox message %s",
            values["status"],
            extra={
                "message_id": claim.message.id,
                "channel_id": claim.channel.id,
                "event": claim.message.event,
                "attempt": claim.attempts,
                "error": error,
                "lease_lost": marked == 0,
            },
        )

    def _release(self, claims: list[Claim]) -> int:
        """Give back claimed, undelivered messages (shutdown): due at once, attempt not spent."""
        m = t.OutboxMessage
        released = 0
        with self.db.write() as session:
            for claim in claims:
                released += session.execute(
                    update(m)
                    .where(m.id == claim.message.id, m.claim_token == claim.token)
                    .values(
                        status=PENDING,
                        attempts=m.attempts - 1,
                        claim_token=None,
                        claimed_until=None,
                    ),
                    execution_options={"synchronize_session": False},
                ).rowcount  # type: ignore[attr-defined]
        return released

    def purge_delivered(self, now: datetime) -> int:
        """Delete delivered messages older than the retention period."""
        cutoff = now - timedelta(days=self.settings.outbox_retention_days)
        m = t.OutboxMessage
        with self.db.write() as session:
            deleted: int = session.execute(
                delete(m).where(m.status == DELIVERED, m.delivered_date_time < cutoff),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
        return deleted
