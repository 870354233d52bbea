"""API V3 `/signals` answers as the core's batch readings: units, the car's own times,
per-signal failures, missing signals, sleep and the gateway's bounds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clients.smartcar.v3 import VehicleSignals, parse_signals
from gateway.core.model import (
    Availability,
    BatchReading,
    Battery,
    DoorState,
    EngineOil,
    FieldResult,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryField,
    TirePressure,
    UpstreamFailure,
)
from gateway.core.secret import Secret
from gateway.core.telemetry import ASLEEP_REASON
from gateway.edge.smartcar.v3_readings import SIGNAL_FIELDS, batch_reading
from gateway.edge.smartcar.values import IMPLAUSIBLE
from tests.instants import START
from tests.unit.edge.webhook_samples import millis
from tests.unit.gateway.test_use_cases import build
from tests.unit.smartcar.v3.fakes import signal

RECEIVED = START
RECORDED = RECEIVED - timedelta(hours=3)
RETRIEVED = RECEIVED - timedelta(seconds=2)
ALL = frozenset(TelemetryField)
ASLEEP = UpstreamFailure(
    type="VEHICLE_STATE",
    code="ASLEEP",
    description="connectivitystatus-isasleep is true: the values are the car's last report",
)


def times(recorded: datetime = RECORDED) -> dict[str, int]:
    """Return a signal's `meta` in epoch milliseconds (the Node SDK's example form)."""
    return {"oemUpdatedAt": millis(recorded), "retrievedAt": millis(RETRIEVED)}


def ok(code: str, body: dict[str, Any], recorded: datetime = RECORDED) -> dict[str, Any]:
    """Return a successful signal resource recorded by the car at `recorded`."""
    return signal(code, body, meta=times(recorded))


def failed(code: str, error_type: str, error_code: str | None) -> dict[str, Any]:
    """Return an ERROR item as a live answer sends it (null value, only `ingestedAt`)."""
    error = {
        "type": error_type,
        "code": error_code,
        "title": "Not Capable",
        "detail": f"{error_type} for {code}",
        "resolution": {"type": "UNKNOWN_RESOLUTION_TYPE"},
    }
    meta = {"ingestedAt": "2026-03-10T11:59:58.000Z"}
    return signal(code, {"value": None}, status="ERROR", error=error, meta=meta)


def answer(*items: dict[str, Any]) -> VehicleSignals:
    """Read a `/signals` document (the documented JSON:API list) with the V3 client."""
    document = {"data": list(items), "meta": {"page": 1, "pageSize": 25, "totalCount": 25}}
    return parse_signals(document, received_at=RECEIVED)


def read(*items: dict[str, Any], fields: frozenset[TelemetryField] = ALL) -> dict[Any, Any]:
    """Return the batch results of `items` for `fields`, received at RECEIVED."""
    return dict(batch_reading(answer(*items), fields, received_at=RECEIVED).results)


ICE_CAR = (
    ok("odometer-traveleddistance", {"unit": "kilometers", "value": 115071.5}),
    ok("location-preciselocation", {"latitude": 52.52, "longitude": 13.405, "heading": 90}),
    ok("internalcombustionengine-fuellevel", {"value": 65, "unit": "percent"}),
    ok("internalcombustionengine-amountremaining", {"value": 42.5, "unit": "liters"}),
    ok("internalcombustionengine-range", {"unit": "kilometers", "value": 450}),
    ok("internalcombustionengine-oillife", {"value": 72, "unit": "percent"}),
    ok("closure-islocked", {"value": True}),
    ok(
        "closure-doors",
        {
            "values": [
                {"row": 0, "column": 0, "isOpen": False, "isLocked": True},
                {"row": 0, "column": 1, "isOpen": True, "isLocked": False},
            ],
            "rowCount": 2,
            "columnCount": 2,
        },
    ),
    ok(
        "wheel-tires",
        {
            "values": [
                {"row": 0, "column": 0, "tirePressure": 255.1},
                {"row": 0, "column": 1, "tirePressure": 250},
                {"row": 1, "column": 0, "tirePressure": 240},
                {"row": 1, "column": 1, "tirePressure": 245.5},
            ],
            "unit": "kPa",
            "rowCount": 2,
            "columnCount": 2,
        },
    ),
    failed("tractionbattery-stateofcharge", "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"),
    failed("tractionbattery-range", "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"),
    ok("connectivitystatus-isasleep", {"value": False}),
)


def test_every_telemetry_field_has_its_v3_reading() -> None:
    """Each of the core's fields is read from the V3 client's reading of the same name."""
    assert {field.value for field in SIGNAL_FIELDS} == {f.value for f in TelemetryField}
    assert all(SIGNAL_FIELDS[f].value == f.value for f in TelemetryField)


def test_an_ice_car_answers_every_field_in_the_v2_units_with_the_cars_time() -> None:
    """Values arrive in km, percent, litres and kPa, as the v2 adapter answers them, each
    recorded when the car recorded it (`oemUpdatedAt`, not `retrievedAt`); the battery of
    an ICE car is NOT_CAPABLE with Smartcar's type and code."""
    results = read(*ICE_CAR)
    recorded = {field: result.recorded_at for field, result in results.items() if result.value}
    assert set(recorded.values()) == {RECORDED}
    values = {field: result.value for field, result in results.items()}
    assert values[TelemetryField.ODOMETER] == Odometer(distance_km=115071.5)
    assert values[TelemetryField.LOCATION] == Location(latitude=52.52, longitude=13.405)
    assert values[TelemetryField.FUEL] == Fuel(
        percent_remaining=65, amount_remaining_l=42.5, range_km=450
    )
    assert values[TelemetryField.ENGINE_OIL] == EngineOil(life_remaining_percent=72)
    assert values[TelemetryField.LOCK_STATUS] == LockStatus(
        is_locked=True,
        doors=(
            DoorState(door="front_left", status="CLOSED"),
            DoorState(door="front_right", status="OPEN"),
        ),
    )
    assert values[TelemetryField.TIRE_PRESSURE] == TirePressure(
        front_left_kpa=255.1, front_right_kpa=250, back_left_kpa=240, back_right_kpa=245.5
    )
    battery = results[TelemetryField.BATTERY]
    assert (battery.availability, battery.value) == (Availability.NOT_CAPABLE, None)
    assert battery.failure is not None
    assert (battery.failure.type, battery.failure.code) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    assert battery.failure.description == "COMPATIBILITY for tractionbattery-stateofcharge"
    assert all(r.failure is None for f, r in results.items() if f is not TelemetryField.BATTERY)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            ok("odometer-traveleddistance", {"value": 10000, "unit": "miles"}),
            Odometer(distance_km=16093.44),
        ),
        (
            ok("odometer-traveleddistance", {"value": 32208, "unit": "km"}),
            Odometer(distance_km=32208),
        ),
        (ok("odometer-traveleddistance", {"value": 77}), Odometer(distance_km=77)),
        (
            ok("internalcombustionengine-amountremaining", {"value": 10, "unit": "gallons"}),
            Fuel(percent_remaining=None, amount_remaining_l=37.854118, range_km=None),
        ),
        (
            ok("tractionbattery-range", {"value": 472, "type": "DEFAULT", "unit": "km"}),
            Battery(percent_remaining=None, range_km=472),
        ),
        (
            ok("tractionbattery-stateofcharge", {"value": 80, "unit": "percentage"}),
            Battery(percent_remaining=80, range_km=None),
        ),
    ],
)
def test_free_form_units_are_normalised(item: dict[str, Any], expected: object) -> None:
    """Miles, gallons, `km`, `percentage` and unit-less metric values all end in the core's
    units (km, litres, percent 0-100)."""
    [result] = read(item).values()
    assert result.value == expected


def test_doors_take_the_cores_names_as_the_webhook_decoder_gives_them() -> None:
    """Row 0 is the front, column 0 the left (`front_left`, …); a third row is
    `row2_column0`; a door without `isOpen` is UNKNOWN."""
    doors = {
        "values": [
            {"row": 1, "column": 1, "isOpen": False},
            {"row": 2, "column": 0, "isOpen": True},
            {"row": 1, "column": 0},
        ]
    }
    items = (ok("closure-islocked", {"value": False}), ok("closure-doors", doors))
    [result] = read(*items).values()
    assert result.value == LockStatus(
        is_locked=False,
        doors=(
            DoorState(door="back_right", status="CLOSED"),
            DoorState(door="row2_column0", status="OPEN"),
            DoorState(door="back_left", status="UNKNOWN"),
        ),
    )


def test_tire_pressures_in_psi_become_kilopascals() -> None:
    """An imperial `wheel-tires` body (psi) is converted to kPa."""
    tires = ok(
        "wheel-tires",
        {"values": [{"row": 0, "column": 0, "tirePressure": 36}], "unit": "psi"},
    )
    [result] = read(tires, fields=frozenset({TelemetryField.TIRE_PRESSURE})).values()
    assert isinstance(result.value, TirePressure)
    assert result.value.front_left_kpa == pytest.approx(248.211, abs=0.001)
    assert result.value.back_right_kpa is None


@pytest.mark.parametrize(
    "meta",
    [
        pytest.param({"oemUpdatedAt": millis(RECORDED)}, id="milliseconds"),
        pytest.param({"oemUpdatedAt": round(RECORDED.timestamp())}, id="seconds"),
        pytest.param(
            {
                "ingestedAt": "2026-03-10T11:59:59.100Z",
                "retrievedAt": "2026-03-10T11:59:58.000Z",
                "oemUpdatedAt": "2026-03-10T09:00:00.000Z",
            },
            id="iso-8601",
        ),
    ],
)
def test_the_recorded_time_is_oem_updated_at_in_any_documented_form(meta: dict[str, Any]) -> None:
    """`oemUpdatedAt` in epoch milliseconds, epoch seconds or ISO-8601 is the recorded time."""
    item = signal("odometer-traveleddistance", {"unit": "km", "value": 5}, meta=meta)
    [result] = read(item).values()
    assert result.recorded_at == RECORDED


def test_a_value_without_oem_updated_at_has_no_recorded_time_not_the_fetch_time() -> None:
    """Only `retrievedAt` (Smartcar's fetch, which "always looks fresh"), or the static
    mark 0, give no recorded time rather than pretending the value is new."""
    fetched_only = signal(
        "odometer-traveleddistance", {"unit": "km", "value": 5}, meta={"retrievedAt": 1}
    )
    static = signal("closure-islocked", {"value": True}, meta={"oemUpdatedAt": 0})
    results = read(fetched_only, static)
    assert [r.recorded_at for r in results.values()] == [None, None]
    assert all(r.availability is Availability.AVAILABLE for r in results.values())


@pytest.mark.parametrize(
    ("error_type", "error_code", "availability"),
    [
        ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", Availability.NOT_CAPABLE),
        ("COMPATIBILITY", "SMARTCAR_NOT_CAPABLE", Availability.NOT_CAPABLE),
        ("PERMISSION", None, Availability.PERMISSION_MISSING),
        ("AUTHENTICATION", "ACCESS_DENIED", Availability.UNAVAILABLE),
        ("VEHICLE_STATE", "ASLEEP", Availability.UNAVAILABLE),
        ("VEHICLE_STATE", "NOT_CHARGING", Availability.UNAVAILABLE),
        ("UPSTREAM", "NO_RESPONSE", Availability.UNAVAILABLE),
        ("SOMETHING_NEW", "UNHEARD_OF", Availability.UNAVAILABLE),
    ],
)
def test_a_per_signal_error_decides_the_fields_availability(
    error_type: str, error_code: str | None, availability: Availability
) -> None:
    """Not capable is NOT_CAPABLE, a missing permission PERMISSION_MISSING, anything else
    (an access denial too: no scope is missing) UNAVAILABLE; each carries Smartcar's
    type and code so the core can tell sleep and rate limits apart."""
    [result] = read(failed("odometer-traveleddistance", error_type, error_code)).values()
    assert (result.availability, result.value, result.recorded_at) == (availability, None, None)
    assert result.failure is not None
    assert (result.failure.type, result.failure.code) == (error_type, error_code)


def test_a_failed_status_without_an_error_says_which_status() -> None:
    """ERROR or UNAVAILABLE with no error object is UNAVAILABLE, its status described."""
    item = signal("closure-islocked", None, status="UNAVAILABLE", meta={})
    [result] = read(item).values()
    assert result == FieldResult(
        field=TelemetryField.LOCK_STATUS,
        availability=Availability.UNAVAILABLE,
        failure=UpstreamFailure(description="closure-islocked: status UNAVAILABLE, no error named"),
    )


def test_an_unreadable_body_is_unavailable_with_the_clients_reason() -> None:
    """A body the client cannot read (a latitude of 200) fails the field as a protocol
    error, naming the signal, never the value."""
    item = ok("location-preciselocation", {"latitude": 200, "longitude": 13})
    [result] = read(item).values()
    assert result.availability is Availability.UNAVAILABLE
    assert result.failure is not None
    assert result.failure.type == "SmartcarProtocolError"
    assert "location-preciselocation" in (result.failure.description or "")


def test_fields_smartcar_sent_nothing_for_get_no_result() -> None:
    """An empty store (`data: []`) or a field without signals gives no result, which the
    core answers UNAVAILABLE ("missing from Smartcar's answer"), as a missing batch item."""
    assert read() == {}
    results = read(ok("odometer-traveleddistance", {"unit": "km", "value": 1}))
    assert set(results) == {TelemetryField.ODOMETER}


def test_only_the_fields_asked_for_are_answered() -> None:
    """Smartcar sends every signal; the batch holds just the fields asked for."""
    wanted = frozenset({TelemetryField.ODOMETER, TelemetryField.BATTERY})
    assert set(read(*ICE_CAR, fields=wanted)) == wanted


def test_a_sleeping_car_keeps_its_values_marked_asleep() -> None:
    """With `connectivitystatus-isasleep` true the values stay AVAILABLE with the car's
    (old) time, and each carries VEHICLE_STATE:ASLEEP so the core leaves the car alone; a
    field that failed keeps its own failure."""
    sleeping = [*ICE_CAR[:-1], ok("connectivitystatus-isasleep", {"value": True})]
    results = read(*sleeping)
    battery = results.pop(TelemetryField.BATTERY)
    assert battery.failure is not None
    assert battery.failure.type == "COMPATIBILITY"
    assert {r.availability for r in results.values()} == {Availability.AVAILABLE}
    assert {r.failure for r in results.values()} == {ASLEEP}
    assert {r.recorded_at for r in results.values()} == {RECORDED}


@pytest.mark.parametrize(
    "connectivity",
    [
        pytest.param(ok("connectivitystatus-isasleep", {"value": False}), id="awake"),
        pytest.param(failed("connectivitystatus-isasleep", "COMPATIBILITY", None), id="failed"),
        pytest.param(ok("connectivitystatus-isonline", {"value": False}), id="offline-only"),
    ],
)
def test_no_sleep_mark_unless_the_car_says_it_is_asleep(connectivity: dict[str, Any]) -> None:
    """An awake car, an unreadable sleep signal or a car only offline carry no sleep mark."""
    [result] = read(ok("closure-islocked", {"value": False}), connectivity).values()
    assert (result.availability, result.failure) == (Availability.AVAILABLE, None)


@pytest.mark.parametrize(
    ("recorded", "why"),
    [
        pytest.param(RECEIVED + timedelta(hours=1, seconds=1), "after the answer", id="future"),
        pytest.param(datetime(1999, 12, 31, tzinfo=UTC), "not between 2000-01-01", id="1999"),
    ],
)
def test_a_recorded_time_outside_the_plausible_window_fails_the_field(
    recorded: datetime, why: str
) -> None:
    """A time over an hour after the answer (which would hide every later reading) or
    before 2000 makes the field UNAVAILABLE with an IMPLAUSIBLE_VALUE failure saying why."""
    [result] = read(ok("closure-islocked", {"value": True}, recorded)).values()
    assert (result.availability, result.value) == (Availability.UNAVAILABLE, None)
    assert result.failure is not None
    assert result.failure.type == IMPLAUSIBLE
    assert why in (result.failure.description or "")
    assert (result.failure.description or "").startswith("closure-islocked: oemUpdatedAt")


def test_a_time_within_the_clock_skew_allowance_is_kept() -> None:
    """A car clock up to an hour ahead of the answer is tolerated."""
    ahead = RECEIVED + timedelta(minutes=59)
    [result] = read(ok("closure-islocked", {"value": True}, ahead)).values()
    assert (result.availability, result.recorded_at) == (Availability.AVAILABLE, ahead)


def test_an_implausible_odometer_fails_the_field() -> None:
    """An odometer beyond 10 million km is refused with the reason."""
    item = ok("odometer-traveleddistance", {"unit": "km", "value": 20_000_000})
    [result] = read(item).values()
    assert result.availability is Availability.UNAVAILABLE
    assert result.failure == UpstreamFailure(
        type=IMPLAUSIBLE,
        description="odometer-traveleddistance: distance 2e+07 km is outside 0..1e+07 km",
    )


def test_implausible_optional_parts_are_left_out_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A range over 10,000 km or a fuel amount over 2,000 litres is dropped (logged with
    the field), the field keeping its other parts."""
    items = (
        ok("tractionbattery-stateofcharge", {"value": 50, "unit": "percent"}),
        ok("tractionbattery-range", {"value": 20_000, "unit": "km"}),
        ok("internalcombustionengine-fuellevel", {"value": 40, "unit": "percent"}),
        ok("internalcombustionengine-amountremaining", {"value": 5000, "unit": "liters"}),
        ok("internalcombustionengine-range", {"value": 300, "unit": "km"}),
    )
    with caplog.at_level(logging.WARNING, logger="gateway.edge.smartcar.v3_readings"):
        results = read(*items)
    assert results[TelemetryField.BATTERY].value == Battery(percent_remaining=50, range_km=None)
    assert results[TelemetryField.FUEL].value == Fuel(
        percent_remaining=40, amount_remaining_l=None, range_km=300
    )
    assert sorted(record.field for record in caplog.records) == ["battery", "fuel"]  # type: ignore[attr-defined]


async def test_the_core_records_a_sleeping_cars_values_and_then_leaves_it_alone() -> None:
    """Through the core's telemetry use case: a sleeping car's V3 values are answered and
    kept with the car's own (old) time, the car is marked asleep, and the next read within
    the sleep backoff asks Smartcar nothing and answers those values marked
    VEHICLE_STATE:ASLEEP."""
    world = build()  # its clock starts at START, when these answers are received
    await world.connect("car-1", "sc-1")
    sleeping = answer(
        ok("odometer-traveleddistance", {"unit": "km", "value": 1234}),
        ok("connectivitystatus-isasleep", {"value": True}),
    )

    async def v3_read(
        access_token: Secret, smartcar_vehicle_id: str, fields: frozenset[TelemetryField]
    ) -> BatchReading:
        world.smartcar.calls["read"] += 1
        return batch_reading(sleeping, fields, received_at=world.clock.now())

    world.smartcar.read = v3_read  # type: ignore[method-assign]
    odometer = frozenset({TelemetryField.ODOMETER})
    first = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=timedelta(0))
    reading = first.readings[TelemetryField.ODOMETER]
    assert (reading.availability, reading.value) == (
        Availability.AVAILABLE,
        Odometer(distance_km=1234),
    )
    assert (reading.recorded_at, reading.fetched_at) == (RECORDED, RECEIVED)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.asleep_until is not None
    assert panel.vehicle.asleep_until > RECEIVED
    world.clock.advance(60)
    second = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=timedelta(0))
    again = second.readings[TelemetryField.ODOMETER]
    assert (again.availability, again.reason) == (Availability.UNAVAILABLE, ASLEEP_REASON)
    assert (again.value, again.recorded_at) == (Odometer(distance_km=1234), RECORDED)
    assert world.smartcar.calls["read"] == 1
