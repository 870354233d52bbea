"""Smartcar v4 signals (the `data.signals` of a VEHICLE_STATE webhook) as telemetry readings.

Which signals make which field (the first of each is required, the others fill in):

| field        | signals (code)                                                          |
|--------------|-------------------------------------------------------------------------|
| location     | `location-preciselocation` {latitude, longitude}                        |
| odometer     | `odometer-traveleddistance` {unit: kilometers / miles, value}           |
| battery      | `tractionbattery-stateofcharge` {value %}, `tractionbattery-range`      |
| fuel         | `internalcombustionengine-fuellevel` {value %}, `…-amountremaining`     |
|              | (liters / gallons), `internalcombustionengine-range`                    |
| lock_status  | `closure-islocked` {value}, `closure-doors` {values: [{row, column,     |
|              | isOpen}]}                                                               |
| engine_oil   | `internalcombustionengine-oillife` {value %}                            |

Tire pressure is not mapped: `wheel-tires` documents no pressure unit. A field's
`recorded_at` is its first signal's `meta.oemUpdatedAt` (epoch ms), else its `fetchedAt` /
`retrievedAt`, else when the event arrived. Signals with `status.value` ERROR, without a
body, or with a value of the wrong type or an unknown unit are skipped: the field keeps its
last reading. `signals` is a list of `{code, body, status, meta}` objects; the keyed form
of Smartcar's delivery-behavior page (`{"Group.Name": {value, meta}}`) is read too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from gateway.core.model import (
    Availability,
    Battery,
    DoorState,
    EngineOil,
    FieldReading,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryField,
    TelemetryValue,
)

KM_PER_MILE = 1.609344
LITRES_PER_US_GALLON = 3.785411784
_KM_UNITS = {None: 1.0, "kilometers": 1.0, "km": 1.0, "miles": KM_PER_MILE, "mi": KM_PER_MILE}
_LITRE_UNITS = {None: 1.0, "liters": 1.0, "l": 1.0, "gallons": LITRES_PER_US_GALLON}
_DOORS = {(0, 0): "front_left", (0, 1): "front_right", (1, 0): "back_left", (1, 1): "back_right"}
ASLEEP_SIGNAL = "connectivitystatus-isasleep"

Body = Mapping[str, object]
Signals = Mapping[str, Mapping[str, object]]
"""Usable signals by code: each a `{body, meta}` mapping."""


def index(raw: object) -> Signals:
    """Return the usable signals of a `data.signals` value, by code."""
    entries: list[tuple[str, Mapping[str, object]]] = []
    if isinstance(raw, list):
        entries = [(str(s.get("code")), s) for s in raw if isinstance(s, Mapping)]
    elif isinstance(raw, Mapping):
        for name, value in raw.items():
            if isinstance(value, Mapping):
                code = str(name).replace(".", "-").lower()
                entries.append((code, {"body": value, "meta": value.get("meta")}))
    return {code: signal for code, signal in entries if _usable(signal)}


def _usable(signal: Mapping[str, object]) -> bool:
    status = signal.get("status")
    failed = isinstance(status, Mapping) and status.get("value") == "ERROR"
    return not failed and isinstance(signal.get("body"), Mapping)


def readings(signals: Signals, *, fetched_at: datetime) -> list[FieldReading]:
    """Return a reading for each field the signals carry a valid value for."""
    out = []
    for field, (codes, build) in _FIELDS.items():
        primary = signals.get(codes[0])
        if primary is None:
            continue
        bodies = {code: _body(signals[code]) for code in codes if code in signals}
        value = build(bodies)
        if value is None:
            continue
        out.append(
            FieldReading(
                field=field,
                availability=Availability.AVAILABLE,
                value=value,
                recorded_at=recorded_at(primary) or fetched_at,
                fetched_at=fetched_at,
            )
        )
    return out


def reports_asleep(signals: Signals) -> bool:
    """Tell whether the car says it is asleep (`connectivitystatus-isasleep` true)."""
    signal = signals.get(ASLEEP_SIGNAL)
    return signal is not None and _body(signal).get("value") is True


def recorded_at(signal: Mapping[str, object]) -> datetime | None:
    """Return when the car recorded the signal (its `meta` timestamps, epoch ms)."""
    meta = signal.get("meta")
    if not isinstance(meta, Mapping):
        return None
    for key in ("oemUpdatedAt", "fetchedAt", "retrievedAt"):
        millis = _number(meta.get(key))
        if millis is not None:
            return datetime.fromtimestamp(millis / 1000, tz=UTC)
    return None


def _body(signal: Mapping[str, object]) -> Body:
    body = signal.get("body")
    return body if isinstance(body, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _scaled(body: Body | None, units: Mapping[str | None, float]) -> float | None:
    """Return a `{unit, value}` body's value in the table's unit (None if unusable)."""
    if body is None:
        return None
    value, unit = _number(body.get("value")), body.get("unit")
    if value is None or not (unit is None or isinstance(unit, str)):
        return None
    factor = units.get(unit.lower() if unit else None)
    return None if factor is None else value * factor


def _location(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    body = bodies["location-preciselocation"]
    latitude, longitude = _number(body.get("latitude")), _number(body.get("longitude"))
    if latitude is None or longitude is None:
        return None
    return Location(latitude=latitude, longitude=longitude)


def _odometer(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    km = _scaled(bodies["odometer-traveleddistance"], _KM_UNITS)
    return None if km is None else Odometer(distance_km=km)


def _battery(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    percent = _number(bodies["tractionbattery-stateofcharge"].get("value"))
    if percent is None:
        return None
    range_km = _scaled(bodies.get("tractionbattery-range"), _KM_UNITS)
    return Battery(percent_remaining=percent, range_km=range_km)


def _fuel(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    percent = _number(bodies["internalcombustionengine-fuellevel"].get("value"))
    if percent is None:
        return None
    return Fuel(
        percent_remaining=percent,
        amount_remaining_l=_scaled(
            bodies.get("internalcombustionengine-amountremaining"), _LITRE_UNITS
        ),
        range_km=_scaled(bodies.get("internalcombustionengine-range"), _KM_UNITS),
    )


def _lock(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    locked = bodies["closure-islocked"].get("value")
    if not isinstance(locked, bool):
        return None
    return LockStatus(is_locked=locked, doors=_door_states(bodies.get("closure-doors")))


def _door_states(body: Body | None) -> tuple[DoorState, ...]:
    values = body.get("values") if body is not None else None
    if not isinstance(values, list):
        return ()
    doors = []
    for door in values:
        if not isinstance(door, Mapping):
            continue
        row, column, is_open = door.get("row"), door.get("column"), door.get("isOpen")
        known = (
            _DOORS.get((row, column)) if isinstance(row, int) and isinstance(column, int) else None
        )
        name = known or f"row{row}_column{column}"
        status = "UNKNOWN" if not isinstance(is_open, bool) else ("OPEN" if is_open else "CLOSED")
        doors.append(DoorState(door=name, status=status))
    return tuple(doors)


def _engine_oil(bodies: Mapping[str, Body]) -> TelemetryValue | None:
    percent = _number(bodies["internalcombustionengine-oillife"].get("value"))
    return None if percent is None else EngineOil(life_remaining_percent=percent)


Build = Callable[[Mapping[str, Body]], TelemetryValue | None]
_FIELDS: Mapping[TelemetryField, tuple[tuple[str, ...], Build]] = {
    TelemetryField.LOCATION: (("location-preciselocation",), _location),
    TelemetryField.ODOMETER: (("odometer-traveleddistance",), _odometer),
    TelemetryField.BATTERY: (
        ("tractionbattery-stateofcharge", "tractionbattery-range"),
        _battery,
    ),
    TelemetryField.FUEL: (
        (
            "internalcombustionengine-fuellevel",
            "internalcombustionengine-amountremaining",
            "internalcombustionengine-range",
        ),
        _fuel,
    ),
    TelemetryField.LOCK_STATUS: (("closure-islocked", "closure-doors"), _lock),
    TelemetryField.ENGINE_OIL: (("internalcombustionengine-oillife",), _engine_oil),
}
