"""What a vehicle reports: the v2 read endpoints, their permissions, and their bodies.

Readings are pure functions of the vehicle and a moment in simulated time, so they are
deterministic and consistent: a car drives `km_per_day` every day from the moment it
entered the simulation; its fuel and charge fall with the distance and are topped up (to
95 %) when they reach 10 %; its oil life falls by 1 per 15,000 km and resets after a change;
its position wanders a few kilometres around where it was parked.

Cars report on a schedule (every 1, 5, 15, 30 or 60 minutes, with a per-car phase), and a
read returns the last report, not the present: `SC-Data-Age` is that report's time, and the
values are computed at that time. The lock status is reported again whenever it changes
(a command or `/sim/vehicles/{id}/state`), and so is the charge (`/charge`, `/charge/limit`:
a charge command, or the plug).

Units follow `SC-Unit-System`: metric is km, litres and kPa; imperial is miles, US gallons
and psi. Fractions (`percentRemaining`, `lifeRemaining`, the charge `limit`) are 0-1, as
Smartcar v2 sends them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clients.simulator import charging
from clients.simulator.fleet import Powertrain
from clients.simulator.vehicles import VehicleState

_MILES_PER_KM = 0.621371
_GALLONS_PER_LITRE = 0.264172
_PSI_PER_KPA = 0.145038
_OIL_KM = 15_000.0


class Units(StrEnum):
    """The unit systems Smartcar answers in."""

    METRIC = "metric"
    IMPERIAL = "imperial"


Reader = Callable[[VehicleState, float, Units], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class ReadEndpoint:
    """One GET endpoint under `/v2.0/vehicles/{id}`: who may call it, on which cars."""

    name: str
    permission: str | None
    powertrains: frozenset[Powertrain]
    reader: Reader
    needs_awake: bool = True
    reports_data_age: bool = True

    def capable(self, state: VehicleState) -> bool:
        """Tell whether the vehicle can answer this endpoint at all."""
        return state.spec.powertrain in self.powertrains


def distance_km(state: VehicleState, at_s: float) -> float:
    """Return how far the car has driven since it entered the simulation, at `at_s`."""
    return state.spec.km_per_day * max(0.0, at_s - state.born_s) / 86_400


def recorded_at(state: VehicleState, endpoint: ReadEndpoint, now_s: float) -> float:
    """Return when the car last reported the data `endpoint` returns, as of `now_s`."""
    changed_s = None
    if endpoint.name == "security":
        changed_s = state.security_changed_s
    elif endpoint.name in _CHARGE_ENDPOINTS:
        changed_s = state.charge_changed_s
    return last_report_s(state, now_s, changed_s=changed_s)


def last_report_s(state: VehicleState, now_s: float, *, changed_s: float | None = None) -> float:
    """Return the car's last scheduled report as of `now_s`, or `changed_s` when the data
    changed (and was reported again) after it."""
    spec = state.spec
    report_s = now_s - ((now_s - spec.report_phase_s) % spec.report_interval_s)
    if changed_s is not None and changed_s > report_s:
        return min(changed_s, now_s)
    return report_s


def _sawtooth(start: float, used: float, *, low: float, high: float) -> float:
    """Return a level that falls by `used` from `start` and is refilled to `high` at `low`."""
    if start - used >= low:
        return start - used
    over = used - (start - low)
    return high - (over % (high - low))


def _distance(value_km: float, units: Units) -> float:
    """Convert kilometres to the unit system's distance unit, rounded for the wire."""
    return round(value_km * _MILES_PER_KM if units is Units.IMPERIAL else value_km, 1)


def _attributes(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}`."""
    spec = state.spec
    return {"id": spec.id, "make": spec.make, "model": spec.model, "year": spec.year}


def _vin(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/vin`."""
    return {"vin": state.spec.vin}


def _odometer(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/odometer`."""
    return {"distance": _distance(state.spec.odometer_km + distance_km(state, at_s), units)}


def _location(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/location`."""
    travelled = distance_km(state, at_s)
    return {
        "latitude": round(state.spec.latitude + 0.02 * math.sin(travelled / 37), 6),
        "longitude": round(state.spec.longitude + 0.02 * math.sin(travelled / 53), 6),
    }


def fuel_fraction(state: VehicleState, at_s: float) -> float:
    """Return the fuel level (0-1) at `at_s`."""
    spec = state.spec
    assert spec.fuel_fraction is not None
    assert spec.fuel_range_km is not None
    used = distance_km(state, at_s) / spec.fuel_range_km
    return _sawtooth(spec.fuel_fraction, used, low=0.1, high=0.95)


def charge_fraction(state: VehicleState, at_s: float) -> float:
    """Return the battery level (0-1) at `at_s`."""
    spec = state.spec
    assert spec.charge_fraction is not None
    assert spec.electric_range_km is not None
    used = distance_km(state, at_s) / spec.electric_range_km
    return _sawtooth(spec.charge_fraction, used, low=0.1, high=0.95)


def _fuel(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/fuel`."""
    spec = state.spec
    assert spec.tank_l is not None
    assert spec.fuel_range_km is not None
    fraction = fuel_fraction(state, at_s)
    litres = fraction * spec.tank_l
    amount = litres * _GALLONS_PER_LITRE if units is Units.IMPERIAL else litres
    return {
        "amountRemaining": round(amount, 1),
        "percentRemaining": round(fraction, 3),
        "range": _distance(fraction * spec.fuel_range_km, units),
    }


def _battery(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/battery`."""
    assert state.spec.electric_range_km is not None
    fraction = charge_fraction(state, at_s)
    return {
        "percentRemaining": round(fraction, 3),
        "range": _distance(fraction * state.spec.electric_range_km, units),
    }


def _engine_oil(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/engine/oil`."""
    assert state.spec.oil_life is not None
    used = distance_km(state, at_s) / _OIL_KM
    return {"lifeRemaining": round(_sawtooth(state.spec.oil_life, used, low=0.1, high=1.0), 3)}


def _tires(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/tires/pressure` (floats, as the real API sends)."""
    factor = _PSI_PER_KPA if units is Units.IMPERIAL else 1.0
    front_left, front_right, back_left, back_right = (
        round(kpa * factor, 1) for kpa in state.spec.tire_kpa
    )
    return {
        "frontLeft": front_left,
        "frontRight": front_right,
        "backLeft": back_left,
        "backRight": back_right,
    }


def _security(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/security`; arrays are empty where the car lacks the part."""
    spec = state.spec
    doors = [
        {"type": side, "status": "OPEN" if state.door_open and side == "frontLeft" else "CLOSED"}
        for side in ("frontLeft", "frontRight", "backLeft", "backRight")
    ]
    windows = [
        {"type": side, "status": "CLOSED"}
        for side in ("frontLeft", "frontRight", "backLeft", "backRight")
    ]
    storage = [{"type": "rear", "status": "CLOSED"}]
    if spec.powertrain is Powertrain.BEV:
        storage.append({"type": "front", "status": "CLOSED"})
    has_port = spec.powertrain.has_battery
    return {
        "isLocked": state.locked,
        "doors": doors,
        "windows": windows,
        "sunroof": [{"type": "sunroof", "status": "CLOSED"}] if spec.has_sunroof else [],
        "storage": storage,
        "chargingPort": [{"type": "chargingPort", "status": "CLOSED"}] if has_port else [],
    }


def _charge(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/charge`."""
    return {"isPluggedIn": state.plugged_in, "state": charging.state_name(state)}


def _charge_limit(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Body of `GET /vehicles/{id}/charge/limit` (a fraction, as v2 sends it)."""
    return {"limit": state.charge_limit / 100}


_ALL = frozenset(Powertrain)
_FUEL = frozenset({Powertrain.ICE, Powertrain.PHEV})
_BATTERY = frozenset({Powertrain.BEV, Powertrain.PHEV})
_CHARGE_ENDPOINTS = frozenset({"charge", "charge/limit"})

READ_ENDPOINTS: dict[str, ReadEndpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        ReadEndpoint(
            name="attributes",
            permission="read_vehicle_info",
            powertrains=_ALL,
            reader=_attributes,
            needs_awake=False,
            reports_data_age=False,
        ),
        ReadEndpoint(
            name="vin",
            permission="read_vin",
            powertrains=_ALL,
            reader=_vin,
            needs_awake=False,
            reports_data_age=False,
        ),
        ReadEndpoint(
            name="location", permission="read_location", powertrains=_ALL, reader=_location
        ),
        ReadEndpoint(
            name="odometer", permission="read_odometer", powertrains=_ALL, reader=_odometer
        ),
        ReadEndpoint(name="fuel", permission="read_fuel", powertrains=_FUEL, reader=_fuel),
        ReadEndpoint(
            name="battery", permission="read_battery", powertrains=_BATTERY, reader=_battery
        ),
        ReadEndpoint(
            name="security", permission="read_security", powertrains=_ALL, reader=_security
        ),
        ReadEndpoint(
            name="tires/pressure", permission="read_tires", powertrains=_ALL, reader=_tires
        ),
        ReadEndpoint(
            name="engine/oil",
            permission="read_engine_oil",
            powertrains=_FUEL,
            reader=_engine_oil,
        ),
        ReadEndpoint(name="charge", permission="read_charge", powertrains=_BATTERY, reader=_charge),
        ReadEndpoint(
            name="charge/limit",
            permission="read_charge",
            powertrains=_BATTERY,
            reader=_charge_limit,
        ),
    )
}
