"""The webhook inbox on fakes: storing once, applying signals and errors, order, draining."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core import signals
from gateway.core.model import (
    Availability,
    Battery,
    ConnectionStatus,
    DoorState,
    EngineOil,
    FieldReading,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryField,
    Vehicle,
)
from gateway.core.telemetry import TelemetryCache
from gateway.core.webhooks import MalformedEvent, WebhookInbox
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.unit.gateway.webhook_samples import error_event, failed_signal, signal, state_event

SMARTCAR_ID = "sc-1"
VEHICLE_ID = "car-1"
START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Inbox:
    """An inbox over fakes, with handles on each fake."""

    inbox: WebhookInbox
    uow: FakeUnitOfWorkFactory
    cache: TelemetryCache
    clock: ManualClock

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """Receive and apply one payload as the receiver does; return whether it was new."""
        event = self.inbox.event_from(payload)
        stored = await self.inbox.receive(event)
        if stored:
            await self.inbox.apply(event)
        return stored

    def reading(self, field: TelemetryField) -> FieldReading:
        """Return the stored reading of one field of the test vehicle."""
        return self.uow.store.telemetry[VEHICLE_ID][field]

    @property
    def vehicle(self) -> Vehicle:
        """Return the stored test vehicle."""
        return self.uow.store.vehicles[VEHICLE_ID]


@pytest.fixture
async def world() -> Inbox:
    """Return an inbox over fresh fakes holding one ACTIVE vehicle linked to `sc-1`."""
    uow = FakeUnitOfWorkFactory()
    clock = ManualClock(START)
    async with uow() as unit:
        await unit.vehicles.add(
            Vehicle(id=VEHICLE_ID, status=ConnectionStatus.ACTIVE, smartcar_vehicle_id=SMARTCAR_ID)
        )
        await unit.commit()
    cache = TelemetryCache(uow)
    return Inbox(WebhookInbox(uow=uow, cache=cache, clock=clock), uow, cache, clock)


def every_signal(at: datetime) -> list[dict[str, Any]]:
    """Return one signal of every mapped kind, recorded at `at`."""
    doors = [
        {"row": 0, "column": 0, "isOpen": True, "isLocked": False},
        {"row": 1, "column": 1, "isOpen": False, "isLocked": False},
    ]
    return [
        signal("location-preciselocation", {"latitude": 52.5, "longitude": 13.4}, at=at),
        signal("odometer-traveleddistance", {"unit": "miles", "value": 1000}, at=at),
        signal("tractionbattery-stateofcharge", {"unit": "percent", "value": 78}, at=at),
        signal("tractionbattery-range", {"unit": "kilometers", "value": 310}, at=at),
        signal("internalcombustionengine-fuellevel", {"unit": "percent", "value": 40}, at=at),
        signal("internalcombustionengine-amountremaining", {"unit": "gallons", "value": 5}, at=at),
        signal("internalcombustionengine-range", {"unit": "kilometers", "value": 280}, at=at),
        signal("internalcombustionengine-oillife", {"unit": "percent", "value": 85}, at=at),
        signal("closure-islocked", {"value": False}, at=at),
        signal("closure-doors", {"values": doors, "rowCount": 2, "columnCount": 2}, at=at),
    ]


async def test_vehicle_state_maps_every_signal_to_its_field(world: Inbox) -> None:
    """Each mapped v4 signal becomes a reading in km, litres and percent, with its own age."""
    recorded = world.clock.now() - timedelta(minutes=3)
    await world.deliver(state_event("evt-1", SMARTCAR_ID, every_signal(recorded)))
    odometer = world.reading(TelemetryField.ODOMETER)
    assert odometer.value == Odometer(distance_km=pytest.approx(1609.344))
    assert odometer.recorded_at == recorded
    assert odometer.fetched_at == world.clock.now()
    assert odometer.availability is Availability.AVAILABLE
    assert world.reading(TelemetryField.LOCATION).value == Location(latitude=52.5, longitude=13.4)
    assert world.reading(TelemetryField.BATTERY).value == Battery(
        percent_remaining=78, range_km=310
    )
    fuel = world.reading(TelemetryField.FUEL).value
    assert isinstance(fuel, Fuel)
    assert (fuel.percent_remaining, fuel.range_km) == (40, 280)
    assert fuel.amount_remaining_l == pytest.approx(18.927, abs=1e-3)
    assert world.reading(TelemetryField.LOCK_STATUS).value == LockStatus(
        is_locked=False,
        doors=(
            DoorState(door="front_left", status="OPEN"),
            DoorState(door="back_right", status="CLOSED"),
        ),
    )
    assert world.reading(TelemetryField.ENGINE_OIL).value == EngineOil(life_remaining_percent=85)
    assert world.vehicle.last_telemetry_at == world.clock.now()


async def test_applied_readings_reach_the_cache_and_the_event_is_marked(world: Inbox) -> None:
    """GetTelemetry's cache sees the webhook's readings; the stored event is marked applied."""
    await world.deliver(state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now())))
    cached = await world.cache.readings(VEHICLE_ID)
    assert cached[TelemetryField.ODOMETER] == world.reading(TelemetryField.ODOMETER)
    event = world.uow.store.webhook_events["evt-1"]
    assert (event.applied_at, event.error) == (world.clock.now(), None)


async def test_receiving_an_event_id_again_stores_nothing(world: Inbox) -> None:
    """A redelivered eventId is refused by `receive` and stored only once."""
    payload = state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now()))
    assert await world.deliver(payload) is True
    world.clock.advance(30)
    assert await world.deliver(payload) is False
    assert list(world.uow.store.webhook_events) == ["evt-1"]
    assert world.uow.store.webhook_events["evt-1"].received_at < world.clock.now()


async def test_an_older_event_never_replaces_a_newer_reading(world: Inbox) -> None:
    """Events applied out of order keep, per field, the reading the car recorded last."""
    now = world.clock.now()
    newer = [
        signal("odometer-traveleddistance", {"unit": "kilometers", "value": 2000}, at=now),
        signal("location-preciselocation", {"latitude": 1.0, "longitude": 1.0}, at=now),
    ]
    older = [
        signal(
            "odometer-traveleddistance",
            {"unit": "kilometers", "value": 1500},
            at=now - timedelta(hours=1),
        ),
        signal(
            "location-preciselocation",
            {"latitude": 2.0, "longitude": 2.0},
            at=now + timedelta(seconds=1),
        ),
    ]
    await world.deliver(state_event("evt-new", SMARTCAR_ID, newer))
    await world.deliver(state_event("evt-old", SMARTCAR_ID, older))
    assert world.reading(TelemetryField.ODOMETER).value == Odometer(distance_km=2000)
    assert world.reading(TelemetryField.LOCATION).value == Location(latitude=2.0, longitude=2.0)


async def test_the_cache_keeps_a_newer_reading_a_poll_put_there(world: Inbox) -> None:
    """A webhook reading older than what the cache already holds does not replace it there."""
    now = world.clock.now()
    polled = FieldReading(
        field=TelemetryField.ODOMETER,
        availability=Availability.AVAILABLE,
        value=Odometer(distance_km=3000),
        recorded_at=now,
        fetched_at=now,
    )
    await world.cache.readings(VEHICLE_ID)
    await world.cache.put(VEHICLE_ID, [polled])
    late = [signal("odometer-traveleddistance", {"value": 2500}, at=now - timedelta(minutes=5))]
    await world.deliver(state_event("evt-late", SMARTCAR_ID, late))
    assert (await world.cache.readings(VEHICLE_ID))[TelemetryField.ODOMETER] == polled
    assert world.reading(TelemetryField.ODOMETER).value == Odometer(distance_km=2500)


async def test_a_vehicle_state_event_wakes_the_car(world: Inbox) -> None:
    """A report clears `asleep_until`, unless the car itself says it is asleep."""
    until = world.clock.now() + timedelta(minutes=15)
    asleep = [signal("connectivitystatus-isasleep", {"value": True}, at=world.clock.now())]
    async with world.uow() as unit:
        vehicle = await unit.vehicles.get(VEHICLE_ID)
        assert vehicle is not None
        await unit.vehicles.update(dataclasses.replace(vehicle, asleep_until=until))
        await unit.commit()
    await world.deliver(state_event("evt-asleep", SMARTCAR_ID, asleep))
    assert world.vehicle.asleep_until == until
    await world.deliver(state_event("evt-awake", SMARTCAR_ID, every_signal(world.clock.now())))
    assert world.vehicle.asleep_until is None


async def test_failed_and_malformed_signals_are_skipped(world: Inbox) -> None:
    """Signals in ERROR, with unknown units or wrong types leave their fields untouched;
    each bad one is noted on the applied event, naming its field."""
    now = world.clock.now()
    payload = state_event(
        "evt-1",
        SMARTCAR_ID,
        [
            failed_signal(
                "tractionbattery-stateofcharge",
                error_type="COMPATIBILITY",
                error_code="VEHICLE_NOT_CAPABLE",
            ),
            signal("odometer-traveleddistance", {"unit": "furlongs", "value": 9}, at=now),
            signal("closure-islocked", {"value": "yes"}, at=now),
            signal("location-preciselocation", {"latitude": 1.0}, at=now),
            signal("internalcombustionengine-oillife", {"unit": "percent", "value": 55}, at=now),
        ],
    )
    await world.deliver(payload)
    assert set(world.uow.store.telemetry[VEHICLE_ID]) == {TelemetryField.ENGINE_OIL}
    event = world.uow.store.webhook_events["evt-1"]
    assert event.applied_at is not None
    assert event.error == (
        "rejected location: location-preciselocation longitude is missing; "
        "odometer: odometer-traveleddistance unit 'furlongs' is not known; "
        "lock_status: closure-islocked value 'yes' is not true or false"
    )


async def test_an_event_for_an_unknown_vehicle_is_marked_with_the_reason(world: Inbox) -> None:
    """An event of a Smartcar vehicle no fleet vehicle is linked to is applied as an error."""
    await world.deliver(state_event("evt-1", "sc-unknown", every_signal(world.clock.now())))
    event = world.uow.store.webhook_events["evt-1"]
    assert event.applied_at is not None
    assert event.error is not None
    assert "sc-unknown" in event.error
    assert VEHICLE_ID not in world.uow.store.telemetry


async def test_an_unhandled_event_type_is_marked_with_the_reason(world: Inbox) -> None:
    """A stored event of a type the gateway does not handle is applied as an error."""
    payload = state_event("evt-1", SMARTCAR_ID, [])
    payload["eventType"] = "VEHICLE_NICKNAME"
    await world.deliver(payload)
    assert "VEHICLE_NICKNAME" in (world.uow.store.webhook_events["evt-1"].error or "")


async def test_a_vehicle_error_is_kept_until_smartcar_resolves_it(world: Inbox) -> None:
    """VEHICLE_ERROR sets `last_error`; the RESOLVED event of that error clears it."""
    await world.deliver(
        error_event("e1", SMARTCAR_ID, error_type="VEHICLE_STATE", code="UNREACHABLE")
    )
    assert world.vehicle.last_error == "VEHICLE_STATE:UNREACHABLE: unreachable (test)"
    assert world.vehicle.status is ConnectionStatus.ACTIVE
    other = error_event(
        "e2", SMARTCAR_ID, error_type="VEHICLE_STATE", code="ASLEEP", state="RESOLVED"
    )
    await world.deliver(other)
    assert world.vehicle.last_error == "VEHICLE_STATE:UNREACHABLE: unreachable (test)"
    resolved = error_event(
        "e3", SMARTCAR_ID, error_type="VEHICLE_STATE", code="UNREACHABLE", state="RESOLVED"
    )
    await world.deliver(resolved)
    assert world.vehicle.last_error is None


async def test_drain_applies_events_left_unapplied(world: Inbox) -> None:
    """Events stored but never applied (a crash) are applied by `drain_pending`, once."""
    for number in (1, 2):
        payload = state_event(f"evt-{number}", SMARTCAR_ID, every_signal(world.clock.now()))
        assert await world.inbox.receive(world.inbox.event_from(payload))
    assert await world.inbox.drain_pending() == 2
    assert all(e.applied_at is not None for e in world.uow.store.webhook_events.values())
    assert TelemetryField.ODOMETER in world.uow.store.telemetry[VEHICLE_ID]
    assert await world.inbox.drain_pending() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"eventType": "VEHICLE_STATE"},
        {"eventId": "", "eventType": "VEHICLE_STATE"},
        {"eventId": 7, "eventType": "VEHICLE_STATE"},
        {"eventId": "evt-1"},
    ],
)
async def test_a_body_without_event_id_or_type_is_malformed(
    world: Inbox, payload: dict[str, Any]
) -> None:
    """`event_from` refuses bodies that do not name an event id and type."""
    with pytest.raises(MalformedEvent):
        world.inbox.event_from(payload)


def test_the_keyed_signal_form_is_read_too() -> None:
    """`{"Group.Name": {value, meta}}` signals map like the list form."""
    keyed = {"Closure.IsLocked": {"value": True, "meta": {"oemUpdatedAt": 1_700_000_000_000}}}
    readings = signals.readings(signals.index(keyed), fetched_at=START)
    assert [r.value for r in readings] == [LockStatus(is_locked=True)]
    assert readings[0].recorded_at is not None
    assert readings[0].recorded_at.timestamp() == 1_700_000_000
