"""Read spacing's arithmetic: the open part released evenly through the month plus a burst,
the instant the next request is released, and the calendar's edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.read_spacing import ReadSpacing

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
"""A 30-day month: 450 requests are released one every 96 minutes."""


def test_at_the_months_first_instant_only_the_burst_is_released() -> None:
    """Nothing of the month has passed: the cap is the burst."""
    assert ReadSpacing().cap(450, APRIL) == 4
    assert ReadSpacing(burst=1).cap(450, APRIL) == 1


def test_the_open_part_is_released_evenly_and_never_past_itself() -> None:
    """A moment into the month one request is released, 96 minutes in the next one, half
    way through half of it; the cap never passes the open part."""
    spacing = ReadSpacing()
    assert spacing.cap(450, APRIL + timedelta(seconds=1)) == 5
    assert spacing.cap(450, APRIL + timedelta(minutes=96)) == 5
    assert spacing.cap(450, APRIL + timedelta(minutes=96, microseconds=1)) == 6
    assert spacing.cap(450, APRIL + timedelta(days=15)) == 229
    assert spacing.cap(450, datetime(2026, 4, 30, 23, 59, tzinfo=UTC)) == 450


def test_release_at_is_the_first_instant_the_cap_holds_the_read() -> None:
    """A read that fits is not delayed; one that does not is released the microsecond the
    cap reaches it; one the open part cannot hold waits for the next month."""
    spacing = ReadSpacing()
    at = APRIL + timedelta(minutes=10)
    assert spacing.release_at(450, used=4, cost=1, at=at) is None
    release = spacing.release_at(450, used=5, cost=1, at=at)
    assert release == APRIL + timedelta(minutes=96, microseconds=1)
    assert release is not None
    assert spacing.cap(450, release) == 6
    assert spacing.cap(450, release - timedelta(microseconds=1)) == 5
    assert spacing.release_at(450, used=450, cost=1, at=at) == datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "days"),
    [
        (datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), 29),  # a leap day
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), 31),  # the year's last second
        (datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC), 28),
    ],
)
def test_the_month_is_the_utc_calendar_month(at: datetime, days: int) -> None:
    """The fraction of the month is measured in its own length, across year ends and leap
    days: a day's release is a day's share of that month."""
    spacing = ReadSpacing(burst=1)
    start = at.replace(day=1, hour=0, minute=0, second=0)
    elapsed = (at - start) / timedelta(days=days)
    assert spacing.cap(days * 10, at) == min(days * 10, -(-round(days * 10 * elapsed, 6) // 1) + 1)


def test_a_burst_below_one_or_a_recheck_not_positive_is_refused() -> None:
    """Settings that would refuse every read, or remember nothing, are errors."""
    with pytest.raises(ValueError, match="burst"):
        ReadSpacing(burst=0)
    with pytest.raises(ValueError, match="recheck"):
        ReadSpacing(recheck=timedelta(0))
