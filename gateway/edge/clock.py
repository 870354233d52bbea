"""Clocks: the system's, and a manual one that ships with the code as a testing hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told; tests advance it together with the simulator's."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)
