"""Connection lifecycle on fakes: recorded transitions, ERROR and recovery, the request
budget, sleeping cars, refresh-token renewal, the status feed and leased jobs."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.model import (
    Availability,
    ChargeAction,
    ConnectionStatus,
    LockAction,
    TelemetryField,
)
from gateway.core.model import UpstreamFailure as Failure
from gateway.core.ports import RefreshRejected, UnitOfWork, UnitOfWorkFactory
from gateway.core.renewal import RenewalPolicy, TokenRenewal
from gateway.core.watch import StatusFeed, WatchPolicy
from gateway.edge.background import JobSchedule, LeasedJob
from tests.unit.gateway.test_use_cases import World, build

ODOMETER = frozenset({TelemetryField.ODOMETER})


@pytest.fixture
def world() -> World:
    """A fresh gateway over fakes."""
    return build()


async def statuses(world: World, vehicle_id: str) -> list[tuple[str, str]]:
    """Return the vehicle's recorded transitions, oldest first, as (from, to) pairs."""
    async with world.uow() as uow:
        history = await uow.transitions.for_vehicle(vehicle_id, limit=100)
    return [(t.from_status.value, t.to_status.value) for t in reversed(history)]


async def test_every_status_change_is_recorded_with_its_reason(world: World) -> None:
    """Connect, expire on invalid_grant: two transitions, each with a reason and time."""
    await world.connect("car-1", "sc-1")
    world.clock.advance(3 * 3600)
    world.smartcar.fail("refresh", RefreshRejected())
    with pytest.raises(errors.ConnectionExpired):
        await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=None)
    assert await statuses(world, "car-1") == [
        ("NOT_CONNECTED", "ACTIVE"),
        ("ACTIVE", "EXPIRED"),
    ]
    async with world.uow() as uow:
        latest = (await uow.transitions.for_vehicle("car-1", limit=1))[0]
    assert "invalid_grant" in (latest.reason or "")
    assert latest.at == world.clock.now()


async def test_repeated_upstream_failures_mean_error_and_an_answer_recovers(
    world: World,
) -> None:
    """Five failures in a row turn ACTIVE to ERROR, keeping the last error; success heals."""
    await world.connect("car-1", "sc-1")
    for n in range(5):
        world.smartcar.fail("read", errors.UpstreamUnavailable(f"502 number {n}"))
        world.clock.advance(60)
        with pytest.raises(errors.UpstreamUnavailable):
            await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ERROR
    assert panel.vehicle.last_error == "502 number 4"
    world.clock.advance(60)
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE
    assert panel.vehicle.failure_count == 0
    assert (await statuses(world, "car-1"))[-2:] == [("ACTIVE", "ERROR"), ("ERROR", "ACTIVE")]


async def test_every_billed_request_is_counted_per_vehicle_and_month(world: World) -> None:
    """Connect bills 3, a 2-path batch 2, a command 1: the panel shows 6 of 500."""
    await world.connect("car-1", "sc-1")
    both = ODOMETER | {TelemetryField.LOCK_STATUS}
    await world.gateway.get_telemetry("car-1", fields=both, max_age=None)
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")
    panel = await world.gateway.get_vehicle("car-1")
    assert (panel.requests_this_month, panel.monthly_request_allowance) == (6, 500)
    page = await world.gateway.list_vehicles(status=None, page_size=0, page_token="")
    assert page.panels[0].requests_this_month == 6


async def test_a_sleeping_car_is_left_alone_and_served_from_its_last_values(
    world: World,
) -> None:
    """After ASLEEP, reads within the backoff make no upstream call and carry the last value."""
    await world.connect("car-1", "sc-1")
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=None)
    world.clock.advance(600)
    asleep = errors.VehicleAsleep("asleep", upstream=Failure(type="VEHICLE_STATE", code="ASLEEP"))
    world.smartcar.fail("read", asleep)
    reads = world.smartcar.calls["read"]
    for _ in range(3):
        answer = await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
        reading = answer.readings[TelemetryField.ODOMETER]
        assert reading.availability is Availability.UNAVAILABLE
        assert reading.reason == "VEHICLE_STATE:ASLEEP"
        assert reading.value is not None
    assert world.smartcar.calls["read"] == reads + 1
    world.clock.advance(15 * 60)
    answer = await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    assert answer.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE


async def test_refresh_tokens_are_renewed_by_day_45_and_only_once(world: World) -> None:
    """Not before day 40; by day 45 every pair is due, whatever its jitter; renewed once."""
    await world.connect("car-1", "sc-1")
    renewal = TokenRenewal(
        uow=world.uow, rotator=world.gateway.rotator, clock=world.clock, policy=RenewalPolicy()
    )
    world.clock.advance(timedelta(days=39).total_seconds())
    assert (await renewal.run_once()).renewed == 0
    world.clock.advance(timedelta(days=6, hours=1).total_seconds())
    report = await renewal.run_once()
    assert report.renewed == 1
    assert world.smartcar.calls["refresh"] == 1
    assert (await renewal.run_once()).renewed == 0
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE


async def test_the_status_feed_streams_changes_after_a_cursor(world: World) -> None:
    """A watcher from now sees a later change; one from 0 sees the whole history."""
    await world.connect("car-1", "sc-1")
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)
        await asyncio.sleep(0)

    policy = WatchPolicy(poll_interval_s=0.25)
    feed = StatusFeed(uow=world.uow, clock=world.clock, policy=policy, sleep=nap)
    history = feed.changes(vehicle_ids=frozenset(), after_id=0)
    first = await anext(history)
    assert (first.vehicle_id, first.to_status) == ("car-1", ConnectionStatus.ACTIVE)

    live = feed.changes(vehicle_ids=frozenset({"car-1"}), after_id=None)
    pending = asyncio.ensure_future(anext(live))
    await asyncio.sleep(0)
    await world.gateway.disconnect("car-1")
    change = await asyncio.wait_for(pending, timeout=5)
    assert change.to_status is ConnectionStatus.DISCONNECTED
    assert naps
    assert set(naps) == {0.25}
    await history.aclose()
    await live.aclose()


async def test_only_the_lease_holder_runs_a_background_job(world: World) -> None:
    """Two replicas tick: one runs the job; after its lease lapses the other takes over."""
    runs: list[str] = []

    def job(name: str) -> LeasedJob:
        async def work() -> None:
            runs.append(name)

        return LeasedJob(
            name="token-renewal",
            holder=name,
            work=work,
            uow=world.uow,
            clock=world.clock,
            schedule=JobSchedule(interval_s=60, lease_ttl_s=180),
        )

    first, second = job("replica-a"), job("replica-b")
    assert await first.tick()
    assert not await second.tick()
    world.clock.advance(181)
    assert await second.tick()
    assert not await first.tick()
    assert runs == ["replica-a", "replica-b"]


class Unreachable:
    """A database that cannot be reached: no unit of work opens."""

    def __call__(self) -> UnitOfWork:
        """Fail as a connection attempt that times out."""
        raise TimeoutError("database down")

    def reader(self) -> UnitOfWork:
        """Fail as a connection attempt that times out."""
        raise TimeoutError("database down")


class Leases:
    """Records what a job tells its lease observer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def lease_held(self, *, lease: str, held: bool) -> None:
        """Record one observation."""
        self.seen.append((lease, held))


async def test_each_tick_tells_whether_this_replica_holds_the_lease(world: World) -> None:
    """The holder reports held, the other replica not held; a failure to take the lease
    reports not held and runs nothing."""
    leases = Leases()
    runs: list[str] = []

    def job(name: str, uow: UnitOfWorkFactory) -> LeasedJob:
        async def work() -> None:
            runs.append(name)

        return LeasedJob(
            name="telemetry-scheduler",
            holder=name,
            work=work,
            uow=uow,
            clock=world.clock,
            schedule=JobSchedule(interval_s=60, lease_ttl_s=180),
            observer=leases,
        )

    assert await job("replica-a", world.uow).tick()
    assert not await job("replica-b", world.uow).tick()
    with pytest.raises(TimeoutError):
        await job("replica-c", Unreachable()).tick()
    assert leases.seen == [
        ("telemetry-scheduler", True),
        ("telemetry-scheduler", False),
        ("telemetry-scheduler", False),
    ]
    assert runs == ["replica-a"]


async def test_the_sleep_backoff_grows_with_how_long_the_car_has_been_silent(
    world: World,
) -> None:
    """Asleep 10 min after a reading: wait the 15 min minimum; silent 2 h 10 min: wait that."""
    await world.connect("car-1", "sc-1")
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=None)
    asleep = errors.VehicleAsleep("asleep", upstream=Failure(type="VEHICLE_STATE", code="ASLEEP"))
    for step_s, expected in ((600, timedelta(minutes=15)), (7200, timedelta(seconds=7800))):
        world.clock.advance(step_s)
        world.smartcar.fail("read", asleep)
        await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
        panel = await world.gateway.get_vehicle("car-1")
        assert panel.vehicle.asleep_until == world.clock.now() + expected


async def test_a_permission_the_owner_takes_back_is_forgotten_and_losing_all_disconnects(
    world: World,
) -> None:
    """Smartcar's 403 PERMISSION for a scope the owner had granted: the field answers
    PERMISSION_MISSING, the panel lists the scope as missing, polls stop asking for it;
    once nothing the gateway operates with is left, the vehicle is DISCONNECTED."""
    await world.connect("car-1", "sc-1")
    car = world.smartcar.cars["sc-1"]
    car.permissions = car.permissions - {"read_odometer"}
    answer = await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    assert answer.readings[TelemetryField.ODOMETER].availability is Availability.PERMISSION_MISSING
    panel = await world.gateway.get_vehicle("car-1")
    assert "read_odometer" in panel.missing_permissions
    assert panel.vehicle.status is ConnectionStatus.ACTIVE
    reads = world.smartcar.calls["read"]
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    assert world.smartcar.calls["read"] == reads  # known missing: Smartcar is not asked

    car.permissions = frozenset({"read_vehicle_info", "read_vin"})
    with pytest.raises(errors.PermissionMissing):
        await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="r-1")
    with pytest.raises(errors.PermissionMissing):
        await world.gateway.command("car-1", action=ChargeAction.STOP_CHARGE, request_id="r-2")
    assert (await world.gateway.get_vehicle("car-1")).vehicle.status is ConnectionStatus.ACTIVE
    everything = frozenset(TelemetryField)
    await world.gateway.get_telemetry("car-1", fields=everything, max_age=timedelta(0))
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert "revoked" in (panel.vehicle.status_reason or "")
    assert (await statuses(world, "car-1"))[-1] == ("ACTIVE", "DISCONNECTED")


async def test_the_status_feed_waits_at_a_hole_in_the_ids(world: World) -> None:
    """A transition whose id is past a hole waits until the hole fills (a transaction that
    took the id before is still committing) and is then delivered in id order; a hole that
    stays open is stepped over after the grace, and one in old history at once."""
    await world.connect("car-1", "sc-1")
    await world.connect("car-2", "sc-2")
    store = world.uow.store.transitions
    first, second = store.pop(1), store.pop(2)
    store[1] = first
    elapsed = [0.0]

    async def nap(seconds: float) -> None:
        await asyncio.sleep(0)

    feed = StatusFeed(
        uow=world.uow,
        clock=world.clock,
        policy=WatchPolicy(poll_interval_s=0.1, gap_grace_s=5),
        sleep=nap,
        monotonic=lambda: elapsed[0],
    )
    store[3] = dataclasses.replace(second, id=3)
    watcher = feed.changes(vehicle_ids=frozenset(), after_id=1)
    pending = asyncio.ensure_future(anext(watcher))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not pending.done()
    store[2] = dataclasses.replace(first, id=2, vehicle_id="car-2")
    assert (await asyncio.wait_for(pending, timeout=5)).id == 2
    assert (await anext(watcher)).id == 3

    store[5] = dataclasses.replace(second, id=5)
    pending = asyncio.ensure_future(anext(watcher))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not pending.done()
    elapsed[0] += 5
    assert (await asyncio.wait_for(pending, timeout=5)).id == 5
    await watcher.aclose()

    old = dataclasses.replace(second, id=9, at=world.clock.now() - timedelta(hours=1))
    store[9] = old
    history = feed.changes(vehicle_ids=frozenset(), after_id=5)
    assert (await asyncio.wait_for(anext(history), timeout=5)).id == 9
    await history.aclose()
