"""Instants as API V3 sends them: epoch milliseconds, epoch seconds, or ISO-8601 strings.

Smartcar's pages disagree (smartcar-v3-notes §3.3): the REST example shows
``1696156800`` (seconds), the Node SDK's ``1752104218549`` (milliseconds), a live REST
capture ISO-8601 strings, webhooks milliseconds. All three are read. A number is taken
as milliseconds from 1e11 up (epoch seconds reach 1e11 only in the year 5138, epoch
milliseconds passed it in 1973), as seconds below. ``0`` is Smartcar's mark for a static
value (a VIN) and reads as no time; so does anything unreadable. A string without a zone
is taken as UTC; a string longer than an ISO-8601 timestamp with microseconds and a zone
is no time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from clients.smartcar._json import is_digits
from clients.smartcar._wire import parse_timestamp

__all__ = ["instant"]

_MILLISECONDS_FROM = 1e11
_LONGEST_ISO = len("2026-09-22T12:41:16.476123+05:30")
_LATEST_S = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


def instant(raw: object) -> datetime | None:
    """Return the aware UTC time ``raw`` names, or None when it names none."""
    if isinstance(raw, str):
        text = raw.strip()
        if is_digits(text):
            return _epoch(int(text))
        # fromisoformat reads far more than ISO-8601 timestamps (5,000 ones make a date).
        return parse_timestamp(text) if len(text) <= _LONGEST_ISO else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return _epoch(raw)


def _epoch(value: float) -> datetime | None:
    """Read a positive epoch number as seconds or milliseconds (see the module docstring)."""
    if not value > 0:  # also refuses NaN
        return None
    seconds = value / 1000 if value >= _MILLISECONDS_FROM else value
    if not math.isfinite(seconds) or seconds > _LATEST_S:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)
