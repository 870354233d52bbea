"""Rate-limit admission, the same contract in this process and shared through a real Redis:
buckets, cooldowns, the poll reserve; two "replicas" sharing one Redis; Redis down, open
or closed."""

from __future__ import annotations

import itertools
import logging

import pytest
from redis.asyncio import Redis

from gateway.core.errors import RateLimited, UpstreamUnavailable
from gateway.core.ratelimit import (
    Admission,
    BucketSpec,
    CallKind,
    LocalAdmission,
    RateLimiter,
    RateLimits,
)
from gateway.edge.redis.admission import RedisAdmission, RedisFailure

LIMITS = RateLimits(
    vehicle_reads=BucketSpec(capacity=2, refill_per_s=0.1),
    vehicle_commands=BucketSpec(capacity=1, refill_per_s=0.1),
    application=BucketSpec(capacity=4, refill_per_s=0.5),
    poll_reserve=0.5,
)
_prefixes = itertools.count()


def redis_admission(redis: Redis, **options: object) -> RedisAdmission:
    """A RedisAdmission under a key prefix of its own (tests share one server)."""
    return RedisAdmission(redis, LIMITS, prefix=f"t{next(_prefixes)}:", **options)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "redis"])
def admission(request: pytest.FixtureRequest) -> Admission:
    """Each implementation of the Admission port."""
    if request.param == "local":
        return LocalAdmission(RateLimiter(LIMITS))
    return redis_admission(request.getfixturevalue("redis"))


async def refusal(admission: Admission, vehicle: str, kind: CallKind, now_s: float) -> RateLimited:
    """Return the RateLimited an admission raises."""
    with pytest.raises(RateLimited) as refused:
        await admission.admit(vehicle, kind, now_s=now_s)
    return refused.value


async def test_a_vehicle_bucket_empties_and_refills(admission: Admission) -> None:
    """Two reads, then a refusal naming the bucket and the wait; ten seconds refill one."""
    await admission.admit("car-1", CallKind.READ, now_s=1000.0)
    await admission.admit("car-1", CallKind.READ, now_s=1000.0)
    refused = await refusal(admission, "car-1", CallKind.READ, 1000.0)
    assert refused.metadata["limit"] == "vehicle_reads"
    assert refused.retry_after_s == pytest.approx(10.0, abs=0.01)
    await admission.admit("car-1", CallKind.COMMAND, now_s=1000.0)  # its own bucket
    await admission.admit("car-1", CallKind.READ, now_s=1010.0)


async def test_the_application_bucket_and_its_poll_reserve(admission: Admission) -> None:
    """Polls stop while half the app bucket is left for reads and commands."""
    await admission.admit("car-1", CallKind.POLL, now_s=0.0)
    await admission.admit("car-2", CallKind.POLL, now_s=0.0)
    refused = await refusal(admission, "car-3", CallKind.POLL, 0.0)
    assert refused.metadata["limit"] == "application"
    await admission.admit("car-3", CallKind.READ, now_s=0.0)
    await admission.admit("car-4", CallKind.COMMAND, now_s=0.0)
    assert (await refusal(admission, "car-5", CallKind.READ, 0.0)).metadata["limit"] == (
        "application"
    )


async def test_cooldowns_refuse_until_they_end(admission: Admission) -> None:
    """A vehicle cooldown refuses that vehicle; the application's refuses everyone."""
    await admission.cool_down("car-1", until_s=130.0, now_s=100.0)
    refused = await refusal(admission, "car-1", CallKind.READ, 110.0)
    assert refused.metadata["limit"] == "vehicle_cooldown"
    assert refused.retry_after_s == pytest.approx(20.0, abs=0.01)
    await admission.admit("car-2", CallKind.READ, now_s=110.0)
    await admission.cool_down_application(until_s=120.0, now_s=110.0)
    assert (await refusal(admission, "car-2", CallKind.READ, 111.0)).metadata["limit"] == (
        "application_cooldown"
    )
    await admission.admit("car-1", CallKind.READ, now_s=131.0)


async def test_two_replicas_share_the_buckets_through_redis(redis: Redis) -> None:
    """Two RedisAdmission instances on one prefix take from the same buckets."""
    one = redis_admission(redis)
    other = RedisAdmission(redis, LIMITS, prefix=one._prefix)
    await one.admit("car-1", CallKind.READ, now_s=0.0)
    await other.admit("car-1", CallKind.READ, now_s=0.0)
    assert (await refusal(one, "car-1", CallKind.READ, 0.0)).metadata["limit"] == "vehicle_reads"
    assert (await refusal(other, "car-1", CallKind.READ, 0.0)).metadata["limit"] == (
        "vehicle_reads"
    )
    await one.cool_down("car-2", until_s=50.0, now_s=0.0)
    assert (await refusal(other, "car-2", CallKind.READ, 1.0)).metadata["limit"] == (
        "vehicle_cooldown"
    )


async def test_redis_down_fails_open_to_local_buckets_or_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis unreachable, `open` admits by this replica's own buckets (and says so
    once), `closed` refuses with UNAVAILABLE."""
    unreachable = Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    try:
        caplog.set_level(logging.ERROR)
        open_ = RedisAdmission(unreachable, LIMITS, failure=RedisFailure.OPEN)
        await open_.admit("car-1", CallKind.READ, now_s=0.0)
        await open_.admit("car-1", CallKind.READ, now_s=0.0)
        assert (await refusal(open_, "car-1", CallKind.READ, 0.0)).metadata["limit"] == (
            "vehicle_reads"
        )
        outages = [r for r in caplog.records if getattr(r, "event", None) == "redis_down"]
        assert len(outages) == 1
        closed = RedisAdmission(unreachable, LIMITS, failure=RedisFailure.CLOSED)
        with pytest.raises(UpstreamUnavailable) as refused:
            await closed.admit("car-1", CallKind.READ, now_s=0.0)
        assert refused.value.metadata["limit"] == "redis"
    finally:
        await unreachable.aclose()
