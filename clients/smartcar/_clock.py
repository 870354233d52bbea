"""The clock type the client takes, and the system clock it defaults to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "system_clock", "utc_now"]

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware datetime."""


def system_clock() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def utc_now(clock: Clock) -> datetime:
    """Read ``clock`` and return its time in UTC; refuse naive datetimes."""
    now = clock()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return now.astimezone(UTC)
