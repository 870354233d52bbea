"""Calls refused at admission (UNAUTHENTICATED, PERMISSION_DENIED): counted by method and
reason, logged rate-limited (gateway.core.refusals), never written to the audit trail one
row each — a flood of them must not slow the calls that are let in."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from gateway.core.errors import Refusal
from gateway.core.ports import Clock
from gateway.core.refusals import RefusalReport, RefusalThrottle

DEFAULT_INTERVAL = timedelta(minutes=1)

_log = logging.getLogger(__name__)


class RefusalObserver(Protocol):
    """Where refusals are counted (the metrics endpoint)."""

    def refused(self, *, method: str, reason: str) -> None:
        """Count one refused call."""


class RefusalLog:
    """Counts every refused call and logs them, at most one line per (who, reason) per
    interval and then one with the count."""

    def __init__(
        self,
        *,
        clock: Clock,
        observer: RefusalObserver | None = None,
        interval: timedelta = DEFAULT_INTERVAL,
    ) -> None:
        self._clock = clock
        self._observer = observer
        self._throttle = RefusalThrottle(interval=interval)

    def refused(self, *, method: str, refusal: Refusal, who: str) -> None:
        """Count a refused call; log what the throttle lets through."""
        if self._observer is not None:
            self._observer.refused(method=method, reason=refusal.value)
        now = self._clock.now()
        for report in self._throttle.note(who=who, refusal=refusal, method=method, now=now):
            _emit(report)

    def flush(self) -> None:
        """Log the counts of the intervals that are over (also done at each refusal)."""
        for report in self._throttle.flush(self._clock.now()):
            _emit(report)


def _emit(report: RefusalReport) -> None:
    extra = {
        "event": "calls_refused",
        "who": report.who,
        "reason": report.refusal.value,
        "rpc_method": report.method,
        "count": report.count,
    }
    if report.first:
        _log.warning(
            "refused a call from %s: %s (more from it within the interval are counted)",
            report.who,
            report.refusal.value,
            extra=extra,
        )
    else:
        _log.warning(
            "refused %d more calls from %s: %s",
            report.count,
            report.who,
            report.refusal.value,
            extra=extra,
        )
