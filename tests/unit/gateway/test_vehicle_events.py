"""Vehicle events on fakes: each is written by the change it reports, in that change's unit
of work, and only when the change is one (a lock state that moved, a level that crossed,
a door left open at a rental's end, a final reading settled, a budget warning)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.core.assembly import Policies
from gateway.core.budget import BudgetPolicy
from gateway.core.event_retention import EventRetention, EventRetentionPolicy
from gateway.core.final_readings import FinalReadings
from gateway.core.model import (
    Availability,
    Battery,
    ConnectionStatus,
    FieldReading,
    FinalReadingState,
    Fuel,
    LockAction,
    LockStatus,
    TelemetryField,
    UpstreamFailure,
    Vehicle,
)
from gateway.core.reading_events import LowLevelPolicy, store_readings
from gateway.core.rental_reader import RentalReader
from gateway.core.rental_readings import RentalReadingPolicy
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    Closure,
    ClosureKind,
    FinalReadingDetail,
    LockChange,
    LowLevel,
    OpenAtEnd,
    ReadingOrigin,
    StatusChange,
    VehicleEvent,
    VehicleEventKind,
)
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.test_use_cases import GENEROUS, World, build

K = VehicleEventKind
F = TelemetryField
UNREACHABLE = UpstreamFailure(type="VEHICLE_STATE", code="UNREACHABLE")


@pytest.fixture
def world() -> World:
    """A gateway over fakes: two ICE cars (sc-1, sc-2) and an EV (sc-ev)."""
    return build()


def events(world: World | FakeUnitOfWorkFactory, *kinds: VehicleEventKind) -> list[VehicleEvent]:
    """The committed events, in id order, of the given kinds (all when none given)."""
    store = (world.uow if isinstance(world, World) else world).store
    return [e for _, e in sorted(store.events.items()) if not kinds or e.kind in kinds]


async def fresh(world: World, vehicle_id: str, *fields: TelemetryField) -> None:
    """Read fields of a car from Smartcar (a caller's GetTelemetry with max_age 0)."""
    await world.gateway.get_telemetry(vehicle_id, fields=frozenset(fields), max_age=timedelta(0))


# --- lock state -----------------------------------------------------------------------------


async def test_a_lock_change_is_an_event_a_lock_state_kept_is_none(world: World) -> None:
    """The first lock state known makes no event; Unlock makes one (origin COMMAND, its
    request id); Unlock again, or a read showing the same state, none; a read showing the
    car locked from outside makes one (origin READ), with when the car recorded it."""
    await world.connect("car-1", "sc-1")
    await fresh(world, "car-1", F.LOCK_STATUS)
    assert events(world, K.LOCK_STATE_CHANGED) == []

    await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="u-1")
    await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="u-2")
    world.clock.advance(60)
    await fresh(world, "car-1", F.LOCK_STATUS)
    world.smartcar.cars["sc-1"].locked = True
    world.clock.advance(120)
    await fresh(world, "car-1", F.LOCK_STATUS)

    unlocked, locked = events(world, K.LOCK_STATE_CHANGED)
    assert unlocked.detail == LockChange(
        locked=False, origin=ReadingOrigin.COMMAND, recorded_at=START, request_id="u-1"
    )
    assert unlocked.description == "vehicle car-1 unlocked by command u-1"
    assert locked.detail == LockChange(
        locked=True, origin=ReadingOrigin.READ, recorded_at=world.clock.now() - timedelta(minutes=1)
    )
    assert (locked.at, locked.rental_id) == (world.clock.now(), None)


async def test_a_reading_older_than_the_stored_one_makes_no_event() -> None:
    """A lock state the car recorded before the stored one says nothing new about the car:
    stored as its writer stores it, but no event. The next newer reading is compared with
    what is stored then, so a state may be reported twice, never one the car left."""
    uow = FakeUnitOfWorkFactory()
    await seed_car(uow)
    await store(uow, lock(locked=True, at=START))
    await store(uow, lock(locked=False, at=START - timedelta(minutes=5)))
    assert events(uow) == []
    await store(uow, lock(locked=True, at=START + timedelta(minutes=1)))
    await store(uow, lock(locked=False, at=START + timedelta(minutes=2)))
    assert [e.detail for e in events(uow)] == [
        LockChange(
            locked=True, origin=ReadingOrigin.POLL, recorded_at=START + timedelta(minutes=1)
        ),
        LockChange(
            locked=False, origin=ReadingOrigin.POLL, recorded_at=START + timedelta(minutes=2)
        ),
    ]


# --- low fuel and charge --------------------------------------------------------------------


async def test_low_fuel_is_one_event_per_crossing_rearmed_above_the_margin() -> None:
    """Fuel at 50, 14 (LOW_FUEL), 13, 17 (between 15 and 20: not re-armed), 14, 21
    (re-armed), 10 (LOW_FUEL again): two events, each with the level and the threshold."""
    uow = FakeUnitOfWorkFactory()
    await seed_car(uow)
    for minute, percent in enumerate((50, 14, 13, 17, 14, 21, 10)):
        await store(uow, fuel(percent, at=START + timedelta(minutes=minute)))
    first, second = events(uow)
    assert first.kind is second.kind is K.LOW_FUEL
    assert first.detail == LowLevel(
        percent=14,
        threshold_percent=15,
        origin=ReadingOrigin.POLL,
        recorded_at=START + timedelta(minutes=1),
    )
    assert first.description == "vehicle car-1 fuel at 14 %, below 15 %"
    assert isinstance(second.detail, LowLevel)
    assert second.detail.percent == 10


async def test_a_car_first_seen_low_is_reported_and_charge_has_its_own_threshold() -> None:
    """A first reading already below the threshold is a crossing; a battery under 20 % is
    LOW_CHARGE, under the configured thresholds (here 30 %)."""
    uow = FakeUnitOfWorkFactory()
    await seed_car(uow)
    levels = LowLevelPolicy(low_fuel_percent=10, low_charge_percent=30)
    await store(uow, battery(25, at=START), levels=levels)
    await store(uow, fuel(12, at=START), levels=levels)
    [charge] = events(uow)
    assert charge.kind is K.LOW_CHARGE
    assert isinstance(charge.detail, LowLevel)
    assert charge.detail.threshold_percent == 30
    assert uow.store.event_latches == {("car-1", K.LOW_CHARGE): START}


async def test_an_aborted_unit_of_work_writes_no_event() -> None:
    """The outbox: an event is written in the unit of work of its change; leaving that unit
    without committing leaves neither the change, nor the event, nor the latch."""
    uow = FakeUnitOfWorkFactory()
    await seed_car(uow)
    async with uow() as unit:
        await store_readings(
            unit, "car-1", [fuel(5, at=START)], origin=ReadingOrigin.WEBHOOK, at=START
        )
        assert len(await unit.events.after(0, limit=10)) == 1  # written, not committed
    assert (uow.store.events, uow.store.event_latches, uow.store.telemetry) == ({}, {}, {})
    await store(uow, fuel(5, at=START))
    assert [e.kind for e in events(uow)] == [K.LOW_FUEL]


# --- rentals --------------------------------------------------------------------------------


async def test_a_rental_ended_with_a_door_open_is_an_event_of_that_rental(world: World) -> None:
    """EndRental reads the lock status with the end reading: a door open is
    DOORS_OPEN_AT_RENTAL_END for that rental; a rental ended with everything shut is not.
    A lock change during a rental names the rental."""
    await world.connect("car-1", "sc-1")
    await fresh(world, "car-1", F.LOCK_STATUS)
    await world.gateway.start_rental("car-1", rental_id="r-1")
    await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="u-1")
    world.smartcar.cars["sc-1"].open_doors = ("back_left",)
    world.clock.advance(3600)
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    assert ended.end[F.LOCK_STATUS].reading.availability is Availability.AVAILABLE

    [lock] = events(world, K.LOCK_STATE_CHANGED)
    assert lock.rental_id == "r-1"
    [doors] = events(world, K.DOORS_OPEN_AT_RENTAL_END)
    assert (doors.vehicle_id, doors.rental_id, doors.at) == ("car-1", "r-1", world.clock.now())
    assert doors.detail == OpenAtEnd(
        open=(Closure(kind=ClosureKind.DOOR, name="back_left"),),
        locked=False,
        recorded_at=world.clock.now() - timedelta(minutes=1),
    )

    world.smartcar.cars["sc-1"].open_doors = ()
    await world.gateway.start_rental("car-1", rental_id="r-2")
    world.clock.advance(3600)
    await world.gateway.end_rental("car-1", rental_id="r-2")
    assert [e.rental_id for e in events(world, K.DOORS_OPEN_AT_RENTAL_END)] == ["r-1"]


async def test_final_readings_recorded_and_given_up_are_events(world: World) -> None:
    """The background job records a final reading (FINAL_READING_RECORDED, with the distance
    driven) and gives up another a day after its end (FINAL_READING_GIVEN_UP, with why)."""
    policy = RentalReadingPolicy()
    job = FinalReadings(
        uow=world.uow,
        reader=RentalReader(
            telemetry=world.gateway.telemetry, cache=world.gateway.cache, clock=world.clock
        ),
        clock=world.clock,
        policy=policy,
    )
    await world.connect("car-1", "sc-1")
    await world.connect("car-2", "sc-2")
    for vehicle_id, rental_id in (("car-1", "r-1"), ("car-2", "r-2")):
        await world.gateway.start_rental(vehicle_id, rental_id=rental_id)
    world.clock.advance(3600)
    world.smartcar.cars["sc-1"].odometer_km += 12
    for vehicle_id, rental_id in (("car-1", "r-1"), ("car-2", "r-2")):
        await world.gateway.end_rental(vehicle_id, rental_id=rental_id)
    world.smartcar.cars["sc-2"].failing = dict.fromkeys(
        (F.ODOMETER, F.FUEL, F.LOCATION), UNREACHABLE
    )
    world.clock.advance(policy.first_retry.total_seconds())
    await job.run_once()
    [recorded] = events(world, K.FINAL_READING_RECORDED)
    assert recorded.rental_id == "r-1"
    assert isinstance(recorded.detail, FinalReadingDetail)
    assert recorded.detail.state is FinalReadingState.RECORDED
    assert recorded.detail.distance_km == pytest.approx(12)
    assert recorded.description == "final reading of rental r-1 recorded: 12 km driven"

    world.clock.advance(policy.give_up_after.total_seconds())
    await job.run_once()
    [given_up] = events(world, K.FINAL_READING_GIVEN_UP)
    assert given_up.rental_id == "r-2"
    assert isinstance(given_up.detail, FinalReadingDetail)
    assert given_up.detail.reason == "no value recorded after the end came within 24 h of it"


# --- connection status and budget -----------------------------------------------------------


async def test_status_changes_and_the_budget_warning_are_events() -> None:
    """Connect and Disconnect are CONNECTION_STATUS_CHANGED events (as WatchVehicles shows
    them); the request that brings the month to 80 % of the allowance is one BUDGET_WARNING."""
    world = build(
        Policies(rate_limits=GENEROUS, budget=BudgetPolicy(monthly_allowance=10, reserve_floor=2))
    )
    await world.connect("car-1", "sc-1")  # 3 billed requests
    for n in range(6):
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id=f"l-{n}")
    await world.gateway.disconnect("car-1")
    statuses = [e.detail for e in events(world, K.CONNECTION_STATUS_CHANGED)]
    assert statuses == [
        StatusChange(from_status=ConnectionStatus.NOT_CONNECTED, to_status=ConnectionStatus.ACTIVE),
        StatusChange(
            from_status=ConnectionStatus.ACTIVE,
            to_status=ConnectionStatus.DISCONNECTED,
            reason="disconnected through the gateway",
        ),
    ]
    [warning] = events(world, K.BUDGET_WARNING)
    assert warning.detail == BudgetWarningDetail(
        month="2026-03", requests_this_month=8, monthly_allowance=10, warning_percent=80
    )


async def test_retention_deletes_old_events_oldest_first_and_moves_the_horizon() -> None:
    """Events written more than the retention ago are deleted, a prefix of the ids, and the
    horizon says how far; newer ones stay. None: kept forever."""
    uow = FakeUnitOfWorkFactory()
    await seed_car(uow)
    for day in range(10):
        await store(uow, lock(locked=day % 2 == 0, at=START + timedelta(days=day)))
    assert len(events(uow)) == 9  # the first lock state known makes none
    clock = ManualClock(START + timedelta(days=10))
    retention = EventRetention(uow=uow, clock=clock, policy=EventRetentionPolicy(batch_size=2))
    assert await retention.run_once() == 2  # days 1 and 2 are more than 7 days old
    assert [e.id for e in events(uow)] == list(range(3, 10))
    assert uow.store.events_pruned_through == 2
    forever = EventRetention(uow=uow, clock=clock, policy=EventRetentionPolicy(retention=None))
    assert await forever.run_once() == 0


# --- helpers --------------------------------------------------------------------------------


async def seed_car(uow: FakeUnitOfWorkFactory) -> None:
    """Store ACTIVE car-1."""
    async with uow() as unit:
        await unit.vehicles.add(Vehicle(id="car-1", status=ConnectionStatus.ACTIVE))
        await unit.commit()


async def store(
    uow: FakeUnitOfWorkFactory, reading: FieldReading, *, levels: LowLevelPolicy | None = None
) -> None:
    """Store one reading of car-1 as a poll, at the time the car recorded it."""
    at = reading.recorded_at or START
    async with uow() as unit:
        await store_readings(
            unit,
            "car-1",
            [reading],
            origin=ReadingOrigin.POLL,
            at=at,
            levels=levels or LowLevelPolicy(),
        )
        await unit.commit()


def lock(*, locked: bool, at: datetime) -> FieldReading:
    """A lock status reading recorded at `at`."""
    return FieldReading(
        field=F.LOCK_STATUS,
        availability=Availability.AVAILABLE,
        value=LockStatus(is_locked=locked),
        recorded_at=at,
        fetched_at=at,
    )


def fuel(percent: float, *, at: datetime) -> FieldReading:
    """A fuel reading recorded at `at`."""
    value = Fuel(percent_remaining=percent, amount_remaining_l=None, range_km=None)
    return FieldReading(
        field=F.FUEL, availability=Availability.AVAILABLE, value=value, recorded_at=at
    )


def battery(percent: float, *, at: datetime) -> FieldReading:
    """A traction battery reading recorded at `at`."""
    value = Battery(percent_remaining=percent, range_km=None)
    return FieldReading(
        field=F.BATTERY, availability=Availability.AVAILABLE, value=value, recorded_at=at
    )


def test_every_read_purpose_names_the_origin_of_its_readings() -> None:
    """A reading stored by a read of any purpose can be told apart in the events it makes:
    no purpose is left without an origin (a new one would fail its first store)."""
    from gateway.core.purpose import ReadPurpose
    from gateway.core.reading_events import origin_of

    assert {purpose: origin_of(purpose) for purpose in ReadPurpose}
