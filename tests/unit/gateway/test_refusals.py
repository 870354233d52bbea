"""The refusal throttle: one log line per (who, refusal) per interval, then the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.errors import Refusal
from gateway.core.refusals import RefusalReport, RefusalThrottle

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UNLOCK = "/vehiclegateway.v1.VehicleGateway/Unlock"
LOCK = "/vehiclegateway.v1.VehicleGateway/Lock"


def at(seconds: float) -> datetime:
    """`seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def test_a_flood_is_one_line_then_one_count_per_interval() -> None:
    """3,000 refusals of one peer in a minute report the first at once and the other
    2,999 as one count when the next refusal comes after the minute."""
    throttle = RefusalThrottle(interval=timedelta(minutes=1))
    reports = []
    for n in range(3000):
        reports += throttle.note(
            who="ipv4:10.0.0.7", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(n * 0.01)
        )
    assert reports == [RefusalReport("ipv4:10.0.0.7", Refusal.NO_CREDENTIALS, UNLOCK, 1, True)]
    later = throttle.note(
        who="ipv4:10.0.0.7", refusal=Refusal.NO_CREDENTIALS, method=LOCK, now=at(60)
    )
    assert later == [
        RefusalReport("ipv4:10.0.0.7", Refusal.NO_CREDENTIALS, UNLOCK, 2999, False),
        RefusalReport("ipv4:10.0.0.7", Refusal.NO_CREDENTIALS, LOCK, 1, True),
    ]


def test_each_peer_and_reason_has_its_own_window() -> None:
    """A second reason, or a second peer, opens its own window with its own first line."""
    throttle = RefusalThrottle(interval=timedelta(minutes=1))
    first = throttle.note(who="a", refusal=Refusal.TOKEN_UNKNOWN, method=UNLOCK, now=at(0))
    other_reason = throttle.note(who="a", refusal=Refusal.TOKEN_IN_CLEAR, method=UNLOCK, now=at(1))
    other_peer = throttle.note(who="b", refusal=Refusal.TOKEN_UNKNOWN, method=UNLOCK, now=at(2))
    assert [r.first for r in first + other_reason + other_peer] == [True, True, True]


def test_flush_reports_counts_of_windows_that_are_over_and_only_those() -> None:
    """flush() closes windows past their interval: a count when more came, nothing when
    the opening refusal was the only one; windows still open stay."""
    throttle = RefusalThrottle(interval=timedelta(minutes=1))
    for n in range(3):
        throttle.note(who="a", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(n))
    throttle.note(who="b", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(10))
    throttle.note(who="c", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(50))
    throttle.note(who="c", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(51))
    assert throttle.flush(at(59.9)) == []
    assert throttle.flush(at(70)) == [
        RefusalReport("a", Refusal.NO_CREDENTIALS, UNLOCK, 2, False),
    ]
    assert throttle.flush(at(110)) == [RefusalReport("c", Refusal.NO_CREDENTIALS, UNLOCK, 1, False)]


def test_the_windows_kept_are_bounded() -> None:
    """A caller rotating addresses cannot grow the throttle: past `max_tracked` windows,
    the oldest is closed early (and its count reported)."""
    throttle = RefusalThrottle(interval=timedelta(minutes=1), max_tracked=2)
    throttle.note(who="a", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(0))
    throttle.note(who="a", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(1))
    throttle.note(who="b", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(2))
    reports = throttle.note(who="c", refusal=Refusal.NO_CREDENTIALS, method=UNLOCK, now=at(3))
    assert reports == [
        RefusalReport("a", Refusal.NO_CREDENTIALS, UNLOCK, 1, False),
        RefusalReport("c", Refusal.NO_CREDENTIALS, UNLOCK, 1, True),
    ]


@pytest.mark.parametrize(("interval_s", "room"), [(0, 5), (60, 0)])
def test_a_throttle_needs_a_positive_interval_and_room(interval_s: float, room: int) -> None:
    """A zero interval or no room for a window is a programming error, refused at once."""
    with pytest.raises(ValueError, match="positive interval"):
        RefusalThrottle(interval=timedelta(seconds=interval_s), max_tracked=room)
