"""The telemetry scheduler on fakes: plans, the budget's even spread and reserve, sleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.model import (
    Availability,
    ConnectionStatus,
    FieldReading,
    TelemetryField,
    Vehicle,
)
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.scheduler import PollPlan, daily_share, due_fields
from tests.unit.gateway.test_use_cases import World, build

F = TelemetryField
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CAR = Vehicle(id="car-1", status=ConnectionStatus.ACTIVE, permissions=REQUESTED_PERMISSIONS)


def reading(field: TelemetryField, age: timedelta) -> FieldReading:
    """A value fetched `age` before NOW."""
    return FieldReading(field=field, availability=Availability.AVAILABLE, fetched_at=NOW - age)


def test_an_idle_car_is_due_only_when_its_idle_intervals_pass() -> None:
    """Idle: location after 12 h; the other fields after a day; nothing sooner."""
    fresh = {f: reading(f, timedelta(hours=11)) for f in F}
    assert due_fields(CAR, fresh, rented_since=None, plan=PollPlan(), now=NOW) == []
    aged = {f: reading(f, timedelta(hours=13)) for f in F}
    assert due_fields(CAR, aged, rented_since=None, plan=PollPlan(), now=NOW) == [
        F.LOCK_STATUS,
        F.LOCATION,
    ]


def test_a_rented_car_is_polled_often_and_its_odometer_at_rental_start() -> None:
    """During a rental, 20-minute-old location is due, and an odometer older than the start."""
    readings = {f: reading(f, timedelta(minutes=20)) for f in F}
    due = due_fields(
        CAR, readings, rented_since=NOW - timedelta(minutes=5), plan=PollPlan(), now=NOW
    )
    assert due == [F.LOCK_STATUS, F.LOCATION, F.ODOMETER]


def test_fields_a_car_cannot_report_or_was_not_granted_are_never_polled() -> None:
    """NOT_CAPABLE fields and fields without permission are left out."""
    no_fuel = FieldReading(field=F.FUEL, availability=Availability.NOT_CAPABLE, fetched_at=NOW)
    car = Vehicle(
        id="car-1",
        status=ConnectionStatus.ACTIVE,
        permissions=REQUESTED_PERMISSIONS - {"read_location"},
    )
    due = due_fields(car, {F.FUEL: no_fuel}, rented_since=None, plan=PollPlan(), now=NOW)
    assert F.FUEL not in due
    assert F.LOCATION not in due
    assert F.LOCK_STATUS in due


@pytest.mark.parametrize(
    ("used", "spent_today", "day", "expected"),
    [
        (0, 0, 1, 11),  # 350 for polls over 30 days: 11 a day
        (11, 11, 1, 0),  # today's share spent
        (300, 0, 30, 50),  # the last day may use what is left, 50
        (340, 0, 30, 10),
        (350, 0, 15, 0),  # the reserve (150 of 500) is never touched
        (400, 0, 15, 0),
    ],
)
def test_the_budget_spreads_evenly_and_keeps_the_reserve(
    used: int, spent_today: int, day: int, expected: int
) -> None:
    """Polls get (allowance - reserve - used) split over the days left, never the reserve."""
    now = datetime(2026, 11, day, 12, tzinfo=UTC)
    share = daily_share(used=used, spent_today=spent_today, allowance=500, reserve=0.3, now=now)
    assert share == expected


@pytest.fixture
def world() -> World:
    """A fresh gateway over fakes."""
    return build()


async def test_a_tick_polls_due_fields_in_one_batch_and_then_rests(world: World) -> None:
    """The first tick polls a new car once; the next tick finds nothing due."""
    await world.connect("car-1", "sc-1")
    first = await world.gateway.scheduler.tick()
    assert (first.vehicles_seen, first.polls) == (1, 1)
    assert world.smartcar.calls["read"] == 1
    world.clock.advance(600)
    second = await world.gateway.scheduler.tick()
    assert second.polls == 0
    assert world.smartcar.calls["read"] == 1


async def test_sleeping_and_disconnected_cars_are_not_polled(world: World) -> None:
    """A car in its sleep backoff, and a disconnected car, cost nothing."""
    await world.connect("car-1", "sc-1")
    await world.connect("car-2", "sc-2")
    await world.gateway.disconnect("car-2")
    async with world.uow() as uow:
        car = await uow.vehicles.get("car-1")
        assert car is not None
        import dataclasses

        until = world.clock.now() + timedelta(minutes=15)
        await uow.vehicles.update(dataclasses.replace(car, asleep_until=until))
        await uow.commit()
    report = await world.gateway.scheduler.tick()
    assert (report.vehicles_seen, report.skipped_asleep, report.polls) == (1, 1, 0)
    assert world.smartcar.calls["read"] == 0


async def test_polls_never_eat_the_reserve_so_commands_still_run(world: World) -> None:
    """With the month's poll share used up, ticks poll nothing and a command still succeeds."""
    await world.connect("car-1", "sc-1")
    async with world.uow() as uow:
        month = world.clock.now().strftime("%Y-%m")
        await uow.budget.add("car-1", month, 350)
        await uow.commit()
    world.clock.advance(2 * 86400)
    report = await world.gateway.scheduler.tick()
    assert (report.polls, report.skipped_budget) == (0, 1)
    from gateway.core.model import CommandState, LockAction

    result = await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="r-1")
    assert result.state is CommandState.SUCCEEDED


async def test_metrics_hooks_see_spend_ticks_lag_and_renewals() -> None:
    """Budget spends, scheduler ticks with their lag, and renewal passes reach the hooks."""
    from gateway.core.metrics import RecordingMetrics
    from gateway.core.renewal import TokenRenewal
    from tests.unit.gateway.test_use_cases import gateway_over

    base = build()
    metrics = RecordingMetrics()
    gateway = gateway_over(base, metrics=metrics)
    world = World(gateway=gateway, smartcar=base.smartcar, uow=base.uow, clock=base.clock)
    await world.connect("car-1", "sc-1")
    await gateway.scheduler.tick()
    assert metrics.spends[-1] == (8, 11, 500)  # an 8-field batch; the month has Connect's 3 too
    world.clock.advance(13 * 3600)  # one hour past the idle plan for the lock status
    await gateway.scheduler.tick()
    polls, paths, lag_s = metrics.ticks[-1]
    assert (polls, paths) == (1, 1)  # the fake car reports no location: only the lock is due
    assert lag_s == pytest.approx(3600)
    renewal = TokenRenewal(
        uow=world.uow, rotator=gateway.rotator, clock=world.clock, metrics=metrics
    )
    await renewal.run_once()
    assert metrics.renewals == [(0, 0)]


async def test_the_most_overdue_car_is_polled_first_and_an_empty_app_bucket_ends_the_tick() -> None:
    """With room for one poll, the car overdue longest gets it, whatever its id; then stop."""
    from gateway.core.assembly import Policies
    from gateway.core.ratelimit import BucketSpec, RateLimits

    world = build(
        Policies(
            rate_limits=RateLimits(
                vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
                vehicle_commands=BucketSpec(capacity=100, refill_per_s=1.0),
                application=BucketSpec(capacity=3, refill_per_s=1 / 3600),
                poll_reserve=0.5,  # polls keep 1.5 of 3 tokens: room for exactly one poll
            )
        )
    )
    await world.connect("a-car", "sc-1")
    await world.connect("z-car", "sc-2")
    await world.gateway.get_telemetry("z-car", fields=frozenset(), max_age=None)
    world.clock.advance(4 * 3600)  # refill the app bucket; z-car was read 4 h earlier
    await world.gateway.get_telemetry("a-car", fields=frozenset(), max_age=None)
    world.clock.advance(3 * 86400)  # both overdue; z-car by 4 h more, though last by id
    report = await world.gateway.scheduler.tick()
    assert report.polls == 1
    polled = world.clock.now()
    assert world.uow.store.telemetry["z-car"][TelemetryField.ODOMETER].fetched_at == polled
    assert world.uow.store.telemetry["a-car"][TelemetryField.ODOMETER].fetched_at != polled


async def test_a_car_that_slept_last_time_is_probed_with_one_field_first(world: World) -> None:
    """After its backoff, a car that answered ASLEEP is asked for one field, not a batch;
    once it answers it is awake again (the mark goes) and the rest come at the next tick."""
    import dataclasses

    await world.connect("car-1", "sc-1")
    async with world.uow() as uow:
        car = await uow.vehicles.get("car-1")
        assert car is not None
        passed = world.clock.now() - timedelta(minutes=1)
        await uow.vehicles.update(dataclasses.replace(car, asleep_until=passed))
        await uow.commit()
    probe = await world.gateway.scheduler.tick()
    assert (probe.polls, probe.paths) == (1, 1)
    async with world.uow() as uow:
        awake = await uow.vehicles.get("car-1")
    assert awake is not None
    assert awake.asleep_until is None
    rest = await world.gateway.scheduler.tick()
    assert (rest.polls, rest.paths) == (1, 7)
