"""The Smartcar client's typed readings as the core's telemetry values, for both API versions.

The v2.0 client (`clients.smartcar`) and the V3 client (`clients.smartcar.v3`) return the
same reading types (`Location`, `Odometer`, `Fuel`, `Battery`, `LockStatus`,
`TirePressure`, `EngineOil`), already normalised to percent 0-100, km, litres and kPa, so
one conversion serves the v2 adapter (`adapter`) and the V3 translation (`v3_readings`).
Door names are passed on as the client gives them (`frontLeft`, …); the V3 translation
renames them as the core's model names them (`front_left`, …). v2.0's security endpoint
also reports windows, the trunks (its `storage`: `rear`, `front`) and the sunroof, passed
on the same way (the charging port is not: it is no way into the car).

Charging comes in two shapes. v2 answers it in two paths: `/charge` (`ChargeStatus`:
plugged in, state) and `/charge/limit` (`ChargeLimit`), which the v2 adapter reads in one
batch and joins (`with_charge_limit`). V3 answers one `ChargeState` from its charge
signals. The state is Smartcar's `CHARGING`, `NOT_CHARGING` or `FULLY_CHARGED` (v2's
`state`, V3's `charge-detailedchargingstatus`); a name the gateway does not know is not
reported (None) rather than guessed at, and on V3 a car that sends no detailed status is
CHARGING or NOT_CHARGING by `charge-ischarging`.

`checked_result` then holds a value to the gateway's own bounds (`gateway.core.plausibility`,
which webhook signals meet too), for both API versions: a `recorded_at` outside
2000-01-01 .. one hour after the answer arrived, or an odometer outside 0..10 million km,
or a position outside ±90°/±180°, makes the field UNAVAILABLE with an `IMPLAUSIBLE_VALUE`
failure saying why (a date in the future would otherwise hide every later reading); a
range outside 0..10,000 km, a fuel amount outside 0..2,000 litres, a charge limit outside
0..100 % or minutes to complete outside 0..one week is left out (None) and logged, the
field keeping its other parts, as the webhook parser does. Tyre pressures have no bounds
in the core and pass as read.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from clients import smartcar as sc
from clients.smartcar.v3 import ChargeState
from gateway.core import model
from gateway.core.model import Availability, FieldResult, TelemetryField, UpstreamFailure
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

IMPLAUSIBLE = "IMPLAUSIBLE_VALUE"
"""The failure type of a value outside the gateway's bounds (not one of Smartcar's)."""

_log = logging.getLogger(__name__)


def telemetry_value(value: object) -> model.TelemetryValue | None:
    """Return the core's value for one client reading; None for anything else."""
    match value:
        case sc.Location(latitude=lat, longitude=lon):
            return model.Location(latitude=lat, longitude=lon)
        case sc.Odometer(distance_km=km):
            return model.Odometer(distance_km=km)
        case sc.Fuel():
            return model.Fuel(
                percent_remaining=value.percent_remaining,
                amount_remaining_l=value.amount_remaining_l,
                range_km=value.range_km,
            )
        case sc.Battery():
            return model.Battery(percent_remaining=value.percent_remaining, range_km=value.range_km)
        case sc.LockStatus():
            return model.LockStatus(
                is_locked=value.is_locked,
                doors=_closures(value.doors),
                windows=_closures(value.windows),
                trunks=_closures(value.storage),
                sunroof=_closures(value.sunroof),
            )
        case sc.TirePressure():
            return model.TirePressure(
                front_left_kpa=value.front_left_kpa,
                front_right_kpa=value.front_right_kpa,
                back_left_kpa=value.back_left_kpa,
                back_right_kpa=value.back_right_kpa,
            )
        case sc.EngineOil(life_remaining_percent=oil):
            return model.EngineOil(life_remaining_percent=oil)
        case sc.ChargeStatus(is_plugged_in=plugged_in, state=state):
            return model.Charge(
                is_plugged_in=plugged_in, state=charging_state(state), limit_percent=None
            )
        case ChargeState():
            return _v3_charge(value)
    return None


def _closures(parts: tuple[sc.Closure, ...]) -> tuple[model.DoorState, ...]:
    """Return the client's closures (doors, windows, …) as the core's states."""
    return tuple(model.DoorState(door=part.type, status=part.status) for part in parts)


def charging_state(name: str | None) -> model.ChargingState | None:
    """Return the charging state Smartcar names (None for no name or one not known)."""
    try:
        return model.ChargingState(name.strip().upper()) if name else None
    except ValueError:
        return None


def _v3_charge(value: ChargeState) -> model.Charge:
    state = charging_state(value.status)
    if state is None and value.is_charging is not None:
        charging = value.is_charging
        state = model.ChargingState.CHARGING if charging else model.ChargingState.NOT_CHARGING
    return model.Charge(
        is_plugged_in=value.is_plugged_in,
        state=state,
        limit_percent=value.limit_percent,
        minutes_to_complete=value.minutes_to_complete,
    )


def with_charge_limit(value: model.TelemetryValue, limit: object) -> model.TelemetryValue:
    """Return a v2 charge value joined with its `/charge/limit` reading (`sc.ChargeLimit`);
    anything else leaves it as it is."""
    if isinstance(value, model.Charge) and isinstance(limit, sc.ChargeLimit):
        return dataclasses.replace(value, limit_percent=limit.limit_percent)
    return value


class _Implausible(ValueError):
    """A value or time the gateway will not record; the message says why."""


def checked_result(
    field: TelemetryField,
    value: model.TelemetryValue,
    *,
    recorded_at: datetime | None,
    received_at: datetime,
    source: str,
    time_name: str,
    request_id: str | None = None,
) -> FieldResult:
    """Return the field's result for a value Smartcar sent (`source` names where: a path or
    signal code; `time_name` where `recorded_at` came from), held to the gateway's bounds
    (see the module docstring); `received_at` is when the answer arrived, by the gateway's
    clock."""
    try:
        _check_time(recorded_at, received_at=received_at, name=time_name)
        value = _plausible(field, value)
    except _Implausible as refused:
        failure = UpstreamFailure(
            type=IMPLAUSIBLE, request_id=request_id, description=f"{source}: {refused}"
        )
        return FieldResult(field=field, availability=Availability.UNAVAILABLE, failure=failure)
    return FieldResult(field=field, value=value, recorded_at=recorded_at)


def _check_time(recorded_at: datetime | None, *, received_at: datetime, name: str) -> None:
    """Refuse a recorded time outside the plausible window (None passes: no time given)."""
    if recorded_at is not None and not plausible_time(recorded_at, arrived_at=received_at):
        raise _Implausible(
            f"{name} {recorded_at.isoformat()} is not between {EARLIEST:%Y-%m-%d} "
            f"and {MAX_AHEAD} after the answer arrived"
        )


def _plausible(field: TelemetryField, value: model.TelemetryValue) -> model.TelemetryValue:
    """Return the value with implausible optional parts left out; raise `_Implausible`
    for an implausible required one."""
    match value:
        case model.Odometer(distance_km=km):
            _require(km, ODOMETER_KM, "distance", "km")
        case model.Location(latitude=latitude, longitude=longitude):
            _require(latitude, LATITUDE, "latitude", "°")
            _require(longitude, LONGITUDE, "longitude", "°")
        case model.Battery(range_km=range_km):
            return dataclasses.replace(
                value, range_km=_optional(field, range_km, RANGE_KM, "range", "km")
            )
        case model.Fuel(range_km=range_km, amount_remaining_l=amount):
            return dataclasses.replace(
                value,
                range_km=_optional(field, range_km, RANGE_KM, "range", "km"),
                amount_remaining_l=_optional(field, amount, FUEL_L, "amount", "l"),
            )
        case model.Charge(limit_percent=limit, minutes_to_complete=minutes):
            return dataclasses.replace(
                value,
                limit_percent=_optional(field, limit, PERCENT, "charge limit", "%"),
                minutes_to_complete=_optional(field, minutes, CHARGE_MINUTES, "time", "min"),
            )
    return value


def _require(number: float, bounds: Bounds, what: str, unit: str) -> None:
    if number not in bounds:
        raise _Implausible(_outside(number, bounds, what, unit))


def _optional(
    field: TelemetryField, number: float | None, bounds: Bounds, what: str, unit: str
) -> float | None:
    """Return `number` if it is within `bounds`, else None (logged)."""
    if number is None or number in bounds:
        return number
    _log.warning(
        "an implausible part of a Smartcar reading was left out",
        extra={"field": field.value, "reason": _outside(number, bounds, what, unit)},
    )
    return None


def _outside(number: float, bounds: Bounds, what: str, unit: str) -> str:
    return f"{what} {number:g} {unit} is outside {bounds.low:g}..{bounds.high:g} {unit}"
