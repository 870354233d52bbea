"""The V3 signals a simulated car reports: codes, names, permissions, and their bodies.

One catalogue serves the REST signals (`v3_routes`) and the webhook payloads
(`webhook_payloads`). Codes, names, groups and bodies follow Smartcar's signal schema pages
(the documented example where one exists):

    code                                      body                           permission
    location-preciselocation                  {latitude, longitude,          read_location
                                               locationType}
    odometer-traveleddistance                 {unit, value}                  read_odometer
    tractionbattery-stateofcharge             {unit: percent, value 0-100}   read_battery
    tractionbattery-range                     {unit, value}                  read_battery
    internalcombustionengine-fuellevel        {unit: percent, value 0-100}   read_fuel
    internalcombustionengine-amountremaining  {unit, value}                  read_fuel
    internalcombustionengine-range            {unit, value}                  read_fuel
    internalcombustionengine-oillife          {unit: percent, value 0-100}   read_engine_oil
    closure-islocked                          {value}                        read_security
    closure-doors                             {values: [{row, column,        read_security
                                               isOpen, isLocked}],
                                               rowCount, columnCount}
    connectivitystatus-isasleep               {value}                        read_vehicle_info
    wheel-tires                               {values: [{row, column,        read_tires
                                               tirePressure}], unit,
                                               rowCount, columnCount}
    charge-ischarging                         {value}                        read_charge
    charge-ischargingcableconnected           {value}                        read_charge
    charge-detailedchargingstatus             {value: CHARGING |             read_charge
                                               NOT_CHARGING}
    charge-chargelimits                       {values: [{type: GLOBAL,       read_charge
                                               limit}], activeLimit,
                                               unit: percent}
    connectivitystatus-isonline               {value}                        read_vehicle_info
    vehicleidentification-vin                 {value}                        read_vin

Choices where the sources differ or are silent:

- unit strings are the documented examples' (`kilometers`, `liters`, `percent`), not the
  short forms live payloads carry (`km`); `wheel-tires`, documented nowhere, uses `kPa`, the
  only form seen. With `sc-unit-system: imperial` distances are `miles`, fuel `gallons`,
  pressures `psi` (the spellings live imperial deliveries use);
- rows and columns: row 0 is the front, column 0 the left;
- the connectivity signals need `read_vehicle_info` (no page names their permission); a car
  is online exactly when it is awake;
- `tractionbattery-range` carries the documented example's `{unit, value}` (the schema
  also lists `type` and `additionalValues`).

When a reading was taken: the car's last scheduled report (see `readings`), or the moment
the lock or the charge state changed when that came later; a sleeping car reports nothing
new, so its readings stay those of its last report before it fell asleep. The
connectivity signals are Smartcar's own view, always as of now; the VIN never changes and
carries no report time (Smartcar stamps such signals 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from clients.simulator import charging
from clients.simulator.fleet import Powertrain
from clients.simulator.readings import READ_ENDPOINTS, Units, last_report_s
from clients.simulator.vehicles import VehicleState

Body = Callable[[VehicleState, float, Units], dict[str, Any]]
"""A signal's body from the car's state at a moment (epoch seconds), in a unit system."""


class Timing(Enum):
    """When a signal's value was recorded."""

    REPORTED = "reported"
    """On the car's report schedule (or when the lock or charge state changed)."""
    LIVE = "live"
    """Smartcar's own view of the car, always current."""
    STATIC = "static"
    """Never changes; carries no report time."""


@dataclass(frozen=True, kw_only=True)
class SignalSpec:
    """One signal of the catalogue."""

    code: str
    name: str
    group: str
    permission: str
    powertrains: frozenset[Powertrain]
    body: Body
    timing: Timing = Timing.REPORTED
    changed: Callable[[VehicleState], float | None] = lambda _state: None
    """When the value last changed out of the report schedule (a command), if ever."""

    def ref(self) -> dict[str, str]:
        """Return the `{code, name, group}` triple naming this signal."""
        return {"code": self.code, "name": self.name, "group": self.group}

    def capable(self, state: VehicleState) -> bool:
        """Tell whether the car can report this signal at all."""
        return state.spec.powertrain in self.powertrains


@dataclass(frozen=True, kw_only=True)
class SignalReading:
    """A signal as the car last reported it: its body, and when it was recorded (None:
    a static value without a report time)."""

    spec: SignalSpec
    body: dict[str, Any]
    recorded_s: float | None


def read(state: VehicleState, spec: SignalSpec, *, now_s: float, units: Units) -> SignalReading:
    """Return the signal as of `now_s` (the caller checked `spec.capable(state)`)."""
    if spec.timing is Timing.LIVE:
        return SignalReading(spec=spec, body=spec.body(state, now_s, units), recorded_s=now_s)
    if spec.timing is Timing.STATIC:
        return SignalReading(spec=spec, body=spec.body(state, now_s, units), recorded_s=None)
    until_s = now_s
    if state.asleep and state.asleep_since_s is not None:
        until_s = min(now_s, state.asleep_since_s)
    recorded_s = last_report_s(state, until_s, changed_s=spec.changed(state))
    return SignalReading(spec=spec, body=spec.body(state, recorded_s, units), recorded_s=recorded_s)


def _v2(endpoint: str, state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    """Return the v2 reading a signal is made from (so both versions report the same car)."""
    return READ_ENDPOINTS[endpoint].reader(state, at_s, units)


def _distance_unit(units: Units) -> str:
    return "miles" if units is Units.IMPERIAL else "kilometers"


def _measure(endpoint: str, key: str, unit: Callable[[Units], str]) -> Body:
    """A `{unit, value}` signal from a field of a v2 reading (already in `units`)."""

    def body(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
        return {"unit": unit(units), "value": _v2(endpoint, state, at_s, units)[key]}

    return body


def _percent(endpoint: str, key: str) -> Body:
    """A percent signal (0-100) from a v2 fraction (0-1)."""

    def body(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
        fraction = _v2(endpoint, state, at_s, units)[key]
        return {"unit": "percent", "value": round(fraction * 100, 1)}

    return body


def _location(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    reading = _v2("location", state, at_s, units)
    return {
        "latitude": reading["latitude"],
        "longitude": reading["longitude"],
        "locationType": "CURRENT",
    }


_DOOR_POSITIONS = {
    "frontLeft": (0, 0),
    "frontRight": (0, 1),
    "backLeft": (1, 0),
    "backRight": (1, 1),
}


def _doors(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    reading = _v2("security", state, at_s, units)
    values = [
        {
            "row": _DOOR_POSITIONS[door["type"]][0],
            "column": _DOOR_POSITIONS[door["type"]][1],
            "isOpen": door["status"] == "OPEN",
            "isLocked": reading["isLocked"],
        }
        for door in reading["doors"]
    ]
    return {"values": values, "rowCount": 2, "columnCount": 2}


def _tires(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    reading = _v2("tires/pressure", state, at_s, units)
    values = [
        {"row": row, "column": column, "tirePressure": reading[side]}
        for side, (row, column) in _DOOR_POSITIONS.items()
    ]
    unit = "psi" if units is Units.IMPERIAL else "kPa"
    return {"values": values, "unit": unit, "rowCount": 2, "columnCount": 2}


def _charge_limits(state: VehicleState, at_s: float, units: Units) -> dict[str, Any]:
    limit = state.charge_limit
    return {
        "values": [{"type": "GLOBAL", "limit": limit}],
        "activeLimit": limit,
        "unit": "percent",
    }


def _value(read_value: Callable[[VehicleState], object]) -> Body:
    """A `{value}` signal from the car's state."""
    return lambda state, _at_s, _units: {"value": read_value(state)}


_ALL = frozenset(Powertrain)
_FUEL = frozenset({Powertrain.ICE, Powertrain.PHEV})
_BATTERY = frozenset({Powertrain.BEV, Powertrain.PHEV})


def _security_changed(state: VehicleState) -> float | None:
    return state.security_changed_s


def _charge_changed(state: VehicleState) -> float | None:
    return state.charge_changed_s


def _litres_unit(units: Units) -> str:
    return "gallons" if units is Units.IMPERIAL else "liters"


def _spec(
    code: str,
    name: str,
    permission: str,
    powertrains: frozenset[Powertrain],
    body: Body,
    **options: Any,
) -> SignalSpec:
    """Return a catalogue entry; the group is the code's prefix, as Smartcar names them."""
    return SignalSpec(
        code=code,
        name=name,
        group=_GROUPS[code.partition("-")[0]],
        permission=permission,
        powertrains=powertrains,
        body=body,
        **options,
    )


_GROUPS = {
    "location": "Location",
    "odometer": "Odometer",
    "tractionbattery": "TractionBattery",
    "internalcombustionengine": "InternalCombustionEngine",
    "closure": "Closure",
    "connectivitystatus": "ConnectivityStatus",
    "wheel": "Wheel",
    "charge": "Charge",
    "vehicleidentification": "VehicleIdentification",
}

SIGNALS: tuple[SignalSpec, ...] = (
    _spec("location-preciselocation", "PreciseLocation", "read_location", _ALL, _location),
    _spec(
        "odometer-traveleddistance",
        "TraveledDistance",
        "read_odometer",
        _ALL,
        _measure("odometer", "distance", _distance_unit),
    ),
    _spec(
        "tractionbattery-stateofcharge",
        "StateOfCharge",
        "read_battery",
        _BATTERY,
        _percent("battery", "percentRemaining"),
    ),
    _spec(
        "tractionbattery-range",
        "Range",
        "read_battery",
        _BATTERY,
        _measure("battery", "range", _distance_unit),
    ),
    _spec(
        "internalcombustionengine-fuellevel",
        "FuelLevel",
        "read_fuel",
        _FUEL,
        _percent("fuel", "percentRemaining"),
    ),
    _spec(
        "internalcombustionengine-amountremaining",
        "AmountRemaining",
        "read_fuel",
        _FUEL,
        _measure("fuel", "amountRemaining", _litres_unit),
    ),
    _spec(
        "internalcombustionengine-range",
        "Range",
        "read_fuel",
        _FUEL,
        _measure("fuel", "range", _distance_unit),
    ),
    _spec(
        "internalcombustionengine-oillife",
        "OilLife",
        "read_engine_oil",
        _FUEL,
        _percent("engine/oil", "lifeRemaining"),
    ),
    _spec(
        "closure-islocked",
        "IsLocked",
        "read_security",
        _ALL,
        _value(lambda state: state.locked),
        changed=_security_changed,
    ),
    _spec("closure-doors", "Doors", "read_security", _ALL, _doors, changed=_security_changed),
    _spec(
        "connectivitystatus-isasleep",
        "IsAsleep",
        "read_vehicle_info",
        _ALL,
        _value(lambda state: state.asleep),
        timing=Timing.LIVE,
    ),
    _spec("wheel-tires", "Tires", "read_tires", _ALL, _tires),
    _spec(
        "charge-ischarging",
        "IsCharging",
        "read_charge",
        _BATTERY,
        _value(lambda state: state.charging),
        changed=_charge_changed,
    ),
    _spec(
        "charge-ischargingcableconnected",
        "IsChargingCableConnected",
        "read_charge",
        _BATTERY,
        _value(lambda state: state.plugged_in),
        changed=_charge_changed,
    ),
    _spec(
        "charge-detailedchargingstatus",
        "DetailedChargingStatus",
        "read_charge",
        _BATTERY,
        _value(charging.state_name),
        changed=_charge_changed,
    ),
    _spec(
        "charge-chargelimits",
        "ChargeLimits",
        "read_charge",
        _BATTERY,
        _charge_limits,
        changed=_charge_changed,
    ),
    _spec(
        "connectivitystatus-isonline",
        "IsOnline",
        "read_vehicle_info",
        _ALL,
        _value(lambda state: not state.asleep),
        timing=Timing.LIVE,
    ),
    _spec(
        "vehicleidentification-vin",
        "Vin",
        "read_vin",
        _ALL,
        _value(lambda state: state.spec.vin),
        timing=Timing.STATIC,
    ),
)
SIGNALS_BY_CODE = {spec.code: spec for spec in SIGNALS}
