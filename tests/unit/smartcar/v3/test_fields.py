"""Signals → typed field readings: units normalised, times read, failures kept apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from clients.smartcar import (
    Battery,
    Closure,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    PermissionDenied,
    SmartcarProtocolError,
    TirePressure,
    UnitSystem,
    VehicleNotCapable,
)
from clients.smartcar.v3 import (
    FIELD_SIGNALS,
    ChargeState,
    Connectivity,
    SignalCode,
    SignalFailure,
    SignalField,
    SignalStatus,
    SignalValue,
    VehicleSignals,
    parse_signals,
)
from tests.unit.smartcar.fakes import NOW
from tests.unit.smartcar.v3.fakes import signal


def _read(*items: Any, units: UnitSystem = UnitSystem.METRIC) -> VehicleSignals:
    return parse_signals(list(items), received_at=NOW, unit_system=units)


def _value(reading: object) -> object:
    assert isinstance(reading, SignalValue), reading
    return reading.value


def _failure(reading: object) -> SignalFailure:
    assert isinstance(reading, SignalFailure), reading
    return reading


@pytest.mark.parametrize(
    ("unit", "value", "km"),
    [
        ("kilometers", 115071.5, 115071.5),
        ("km", 16342, 16342.0),
        ("KM", 10, 10.0),
        ("kilometres", 10, 10.0),
        ("miles", 100, 160.9344),
        ("mi", 1, 1.609344),
        (None, 42, 42.0),
    ],
)
def test_odometer_units_become_kilometres(unit: str | None, value: float, km: float) -> None:
    """Every spelling of km and miles Smartcar uses; no unit means the unit system's."""
    body: dict[str, Any] = {"value": value} if unit is None else {"value": value, "unit": unit}
    assert _value(_read(signal("odometer-traveleddistance", body)).odometer) == Odometer(
        distance_km=km
    )


def test_unit_less_distance_in_an_imperial_answer_is_miles() -> None:
    """An imperial answer's bare number is in miles."""
    reading = _read(signal("odometer-traveleddistance", {"value": 10}), units=UnitSystem.IMPERIAL)
    assert _value(reading.odometer) == Odometer(distance_km=16.09344)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"value": 10, "unit": "furlongs"}, "unit"),
        ({"unit": "km"}, "value"),
        ({"value": None, "unit": "km"}, "value"),
        ({"value": "12", "unit": "km"}, "value"),
        ({"value": True, "unit": "km"}, "value"),
        ({"value": float("nan"), "unit": "km"}, "value"),
        ({"value": 10**400, "unit": "km"}, "value"),
        ({}, "value"),
    ],
)
def test_an_unreadable_odometer_is_a_protocol_failure(body: dict[str, Any], key: str) -> None:
    """A SUCCESS signal whose body we cannot read fails its field, naming signal and key."""
    failure = _failure(_read(signal("odometer-traveleddistance", body)).odometer)
    assert failure.status is SignalStatus.SUCCESS
    assert isinstance(failure.error, SmartcarProtocolError)
    assert "odometer-traveleddistance" in str(failure.error)
    assert f"'{key}'" in str(failure.error)


def test_location_reads_latitude_and_longitude() -> None:
    """location-preciselocation {latitude, longitude, …} → v2's Location."""
    body = {"latitude": 32.7767, "longitude": -96.797, "heading": 90, "locationType": "LAST_PARKED"}
    reading = _read(signal("location-preciselocation", body)).location
    assert _value(reading) == Location(latitude=32.7767, longitude=-96.797)


@pytest.mark.parametrize(
    "body",
    [{"latitude": 91, "longitude": 0}, {"latitude": 0, "longitude": -181}, {"latitude": 0}],
)
def test_an_impossible_location_is_refused(body: dict[str, Any]) -> None:
    """Coordinates outside ±90/±180 or missing are a protocol failure."""
    assert isinstance(
        _failure(_read(signal("location-preciselocation", body)).location).error,
        SmartcarProtocolError,
    )


@pytest.mark.parametrize("unit", ["percent", "percentage", "%", "Percent", None])
def test_percentages_in_every_spelling(unit: str | None) -> None:
    """Fuel level, state of charge and oil life are 0-100 whatever the unit's spelling."""
    body: dict[str, Any] = {"value": 65} if unit is None else {"value": 65, "unit": unit}
    signals = _read(
        signal("internalcombustionengine-fuellevel", body),
        signal("tractionbattery-stateofcharge", body),
        signal("internalcombustionengine-oillife", body),
    )
    assert _value(signals.fuel) == Fuel(
        percent_remaining=65.0, amount_remaining_l=None, range_km=None
    )
    assert _value(signals.battery) == Battery(percent_remaining=65.0, range_km=None)
    assert _value(signals.engine_oil) == EngineOil(life_remaining_percent=65.0)


@pytest.mark.parametrize("body", [{"value": 101}, {"value": -1}, {"value": 50, "unit": "liters"}])
def test_a_percentage_out_of_range_or_in_another_unit_is_refused(body: dict[str, Any]) -> None:
    """A state of charge of 101 or in litres is not a percentage."""
    failure = _failure(_read(signal("tractionbattery-stateofcharge", body)).battery)
    assert isinstance(failure.error, SmartcarProtocolError)


def test_fuel_combines_level_amount_and_range() -> None:
    """Fuel: percent, litres (from gallons) and km (from miles), times of the fuel level."""
    level_meta = {"oemUpdatedAt": 1780222506000, "retrievedAt": 1780222662364}
    signals = _read(
        signal(
            "internalcombustionengine-fuellevel", {"value": 40, "unit": "percent"}, meta=level_meta
        ),
        signal("internalcombustionengine-amountremaining", {"value": 10, "unit": "gallons"}),
        signal("internalcombustionengine-range", {"value": 300, "unit": "miles"}),
    )
    fuel = signals.fuel
    assert isinstance(fuel, SignalValue)
    assert fuel.value == Fuel(
        percent_remaining=40.0, amount_remaining_l=37.854118, range_km=482.8032
    )
    assert fuel.code == "internalcombustionengine-fuellevel"
    assert fuel.oem_updated_at == datetime(2026, 5, 31, 10, 15, 6, tzinfo=UTC)


def test_a_failed_optional_part_is_left_out() -> None:
    """A range in an unknown unit leaves range_km None; the level still counts."""
    signals = _read(
        signal("tractionbattery-stateofcharge", {"value": 80, "unit": "percent"}),
        signal("tractionbattery-range", {"value": 300, "unit": "parsecs"}),
    )
    assert _value(signals.battery) == Battery(percent_remaining=80.0, range_km=None)


def test_fields_without_a_required_signal_take_times_from_the_first_that_gave() -> None:
    """Level failed, range read: a value with the range's times, level None."""
    signals = _read(
        signal("tractionbattery-stateofcharge", None, status="ERROR"),
        signal("tractionbattery-range", {"value": 300}, meta={"oemUpdatedAt": 1700000000}),
    )
    battery = signals.battery
    assert isinstance(battery, SignalValue)
    assert battery.value == Battery(percent_remaining=None, range_km=300.0)
    assert battery.code == "tractionbattery-range"
    assert battery.oem_updated_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_an_ev_reports_fuel_as_not_capable() -> None:
    """Every fuel signal ERROR VEHICLE_NOT_CAPABLE → a failure with the typed error."""
    error = {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}
    signals = _read(
        signal("internalcombustionengine-fuellevel", None, status="ERROR", error=error),
        signal("internalcombustionengine-range", None, status="ERROR", error=error),
    )
    failure = _failure(signals.fuel)
    assert failure.code == "internalcombustionengine-fuellevel"
    assert isinstance(failure.error, VehicleNotCapable)


def test_lock_status_with_doors() -> None:
    """closure-islocked plus closure-doors rows/columns → v2's door names and statuses."""
    doors = {
        "values": [
            {"row": 0, "column": 0, "isOpen": False, "isLocked": True},
            {"row": 0, "column": 1, "isOpen": True, "isLocked": True},
            {"row": 1, "column": 0, "isLocked": True},
            {"row": 2, "column": 1, "isOpen": False},
        ],
        "rowCount": 3,
        "columnCount": 2,
    }
    signals = _read(signal("closure-islocked", {"value": True}), signal("closure-doors", doors))
    assert _value(signals.lock_status) == LockStatus(
        is_locked=True,
        doors=(
            Closure(type="frontLeft", status="CLOSED"),
            Closure(type="frontRight", status="OPEN"),
            Closure(type="backLeft", status="UNKNOWN"),
            Closure(type="row2Column1", status="CLOSED"),
        ),
    )


def test_doors_without_islocked_are_no_lock_status() -> None:
    """The required closure-islocked absent → the field is absent, not a failure."""
    assert _read(signal("closure-doors", {"values": []})).lock_status is None


def test_unreadable_doors_are_left_out_of_the_lock_status() -> None:
    """A door without a row drops the doors part; the lock state still reads."""
    signals = _read(
        signal("closure-islocked", {"value": False}),
        signal("closure-doors", {"values": [{"column": 0, "isOpen": True}]}),
    )
    assert _value(signals.lock_status) == LockStatus(is_locked=False)


def test_an_islocked_that_is_not_a_boolean_fails_the_field() -> None:
    """closure-islocked {"value": "yes"} is a protocol failure of lock_status."""
    failure = _failure(_read(signal("closure-islocked", {"value": "yes"})).lock_status)
    assert failure.code == "closure-islocked"
    assert isinstance(failure.error, SmartcarProtocolError)


@pytest.mark.parametrize(
    ("unit", "front_left"),
    [("kPa", 255.1), ("kpa", 255.1), ("bar", 25510.0), ("psi", 1758.852585), (None, 255.1)],
)
def test_tire_pressures_become_kilopascals(unit: str | None, front_left: float) -> None:
    """wheel-tires values by row/column, tirePressure in kPa, bar or psi."""
    body: dict[str, Any] = {
        "values": [
            {"row": 0, "column": 0, "tirePressure": 255.1},
            {"row": 0, "column": 1, "tirePressure": None},
            {"row": 1, "column": 1, "tirePressure": 240},
        ],
        "rowCount": 2,
        "columnCount": 2,
    }
    if unit is not None:
        body["unit"] = unit
    pressures = _value(_read(signal("wheel-tires", body)).tire_pressure)
    assert isinstance(pressures, TirePressure)
    assert pressures.front_left_kpa == pytest.approx(front_left)
    assert pressures.front_right_kpa is None
    assert pressures.back_left_kpa is None
    assert pressures.back_right_kpa is not None


def test_tire_pressure_in_an_unknown_unit_is_refused() -> None:
    """wheel-tires in "atm" is a protocol failure naming the unit."""
    body = {"values": [{"row": 0, "column": 0, "tirePressure": 2.5}], "unit": "atm"}
    failure = _failure(_read(signal("wheel-tires", body)).tire_pressure)
    assert "'unit'" in str(failure.error)


def test_charge_and_connectivity() -> None:
    """Charging, plug and detailed status; online and asleep — any part may be missing."""
    signals = _read(
        signal("charge-ischarging", {"value": False}),
        signal("charge-ischargingcableconnected", {"value": True}),
        signal("charge-detailedchargingstatus", {"value": "fully_charged"}),
        signal("connectivitystatus-isasleep", {"value": True}),
    )
    assert _value(signals.charge) == ChargeState(
        is_charging=False, is_plugged_in=True, status="FULLY_CHARGED"
    )
    assert _value(signals.connectivity) == Connectivity(is_online=None, is_asleep=True)


# Smartcar's charge signal page examples (api-reference/signals/charge).
CHARGE_LIMITS = {
    "values": [
        {"type": "global", "limit": 80, "condition": None},
        {
            "type": "location",
            "limit": 90,
            "condition": {"name": "Home", "address": "123 Main St", "latitude": 37.7749},
        },
    ],
    "activeLimit": 100,
    "unit": "percent",
}


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        pytest.param(CHARGE_LIMITS, 100, id="documented-example-active-limit"),
        pytest.param({**CHARGE_LIMITS, "activeLimit": None}, 80, id="unplugged-global-lowercase"),
        pytest.param(
            {"values": [{"type": "GLOBAL", "limit": 75}], "unit": "percent"}, 75, id="upper-case"
        ),
        pytest.param({"values": [{"type": "GLOBAL", "limit": 70}]}, 70, id="no-unit"),
    ],
)
def test_the_charge_limit_is_the_active_one_else_the_global_one(
    body: dict[str, Any], limit: float
) -> None:
    """`activeLimit` while it is set (plugged in and charging), else the GLOBAL entry,
    whichever case Smartcar spells its type in."""
    charge = _value(_read(signal("charge-chargelimits", body)).charge)
    assert isinstance(charge, ChargeState)
    assert charge.limit_percent == limit


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"values": [{"type": "LOCATION", "limit": 90}]}, id="no-global"),
        pytest.param({"activeLimit": 101, "unit": "percent"}, id="over-100"),
        pytest.param({"activeLimit": 80, "unit": "kWh"}, id="not-a-percentage"),
    ],
)
def test_an_unusable_charge_limit_is_left_out_and_the_rest_kept(body: dict[str, Any]) -> None:
    """A limits body without a usable limit gives no limit; the other charge parts stay;
    alone, it fails the field with the protocol error naming the key."""
    signals = _read(
        signal("charge-ischargingcableconnected", {"value": True}),
        signal("charge-chargelimits", body),
    )
    assert _value(signals.charge) == ChargeState(is_plugged_in=True)
    alone = _failure(_read(signal("charge-chargelimits", body)).charge)
    assert isinstance(alone.error, SmartcarProtocolError)
    assert "charge-chargelimits" in str(alone.error)


@pytest.mark.parametrize(
    ("body", "minutes"),
    [
        ({"value": 45}, 45),
        ({"value": 45, "unit": "minute"}, 45),
        ({"value": 1.5, "unit": "hours"}, 90),
    ],
)
def test_time_to_complete_is_in_minutes(body: dict[str, Any], minutes: float) -> None:
    """`charge-timetocomplete` is minutes, as documented (live answers say `minute` or
    nothing); hours are converted."""
    charge = _value(_read(signal("charge-timetocomplete", body)).charge)
    assert isinstance(charge, ChargeState)
    assert charge.minutes_to_complete == minutes


def test_unavailable_and_unknown_statuses_fail_without_an_error() -> None:
    """UNAVAILABLE (and an unknown status) is a failure; Smartcar named no error."""
    signals = _read(
        signal("odometer-traveleddistance", {"value": 1, "unit": "km"}, status="UNAVAILABLE"),
        signal("internalcombustionengine-oillife", {"value": 50}, status="STALE"),
    )
    odometer, oil = _failure(signals.odometer), _failure(signals.engine_oil)
    assert (odometer.status, odometer.error) == (SignalStatus.UNAVAILABLE, None)
    assert (oil.status, oil.error) == (SignalStatus.UNAVAILABLE, None)


def test_a_permission_error_on_a_signal_is_typed() -> None:
    """ERROR with PERMISSION → PermissionDenied, so the gateway can say permission missing."""
    error = {"type": "PERMISSION", "code": None, "detail": "read_location not granted"}
    failure = _failure(
        _read(signal("location-preciselocation", None, status="ERROR", error=error)).location
    )
    assert isinstance(failure.error, PermissionDenied)
    assert failure.error.status == 200  # the status of the answer that carried it


# A VEHICLE_STATE webhook's data.signals (abridged from a live VW ID.7 delivery).
WEBHOOK_SIGNALS = [
    {
        "code": "tractionbattery-stateofcharge",
        "name": "StateOfCharge",
        "group": "TractionBattery",
        "body": {"value": 80, "unit": "percent"},
        "meta": {"oemUpdatedAt": 1780222506000, "retrievedAt": 1780222662364},
        "status": {"value": "SUCCESS"},
    },
    {
        "code": "charge-chargerate",
        "name": "ChargeRate",
        "group": "Charge",
        "body": {"value": 30, "unit": "km/h"},
        "status": {"value": "ERROR", "error": {"type": "VEHICLE_STATE", "code": "NOT_CHARGING"}},
    },
    {
        "code": "vehicleidentification-vin",
        "body": {"value": "1XKYP49X1RJ701910"},
        "meta": {"oemUpdatedAt": 0, "retrievedAt": 1780222662364},
        "status": {"value": "SUCCESS"},
    },
]


def test_webhook_signals_read_like_rest_signals() -> None:
    """A webhook's top-level items (ms times, VIN's 0 time) give the same readings."""
    signals = parse_signals(WEBHOOK_SIGNALS, received_at=NOW)
    battery = signals.battery
    assert isinstance(battery, SignalValue)
    assert battery.value == Battery(percent_remaining=80.0, range_km=None)
    assert battery.retrieved_at == datetime(2026, 5, 31, 10, 17, 42, 364000, tzinfo=UTC)
    rate = signals.signal("charge-chargerate")
    assert rate is not None
    assert rate.status is SignalStatus.ERROR
    assert rate.error is not None
    assert (rate.error.type, rate.error.code) == ("VEHICLE_STATE", "NOT_CHARGING")
    vin = signals.signal(SignalCode.VIN)
    assert vin is not None
    assert (vin.oem_updated_at, vin.body["value"]) == (None, "1XKYP49X1RJ701910")


def test_parse_signals_reads_a_document_and_refuses_anything_else() -> None:
    """{"data": [...]} reads; a value holding no list is a protocol error."""
    assert parse_signals({"data": WEBHOOK_SIGNALS}, received_at=NOW).battery is not None
    with pytest.raises(SmartcarProtocolError):
        parse_signals({"signals": "none"}, received_at=NOW)


def test_a_repeated_code_reads_its_last_item() -> None:
    """Should Smartcar repeat a code, the field and signal() agree on the last one."""
    signals = _read(
        signal("odometer-traveleddistance", {"value": 1, "unit": "km"}),
        signal("odometer-traveleddistance", {"value": 2, "unit": "km"}),
    )
    assert _value(signals.odometer) == Odometer(distance_km=2.0)
    repeated = signals.signal("odometer-traveleddistance")
    assert repeated is not None
    assert repeated.body["value"] == 2


def test_missing_status_counts_as_success_with_a_body() -> None:
    """An item without status: SUCCESS when it has a body, UNAVAILABLE when not."""
    signals = parse_signals(
        [{"code": "closure-islocked", "body": {"value": True}}, {"code": "wheel-tires"}],
        received_at=NOW,
    )
    assert _value(signals.lock_status) == LockStatus(is_locked=True)
    assert _failure(signals.tire_pressure).status is SignalStatus.UNAVAILABLE


def test_every_field_has_its_signals_and_a_reading() -> None:
    """FIELD_SIGNALS covers every SignalField, and reading() finds each attribute."""
    signals = _read()
    assert set(FIELD_SIGNALS) == set(SignalField)
    for field in SignalField:
        assert signals.reading(field) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1696156800, datetime(2023, 10, 1, 10, 40, tzinfo=UTC)),
        (1752104218549, datetime(2025, 7, 9, 23, 36, 58, 549000, tzinfo=UTC)),
        ("1752104218549", datetime(2025, 7, 9, 23, 36, 58, 549000, tzinfo=UTC)),
        ("2026-09-22T12:41:16.476Z", datetime(2026, 9, 22, 12, 41, 16, 476000, tzinfo=UTC)),
        ("2026-09-22T14:41:16+02:00", datetime(2026, 9, 22, 12, 41, 16, tzinfo=UTC)),
        ("2026-09-22T12:41:16", datetime(2026, 9, 22, 12, 41, 16, tzinfo=UTC)),
        (0, None),
        (-5, None),
        (1e30, None),
        (float("nan"), None),
        (True, None),
        ("yesterday", None),
        ("1" * 5000, None),
        ("²", None),
        ("9" * 40, None),
        ({"t": 1}, None),
    ],
)
def test_times_in_seconds_milliseconds_or_iso(raw: object, expected: datetime | None) -> None:
    """meta times: epoch s or ms, ISO-8601 (zone or UTC); 0 and garbage are no time."""
    signals = _read(signal("closure-islocked", {"value": True}, meta={"oemUpdatedAt": raw}))
    reading = signals.lock_status
    assert isinstance(reading, SignalValue)
    assert reading.oem_updated_at == expected
