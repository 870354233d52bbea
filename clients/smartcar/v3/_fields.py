"""Signals → the typed field readings of ``VehicleSignals`` (rules in ``signals``).

Each field's builder reads its signals' bodies through ``_Parts``, which records which
signals gave a value and why the others did not; the driver then decides between a
value, a failure and nothing. A body we cannot read becomes that signal's
SmartcarProtocolError, naming the signal and the key, never the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from clients.smartcar._json import JsonObject
from clients.smartcar.errors import SmartcarError, SmartcarProtocolError
from clients.smartcar.models import (
    Battery,
    Closure,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TirePressure,
)
from clients.smartcar.units import UnitSystem
from clients.smartcar.v3 import _units
from clients.smartcar.v3.models import Page, Vehicle
from clients.smartcar.v3.signals import (
    ChargeState,
    Connectivity,
    Signal,
    SignalCode,
    SignalFailure,
    SignalReading,
    SignalStatus,
    SignalValue,
    VehicleSignals,
)

__all__ = ["vehicle_signals"]

T = TypeVar("T")
_Code = SignalCode

# Door and tyre positions: row 0 is the front, column 0 the left (v2's names for them).
_POSITIONS = {(0, 0): "frontLeft", (0, 1): "frontRight", (1, 0): "backLeft", (1, 1): "backRight"}


class _Parts:
    """Reads a field's signals one by one, remembering successes and failures."""

    def __init__(self, signals: Mapping[str, Signal], units: UnitSystem) -> None:
        self._signals = signals
        self._units = units
        self.succeeded: list[str] = []
        self.failed: dict[str, SmartcarError | None] = {}

    def read(self, code: str, reader: Callable[[JsonObject, UnitSystem], T]) -> T | None:
        """Return what ``reader`` makes of a successful signal's body; None otherwise."""
        signal = self._signals.get(code)
        if signal is None:
            return None
        if signal.status is not SignalStatus.SUCCESS:
            self.failed[code] = signal.error
            return None
        try:
            value = reader(JsonObject(signal.body, code), self._units)
        except SmartcarProtocolError as exc:
            self.failed[code] = exc
            return None
        self.succeeded.append(code)
        return value


@dataclass(frozen=True, slots=True)
class _Spec(Generic[T]):
    """How one field is made: its signals, the one it requires, and its builder."""

    codes: tuple[SignalCode, ...]
    required: SignalCode | None
    build: Callable[[_Parts], T | None]


def _reading(
    spec: _Spec[T], signals: Mapping[str, Signal], units: UnitSystem
) -> SignalReading[T] | None:
    """Return the field's value, its failure, or None when Smartcar sent nothing for it."""
    present = [code for code in spec.codes if code in signals]
    if not present or (spec.required is not None and spec.required not in signals):
        return None
    parts = _Parts(signals, units)
    value = spec.build(parts)
    if spec.required is not None:
        blamed, failed = spec.required, spec.required in parts.failed
    else:  # without a required signal, a field fails only when none of its signals gave
        blamed, failed = present[0], not parts.succeeded
    if failed or value is None:
        signal = signals[blamed]
        return SignalFailure(
            code=blamed,
            status=signal.status,
            error=parts.failed.get(blamed),
            oem_updated_at=signal.oem_updated_at,
            retrieved_at=signal.retrieved_at,
        )
    anchor = signals[next(code for code in spec.codes if code in parts.succeeded)]
    return SignalValue(
        code=anchor.code,
        value=value,
        oem_updated_at=anchor.oem_updated_at,
        retrieved_at=anchor.retrieved_at,
    )


def _value(body: JsonObject) -> float:
    value = body.finite_number("value")
    if value is None:
        raise body.fail("value", "a number")
    return value


def _unit(body: JsonObject) -> str | None:
    return body.optional_string("unit")


def _measured(
    convert: Callable[[float, str | None, UnitSystem], float],
) -> Callable[[JsonObject, UnitSystem], float]:
    """Return a reader of a ``{value, unit}`` body, converted; an unknown unit is refused."""

    def read(body: JsonObject, units: UnitSystem) -> float:
        try:
            return convert(_value(body), _unit(body), units)
        except _units.UnknownUnit as exc:
            raise body.fail("unit", str(exc)) from None

    return read


_km = _measured(_units.to_kilometres)
_litres = _measured(_units.to_litres)


def _percent(body: JsonObject, units: UnitSystem) -> float:
    value = _value(body)
    try:
        percent = _units.to_percent(value, _unit(body))
    except _units.UnknownUnit as exc:
        raise body.fail("unit", str(exc)) from None
    if not 0 <= percent <= 100:
        raise body.fail("value", "a percentage from 0 to 100")
    return percent


def _flag(body: JsonObject, units: UnitSystem) -> bool:
    return body.boolean("value")


def _word(body: JsonObject, units: UnitSystem) -> str:
    return body.string("value").strip().upper()


def _charge_limit(body: JsonObject, units: UnitSystem) -> float:
    """Read ``charge-chargelimits``: ``activeLimit`` when it is a number, else the limit of
    the GLOBAL entry of ``values`` (type matched case-insensitively: the docs' example
    writes ``global``, the enum ``GLOBAL``), in percent 0-100."""
    try:
        _units.to_percent(0.0, _unit(body))
    except _units.UnknownUnit as exc:
        raise body.fail("unit", str(exc)) from None
    limit = body.finite_number("activeLimit")
    if limit is None:
        for entry in body.objects("values", required=False):
            kind = entry.optional_string("type")
            if kind is not None and kind.strip().upper() == "GLOBAL":
                limit = entry.finite_number("limit")
                break
    if limit is None:
        raise body.fail("activeLimit", "a number, or values[] a GLOBAL limit")
    if not 0 <= limit <= 100:
        raise body.fail("activeLimit", "a percentage from 0 to 100")
    return limit


def _minutes(body: JsonObject, units: UnitSystem) -> float:
    try:
        minutes = _units.to_minutes(_value(body), _unit(body))
    except _units.UnknownUnit as exc:
        raise body.fail("unit", str(exc)) from None
    if minutes < 0:
        raise body.fail("value", "a duration of 0 or more")
    return minutes


def _location(body: JsonObject, units: UnitSystem) -> Location:
    latitude, longitude = body.finite_number("latitude"), body.finite_number("longitude")
    if latitude is None or not -90 <= latitude <= 90:
        raise body.fail("latitude", "a number from -90 to 90")
    if longitude is None or not -180 <= longitude <= 180:
        raise body.fail("longitude", "a number from -180 to 180")
    return Location(latitude=latitude, longitude=longitude)


def _position(item: JsonObject) -> str:
    row, column = item.integer("row"), item.integer("column")
    return _POSITIONS.get((row, column)) or f"row{row}Column{column}"


def _doors(body: JsonObject, units: UnitSystem) -> tuple[Closure, ...]:
    doors = []
    for item in body.objects("values"):
        is_open = item.optional_boolean("isOpen")
        status = "UNKNOWN" if is_open is None else ("OPEN" if is_open else "CLOSED")
        doors.append(Closure(type=_position(item), status=status))
    return tuple(doors)


def _tires(body: JsonObject, units: UnitSystem) -> TirePressure:
    unit = _unit(body)
    kpa: dict[str, float | None] = {}
    for item in body.objects("values"):
        pressure = item.finite_number("tirePressure")
        try:
            converted = None if pressure is None else _units.to_kilopascals(pressure, unit, units)
        except _units.UnknownUnit as exc:
            raise body.fail("unit", str(exc)) from None
        kpa[_position(item)] = converted
    return TirePressure(
        front_left_kpa=kpa.get("frontLeft"),
        front_right_kpa=kpa.get("frontRight"),
        back_left_kpa=kpa.get("backLeft"),
        back_right_kpa=kpa.get("backRight"),
    )


def _lock_status(parts: _Parts) -> LockStatus | None:
    locked = parts.read(_Code.IS_LOCKED, _flag)
    doors = parts.read(_Code.DOORS, _doors)
    return None if locked is None else LockStatus(is_locked=locked, doors=doors or ())


def _odometer(parts: _Parts) -> Odometer | None:
    km = parts.read(_Code.ODOMETER, _km)
    return None if km is None else Odometer(distance_km=km)


def _engine_oil(parts: _Parts) -> EngineOil | None:
    life = parts.read(_Code.OIL_LIFE, _percent)
    return None if life is None else EngineOil(life_remaining_percent=life)


LOCATION = _Spec((_Code.LOCATION,), _Code.LOCATION, lambda p: p.read(_Code.LOCATION, _location))
ODOMETER = _Spec((_Code.ODOMETER,), _Code.ODOMETER, _odometer)
FUEL = _Spec(
    (_Code.FUEL_LEVEL, _Code.FUEL_AMOUNT, _Code.FUEL_RANGE),
    None,
    lambda p: Fuel(
        percent_remaining=p.read(_Code.FUEL_LEVEL, _percent),
        amount_remaining_l=p.read(_Code.FUEL_AMOUNT, _litres),
        range_km=p.read(_Code.FUEL_RANGE, _km),
    ),
)
BATTERY = _Spec(
    (_Code.BATTERY_LEVEL, _Code.BATTERY_RANGE),
    None,
    lambda p: Battery(
        percent_remaining=p.read(_Code.BATTERY_LEVEL, _percent),
        range_km=p.read(_Code.BATTERY_RANGE, _km),
    ),
)
LOCK_STATUS = _Spec((_Code.IS_LOCKED, _Code.DOORS), _Code.IS_LOCKED, _lock_status)
TIRE_PRESSURE = _Spec((_Code.TIRES,), _Code.TIRES, lambda p: p.read(_Code.TIRES, _tires))
ENGINE_OIL = _Spec((_Code.OIL_LIFE,), _Code.OIL_LIFE, _engine_oil)
CHARGE = _Spec(
    (
        _Code.IS_CHARGING,
        _Code.PLUGGED_IN,
        _Code.CHARGING_STATUS,
        _Code.CHARGE_LIMITS,
        _Code.TIME_TO_COMPLETE,
    ),
    None,
    lambda p: ChargeState(
        is_charging=p.read(_Code.IS_CHARGING, _flag),
        is_plugged_in=p.read(_Code.PLUGGED_IN, _flag),
        status=p.read(_Code.CHARGING_STATUS, _word),
        limit_percent=p.read(_Code.CHARGE_LIMITS, _charge_limit),
        minutes_to_complete=p.read(_Code.TIME_TO_COMPLETE, _minutes),
    ),
)
CONNECTIVITY = _Spec(
    (_Code.IS_ONLINE, _Code.IS_ASLEEP),
    None,
    lambda p: Connectivity(
        is_online=p.read(_Code.IS_ONLINE, _flag), is_asleep=p.read(_Code.IS_ASLEEP, _flag)
    ),
)


def vehicle_signals(
    signals: tuple[Signal, ...],
    *,
    unit_system: UnitSystem,
    vehicle: Vehicle | None = None,
    page: Page | None = None,
    request_id: str | None = None,
) -> VehicleSignals:
    """Return ``signals`` with every field read from them (the last of a repeated code)."""
    by_code = {signal.code: signal for signal in signals}

    def read(spec: _Spec[T]) -> SignalReading[T] | None:
        return _reading(spec, by_code, unit_system)

    return VehicleSignals(
        signals=signals,
        location=read(LOCATION),
        odometer=read(ODOMETER),
        fuel=read(FUEL),
        battery=read(BATTERY),
        lock_status=read(LOCK_STATUS),
        tire_pressure=read(TIRE_PRESSURE),
        engine_oil=read(ENGINE_OIL),
        charge=read(CHARGE),
        connectivity=read(CONNECTIVITY),
        vehicle=vehicle,
        page=page,
        request_id=request_id,
    )
