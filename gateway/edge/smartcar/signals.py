"""Smartcar v4 signals (the `data.signals` of a VEHICLE_STATE webhook) as a state report.

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
| charge       | any of `charge-ischarging` {value}, `charge-ischargingcableconnected`   |
|              | {value}, `charge-detailedchargingstatus` {value}, `charge-chargelimits` |
|              | {activeLimit, values: [{type, limit}], unit}, `charge-timetocomplete`   |

Charge has no required signal: an event carrying any of them gives a reading, timed by the
first present (in the order above), whose parts the event did not carry are not reported
(None): an event is what the car reported then, not a merge with what the gateway held.
The state is `charge-detailedchargingstatus` (CHARGING, NOT_CHARGING, FULLY_CHARGED; any
other name is not reported), else CHARGING or NOT_CHARGING by `charge-ischarging`; the
limit is `activeLimit`, else the GLOBAL entry's `limit`.

Tire pressure is not mapped: `wheel-tires` documents no pressure unit. A field's
`recorded_at` is its first signal's `meta.oemUpdatedAt`, else its `fetchedAt` /
`retrievedAt` (epoch milliseconds, or an ISO-8601 time with a zone), else when the event
arrived; a timestamp of 0 (Smartcar's mark for static values) counts as absent. Signals with
`status.value` ERROR (the car cannot report them) or without a body are skipped (with
`index(…, success_only=True)`, as API V3 reads statuses, any status but SUCCESS): the field
keeps its last reading. `signals` is a list of `{code, body, status, meta}` objects; the keyed
form of Smartcar's delivery-behavior page (`{"Group.Name": {value, meta}}`) is read too. The
car says it is asleep with `connectivitystatus-isasleep` true.

Every value is checked field by field against the gateway's bounds
(`gateway.core.plausibility`), and a bad one is *rejected* with a reason naming the field
(`Rejection`), while the event's other fields still apply:

- a timestamp must lie in `EARLIEST` .. arrival + `MAX_AHEAD` (2000-01-01 to one hour after
  the event arrived, by the injected clock): seconds, microseconds or nanoseconds sent as
  milliseconds, NaN, infinities and absurd magnitudes all fall outside;
- numbers must be finite and plausible (latitude ±90, longitude ±180, odometer 0..10
  million km, percentages 0..100, ranges 0..10,000 km, fuel 0..2,000 litres), checked in
  the unit received; units must be known;
- a bad optional part (a range, a fuel amount, one door) is left out and noted; the field
  keeps its required value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from gateway.core.model import (
    Availability,
    Battery,
    Charge,
    ChargingState,
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
from gateway.core.plausibility import (
    CHARGE_MINUTES,
    EARLIEST,
    FUEL_L,
    LATITUDE,
    LONGITUDE,
    MAX_AHEAD,
    ODOMETER_KM,
    PERCENT,
    RANGE_KM,
    Bounds,
    plausible_time,
)
from gateway.core.reports import Rejection, StateReport

KM_PER_MILE = 1.609344
LITRES_PER_US_GALLON = 3.785411784
_KM_UNITS = {None: 1.0, "kilometers": 1.0, "km": 1.0, "miles": KM_PER_MILE, "mi": KM_PER_MILE}
_LITRE_UNITS = {None: 1.0, "liters": 1.0, "l": 1.0, "gallons": LITRES_PER_US_GALLON}
_DOORS = {(0, 0): "front_left", (0, 1): "front_right", (1, 0): "back_left", (1, 1): "back_right"}
_MAX_DOOR_INDEX = 9
_TIME_KEYS = ("oemUpdatedAt", "fetchedAt", "retrievedAt")
_MAX_SHOWN = 40
ASLEEP_SIGNAL = "connectivitystatus-isasleep"

T = TypeVar("T")
Body = Mapping[str, object]
Signals = Mapping[str, Mapping[str, object]]
"""Usable signals by code: each a `{body, meta}` mapping."""


class _Refused(ValueError):
    """A signal value the gateway will not record; the message says why."""


def index(raw: object, *, success_only: bool = False) -> Signals:
    """Return the usable signals of a `data.signals` value, by code.

    A signal is usable when it has a body and its status is not ERROR; with
    `success_only`, when its status is SUCCESS or absent (API V3's reading of a status:
    UNAVAILABLE and unknown values fail too)."""
    entries: list[tuple[str, Mapping[str, object]]] = []
    if isinstance(raw, list):
        entries = [(str(s.get("code")), s) for s in raw if isinstance(s, Mapping)]
    elif isinstance(raw, Mapping):
        for name, value in raw.items():
            if isinstance(value, Mapping):
                code = str(name).replace(".", "-").lower()
                entries.append((code, {"body": value, "meta": value.get("meta")}))
    usable = _succeeded if success_only else _usable
    return {code: signal for code, signal in entries if usable(signal)}


def _usable(signal: Mapping[str, object]) -> bool:
    status = signal.get("status")
    failed = isinstance(status, Mapping) and status.get("value") == "ERROR"
    return not failed and isinstance(signal.get("body"), Mapping)


def _succeeded(signal: Mapping[str, object]) -> bool:
    """Tell whether a signal has a body and says SUCCESS (or says nothing and names no
    error, as the keyed form)."""
    status = signal.get("status")
    value, error = status, None
    if isinstance(status, Mapping):
        value, error = status.get("value"), status.get("error")
    if value is None:
        succeeded = error is None
    else:
        succeeded = isinstance(value, str) and value.strip().upper() == "SUCCESS"
    return succeeded and isinstance(signal.get("body"), Mapping)


def parse(signals: Signals, *, fetched_at: datetime) -> StateReport:
    """Return a reading for each field whose values are valid, why the others are not, and
    whether the car says it is asleep.

    `fetched_at` is when the event arrived: the default `recorded_at`, and the reference
    for how far in the future a timestamp may lie."""
    readings: list[FieldReading] = []
    rejections: list[Rejection] = []
    for field, (codes, build) in _FIELDS.items():
        present = [code for code in codes if code in signals]
        if not present or (field not in _ANY_SIGNAL and present[0] != codes[0]):
            continue
        primary = signals[present[0]]
        bodies = {code: _body(signals[code]) for code in codes if code in signals}
        notes: list[str] = []
        try:
            recorded = _recorded_at(primary, arrived_at=fetched_at)
            value = build(bodies, notes)
        except _Refused as refused:
            rejections.append(Rejection(field, f"{present[0]} {refused}"))
            continue
        rejections.extend(Rejection(field, note) for note in notes)
        readings.append(
            FieldReading(
                field=field,
                availability=Availability.AVAILABLE,
                value=value,
                recorded_at=recorded or fetched_at,
                fetched_at=fetched_at,
            )
        )
    return StateReport(
        readings=tuple(readings), rejections=tuple(rejections), asleep=_reports_asleep(signals)
    )


def _reports_asleep(signals: Signals) -> bool:
    """Tell whether the car says it is asleep (`connectivitystatus-isasleep` true)."""
    signal = signals.get(ASLEEP_SIGNAL)
    return signal is not None and _body(signal).get("value") is True


def _recorded_at(signal: Mapping[str, object], *, arrived_at: datetime) -> datetime | None:
    """Return when the car recorded the signal (the first `meta` timestamp present), or None.

    Raises `_Refused` when that timestamp is no time inside the plausible window."""
    meta = signal.get("meta")
    if not isinstance(meta, Mapping):
        return None
    for key in _TIME_KEYS:
        raw = meta.get(key)
        if raw is None or (_is_number(raw) and raw == 0):
            continue
        moment = _instant(raw)
        if moment is None or not plausible_time(moment, arrived_at=arrived_at):
            raise _Refused(
                f"meta.{key} {_shown(raw)} is no time between {EARLIEST:%Y-%m-%d} and "
                f"{MAX_AHEAD} after arrival (epoch milliseconds or ISO-8601 with a zone)"
            )
        return moment
    return None


def _instant(raw: object) -> datetime | None:
    """Return the time epoch milliseconds or an ISO-8601 string name, or None."""
    if _is_number(raw):
        assert isinstance(raw, int | float)
        # Compare before converting: 1e20 ms or a 400-digit integer overflow datetime.
        lowest, highest = _millis(EARLIEST), _millis(datetime.max.replace(tzinfo=UTC))
        if not lowest <= raw <= highest:  # NaN fails every comparison
            return None
        return datetime.fromtimestamp(raw / 1000, tz=UTC)
    if isinstance(raw, str) and len(raw) <= _MAX_SHOWN:
        try:
            moment = datetime.fromisoformat(raw)
            return moment.astimezone(UTC) if moment.tzinfo is not None else None
        except (ValueError, OverflowError):  # not ISO-8601; out of range once in UTC
            return None
    return None


def _millis(moment: datetime) -> float:
    return moment.timestamp() * 1000


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """Return a short printable form of a received value, for a reason."""
    shown = repr(value)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 1] + "…"


def _body(signal: Mapping[str, object]) -> Body:
    body = signal.get("body")
    return body if isinstance(body, Mapping) else {}


def _number(body: Body, key: str, bounds: Bounds, *, unit: str = "") -> float:
    """Return `body[key]` if it is a number within `bounds`; raise `_Refused` otherwise."""
    value = body.get(key)
    if not _is_number(value):
        raise _Refused(_not_a_number(key, value))
    assert isinstance(value, int | float)
    if value not in bounds:  # before float(): a huge integer overflows it
        raise _Refused(f"{key} {_shown(value)} is outside {bounds.low:g}..{bounds.high:g}{unit}")
    return float(value)


def _scaled(
    body: Body, units: Mapping[str | None, float], bounds: Bounds, *, unit_name: str
) -> float:
    """Return a `{unit, value}` body's value in the table's unit, if it is within `bounds`."""
    unit = body.get("unit")
    factor = None
    if unit is None or isinstance(unit, str):
        factor = units.get(unit.lower() if unit else None)
    if factor is None:
        raise _Refused(f"unit {_shown(unit)} is not known")
    value = body.get("value")
    if not _is_number(value):
        raise _Refused(_not_a_number("value", value))
    assert isinstance(value, int | float)
    if value not in bounds.per(factor):  # in the received unit: a huge integer stays exact
        raise _Refused(
            f"value {_shown(value)} {unit or ''} is outside "
            f"{bounds.low:g}..{bounds.high:g} {unit_name}"
        )
    return float(value) * factor


def _not_a_number(key: str, value: object) -> str:
    return f"{key} is missing" if value is None else f"{key} {_shown(value)} is not a number"


def _optional(
    bodies: Mapping[str, Body], code: str, notes: list[str], read: Callable[[Body], T]
) -> T | None:
    """Return an optional part of a field, or None (noted when it was there but bad)."""
    body = bodies.get(code)
    if body is None:
        return None
    try:
        return read(body)
    except _Refused as refused:
        notes.append(f"{code} {refused}; left out")
        return None


def _percent(body: Body) -> float:
    return _number(body, "value", PERCENT, unit=" %")


def _km(body: Body) -> float:
    return _scaled(body, _KM_UNITS, RANGE_KM, unit_name="km")


Notes = list[str]


def _location(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    body = bodies["location-preciselocation"]
    latitude = _number(body, "latitude", LATITUDE)
    longitude = _number(body, "longitude", LONGITUDE)
    return Location(latitude=latitude, longitude=longitude)


def _odometer(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    km = _scaled(bodies["odometer-traveleddistance"], _KM_UNITS, ODOMETER_KM, unit_name="km")
    return Odometer(distance_km=km)


def _battery(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    percent = _percent(bodies["tractionbattery-stateofcharge"])
    range_km = _optional(bodies, "tractionbattery-range", notes, _km)
    return Battery(percent_remaining=percent, range_km=range_km)


def _fuel(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    percent = _percent(bodies["internalcombustionengine-fuellevel"])
    return Fuel(
        percent_remaining=percent,
        amount_remaining_l=_optional(
            bodies,
            "internalcombustionengine-amountremaining",
            notes,
            lambda body: _scaled(body, _LITRE_UNITS, FUEL_L, unit_name="l"),
        ),
        range_km=_optional(bodies, "internalcombustionengine-range", notes, _km),
    )


def _lock(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    locked = bodies["closure-islocked"].get("value")
    if not isinstance(locked, bool):
        raise _Refused(f"value {_shown(locked)} is not true or false")
    return LockStatus(is_locked=locked, doors=_door_states(bodies.get("closure-doors"), notes))


def _door_states(body: Body | None, notes: Notes) -> tuple[DoorState, ...]:
    values = body.get("values") if body is not None else None
    if not isinstance(values, list):
        return ()
    doors = []
    for position, door in enumerate(values):
        place = _door_place(door)
        if place is None:
            notes.append(f"closure-doors values[{position}] has no row and column 0..9; left out")
            continue
        is_open = door.get("isOpen") if isinstance(door, Mapping) else None
        name = _DOORS.get(place) or f"row{place[0]}_column{place[1]}"
        status = "UNKNOWN" if not isinstance(is_open, bool) else ("OPEN" if is_open else "CLOSED")
        doors.append(DoorState(door=name, status=status))
    return tuple(doors)


def _door_place(door: object) -> tuple[int, int] | None:
    """Return a door's (row, column), each an integer 0..9, or None."""
    if not isinstance(door, Mapping):
        return None
    row, column = _door_index(door.get("row")), _door_index(door.get("column"))
    return None if row is None or column is None else (row, column)


def _door_index(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_DOOR_INDEX else None


def _engine_oil(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    return EngineOil(life_remaining_percent=_percent(bodies["internalcombustionengine-oillife"]))


CHARGE_SIGNALS = (
    "charge-ischarging",
    "charge-ischargingcableconnected",
    "charge-detailedchargingstatus",
    "charge-chargelimits",
    "charge-timetocomplete",
)
_MINUTE_UNITS = {None: 1.0, "min": 1.0, "minute": 1.0, "minutes": 1.0, "hours": 60.0}


def _charge(bodies: Mapping[str, Body], notes: Notes) -> TelemetryValue:
    charging, plugged_in, status, limits, minutes = CHARGE_SIGNALS
    state = _optional(bodies, status, notes, _charging_state)
    is_charging = _optional(bodies, charging, notes, _flag)
    if state is None and is_charging is not None:
        state = ChargingState.CHARGING if is_charging else ChargingState.NOT_CHARGING
    value = Charge(
        is_plugged_in=_optional(bodies, plugged_in, notes, _flag),
        state=state,
        limit_percent=_optional(bodies, limits, notes, _charge_limit),
        minutes_to_complete=_optional(
            bodies,
            minutes,
            notes,
            lambda body: _scaled(body, _MINUTE_UNITS, CHARGE_MINUTES, unit_name="min"),
        ),
    )
    if value == Charge(is_plugged_in=None, state=None, limit_percent=None):
        raise _Refused("no charge signal has a readable value")
    return value


def _flag(body: Body) -> bool:
    value = body.get("value")
    if not isinstance(value, bool):
        raise _Refused(f"value {_shown(value)} is not true or false")
    return value


def _charging_state(body: Body) -> ChargingState:
    value = body.get("value")
    try:
        return ChargingState(value.strip().upper() if isinstance(value, str) else "")
    except ValueError:
        raise _Refused(f"value {_shown(value)} is no charging state") from None


def _charge_limit(body: Body) -> float:
    unit = body.get("unit")
    if unit is not None and (not isinstance(unit, str) or unit.lower() not in _PERCENT_UNITS):
        raise _Refused(f"unit {_shown(unit)} is not a percentage")
    if body.get("activeLimit") is not None:
        return _number(body, "activeLimit", PERCENT, unit=" %")
    entries = body.get("values")
    for entry in entries if isinstance(entries, list) else []:
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        if isinstance(kind, str) and kind.upper() == "GLOBAL":
            return _number(entry, "limit", PERCENT, unit=" %")
    raise _Refused("has neither an activeLimit nor a GLOBAL limit")


_PERCENT_UNITS = frozenset({"percent", "percentage", "%"})


Build = Callable[[Mapping[str, Body], Notes], TelemetryValue]
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
    TelemetryField.CHARGE: (CHARGE_SIGNALS, _charge),
}
_ANY_SIGNAL = frozenset({TelemetryField.CHARGE})
"""Fields read from whichever of their signals an event carries (no required one)."""
