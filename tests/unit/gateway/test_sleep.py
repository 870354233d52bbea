"""The sleep backoff: how long a car that answered ASLEEP is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.sleep import asleep_until

NOW = datetime(2026, 3, 10, 23, 50, tzinfo=UTC)
BACKOFF = timedelta(minutes=15)
CAP = timedelta(hours=6)


@pytest.mark.parametrize(
    ("silent", "wait"),
    [
        (None, BACKOFF),  # never heard from: the floor
        (timedelta(0), BACKOFF),
        (timedelta(minutes=5), BACKOFF),
        (timedelta(hours=2), timedelta(hours=2)),  # as long as it has been silent
        (timedelta(days=3), CAP),
    ],
    ids=["never-heard", "just-heard", "short", "grows", "capped"],
)
def test_the_wait_is_the_silence_between_the_floor_and_the_cap(
    silent: timedelta | None, wait: timedelta
) -> None:
    """A car is left alone for as long as it has been silent, at least the backoff and at
    most the cap, whatever the calendar (the instant crosses midnight)."""
    last_heard = None if silent is None else NOW - silent
    until = asleep_until(now=NOW, last_heard=last_heard, backoff=BACKOFF, cap=CAP)
    assert until == NOW + wait
