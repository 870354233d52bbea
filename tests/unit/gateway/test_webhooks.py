"""The webhook inbox on fakes: storing once, applying readings and errors, order, draining.

Events are Smartcar v4 bodies read by the v2 decoder, as in production; one test drives the
inbox with a decoder of its own, as a second API version would."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.cache import TelemetryCache
from gateway.core.metrics import RecordingMetrics
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
    ReadingSource,
    Rental,
    SmartcarApi,
    TelemetryField,
    Vehicle,
    WebhookEvent,
)
from gateway.core.ports import WebhookDecoder
from gateway.core.rental_records import pending_final
from gateway.core.reports import Rejection, StateReport, VehicleReport
from gateway.core.vehicle_events import (
    ErrorState,
    ReadingOrigin,
    VehicleErrorReport,
    VehicleEventKind,
)
from gateway.core.webhooks import WebhookInbox
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar.events import SmartcarV2Events, event_from
from tests.fakes import FakeSharedTelemetry, FakeUnitOfWork, FakeUnitOfWorkFactory
from tests.unit.edge.webhook_samples import (
    error_event,
    failed_signal,
    millis,
    signal,
    state_event,
)

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
    metrics: RecordingMetrics

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """Receive and apply one payload as the receiver does; return whether it was new."""
        event = self.received(payload)
        stored = await self.inbox.receive(event)
        if stored:
            await self.inbox.apply(event)
        return stored

    def received(self, payload: dict[str, Any]) -> WebhookEvent:
        """Return the event the receiver builds from `payload`, received now."""
        return event_from(payload, received_at=self.clock.now())

    def reading(self, field: TelemetryField) -> FieldReading:
        """Return the stored reading of one field of the test vehicle."""
        return self.uow.store.telemetry[VEHICLE_ID][field]

    @property
    def vehicle(self) -> Vehicle:
        """Return the stored test vehicle."""
        return self.uow.store.vehicles[VEHICLE_ID]


async def build_world(
    uow: FakeUnitOfWorkFactory,
    *,
    cache: TelemetryCache | None = None,
    vehicles: int = 1,
    decoder: WebhookDecoder | None = None,
) -> Inbox:
    """Return an inbox over `uow`, holding ACTIVE vehicles car-1 (`sc-1`), car-2 (`sc-2`)…,
    reading events with `decoder` (Smartcar's v2 decoder unless given)."""
    clock = ManualClock(START)
    async with uow() as unit:
        for number in range(1, vehicles + 1):
            await unit.vehicles.add(
                Vehicle(
                    id=f"car-{number}",
                    status=ConnectionStatus.ACTIVE,
                    smartcar_vehicle_id=f"sc-{number}",
                )
            )
        await unit.commit()
    cache = cache or TelemetryCache(uow)
    metrics = RecordingMetrics()
    inbox = WebhookInbox(
        uow=uow,
        cache=cache,
        clock=clock,
        decoder=decoder or SmartcarV2Events(),
        metrics=metrics,
    )
    return Inbox(inbox, uow, cache, clock, metrics)


@pytest.fixture
async def world() -> Inbox:
    """Return an inbox over fresh fakes holding one ACTIVE vehicle linked to `sc-1`."""
    return await build_world(FakeUnitOfWorkFactory())


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


def account_error_event(event_id: str, code: str, *, state: str = "ERROR") -> dict[str, Any]:
    """A VEHICLE_ERROR of Smartcar's CONNECTED_SERVICES_ACCOUNT `code`, with its resolution."""
    payload = error_event(
        event_id, SMARTCAR_ID, error_type="CONNECTED_SERVICES_ACCOUNT", code=code, state=state
    )
    payload["data"]["errors"][0]["resolution"] = {
        "type": "REAUTHENTICATE",
        "url": "https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1",
    }
    payload["data"]["errors"][0]["docURL"] = "https://smartcar.com/docs/errors/csa"
    return payload


async def test_an_owner_account_error_makes_the_car_wait_until_smartcar_resolves_it(
    world: Inbox,
) -> None:
    """A CONNECTED_SERVICES_ACCOUNT VEHICLE_ERROR makes the car NEEDS_REAUTHENTICATION with
    Smartcar's resolution (the change recorded); another error's RESOLVED leaves it waiting;
    that error's RESOLVED makes it ACTIVE again."""
    await world.deliver(account_error_event("e1", "AUTHENTICATION_FAILED"))
    vehicle = world.vehicle
    assert vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
    assert vehicle.owner_action is not None
    assert vehicle.owner_action.resolution_url == (
        "https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1"
    )
    assert vehicle.owner_action.doc_url == "https://smartcar.com/docs/errors/csa"
    await world.deliver(account_error_event("e2", "SUBSCRIPTION", state="RESOLVED"))
    assert world.vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
    await world.deliver(account_error_event("e3", "AUTHENTICATION_FAILED", state="RESOLVED"))
    assert (world.vehicle.status, world.vehicle.owner_action) == (ConnectionStatus.ACTIVE, None)
    moves = [(t.from_status, t.to_status) for t in world.uow.store.transitions.values()]
    assert moves == [
        (ConnectionStatus.ACTIVE, ConnectionStatus.NEEDS_REAUTHENTICATION),
        (ConnectionStatus.NEEDS_REAUTHENTICATION, ConnectionStatus.ACTIVE),
    ]


async def test_an_owner_account_error_leaves_an_expired_car_expired(world: Inbox) -> None:
    """An event about a connection that is no longer served changes no status."""
    async with world.uow() as uow:
        expired = dataclasses.replace(world.vehicle, status=ConnectionStatus.EXPIRED)
        await uow.vehicles.update(expired)
        await uow.commit()
    await world.deliver(account_error_event("e1", "ACCOUNT_ISSUE"))
    assert (world.vehicle.status, world.vehicle.owner_action) == (ConnectionStatus.EXPIRED, None)
    assert world.vehicle.last_error is not None


async def test_each_vehicle_error_is_an_event_with_smartcars_resolution(world: Inbox) -> None:
    """Every error of a VEHICLE_ERROR, active or resolved, is a VEHICLE_ERROR vehicle event
    with Smartcar's type, code, description and resolution, written when it is applied; a
    redelivery writes none again."""
    payload = error_event("e1", SMARTCAR_ID, error_type="CONNECTED_SERVICES_ACCOUNT", code="X")
    url = "https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1"
    payload["data"]["errors"][0] |= {
        "code": "AUTHENTICATION_FAILED",
        "resolution": {"type": "REAUTHENTICATE", "url": url},
    }
    await world.deliver(payload)
    await world.deliver(payload)
    world.clock.advance(60)
    await world.deliver(
        error_event(
            "e2", SMARTCAR_ID, error_type="VEHICLE_STATE", code="UNREACHABLE", state="RESOLVED"
        )
    )
    written = [e for _, e in sorted(world.uow.store.events.items())]
    active, resolved = [e for e in written if e.kind is VehicleEventKind.VEHICLE_ERROR]
    assert active.kind is VehicleEventKind.VEHICLE_ERROR
    assert active.detail == VehicleErrorReport(
        type="CONNECTED_SERVICES_ACCOUNT",
        code="AUTHENTICATION_FAILED",
        description="x (test)",
        state=ErrorState.ACTIVE,
        resolution_type="REAUTHENTICATE",
        resolution_url=url,
    )
    assert active.description == (
        "vehicle car-1: CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED: x (test)"
    )
    assert (resolved.at, resolved.vehicle_id) == (world.clock.now(), VEHICLE_ID)
    assert isinstance(resolved.detail, VehicleErrorReport)
    assert resolved.detail.state is ErrorState.RESOLVED


async def test_webhook_readings_make_lock_and_low_fuel_events(world: Inbox) -> None:
    """A webhook's lock state that differs from the stored one, and a fuel level crossing
    below 15 %, are events of origin WEBHOOK; the same report again makes none."""
    at = world.clock.now() - timedelta(minutes=2)
    locked = [signal("closure-islocked", {"value": True}, at=at)]
    await world.deliver(state_event("evt-1", SMARTCAR_ID, locked))
    low = [
        signal("closure-islocked", {"value": False}, at=at + timedelta(minutes=1)),
        signal(
            "internalcombustionengine-fuellevel",
            {"unit": "percent", "value": 9},
            at=at + timedelta(minutes=1),
        ),
    ]
    await world.deliver(state_event("evt-2", SMARTCAR_ID, low))
    low_again = [signal(s["code"], s["body"], at=at + timedelta(minutes=2)) for s in low]
    await world.deliver(state_event("evt-3", SMARTCAR_ID, low_again))
    written = [e for _, e in sorted(world.uow.store.events.items())]
    kinds = {(e.kind, getattr(e.detail, "origin", None)) for e in written}
    assert len(written) == 2
    assert kinds == {
        (VehicleEventKind.LOCK_STATE_CHANGED, ReadingOrigin.WEBHOOK),
        (VehicleEventKind.LOW_FUEL, ReadingOrigin.WEBHOOK),
    }


async def test_drain_applies_events_left_unapplied(world: Inbox) -> None:
    """Events stored but never applied (a crash) are applied by `drain_pending`, once."""
    for number in (1, 2):
        payload = state_event(f"evt-{number}", SMARTCAR_ID, every_signal(world.clock.now()))
        assert await world.inbox.receive(world.received(payload))
    assert await world.inbox.drain_pending() == 2
    assert all(e.applied_at is not None for e in world.uow.store.webhook_events.values())
    assert TelemetryField.ODOMETER in world.uow.store.telemetry[VEHICLE_ID]
    assert await world.inbox.drain_pending() == 0


def odometer_stamped(stamp: object, *, value: float = 4321) -> dict[str, Any]:
    """Return an odometer signal whose `meta.oemUpdatedAt` is `stamp`, as received."""
    carried = signal("odometer-traveleddistance", {"unit": "km", "value": value}, at=START)
    carried["meta"] = {"oemUpdatedAt": stamp, "fetchedAt": millis(START)}
    return carried


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(1e20, id="1e20"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(millis(START) * 1000, id="microseconds"),
    ],
)
async def test_a_bad_timestamp_rejects_its_field_and_the_rest_applies(
    world: Inbox, stamp: object
) -> None:
    """An odometer stamped 1e20, NaN or in µs is rejected with a reason naming it; the
    event's lock status still applies and the event is marked applied, not left pending."""
    locked = signal("closure-islocked", {"value": True}, at=START)
    await world.deliver(state_event("evt-1", SMARTCAR_ID, [odometer_stamped(stamp), locked]))
    event = world.uow.store.webhook_events["evt-1"]
    assert (event.applied_at, event.failed_at) == (world.clock.now(), None)
    assert (event.error or "").startswith(
        "rejected odometer: odometer-traveleddistance meta.oemUpdatedAt"
    )
    assert set(world.uow.store.telemetry[VEHICLE_ID]) == {TelemetryField.LOCK_STATUS}
    assert world.metrics.webhook_rejections == ["odometer"]
    assert world.metrics.webhook_events == ["applied"]


class RefusingTelemetry:
    """A telemetry repository whose writes for one vehicle raise (a storage fault)."""

    def __init__(self, inner: Any, broken: str) -> None:
        self._inner = inner
        self._broken = broken

    async def latest(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        """Return the stored readings."""
        result: dict[TelemetryField, FieldReading] = await self._inner.latest(vehicle_id)
        return result

    async def store(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Store readings, unless they are the broken vehicle's."""
        if vehicle_id == self._broken:
            raise RuntimeError("disk I/O error")
        await self._inner.store(vehicle_id, readings)


class FaultyFakes(FakeUnitOfWorkFactory):
    """Fakes whose telemetry writes for car-2 fail."""

    def __call__(self) -> FakeUnitOfWork:
        uow = super().__call__()
        uow.telemetry = RefusingTelemetry(uow.telemetry, "car-2")
        return uow


async def test_drain_marks_failed_what_raises_and_applies_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At start-up an event whose application raises is marked failed (row, log, metric)
    and the events after it, one with a 1e20 timestamp among them, are still applied."""
    world = await build_world(FaultyFakes(), vehicles=2)
    now = world.clock.now()
    odometer = signal("odometer-traveleddistance", {"unit": "km", "value": 10}, at=now)
    payloads = [
        state_event("evt-a", "sc-2", [odometer]),
        state_event("evt-b", SMARTCAR_ID, [odometer_stamped(1e20)]),
        state_event("evt-c", SMARTCAR_ID, [odometer]),
    ]
    for payload in payloads:
        assert await world.inbox.receive(world.received(payload))
        world.clock.advance(1)
    with caplog.at_level(logging.WARNING, logger="gateway.core.webhooks"):
        assert await world.inbox.drain_pending() == 3
    events = world.uow.store.webhook_events
    assert events["evt-a"].failed_at == world.clock.now()
    assert events["evt-a"].applied_at is None
    assert events["evt-a"].error == "not applied: RuntimeError: disk I/O error"
    assert events["evt-b"].applied_at is not None
    assert "meta.oemUpdatedAt" in (events["evt-b"].error or "")
    assert (events["evt-c"].applied_at, events["evt-c"].error) == (world.clock.now(), None)
    assert world.reading(TelemetryField.ODOMETER).value == Odometer(distance_km=10)
    assert world.metrics.webhook_events == ["failed", "applied", "applied"]
    assert any(getattr(r, "event_id", None) == "evt-a" for r in caplog.records)
    assert await world.inbox.drain_pending() == 0


async def test_an_event_holding_text_no_store_keeps_is_stored_failed(world: Inbox) -> None:
    """A lone surrogate or NUL past the envelope stores the event failed, the bad
    characters replaced, with the path in the reason; it is never applied or drained."""
    payload = state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now()))
    payload["data"]["signals"][0]["body"]["note"] = "bad \ud800 and \x00"
    event = world.received(payload)
    assert not event.pending
    assert event.failed_at == world.clock.now()
    assert event.error == (
        "not applied: data.signals[0].body.note holds a NUL character (U+0000);"
        " stored with U+FFFD in its place"
    )
    assert await world.inbox.receive(event)
    stored = world.uow.store.webhook_events["evt-1"]
    assert stored.payload["data"]["signals"][0]["body"]["note"] == "bad \ufffd and \ufffd"
    assert await world.inbox.drain_pending() == 0
    assert VEHICLE_ID not in world.uow.store.telemetry
    assert world.metrics.webhook_events == ["failed"]


class DownSharedTelemetry(FakeSharedTelemetry):
    """Shared telemetry (Redis) that is down for writes."""

    async def put(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Fail as an unreachable Redis would."""
        raise ConnectionError("redis is down")


async def test_a_cache_that_fails_after_storing_leaves_the_event_applied() -> None:
    """Readings are durable once stored: a shared cache failing afterwards does not mark
    the event failed."""
    uow = FakeUnitOfWorkFactory()
    world = await build_world(uow, cache=TelemetryCache(uow, DownSharedTelemetry()))
    await world.deliver(state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now())))
    event = world.uow.store.webhook_events["evt-1"]
    assert (event.applied_at, event.failed_at) == (world.clock.now(), None)
    assert world.metrics.webhook_events == ["applied"]


class OwnFormat:
    """A decoder of a wire format the inbox has never seen: every event reports one
    odometer reading and one rejected location."""

    def decode(self, event: WebhookEvent) -> VehicleReport:
        """Report the odometer in the event's `km` key, recorded when the event arrived."""
        reading = FieldReading(
            field=TelemetryField.ODOMETER,
            availability=Availability.AVAILABLE,
            value=Odometer(distance_km=float(str(event.payload["km"]))),
            recorded_at=event.received_at,
            fetched_at=event.received_at,
        )
        rejected = Rejection(TelemetryField.LOCATION, "no position in this format")
        return StateReport(readings=(reading,), rejections=(rejected,))

    def owner(self, event: WebhookEvent) -> str | None:
        """Name no user: this format routes by vehicle only."""
        return None


async def test_the_inbox_applies_what_its_decoder_reports() -> None:
    """Any decoder can feed the inbox: its readings are stored and cached, its rejections
    noted and counted, whatever keys the stored body has."""
    world = await build_world(FakeUnitOfWorkFactory(), decoder=OwnFormat())
    event = WebhookEvent(
        event_id="own-1",
        event_type="REPORT",
        smartcar_vehicle_id=SMARTCAR_ID,
        received_at=world.clock.now(),
        payload={"km": 1234},
    )
    assert await world.inbox.receive(event)
    await world.inbox.apply(event)
    assert world.reading(TelemetryField.ODOMETER).value == Odometer(distance_km=1234)
    cached = await world.cache.readings(VEHICLE_ID)
    assert cached[TelemetryField.ODOMETER] == world.reading(TelemetryField.ODOMETER)
    stored = world.uow.store.webhook_events["own-1"]
    assert stored.error == "rejected location: no position in this format"
    assert world.metrics.webhook_rejections == ["location"]
    assert world.metrics.webhook_events == ["applied"]


async def test_an_event_for_another_users_connection_is_skipped_on_v3() -> None:
    """API V3 routes by vehicle and user: an event naming a user other than the one the V3
    car is connected by is skipped with the reason; the car's own user's event applies."""
    uow = FakeUnitOfWorkFactory()
    world = await build_world(uow)
    on_v3 = dataclasses.replace(world.vehicle, api=SmartcarApi.V3, smartcar_user_id="user-2")
    uow.store.vehicles[VEHICLE_ID] = on_v3
    stranger = state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now()))
    await world.deliver(stranger)
    assert TelemetryField.ODOMETER not in uow.store.telemetry.get(VEHICLE_ID, {})
    note = uow.store.webhook_events["evt-1"].error or ""
    assert "user-1" in note
    assert "another user" in note
    own = state_event("evt-2", SMARTCAR_ID, every_signal(world.clock.now()))
    own["data"]["user"]["id"] = "user-2"
    await world.deliver(own)
    assert world.reading(TelemetryField.ODOMETER).availability is Availability.AVAILABLE
    assert world.metrics.webhook_events == ["skipped", "applied"]


async def test_a_v2_car_takes_events_whatever_user_they_name() -> None:
    """A car on v2 is routed by vehicle alone, as before API V3."""
    uow = FakeUnitOfWorkFactory()
    world = await build_world(uow)
    uow.store.vehicles[VEHICLE_ID] = dataclasses.replace(world.vehicle, smartcar_user_id="u-9")
    await world.deliver(state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now())))
    assert world.reading(TelemetryField.ODOMETER).availability is Availability.AVAILABLE


async def test_a_webhook_completes_an_ended_rentals_final_reading(world: Inbox) -> None:
    """An event recorded after a rental's end, applied by the inbox, completes its pending
    final reading: the values are the event's, marked WEBHOOK, taken when it arrived."""
    ended_at = world.clock.now()
    async with world.uow() as uow:
        await uow.rentals.add(
            Rental(
                rental_id="r-1",
                vehicle_id=VEHICLE_ID,
                started_at=ended_at - timedelta(hours=1),
                ended_at=ended_at,
            )
        )
        await uow.rentals.save_final(
            "r-1", pending_final(ended_at=ended_at, retry_at=ended_at + timedelta(minutes=1))
        )
        await uow.commit()
    world.clock.advance(120)
    await world.deliver(state_event("evt-1", SMARTCAR_ID, every_signal(world.clock.now())))
    async with world.uow.reader() as uow:
        record = await uow.rentals.record("r-1")
    assert record is not None
    assert not record.final_reading_pending
    odometer = record.end[TelemetryField.ODOMETER]
    assert odometer.source is ReadingSource.WEBHOOK
    assert odometer.taken_at == world.clock.now()
    assert odometer.reading == world.reading(TelemetryField.ODOMETER)
    assert [outcome for outcome, _ in world.metrics.final_readings] == ["recorded"]
