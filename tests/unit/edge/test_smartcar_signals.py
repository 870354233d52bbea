"""Smartcar's webhook signals read field by field: timestamps in their window, numbers in
range, the keyed form, the car saying it is asleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.model import Battery, DoorState, Fuel, LockStatus, Odometer, TelemetryField
from gateway.core.reports import StateReport
from gateway.edge.smartcar import signals
from tests.unit.edge.webhook_samples import millis, signal

ARRIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RECORDED = ARRIVED - timedelta(minutes=5)


def parse(*carried: dict[str, Any]) -> StateReport:
    """Parse signals in the webhook's list form, as arrived at ARRIVED."""
    return signals.parse(signals.index(list(carried)), fetched_at=ARRIVED)


def lock(*, at: datetime = RECORDED) -> dict[str, Any]:
    """Return a valid closure-islocked signal."""
    return signal("closure-islocked", {"value": True}, at=at)


def odometer_at(stamp: object) -> dict[str, Any]:
    """Return an odometer signal whose `meta.oemUpdatedAt` is `stamp`, as received."""
    carried = signal("odometer-traveleddistance", {"unit": "km", "value": 1234}, at=RECORDED)
    carried["meta"] = {"oemUpdatedAt": stamp, "fetchedAt": millis(RECORDED)}
    return carried


def fields(parsed: StateReport) -> set[TelemetryField]:
    """Return the fields that got a reading."""
    return {reading.field for reading in parsed.readings}


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(1e20, id="1e20"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param(10**400, id="400-digit-integer"),
        pytest.param(millis(RECORDED) * 1000, id="microseconds"),
        pytest.param(millis(RECORDED) * 1_000_000, id="nanoseconds"),
        pytest.param(millis(RECORDED) // 1000, id="seconds"),
        pytest.param(-1, id="negative"),
        pytest.param(millis(ARRIVED + timedelta(hours=1)) + 1, id="over-an-hour-ahead"),
        pytest.param("NaN", id="nan-literal-text"),
        pytest.param("2026-03-10T11:55:00", id="iso-without-zone"),
        pytest.param("9999-12-31T23:59:59-23:59", id="iso-beyond-year-9999-in-utc"),
        pytest.param(True, id="boolean"),
        pytest.param({"ms": 1}, id="object"),
    ],
)
def test_a_bad_timestamp_rejects_its_field_and_no_other(stamp: object) -> None:
    """A timestamp outside 2000-01-01 .. arrival + 1 h (or no time at all) rejects only
    the field it dates, with a reason naming that field and the meta key."""
    parsed = parse(odometer_at(stamp), lock())
    assert fields(parsed) == {TelemetryField.LOCK_STATUS}
    [rejection] = parsed.rejections
    assert rejection.field is TelemetryField.ODOMETER
    assert "meta.oemUpdatedAt" in rejection.reason
    assert str(rejection).startswith("odometer: odometer-traveleddistance meta.oemUpdatedAt")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        pytest.param(millis(RECORDED), RECORDED, id="epoch-ms"),
        pytest.param(millis(ARRIVED + timedelta(hours=1)), ARRIVED + timedelta(hours=1), id="1h"),
        pytest.param(millis(datetime(2000, 1, 1, tzinfo=UTC)), datetime(2000, 1, 1, tzinfo=UTC)),
        pytest.param("2026-03-10T12:55:00+01:00", RECORDED, id="iso-with-zone"),
        pytest.param("2026-03-10T11:55:00Z", RECORDED, id="iso-zulu"),
        pytest.param(0, RECORDED, id="zero-means-absent-so-fetchedAt"),
    ],
)
def test_a_timestamp_inside_the_window_dates_the_reading(stamp: object, expected: datetime) -> None:
    """Epoch ms and zoned ISO-8601 inside the window are read; 0 falls back to fetchedAt."""
    parsed = parse(odometer_at(stamp))
    assert parsed.rejections == ()
    [reading] = parsed.readings
    assert reading.recorded_at == expected


@pytest.mark.parametrize(
    ("carried", "field", "reason"),
    [
        (
            signal("location-preciselocation", {"latitude": 91, "longitude": 0}, at=RECORDED),
            TelemetryField.LOCATION,
            "latitude 91 is outside -90..90",
        ),
        (
            signal("location-preciselocation", {"latitude": 0, "longitude": -181}, at=RECORDED),
            TelemetryField.LOCATION,
            "longitude -181 is outside -180..180",
        ),
        (
            signal("odometer-traveleddistance", {"unit": "km", "value": -1}, at=RECORDED),
            TelemetryField.ODOMETER,
            "value -1 km is outside 0..1e+07 km",
        ),
        (
            signal("odometer-traveleddistance", {"unit": "miles", "value": 7e6}, at=RECORDED),
            TelemetryField.ODOMETER,
            "value 7000000.0 miles is outside 0..1e+07 km",
        ),
        (
            signal("odometer-traveleddistance", {"unit": "km", "value": 10**400}, at=RECORDED),
            TelemetryField.ODOMETER,
            "is outside 0..1e+07 km",
        ),
        (
            signal("odometer-traveleddistance", {"unit": "km", "value": "Infinity"}, at=RECORDED),
            TelemetryField.ODOMETER,
            "value 'Infinity' is not a number",
        ),
        (
            signal("tractionbattery-stateofcharge", {"value": 100.5}, at=RECORDED),
            TelemetryField.BATTERY,
            "value 100.5 is outside 0..100 %",
        ),
        (
            signal("internalcombustionengine-fuellevel", {"value": float("nan")}, at=RECORDED),
            TelemetryField.FUEL,
            "value nan is outside 0..100 %",
        ),
        (
            signal("internalcombustionengine-oillife", {"value": -5}, at=RECORDED),
            TelemetryField.ENGINE_OIL,
            "value -5 is outside 0..100 %",
        ),
        (
            signal("internalcombustionengine-oillife", {"value": True}, at=RECORDED),
            TelemetryField.ENGINE_OIL,
            "value True is not a number",
        ),
    ],
)
def test_a_value_out_of_range_rejects_its_field_and_no_other(
    carried: dict[str, Any], field: TelemetryField, reason: str
) -> None:
    """NaN, infinities, absurd magnitudes, negative odometers and percentages outside
    0-100 reject their field, with the field and the value in the reason."""
    parsed = parse(carried, lock())
    assert fields(parsed) == {TelemetryField.LOCK_STATUS}
    [rejection] = parsed.rejections
    assert rejection.field is field
    assert reason in rejection.reason


def test_a_bad_optional_part_is_left_out_and_the_field_kept() -> None:
    """A bad range or fuel amount is dropped (and noted); the percentage still applies."""
    parsed = parse(
        signal("tractionbattery-stateofcharge", {"value": 80}, at=RECORDED),
        signal("tractionbattery-range", {"unit": "km", "value": -5}, at=RECORDED),
        signal("internalcombustionengine-fuellevel", {"value": 40}, at=RECORDED),
        signal(
            "internalcombustionengine-amountremaining", {"unit": "l", "value": 1e9}, at=RECORDED
        ),
        signal("internalcombustionengine-range", {"unit": "parsecs", "value": 3}, at=RECORDED),
    )
    values = {reading.field: reading.value for reading in parsed.readings}
    assert values[TelemetryField.BATTERY] == Battery(percent_remaining=80, range_km=None)
    assert values[TelemetryField.FUEL] == Fuel(
        percent_remaining=40, amount_remaining_l=None, range_km=None
    )
    assert [str(r) for r in parsed.rejections] == [
        "battery: tractionbattery-range value -5 km is outside 0..10000 km; left out",
        "fuel: internalcombustionengine-amountremaining value 1000000000.0 l is outside"
        " 0..2000 l; left out",
        "fuel: internalcombustionengine-range unit 'parsecs' is not known; left out",
    ]


def test_a_door_without_a_valid_position_is_left_out() -> None:
    """Doors need integer row and column 0..9 (not booleans); the others are kept."""
    doors = [
        {"row": 0, "column": 1, "isOpen": True},
        {"row": True, "column": 0, "isOpen": True},
        {"row": "0", "column": 0, "isOpen": False},
        {"row": 2, "column": 99, "isOpen": False},
        {"row": 2, "column": 0, "isOpen": None},
    ]
    parsed = parse(lock(), signal("closure-doors", {"values": doors}, at=RECORDED))
    [reading] = parsed.readings
    assert reading.value == LockStatus(
        is_locked=True,
        doors=(
            DoorState(door="front_right", status="OPEN"),
            DoorState(door="row2_column0", status="UNKNOWN"),
        ),
    )
    assert [r.reason for r in parsed.rejections] == [
        f"closure-doors values[{n}] has no row and column 0..9; left out" for n in (1, 2, 3)
    ]


def test_valid_signals_give_readings_and_no_rejections() -> None:
    """Plausible values at plausible times are all read, none rejected."""
    parsed = parse(
        lock(),
        signal("odometer-traveleddistance", {"unit": "miles", "value": 1000}, at=RECORDED),
    )
    assert parsed.rejections == ()
    odometer = {r.field: r.value for r in parsed.readings}[TelemetryField.ODOMETER]
    assert odometer == Odometer(distance_km=pytest.approx(1609.344))


def test_the_keyed_signal_form_is_read_too() -> None:
    """`{"Group.Name": {value, meta}}` signals map like the list form."""
    keyed = {"Closure.IsLocked": {"value": True, "meta": {"oemUpdatedAt": 1_700_000_000_000}}}
    readings = signals.parse(signals.index(keyed), fetched_at=ARRIVED).readings
    assert [r.value for r in readings] == [LockStatus(is_locked=True)]
    assert readings[0].recorded_at is not None
    assert readings[0].recorded_at.timestamp() == 1_700_000_000


@pytest.mark.parametrize(("value", "asleep"), [(True, True), (False, False), ("true", False)])
def test_the_car_says_it_is_asleep_only_with_a_true_signal(value: object, asleep: bool) -> None:
    """`connectivitystatus-isasleep` true (the JSON boolean, nothing else) reports the car
    asleep; without the signal it is not."""
    carried = signal("connectivitystatus-isasleep", {"value": value}, at=RECORDED)
    assert parse(carried, lock()).asleep is asleep
    assert parse(lock()).asleep is False
