"""The telemetry cache shared through a real Redis: readings round-trip, the newer reading
of a field wins whatever the order of writes, one claim per vehicle released only by its
holder, waiters wake when it goes, and an unreachable Redis leaves each replica on its own."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from gateway.core.model import (
    Availability,
    DoorState,
    FieldReading,
    LockStatus,
    Odometer,
    TelemetryField,
)
from gateway.edge.redis.telemetry import RedisTelemetry

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_prefixes = itertools.count()


def shared(redis: Redis) -> RedisTelemetry:
    """A RedisTelemetry under a key prefix of its own (tests share one server)."""
    return RedisTelemetry(redis, prefix=f"st{next(_prefixes)}:")


def odometer(km: float, fetched_at: datetime) -> FieldReading:
    """An available odometer reading."""
    return FieldReading(
        field=TelemetryField.ODOMETER,
        availability=Availability.AVAILABLE,
        value=Odometer(distance_km=km),
        recorded_at=fetched_at - timedelta(seconds=30),
        fetched_at=fetched_at,
    )


async def test_readings_round_trip_field_by_field(redis: Redis) -> None:
    """What one replica puts, another reads back equal, including nested values and
    readings without a value."""
    one = shared(redis)
    locks = FieldReading(
        field=TelemetryField.LOCK_STATUS,
        availability=Availability.AVAILABLE,
        value=LockStatus(is_locked=True, doors=(DoorState(door="front_left", status="CLOSED"),)),
        fetched_at=NOW,
    )
    tires = FieldReading(
        field=TelemetryField.TIRE_PRESSURE,
        availability=Availability.NOT_CAPABLE,
        fetched_at=NOW,
        reason="COMPATIBILITY:VEHICLE_NOT_CAPABLE",
    )
    assert await one.readings("car-1") is None
    await one.put("car-1", [odometer(1200.5, NOW), locks, tires])
    other = RedisTelemetry(redis, prefix=one._prefix)
    assert await other.readings("car-1") == {
        TelemetryField.ODOMETER: odometer(1200.5, NOW),
        TelemetryField.LOCK_STATUS: locks,
        TelemetryField.TIRE_PRESSURE: tires,
    }
    assert await other.readings("car-2") is None


async def kilometres(store: RedisTelemetry) -> float:
    """The shared odometer of car-1."""
    found = await store.readings("car-1")
    assert found is not None
    value = found[TelemetryField.ODOMETER].value
    assert isinstance(value, Odometer)
    return value.distance_km


async def test_the_newer_reading_wins_whatever_the_order_of_writes(redis: Redis) -> None:
    """A replica that finishes late with an older reading does not overwrite a newer one."""
    store = shared(redis)
    await store.put("car-1", [odometer(2000, NOW)])
    await store.put("car-1", [odometer(1900, NOW - timedelta(minutes=1))])
    assert await kilometres(store) == 2000
    await store.put("car-1", [odometer(2100, NOW + timedelta(minutes=1))])
    assert await kilometres(store) == 2100


async def test_an_unreadable_entry_is_left_to_storage(redis: Redis) -> None:
    """A field this version cannot decode is skipped, not an error."""
    store = shared(redis)
    await store.put("car-1", [odometer(10, NOW)])
    await redis.hset(f"{store._prefix}telemetry:car-1", "location", "{not json")
    assert set(await store.readings("car-1") or {}) == {TelemetryField.ODOMETER}


async def test_one_claim_per_vehicle_released_only_by_its_holder(redis: Redis) -> None:
    """The first claim wins; a stranger's token does not release it; its holder's does."""
    one = shared(redis)
    other = RedisTelemetry(redis, prefix=one._prefix)
    token = await one.claim("car-1", ttl_s=10)
    assert token is not None
    assert await other.claim("car-1", ttl_s=10) is None
    assert await other.claim("car-2", ttl_s=10) is not None
    await other.release("car-1", "not-the-holder")
    assert await other.claim("car-1", ttl_s=10) is None
    await one.release("car-1", token)
    assert await other.claim("car-1", ttl_s=10) is not None


async def test_a_claim_expires_when_its_holder_dies(redis: Redis) -> None:
    """A replica killed while fetching blocks the others only for the claim's ttl."""
    store = shared(redis)
    assert await store.claim("car-1", ttl_s=0.2) is not None
    began = asyncio.get_running_loop().time()
    await store.wait("car-1", timeout_s=5)
    assert asyncio.get_running_loop().time() - began < 2
    assert await store.claim("car-1", ttl_s=10) is not None


async def test_waiters_wake_when_the_claim_is_released(redis: Redis) -> None:
    """`wait` returns soon after the holder releases, long before the timeout."""
    store = shared(redis)
    token = await store.claim("car-1", ttl_s=30)
    assert token is not None
    waiter = asyncio.create_task(store.wait("car-1", timeout_s=30))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await store.release("car-1", token)
    await asyncio.wait_for(waiter, timeout=2)


async def test_redis_down_leaves_each_replica_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    """Unreachable: no shared readings, every claim granted, writes dropped, waits end at
    once, and the outage is logged once."""
    unreachable = Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    try:
        caplog.set_level(logging.ERROR)
        store = RedisTelemetry(unreachable)
        await store.put("car-1", [odometer(1, NOW)])
        assert await store.readings("car-1") is None
        assert await store.claim("car-1", ttl_s=10) is not None
        assert await store.claim("car-1", ttl_s=10) is not None
        await asyncio.wait_for(store.wait("car-1", timeout_s=30), timeout=5)
        outages = [r for r in caplog.records if getattr(r, "event", None) == "redis_down"]
        assert len(outages) == 1
    finally:
        await unreachable.aclose()
