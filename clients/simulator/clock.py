"""Simulated time: the real clock plus an offset that `/sim/clock` moves forward.

Everything time-dependent in the simulator (token and code expiry, rate-limit buckets, the
monthly allowance, the evolving vehicle data) reads this clock, so tests jump two hours or
a month ahead without sleeping. Latency and hangs are real time (they test the client's
timeouts), and do not read it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SimClock:
    """UTC time that runs at real speed from the moment it was made, plus an offset.

    It starts at the real time, or at `start_s` (Unix seconds) when given, plus `offset_s`
    (a restarted simulator keeps its offset).
    """

    def __init__(self, start_s: float | None = None, *, offset_s: float = 0.0) -> None:
        self._wall_start_s = time.time() if start_s is None else start_s
        self._mono_start_s = time.monotonic()
        self._offset_s = offset_s

    def now_s(self) -> float:
        """Return simulated time as seconds since the Unix epoch; it never goes backwards."""
        return self._wall_start_s + (time.monotonic() - self._mono_start_s) + self._offset_s

    def now(self) -> datetime:
        """Return simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now_s(), tz=UTC)

    @property
    def offset_s(self) -> float:
        """Return how far simulated time has been moved ahead of real time."""
        return self._offset_s

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by `seconds` (not negative: buckets must not rewind)."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._offset_s += seconds


def format_iso_ms(epoch_s: float) -> str:
    """Format epoch seconds as Smartcar does: ISO-8601 UTC with milliseconds and a `Z`."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def month_of(epoch_s: float) -> str:
    """Return the UTC calendar month (`YYYY-MM`) that `epoch_s` falls in."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return f"{moment.year:04d}-{moment.month:02d}"
