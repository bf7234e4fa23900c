"""`countersign worker`: expiry, reminders and notification delivery, in a loop.

Several workers may run at once against one database: the sweeper and the reminders use
conditional updates (and SKIP LOCKED on PostgreSQL), the dispatcher claims messages with row
locks and a lease (notify/dispatcher.py). SIGTERM or SIGINT stops the loop after the message in
hand; claimed messages not yet tried are handed back.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from countersign.config import Settings
from countersign.logs import request_id_var
from countersign.notify.dispatcher import Deliver, Dispatcher, DispatchResult
from countersign.services.expire_requests import expire_due_requests
from countersign.services.remind_requests import ApproverLookup, engine_approvers, send_reminders
from countersign.store.db import Database

log = logging.getLogger("countersign.worker")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleResult:
    expired: int
    reminded: int
    dispatch: DispatchResult

    @property
    def busy(self) -> bool:
        return bool(self.expired or self.reminded or self.dispatch.handled)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        deliver: Deliver | None = None,
        approvers: ApproverLookup = engine_approvers,
    ):
        self.db = db
        self.settings = settings
        self.clock = clock
        self.approvers = approvers
        self.stop = threading.Event()
        self.dispatcher = Dispatcher(db, settings, deliver=deliver, stop=self.stop)
        self._last_purge: datetime | None = None

    def run_once(self, now: datetime | None = None) -> CycleResult:
        """One cycle at `now` (default: the clock): expire, remind, deliver what is due."""
        now = now or self.clock()
        expired = expire_due_requests(self.db, now)
        reminded = send_reminders(
            self.db,
            now,
            timedelta(hours=self.settings.reminder_hours_before_expiry),
            approvers=self.approvers,
        )
        dispatch = self.dispatcher.run_once(now)
        if self._last_purge is None or now - self._last_purge > timedelta(hours=1):
            self.dispatcher.purge_delivered(now)
            self._last_purge = now
        return CycleResult(expired, reminded, dispatch)

    def run_forever(self) -> None:
        """Cycle until stopped; sleep `worker_poll_seconds` when a cycle found nothing to do."""
        log.info("worker started", extra={"pollSeconds": self.settings.worker_poll_seconds})
        while not self.stop.is_set():
            token = request_id_var.set(f"worker-{uuid.uuid4()}")
            try:
                result = self.run_once()
            except Exception:  # e.g. the database is down: log, wait, try again
                log.exception("worker cycle failed")
                result = None
            finally:
                request_id_var.reset(token)
            if result is not None and result.busy:
                log.info(
                    "worker cycle",
                    extra={
                        "expired": result.expired,
                        "reminded": result.reminded,
                        "delivered": result.dispatch.delivered,
                        "retried": result.dispatch.retried,
                        "dead": result.dispatch.dead,
                    },
                )
                continue  # there may be more: no sleep
            self.stop.wait(self.settings.worker_poll_seconds)
        log.info("worker stopped")

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping after the current message", extra={"signal": signum})
            self.stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
