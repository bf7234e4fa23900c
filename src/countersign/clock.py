"""The one clock: what time it is, as a timezone-aware UTC datetime.

Every rule that depends on time (expiry, lockout, reminders, sessions) reads it through a Clock
passed in -- `create_app(settings, db, clock=...)`, `Worker(..., clock=...)` -- and hands the
moment to the services as `now`, so tests move time with a FakeClock instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything called without arguments that answers the current time, aware and in UTC."""

    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until moved: `clock.advance(hours=25)`, `clock.set(moment)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or system_clock()
        if self._now.tzinfo is None:
            raise ValueError("a clock's time is timezone-aware")
        self._now = self._now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a clock's time is timezone-aware")
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move the clock forward by `delta` or by timedelta keywords; answer the new time."""
        self._now += (delta or timedelta()) + timedelta(**parts)
        return self._now
