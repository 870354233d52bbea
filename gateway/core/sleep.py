"""Sleeping cars: how long a car that answered ASLEEP is left alone.

Waking a car drains its 12 V battery, and a sleeping car's ASLEEP answer is billed per
path. So the wait grows with how long the car has already been silent (since its last
reading), between a floor and a cap: a car that sleeps all night is asked a handful of
times, not every quarter of an hour. A webhook saying it woke ends the wait early.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def asleep_until(
    *, now: datetime, last_heard: datetime | None, backoff: timedelta, cap: timedelta
) -> datetime:
    """When to ask a car that answered ASLEEP at `now` again: after as long as it has been
    silent since `last_heard` (nothing heard: the floor), at least `backoff`, at most `cap`."""
    silent = now - (last_heard or now)
    return now + min(max(silent, backoff), cap)
