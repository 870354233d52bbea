"""The values the Smartcar client returns: small frozen dataclasses, already normalised.

Percentages are 0-100, distances kilometres, volumes litres, pressures kPa, whatever
unit system Smartcar answered in; ``Meta.unit_system`` records which one that was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from clients.smartcar.errors import SmartcarError
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem

__all__ = [
    "ActionResult",
    "Attributes",
    "BatchItem",
    "BatchResult",
    "Battery",
    "Capability",
    "ChargeLimit",
    "ChargeStatus",
    "Closure",
    "Compatibility",
    "Connection",
    "EngineOil",
    "Fuel",
    "Location",
    "LockStatus",
    "Meta",
    "Odometer",
    "PermissionPage",
    "Reading",
    "TirePressure",
    "TokenPair",
    "VehiclePage",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """What Smartcar's response headers say about a value."""

    data_age: datetime | None
    """When the vehicle recorded the value (``sc-data-age``)."""
    fetched_at: datetime | None
    """When Smartcar fetched it from the manufacturer (``sc-fetched-at``)."""
    request_id: str | None
    """Smartcar's request id (``sc-request-id``), for support tickets."""
    unit_system: UnitSystem
    """The unit system Smartcar answered in (the one requested when it did not say)."""


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """A value with the metadata of the response that carried it."""

    value: T
    meta: Meta


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPair:
    """An access/refresh token pair with absolute, timezone-aware UTC expiry times."""

    access_token: Secret
    refresh_token: Secret
    token_type: str
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePage:
    """One page of the vehicle ids a token can reach."""

    vehicle_ids: tuple[str, ...]
    count: int
    """Total number of vehicles, across all pages."""
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionPage:
    """One page of the permissions granted for a vehicle."""

    permissions: tuple[str, ...]
    count: int
    """Total number of permissions, across all pages."""
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Attributes:
    """A vehicle's identity: Smartcar id, make, model and model year."""

    id: str
    make: str
    model: str
    year: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where the vehicle is, in decimal degrees."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Odometer:
    """The odometer reading."""

    distance_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fuel:
    """The fuel tank; any field may be None (European vehicles often send nulls)."""

    percent_remaining: float | None
    amount_remaining_l: float | None
    range_km: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Battery:
    """The traction battery of an EV or PHEV."""

    percent_remaining: float | None
    range_km: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeStatus:
    """An EV's or PHEV's charging (``GET /charge``): whether a cable is plugged in, and the
    charging state as Smartcar names it (``CHARGING``, ``FULLY_CHARGED``, ``NOT_CHARGING``;
    upper-cased, any other name passed on as sent)."""

    is_plugged_in: bool
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeLimit:
    """The charge limit (``GET /charge/limit``): the state of charge at which charging
    stops, in percent 0-100 (v2 sends a fraction)."""

    limit_percent: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TirePressure:
    """Tire pressures; None where the vehicle does not report a tire."""

    front_left_kpa: float | None
    front_right_kpa: float | None
    back_left_kpa: float | None
    back_right_kpa: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOil:
    """Remaining engine-oil life; 100 means just changed."""

    life_remaining_percent: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Closure:
    """One door, window, sunroof, storage or charging port: ``OPEN``, ``CLOSED``, ``UNKNOWN``."""

    type: str
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LockStatus:
    """Whether the vehicle is locked, and what is open (empty where unsupported)."""

    is_locked: bool
    doors: tuple[Closure, ...] = ()
    windows: tuple[Closure, ...] = ()
    sunroof: tuple[Closure, ...] = ()
    storage: tuple[Closure, ...] = ()
    charging_port: tuple[Closure, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """Smartcar's acknowledgement of a command (``status`` is ``success`` when sent)."""

    status: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """One deleted connection between a Smartcar user and a vehicle."""

    user_id: str
    vehicle_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchItem:
    """One path's answer inside a batch: a value or an error, with its own meta."""

    path: str
    status: int
    value: object | None
    error: SmartcarError | None
    meta: Meta

    @property
    def ok(self) -> bool:
        """Return True when the item carries a value rather than an error."""
        return self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """Every path's answer of one batch request, in Smartcar's order."""

    items: tuple[BatchItem, ...]
    meta: Meta

    def item(self, path: str) -> BatchItem:
        """Return the item for ``path``; KeyError if Smartcar did not answer it."""
        for item in self.items:
            if item.path == path:
                return item
        raise KeyError(path)

    def reading(self, path: str, kind: type[T]) -> Reading[T]:
        """Return ``path``'s value as a Reading of ``kind``, or raise the item's error."""
        item = self.item(path)
        if item.error is not None:
            raise item.error
        if not isinstance(item.value, kind):
            raise TypeError(f"{path} holds {type(item.value).__name__}, not {kind.__name__}")
        return Reading(item.value, item.meta)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    """Whether a vehicle is likely capable of one endpoint a permission authorises
    (the Compatibility API's ``capabilities[]``)."""

    permission: str
    endpoint: str
    """The endpoint the permission authorises, as Smartcar names it (``/engine/oil``)."""
    capable: bool
    reason: str | None
    """Why not, when not capable (``VEHICLE_NOT_CAPABLE``, ``SMARTCAR_NOT_CAPABLE``, …)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Compatibility:
    """The Compatibility API's answer for one VIN: likely compatible or not, why not, and
    the capabilities of the endpoints the permissions asked about authorise (empty when
    not compatible, and outside the United States, where Smartcar does not check them)."""

    compatible: bool
    reason: str | None
    """Why not, when not compatible, as Smartcar sends it (a code such as
    ``MAKE_NOT_COMPATIBLE``)."""
    capabilities: tuple[Capability, ...] = ()
