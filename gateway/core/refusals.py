"""Which refused calls get a log line: the first of each (who, refusal) in an interval at
once, the rest as one line with their count when the interval is over.

A flood of unauthenticated calls must cost the gateway nothing but a counter: no audit row,
no log line each. `RefusalThrottle.note` decides, for one refusal, what to report now; it
keeps at most `max_tracked` windows (the oldest is closed early when a new one needs room),
so a caller rotating addresses cannot grow it without bound.

    throttle = RefusalThrottle(interval=timedelta(minutes=1))
    for report in throttle.note(who="ipv4:10.0.0.7", refusal=Refusal.TOKEN_UNKNOWN,
                                method="/…/Unlock", now=clock.now()):
        log(report)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import Refusal


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """One log line about refused calls: who, why, the last method, and how many calls it
    stands for (`first`: the opening refusal of a window; else the ones counted since)."""

    who: str
    refusal: Refusal
    method: str
    count: int
    first: bool


@dataclass(slots=True)
class _Window:
    started: datetime
    method: str
    suppressed: int = 0


class RefusalThrottle:
    """Rate-limits refusal reports to one per (who, refusal) per `interval`, plus a count."""

    def __init__(self, *, interval: timedelta, max_tracked: int = 1024) -> None:
        if interval <= timedelta(0) or max_tracked < 1:
            raise ValueError("a refusal throttle needs a positive interval and room for one")
        self._interval = interval
        self._max_tracked = max_tracked
        # Insertion order is start order: a window is only ever added at the end.
        self._windows: OrderedDict[tuple[str, Refusal], _Window] = OrderedDict()

    def note(
        self, *, who: str, refusal: Refusal, method: str, now: datetime
    ) -> list[RefusalReport]:
        """Count one refusal; return the reports due now (closed windows, then this one's
        opening report when it starts a window)."""
        reports = self.flush(now)
        key = (who, refusal)
        window = self._windows.get(key)
        if window is not None:
            window.suppressed += 1
            window.method = method
            return reports
        if len(self._windows) >= self._max_tracked:
            reports.extend(self._close(next(iter(self._windows))))
        self._windows[key] = _Window(started=now, method=method)
        reports.append(RefusalReport(who, refusal, method, count=1, first=True))
        return reports

    def flush(self, now: datetime) -> list[RefusalReport]:
        """Close the windows whose interval is over; return a count for each that had more
        refusals than its opening one."""
        reports: list[RefusalReport] = []
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.started < self._interval:
                break
            reports.extend(self._close(key))
        return reports

    def _close(self, key: tuple[str, Refusal]) -> list[RefusalReport]:
        window = self._windows.pop(key)
        if not window.suppressed:
            return []
        who, refusal = key
        return [RefusalReport(who, refusal, window.method, count=window.suppressed, first=False)]
