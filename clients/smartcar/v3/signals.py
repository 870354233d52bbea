"""V3 signals: each one as Smartcar sent it, and the typed fields the gateway reads.

A signal is a JSON:API resource (``GET /v3/vehicles/{id}/signals``) or an item of a
webhook's ``data.signals``; both read into ``Signal``: its code, status, body, error and
times. ``VehicleSignals`` adds one typed reading per ``SignalField``, built from the
signals ``FIELD_SIGNALS`` names, with values normalised (kilometres, litres, kPa,
percent 0-100) whatever units Smartcar spelled:

| field         | signals, first to last                                                |
|---------------|-----------------------------------------------------------------------|
| location      | location-preciselocation (required)                                   |
| odometer      | odometer-traveleddistance (required)                                  |
| fuel          | internalcombustionengine-fuellevel, -amountremaining, -range          |
| battery       | tractionbattery-stateofcharge, tractionbattery-range                  |
| lock_status   | closure-islocked (required), closure-doors                            |
| tire_pressure | wheel-tires (required)                                                |
| engine_oil    | internalcombustionengine-oillife (required)                           |
| charge        | charge-ischarging, charge-ischargingcableconnected,                   |
|               | charge-detailedchargingstatus, charge-chargelimits,                   |
|               | charge-timetocomplete                                                 |
| connectivity  | connectivitystatus-isonline, connectivitystatus-isasleep              |

A field is absent (None) when Smartcar sent none of its signals, or not its required one.
It is a ``SignalFailure`` when its required signal (or, without one, every signal it has)
failed: status ERROR or UNAVAILABLE, with Smartcar's typed error when it gave one
(``CompatibilityError`` for a car that cannot report it), or a body we cannot read
(``SmartcarProtocolError``). Otherwise it is a ``SignalValue`` whose parts from failed
optional signals are None. Its times are those of its first successful signal:
``oem_updated_at`` (when the car recorded it) and ``retrieved_at`` (when Smartcar fetched
it; live users report it "always looks fresh", so freshness is ``oem_updated_at``'s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeAlias, TypeVar

from clients.smartcar.errors import SmartcarAPIError, SmartcarError
from clients.smartcar.models import (
    Battery,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TirePressure,
)
from clients.smartcar.v3.models import Page, Vehicle

__all__ = [
    "FIELD_SIGNALS",
    "ChargeState",
    "Connectivity",
    "Signal",
    "SignalCode",
    "SignalFailure",
    "SignalField",
    "SignalReading",
    "SignalStatus",
    "SignalValue",
    "VehicleSignals",
]

T = TypeVar("T")


class SignalCode(StrEnum):
    """The V3 signal codes the gateway reads (``<group>-<name>``, lower case)."""

    LOCATION = "location-preciselocation"
    ODOMETER = "odometer-traveleddistance"
    FUEL_LEVEL = "internalcombustionengine-fuellevel"
    FUEL_AMOUNT = "internalcombustionengine-amountremaining"
    FUEL_RANGE = "internalcombustionengine-range"
    OIL_LIFE = "internalcombustionengine-oillife"
    BATTERY_LEVEL = "tractionbattery-stateofcharge"
    BATTERY_RANGE = "tractionbattery-range"
    IS_LOCKED = "closure-islocked"
    DOORS = "closure-doors"
    TIRES = "wheel-tires"
    IS_CHARGING = "charge-ischarging"
    PLUGGED_IN = "charge-ischargingcableconnected"
    CHARGING_STATUS = "charge-detailedchargingstatus"
    CHARGE_LIMITS = "charge-chargelimits"
    TIME_TO_COMPLETE = "charge-timetocomplete"
    IS_ONLINE = "connectivitystatus-isonline"
    IS_ASLEEP = "connectivitystatus-isasleep"
    VIN = "vehicleidentification-vin"


class SignalField(StrEnum):
    """A typed reading of ``VehicleSignals``; the first seven match the gateway's fields."""

    LOCATION = "location"
    ODOMETER = "odometer"
    FUEL = "fuel"
    BATTERY = "battery"
    LOCK_STATUS = "lock_status"
    TIRE_PRESSURE = "tire_pressure"
    ENGINE_OIL = "engine_oil"
    CHARGE = "charge"
    CONNECTIVITY = "connectivity"


FIELD_SIGNALS: Mapping[SignalField, tuple[SignalCode, ...]] = {
    SignalField.LOCATION: (SignalCode.LOCATION,),
    SignalField.ODOMETER: (SignalCode.ODOMETER,),
    SignalField.FUEL: (SignalCode.FUEL_LEVEL, SignalCode.FUEL_AMOUNT, SignalCode.FUEL_RANGE),
    SignalField.BATTERY: (SignalCode.BATTERY_LEVEL, SignalCode.BATTERY_RANGE),
    SignalField.LOCK_STATUS: (SignalCode.IS_LOCKED, SignalCode.DOORS),
    SignalField.TIRE_PRESSURE: (SignalCode.TIRES,),
    SignalField.ENGINE_OIL: (SignalCode.OIL_LIFE,),
    SignalField.CHARGE: (
        SignalCode.IS_CHARGING,
        SignalCode.PLUGGED_IN,
        SignalCode.CHARGING_STATUS,
        SignalCode.CHARGE_LIMITS,
        SignalCode.TIME_TO_COMPLETE,
    ),
    SignalField.CONNECTIVITY: (SignalCode.IS_ONLINE, SignalCode.IS_ASLEEP),
}
"""Which signals make which field, first to last (see the module docstring)."""


class SignalStatus(StrEnum):
    """A signal's ``status.value``; an unknown value reads as UNAVAILABLE."""

    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One signal as Smartcar sent it: its body is left as JSON (units not normalised)."""

    code: str
    status: SignalStatus
    body: Mapping[str, object] = field(default_factory=dict)
    """The signal's ``body`` (``{"value": 80, "unit": "percent"}``); empty when absent."""
    name: str | None = None
    group: str | None = None
    error: SmartcarAPIError | None = None
    """Smartcar's typed error for a failed signal, when it named one."""
    oem_updated_at: datetime | None = None
    retrieved_at: datetime | None = None
    ingested_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeState:
    """Charging as the charge signals report it (a part the car does not send is None)."""

    is_charging: bool | None = None
    is_plugged_in: bool | None = None
    status: str | None = None
    """``CHARGING``, ``NOT_CHARGING``, ``FULLY_CHARGED`` (upper-cased as received)."""
    limit_percent: float | None = None
    """The charge limit in force (percent 0-100): ``charge-chargelimits``' ``activeLimit``
    when it has one (the car is plugged in and charging), else its GLOBAL limit."""
    minutes_to_complete: float | None = None
    """Minutes until the charge reaches its limit (``charge-timetocomplete``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Connectivity:
    """Whether the car is online and whether it sleeps (a part not sent is None)."""

    is_online: bool | None = None
    is_asleep: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalValue(Generic[T]):
    """A field's value, with the times of the signal it came from."""

    code: str
    """The first successful signal of the field (whose times these are)."""
    value: T
    oem_updated_at: datetime | None = None
    retrieved_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalFailure:
    """Why a field has no value: its signal's status and error."""

    code: str
    """The signal that failed."""
    status: SignalStatus
    """What Smartcar said (SUCCESS with an unreadable body is a protocol error)."""
    error: SmartcarError | None = None
    oem_updated_at: datetime | None = None
    retrieved_at: datetime | None = None


SignalReading: TypeAlias = SignalValue[T] | SignalFailure
"""A field's reading: a value, or why there is none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleSignals:
    """Every signal of one answer, and the typed field readings built from them."""

    signals: tuple[Signal, ...]
    location: SignalReading[Location] | None = None
    odometer: SignalReading[Odometer] | None = None
    fuel: SignalReading[Fuel] | None = None
    battery: SignalReading[Battery] | None = None
    lock_status: SignalReading[LockStatus] | None = None
    tire_pressure: SignalReading[TirePressure] | None = None
    engine_oil: SignalReading[EngineOil] | None = None
    charge: SignalReading[ChargeState] | None = None
    connectivity: SignalReading[Connectivity] | None = None
    vehicle: Vehicle | None = None
    """The vehicle when the answer includes it (``included.vehicle``)."""
    page: Page | None = None
    """Paging of a ``/signals`` answer (not followed: every call is billed)."""
    request_id: str | None = None

    def signal(self, code: str) -> Signal | None:
        """Return the signal with ``code`` (the last one, should Smartcar repeat it)."""
        found = None
        for signal in self.signals:
            if signal.code == code:
                found = signal
        return found

    def reading(self, field: SignalField) -> SignalReading[object] | None:
        """Return the reading of ``field`` (as its typed attribute holds it)."""
        reading: SignalReading[object] | None = getattr(self, SignalField(field).value)
        return reading
