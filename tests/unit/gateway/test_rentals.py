"""Rentals on fakes: who may rent, the readings StartRental and EndRental take, the chase of
the final reading (background job, webhooks, the next rental), GetRental and ListRentals."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.assembly import Policies
from gateway.core.final_readings import FinalReadings, complete_from_webhook
from gateway.core.metrics import RecordingMetrics
from gateway.core.model import (
    Availability,
    ConnectionStatus,
    FieldReading,
    FinalReadingState,
    Fuel,
    Odometer,
    ReadingSource,
    RentalRecord,
    TelemetryField,
    UpstreamFailure,
)
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.rental_reader import RentalReader
from gateway.core.rentals import RentalService
from tests.unit.gateway.test_use_cases import GENEROUS, World, build

F = TelemetryField
ASLEEP = UpstreamFailure(type="VEHICLE_STATE", code="ASLEEP")


@pytest.fixture
def world() -> World:
    """A gateway over fakes: two ICE cars (sc-1, sc-2) and an EV (sc-ev)."""
    return build()


async def rented(world: World, rental_id: str = "r-1", vehicle_id: str = "car-1") -> RentalRecord:
    """Connect car-1 (sc-1) when needed and start a rental on it."""
    if vehicle_id not in world.uow.store.vehicles:
        await world.connect(vehicle_id, "sc-1")
    return await world.gateway.start_rental(vehicle_id, rental_id=rental_id)


def odometer_km(record: RentalRecord) -> float:
    """The odometer value of a rental's end reading."""
    value = record.end[F.ODOMETER].reading.value
    assert isinstance(value, Odometer)
    return value.distance_km


# --- who may rent ---------------------------------------------------------------------------


async def test_a_car_without_control_security_cannot_be_rented(world: World) -> None:
    """StartRental of an ACTIVE car whose owner did not grant control_security is refused,
    naming the permission; nothing is held and Smartcar is not read."""
    world.smartcar.cars["sc-1"].permissions = REQUESTED_PERMISSIONS - {"control_security"}
    await world.connect("car-1", "sc-1")
    reads = world.smartcar.calls["read"]
    with pytest.raises(errors.VehicleNotRentable) as refused:
        await world.gateway.start_rental("car-1", rental_id="r-1")
    assert [(u.type, u.subject) for u in refused.value.unmet] == [
        ("PERMISSION", "permissions/control_security")
    ]
    assert refused.value.metadata == {
        "vehicle_id": "car-1",
        "status": "ACTIVE",
        "missing_permissions": "control_security",
    }
    assert world.uow.store.rentals == {}
    assert world.smartcar.calls["read"] == reads


@pytest.mark.parametrize(
    "status", [ConnectionStatus.EXPIRED, ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR]
)
async def test_a_car_that_is_not_active_cannot_be_rented(
    world: World, status: ConnectionStatus
) -> None:
    """EXPIRED, DISCONNECTED and ERROR cars are refused, the status named with its reason;
    a missing permission is named too, in the same error."""
    world.smartcar.cars["sc-1"].permissions = REQUESTED_PERMISSIONS - {"control_security"}
    await world.connect("car-1", "sc-1")
    vehicle = world.uow.store.vehicles["car-1"]
    world.uow.store.vehicles["car-1"] = dataclasses.replace(
        vehicle, status=status, status_reason="something happened"
    )
    with pytest.raises(errors.VehicleNotRentable) as refused:
        await world.gateway.start_rental("car-1", rental_id="r-1")
    unmet = refused.value.unmet
    assert [u.type for u in unmet] == ["CONNECTION_STATUS", "PERMISSION"]
    assert unmet[0].subject == "vehicles/car-1"
    assert f"{status.value} (something happened), not ACTIVE" in unmet[0].description
    assert refused.value.metadata["status"] == status.value


async def test_a_retried_start_keeps_its_hold_even_if_the_car_became_unrentable(
    world: World,
) -> None:
    """A retry of a started rental gets it back, readings and all, without a new read."""
    first = await rented(world)
    reads = world.smartcar.calls["read"]
    vehicle = world.uow.store.vehicles["car-1"]
    world.uow.store.vehicles["car-1"] = dataclasses.replace(
        vehicle, status=ConnectionStatus.EXPIRED
    )
    assert await world.gateway.start_rental("car-1", rental_id="r-1") == first
    assert world.smartcar.calls["read"] == reads


# --- the start and end readings -------------------------------------------------------------


async def test_start_and_end_take_readings_and_the_distance(world: World) -> None:
    """StartRental reads odometer and fuel live (battery and location the car cannot
    report); EndRental reads them again: the distance and fuel difference follow, and the
    final reading is pending while the values were recorded before the end."""
    started = await rented(world)
    assert {f: s.source for f, s in started.start.items() if f in (F.ODOMETER, F.FUEL)} == {
        F.ODOMETER: ReadingSource.LIVE,
        F.FUEL: ReadingSource.LIVE,
    }
    assert started.start[F.BATTERY].reading.availability is Availability.NOT_CAPABLE
    assert started.start[F.ODOMETER].taken_at == world.clock.now()
    world.clock.advance(3600)
    world.smartcar.cars["sc-1"].odometer_km += 42
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    assert ended.end[F.ODOMETER].source is ReadingSource.LIVE
    assert ended.distance_km == pytest.approx(42)
    assert ended.fuel_percent_change == pytest.approx(0)
    assert ended.battery_percent_change is None
    assert ended.final_reading_pending  # the car recorded them a minute before the end
    assert await world.gateway.get_rental("r-1") == ended


async def test_a_reading_held_within_the_max_age_is_not_asked_again(world: World) -> None:
    """A read of the odometer just before StartRental is reused (source CACHE); only the
    fields not held are asked of Smartcar, in one batch."""
    await world.connect("car-1", "sc-1")
    await world.gateway.get_telemetry("car-1", fields=frozenset({F.ODOMETER}), max_age=None)
    world.clock.advance(30)
    reads = world.smartcar.calls["read"]
    record = await world.gateway.start_rental("car-1", rental_id="r-1")
    assert record.start[F.ODOMETER].source is ReadingSource.CACHE
    assert record.start[F.FUEL].source is ReadingSource.LIVE
    assert world.smartcar.calls["read"] == reads + 1


async def test_a_reading_recorded_at_the_end_is_final_at_once(world: World) -> None:
    """A car reporting live at EndRental gives a final reading there and then: RECORDED,
    nothing left for the background job."""
    await rented(world)
    world.smartcar.cars["sc-1"].report_lag = timedelta(0)
    world.clock.advance(600)
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    assert ended.final is not None
    assert ended.final.state is FinalReadingState.RECORDED
    assert ended.final.settled_at == world.clock.now()
    assert (await world.gateway.final_readings.run_once()).due == 0


async def test_a_retried_end_answers_what_is_known_without_reading_again(world: World) -> None:
    """EndRental of an ended rental returns it as it stands; no second reading."""
    await rented(world)
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    reads = world.smartcar.calls["read"]
    world.clock.advance(60)
    assert await world.gateway.end_rental("car-1", rental_id="r-1") == ended
    assert world.smartcar.calls["read"] == reads


# --- a car that cannot answer ---------------------------------------------------------------


async def test_an_asleep_car_gets_its_final_reading_later_recorded_after_the_end(
    world: World,
) -> None:
    """The car falls asleep before EndRental: the rental keeps the last values with their
    age, pending; the job leaves the sleeping car alone, and once it wakes reads a value
    recorded after the end: RECORDED, source LIVE."""
    metrics = RecordingMetrics()
    job = FinalReadings(
        uow=world.uow,
        reader=RentalReader(
            telemetry=world.gateway.telemetry, cache=world.gateway.cache, clock=world.clock
        ),
        clock=world.clock,
        metrics=metrics,
    )
    started = await rented(world)
    world.clock.advance(3600)
    car = world.smartcar.cars["sc-1"]
    car.odometer_km += 30
    car.failing = {F.ODOMETER: ASLEEP, F.FUEL: ASLEEP}
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    odometer = ended.end[F.ODOMETER]
    assert odometer.reading.availability is Availability.UNAVAILABLE
    assert odometer.reading.reason == "VEHICLE_STATE:ASLEEP"
    assert odometer.reading.value == started.start[F.ODOMETER].reading.value
    assert odometer.reading.recorded_at is not None
    assert odometer.taken_at - odometer.reading.recorded_at > timedelta(hours=1)
    assert ended.final_reading_pending
    ended_at = ended.rental.ended_at
    assert ended_at is not None

    reads = world.smartcar.calls["read"]
    world.clock.advance(60)
    report = await job.run_once()
    assert (report.due, report.retried) == (1, 1)
    assert world.smartcar.calls["read"] == reads  # asleep: left alone, answered from cache

    car.failing = {}
    world.clock.advance(6 * 3600)  # past any sleep backoff and retry delay
    report = await job.run_once()
    assert report.recorded == 1
    final = await world.gateway.get_rental("r-1")
    assert not final.final_reading_pending
    odometer = final.end[F.ODOMETER]
    assert odometer.source is ReadingSource.LIVE
    assert odometer.reading.recorded_at is not None
    assert odometer.reading.recorded_at >= ended_at
    assert final.distance_km == pytest.approx(30)
    assert [outcome for outcome, _ in metrics.final_readings] == ["recorded"]


async def test_a_rate_limited_end_keeps_the_last_values_and_retries_after_the_limit(
    world: World,
) -> None:
    """Smartcar's 429 at EndRental: the last values are kept, marked RATE_LIMITED, and the
    next try is not before the limit's retry time."""
    await rented(world)
    world.clock.advance(3600)
    world.smartcar.fail("read", errors.RateLimited("429", retry_after_s=900))
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    assert ended.end[F.ODOMETER].reading.reason == "RATE_LIMITED"
    assert ended.end[F.ODOMETER].reading.value is not None
    ended_at = ended.rental.ended_at
    assert ended_at is not None
    reads = world.smartcar.calls["read"]
    world.clock.advance(60)
    await world.gateway.final_readings.run_once()  # the car cools down: nothing is sent
    assert world.smartcar.calls["read"] == reads
    record = await world.gateway.get_rental("r-1")
    assert record.final is not None
    assert record.final.attempts == 1
    assert record.final.next_attempt_at is not None
    retry_at = ended_at + timedelta(seconds=900)
    assert abs(record.final.next_attempt_at - retry_at) < timedelta(seconds=1)


async def test_end_rental_answers_at_once_while_the_car_does_not(world: World) -> None:
    """The car holds its answer past the wait: EndRental answers with what is held
    (pending); the reading goes on and is stored when the car answers, source LIVE."""
    service = RentalService(
        uow=world.uow,
        reader=RentalReader(
            telemetry=world.gateway.telemetry, cache=world.gateway.cache, clock=world.clock
        ),
        clock=world.clock,
        wait=lambda task, seconds: asyncio.sleep(0),
    )
    await world.connect("car-1", "sc-1")
    world.smartcar.cars["sc-1"].report_lag = timedelta(0)
    gate = world.smartcar.gate = asyncio.Event()
    started = await service.start("car-1", rental_id="r-1")
    assert started.start == {}  # nothing held yet, the car has not answered
    gate.set()
    await service.settle()
    world.smartcar.gate = gate = asyncio.Event()
    world.clock.advance(600)
    ended = await service.end("car-1", rental_id="r-1")
    assert ended.final_reading_pending
    assert ended.end == {}
    gate.set()
    await service.settle()
    stored = await world.gateway.get_rental("r-1")
    assert stored.start[F.ODOMETER].source is ReadingSource.LIVE
    assert stored.end[F.ODOMETER].source is ReadingSource.LIVE
    assert not stored.final_reading_pending


async def test_the_final_reading_is_given_up_after_its_window(world: World) -> None:
    """A day after the end without a value recorded after it, the chase ends GIVEN_UP
    without another read; the end reading keeps what it had."""
    await rented(world)
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    reads = world.smartcar.calls["read"]
    world.clock.advance(24 * 3600)
    report = await world.gateway.final_readings.run_once()
    assert report.given_up == 1
    record = await world.gateway.get_rental("r-1")
    assert record.final is not None
    assert record.final.state is FinalReadingState.GIVEN_UP
    assert "24 h" in (record.final.reason or "")
    assert record.end == ended.end
    assert world.smartcar.calls["read"] == reads


async def test_a_disconnected_car_ends_the_chase_at_once(world: World) -> None:
    """A car disconnected after its rental cannot report again: given up, reason said."""
    await rented(world)
    await world.gateway.end_rental("car-1", rental_id="r-1")
    await world.gateway.disconnect("car-1")
    world.clock.advance(60)
    await world.gateway.final_readings.run_once()
    record = await world.gateway.get_rental("r-1")
    assert record.final is not None
    assert record.final.state is FinalReadingState.GIVEN_UP
    assert "connection was removed" in (record.final.reason or "")


# --- webhooks and the next rental -----------------------------------------------------------


async def test_a_webhook_completes_a_pending_final_reading(world: World) -> None:
    """Readings a webhook brings, recorded after the end, complete the final reading (source
    WEBHOOK); one recorded before the end does not."""
    await rented(world)
    ended = await world.gateway.end_rental("car-1", rental_id="r-1")
    ended_at = ended.rental.ended_at
    assert ended_at is not None
    pushed = [
        FieldReading(
            field=F.ODOMETER,
            availability=Availability.AVAILABLE,
            value=Odometer(distance_km=1010.0),
            recorded_at=ended_at + timedelta(minutes=2),
            fetched_at=ended_at + timedelta(minutes=3),
        ),
        FieldReading(
            field=F.FUEL,
            availability=Availability.AVAILABLE,
            value=Fuel(percent_remaining=40.0, amount_remaining_l=None, range_km=None),
            recorded_at=ended_at - timedelta(minutes=2),
            fetched_at=ended_at + timedelta(minutes=3),
        ),
    ]
    at = ended_at + timedelta(minutes=3)
    async with world.uow() as uow:
        await complete_from_webhook(uow, "car-1", pushed, at=at)
        await uow.commit()
    record = await world.gateway.get_rental("r-1")
    assert record.end[F.ODOMETER].source is ReadingSource.WEBHOOK
    assert odometer_km(record) == 1010.0
    assert record.end[F.FUEL].source is ReadingSource.CACHE  # older than what was held
    assert record.final_reading_pending
    async with world.uow() as uow:
        fuel = dataclasses.replace(pushed[1], recorded_at=ended_at + timedelta(minutes=2))
        await complete_from_webhook(uow, "car-1", [fuel], at=at)
        await uow.commit()
    assert not (await world.gateway.get_rental("r-1")).final_reading_pending


async def test_the_next_rental_settles_a_pending_final_reading(world: World) -> None:
    """The car is rented again before it reported after r-1's end: r-2's start reading,
    recorded after r-1's end, completes r-1's end reading, and r-1 stops waiting."""
    await rented(world)
    world.clock.advance(600)
    world.smartcar.cars["sc-1"].odometer_km += 12
    await world.gateway.end_rental("car-1", rental_id="r-1")
    world.clock.advance(300)  # past the report lag: the next start's values are after the end
    second = await world.gateway.start_rental("car-1", rental_id="r-2")
    first = await world.gateway.get_rental("r-1")
    assert first.final is not None
    assert first.final.state is FinalReadingState.RECORDED
    assert first.end[F.ODOMETER] == second.start[F.ODOMETER]
    assert first.distance_km == pytest.approx(12)


async def test_a_next_rental_without_values_after_the_end_gives_up_the_last_one(
    world: World,
) -> None:
    """Rented again at once, the car has reported nothing after r-1's end: r-1 is given up,
    naming r-2 (later values would include r-2's trips)."""
    await rented(world)
    world.clock.advance(600)
    await world.gateway.end_rental("car-1", rental_id="r-1")
    await world.gateway.start_rental("car-1", rental_id="r-2")
    first = await world.gateway.get_rental("r-1")
    assert first.final is not None
    assert first.final.state is FinalReadingState.GIVEN_UP
    assert "rental r-2 started" in (first.final.reason or "")
    world.clock.advance(3600)
    assert (await world.gateway.final_readings.run_once()).due == 0


# --- GetRental and ListRentals --------------------------------------------------------------


async def test_an_unknown_rental_is_not_found(world: World) -> None:
    """GetRental of an id never used is RentalNotFound naming it."""
    with pytest.raises(errors.RentalNotFound) as missing:
        await world.gateway.get_rental("r-404")
    assert missing.value.metadata == {"rental_id": "r-404"}


async def test_list_rentals_pages_and_filters(world: World) -> None:
    """Rentals list oldest start first, page by page; by vehicle; and by end time, with
    `ended_after` inclusive and `ended_before` exclusive (active ones never match)."""
    await world.connect("car-1", "sc-1")
    await world.connect("car-2", "sc-2")
    ends = {}
    for n in range(5):
        vehicle = "car-1" if n % 2 == 0 else "car-2"
        await world.gateway.start_rental(vehicle, rental_id=f"r-{n}")
        world.clock.advance(60)
        if n < 4:
            ended = await world.gateway.end_rental(vehicle, rental_id=f"r-{n}")
            ends[n] = ended.rental.ended_at
        world.clock.advance(60)

    seen, token = [], ""
    while True:
        page = await world.gateway.list_rentals(
            vehicle_id=None, ended_after=None, ended_before=None, page_size=2, page_token=token
        )
        seen.append([r.rental.rental_id for r in page.records])
        token = page.next_page_token
        if not token:
            break
    assert seen == [["r-0", "r-1"], ["r-2", "r-3"], ["r-4"]]

    car_1 = await world.gateway.list_rentals(
        vehicle_id="car-1", ended_after=None, ended_before=None, page_size=0, page_token=""
    )
    assert [r.rental.rental_id for r in car_1.records] == ["r-0", "r-2", "r-4"]
    window = await world.gateway.list_rentals(
        vehicle_id=None, ended_after=ends[1], ended_before=ends[3], page_size=0, page_token=""
    )
    assert [r.rental.rental_id for r in window.records] == ["r-1", "r-2"]
    assert all(r.end for r in window.records)


async def test_a_list_token_works_only_with_its_filters(world: World) -> None:
    """A ListRentals token used with other filters, or altered, is INVALID_ARGUMENT naming
    page_token."""
    await world.connect("car-1", "sc-1")
    for n in range(3):
        await world.gateway.start_rental("car-1", rental_id=f"r-{n}")
        await world.gateway.end_rental("car-1", rental_id=f"r-{n}")
        world.clock.advance(60)
    page = await world.gateway.list_rentals(
        vehicle_id="car-1", ended_after=None, ended_before=None, page_size=1, page_token=""
    )
    for vehicle_id, token in (
        ("car-2", page.next_page_token),
        ("car-1", "x" + page.next_page_token),
    ):
        with pytest.raises(errors.InvalidArgument) as refused:
            await world.gateway.list_rentals(
                vehicle_id=vehicle_id,
                ended_after=None,
                ended_before=None,
                page_size=1,
                page_token=token,
            )
        assert refused.value.violations[0].field == "page_token"


def test_policies_carry_the_rental_reading_defaults() -> None:
    """The core's defaults: a minute's max age, five seconds' wait, a day's chase."""
    policy = Policies(rate_limits=GENEROUS).rentals
    assert (policy.max_age, policy.wait, policy.give_up_after) == (
        timedelta(seconds=60),
        timedelta(seconds=5),
        timedelta(hours=24),
    )


async def test_an_ev_rental_reports_its_charge_used(world: World) -> None:
    """An EV's rental carries battery readings and their difference; fuel is not capable."""
    await world.connect("ev-1", "sc-ev")
    await world.gateway.start_rental("ev-1", rental_id="r-ev")
    ended = await world.gateway.end_rental("ev-1", rental_id="r-ev")
    assert ended.start[F.FUEL].reading.availability is Availability.NOT_CAPABLE
    assert ended.battery_percent_change == pytest.approx(0)
    assert ended.fuel_percent_change is None
