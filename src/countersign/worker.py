"""`countersign worker`: expiry, scheduled completions, reminders and notification delivery, in
a loop.

Several workers may run at once against one database: the sweeper and the reminders use
conditional updates (and SKIP LOCKED on PostgreSQL), the dispatcher claims messages with row
locks and a lease (notify/dispatcher.py). SIGTERM or SIGINT stops the loop after the message in
hand; claimed messages not yet tried are handed back. A scheduled completion is claimed by a
compare-and-set in the transaction that completes it, so it runs once whichever worker gets it
(services/schedule_completion.py).
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TypeVar

from countersign.clock import Clock, system_clock
from countersign.config import Settings
from countersign.logs import request_id_var
from countersign.notify import targets
from countersign.notify.dispatcher import Deliver, Dispatcher, DispatchResult
from countersign.services.audit_checkpoints import load_or_create_key, write_due_checkpoints
from countersign.services.expire_requests import expire_due_requests
from countersign.services.remind_requests import ApproverLookup, engine_approvers, send_reminders
from countersign.services.schedule_completion import complete_scheduled_requests
from countersign.store.db import Database

log = logging.getLogger("countersign.worker")
T = TypeVar("T")


@dataclass
class CycleResult:
    expired: int
    reminded: int
    dispatch: DispatchResult
    completed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.expired or self.completed or self.reminded or self.dispatch.handled)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock = system_clock,
        deliver: Deliver | None = None,
        approvers: ApproverLookup = engine_approvers,
    ):
        self.db = db
        self.settings = settings
        targets.configure(settings.allow_private_channel_targets)
        self.clock = clock
        self.approvers = approvers
        self.stop = threading.Event()
        self.dispatcher = Dispatcher(db, settings, deliver=deliver, stop=self.stop)
        self._last_purge: datetime | None = None

    def run_once(self, now: datetime | None = None) -> CycleResult:
        """One cycle at `now` (default: the clock): expire, remind, deliver what is due."""
        moment = now or self.clock()
        # Each step on its own: a failure in one (logged) never keeps the others from running.
        expired = self._step("expiry", lambda: expire_due_requests(self.db, moment), 0)
        completed = self._step(
            "scheduled completions", lambda: complete_scheduled_requests(self.db, moment), 0
        )
        # The default window; a tenant's own reminderHoursBeforeExpiry takes precedence.
        before = timedelta(hours=self.settings.reminder_hours_before_expiry)
        reminded = self._step(
            "reminders",
            lambda: send_reminders(self.db, moment, before, approvers=self.approvers),
            0,
        )
        dispatch = self._step(
            "delivery", lambda: self.dispatcher.run_once(moment), DispatchResult()
        )
        self._step("checkpoints", lambda: write_due_checkpoints(self.db, self.settings, moment), 0)
        if self._last_purge is None or moment - self._last_purge > timedelta(hours=1):
            self._step("purge", lambda: self.dispatcher.purge_delivered(moment), 0)
            self._step("statistics", self.db.refresh_statistics, None)
            self._last_purge = moment
        return CycleResult(expired, reminded, dispatch, completed)

    def _step(self, name: str, run: Callable[[], T], fallback: T) -> T:
        try:
            return run()
        except Exception:  # e.g. the database is down: log, carry on, try again next cycle
            log.exception("worker step failed", extra={"step": name})
            return fallback

    def run_forever(self) -> None:
        """Cycle until stopped; sleep `worker_poll_seconds` when a cycle found nothing to do."""
        log.info("worker started", extra={"pollSeconds": self.settings.worker_poll_seconds})
        # The audit checkpoint key is made (0600) on first start, not only at the first
        # checkpoint, so an operator can copy its public half away at once.
        self._step(
            "checkpoint key",
            lambda: load_or_create_key(Path(self.settings.audit_checkpoint_key_file)),
            None,
        )
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
                        "completed": result.completed,
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
