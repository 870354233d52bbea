"""Rate-limit policy: token buckets, cooldowns and the app-wide bucket, on explicit time."""

from __future__ import annotations

import pytest

from gateway.core.errors import RateLimited
from gateway.core.ratelimit import BucketSpec, CallKind, RateLimiter, RateLimits, TokenBucket

TIGHT = RateLimits(
    vehicle_reads=BucketSpec(capacity=2, refill_per_s=0.5),
    vehicle_commands=BucketSpec(capacity=1, refill_per_s=0.1),
    application=BucketSpec(capacity=3, refill_per_s=0.01),
)


def test_a_bucket_admits_its_capacity_then_says_how_long_to_wait() -> None:
    """A full bucket of 2 admits two calls, then the third must wait 1/refill seconds."""
    bucket = TokenBucket(BucketSpec(capacity=2, refill_per_s=0.5), now_s=100.0)
    for _ in range(2):
        assert bucket.wait_s(100.0) == 0
        bucket.take(100.0)
    assert bucket.wait_s(100.0) == pytest.approx(2.0)
    assert bucket.wait_s(101.0) == pytest.approx(1.0)
    assert bucket.wait_s(102.0) == 0


def test_a_bucket_never_fills_beyond_its_capacity() -> None:
    """After a long idle time the bucket holds only `capacity` tokens."""
    bucket = TokenBucket(BucketSpec(capacity=2, refill_per_s=1.0), now_s=0.0)
    for _ in range(2):
        bucket.take(1000.0)
    assert bucket.wait_s(1000.0) == pytest.approx(1.0)


def test_reads_are_refused_with_retry_after_once_the_vehicle_bucket_is_empty() -> None:
    """The third read in one instant is refused, naming the limit and when to retry."""
    limiter = RateLimiter(TIGHT)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-1", CallKind.READ, now_s=0.0)
    assert refused.value.metadata["limit"] == "vehicle_reads"
    assert refused.value.retry_after_s == pytest.approx(2.0, abs=0.002)


def test_vehicles_and_call_kinds_have_separate_buckets() -> None:
    """Exhausting one car's reads leaves its commands and other cars' reads alone."""
    limiter = RateLimiter(TIGHT)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    limiter.admit("car-1", CallKind.COMMAND, now_s=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-2", CallKind.READ, now_s=0.0)
    assert refused.value.metadata["limit"] == "application"


def test_a_refused_call_takes_no_token_from_any_bucket() -> None:
    """When the app bucket refuses, the vehicle bucket keeps its token for later."""
    limits = RateLimits(
        vehicle_reads=BucketSpec(capacity=5, refill_per_s=0.001),
        vehicle_commands=BucketSpec(capacity=1, refill_per_s=0.001),
        application=BucketSpec(capacity=1, refill_per_s=1.0),
    )
    limiter = RateLimiter(limits)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    for _ in range(3):
        with pytest.raises(RateLimited):
            limiter.admit("car-1", CallKind.READ, now_s=0.5)
    for second in (1.0, 2.0, 3.0, 4.0):
        limiter.admit("car-1", CallKind.READ, now_s=second)


def test_a_cooldown_refuses_until_it_passes() -> None:
    """After Smartcar's 429 the vehicle is refused until retry-after, then admitted."""
    limiter = RateLimiter(TIGHT)
    limiter.cool_down("car-1", until_s=30.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-1", CallKind.READ, now_s=10.0)
    assert refused.value.metadata["limit"] == "vehicle_cooldown"
    assert refused.value.retry_after_s == pytest.approx(20.0, abs=0.002)
    limiter.admit("car-2", CallKind.READ, now_s=10.0)
    limiter.admit("car-1", CallKind.READ, now_s=30.0)


def test_an_application_cooldown_refuses_every_vehicle() -> None:
    """Smartcar's app-wide 429 stops calls for all vehicles until it passes."""
    limiter = RateLimiter(TIGHT)
    limiter.cool_down_application(until_s=5.0)
    for car in ("car-1", "car-2"):
        with pytest.raises(RateLimited) as refused:
            limiter.admit(car, CallKind.COMMAND, now_s=1.0)
        assert refused.value.metadata["limit"] == "application_cooldown"
    limiter.admit("car-1", CallKind.COMMAND, now_s=5.0)


@pytest.mark.parametrize(("capacity", "refill"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_impossible_buckets_are_rejected(capacity: int, refill: float) -> None:
    """A bucket that could never admit a call is a configuration error."""
    with pytest.raises(ValueError, match=r"capacity|refill"):
        BucketSpec(capacity=capacity, refill_per_s=refill)


def test_polls_leave_the_app_bucket_reserve_to_commands_and_reads() -> None:
    """With a reserve of a quarter of 4 tokens, polls stop at 1 left; a command still runs."""
    limits = RateLimits(
        vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
        vehicle_commands=BucketSpec(capacity=100, refill_per_s=1.0),
        application=BucketSpec(capacity=4, refill_per_s=0.001),
        poll_reserve=0.25,
    )
    limiter = RateLimiter(limits)
    for car in ("car-1", "car-2", "car-3"):
        limiter.admit(car, CallKind.POLL, now_s=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-4", CallKind.POLL, now_s=0.0)
    assert refused.value.metadata["limit"] == "application"
    limiter.admit("car-4", CallKind.COMMAND, now_s=0.0)


def test_reads_leave_their_share_of_the_app_bucket_to_commands() -> None:
    """With a read reserve of a tenth of 10 tokens, reads stop at 1 left, polls at 5 (their
    own larger reserve), and a command still takes the last token."""
    limits = RateLimits(
        vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
        vehicle_commands=BucketSpec(capacity=100, refill_per_s=1.0),
        application=BucketSpec(capacity=10, refill_per_s=0.001),
        poll_reserve=0.5,
        read_reserve=0.1,
    )
    limiter = RateLimiter(limits)
    for n in range(5):
        limiter.admit(f"car-{n}", CallKind.POLL, now_s=0.0)
    with pytest.raises(RateLimited):
        limiter.admit("car-5", CallKind.POLL, now_s=0.0)
    for n in range(5, 9):
        limiter.admit(f"car-{n}", CallKind.READ, now_s=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-9", CallKind.READ, now_s=0.0)
    assert refused.value.metadata["limit"] == "application"
    limiter.admit("car-9", CallKind.COMMAND, now_s=0.0)


def test_polls_share_the_vehicle_read_bucket() -> None:
    """A poll and a read of one car draw on the same per-vehicle bucket."""
    limiter = RateLimiter(TIGHT)
    limiter.admit("car-1", CallKind.POLL, now_s=0.0)
    limiter.admit("car-1", CallKind.READ, now_s=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("car-1", CallKind.POLL, now_s=0.0)
    assert refused.value.metadata["limit"] == "vehicle_reads"
