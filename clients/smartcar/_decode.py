"""Decoders from Smartcar v2 response bodies to our models, normalising units on the way.

Each decoder takes the parsed JSON body and the unit system it was sent in; a body
that lacks a documented key or has the wrong type raises SmartcarProtocolError
(naming the key, never echoing values).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from clients.smartcar._json import JsonObject
from clients.smartcar.errors import SmartcarProtocolError
from clients.smartcar.models import (
    ActionResult,
    Attributes,
    Battery,
    ChargeLimit,
    ChargeStatus,
    Closure,
    Connection,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    PermissionPage,
    TirePressure,
    TokenPair,
    VehiclePage,
)
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem, kilometres, kilopascals, litres, percent

Decoder = Callable[[object, UnitSystem], Any]


def _maybe(
    convert: Callable[[float, UnitSystem], float], value: float | None, units: UnitSystem
) -> float | None:
    """Apply a unit conversion to a value that may be null."""
    return None if value is None else convert(value, units)


def _percent(fraction: float | None) -> float | None:
    """Turn a fraction that may be null into a percentage."""
    return None if fraction is None else percent(fraction)


def user_id(raw: object, units: UnitSystem) -> str:
    """Decode ``GET /user`` into the Smartcar user id."""
    return JsonObject(raw, "user").string("id")


def vehicle_page(raw: object, units: UnitSystem) -> VehiclePage:
    """Decode ``GET /vehicles``."""
    body = JsonObject(raw, "vehicles")
    paging = body.object("paging")
    return VehiclePage(
        vehicle_ids=body.strings("vehicles"),
        count=paging.integer("count"),
        offset=paging.integer("offset"),
    )


def permission_page(raw: object, units: UnitSystem) -> PermissionPage:
    """Decode ``GET /vehicles/{id}/permissions``."""
    body = JsonObject(raw, "permissions")
    paging = body.object("paging")
    return PermissionPage(
        permissions=body.strings("permissions"),
        count=paging.integer("count"),
        offset=paging.integer("offset"),
    )


def attributes(raw: object, units: UnitSystem) -> Attributes:
    """Decode ``GET /vehicles/{id}``."""
    body = JsonObject(raw, "attributes")
    return Attributes(
        id=body.string("id"),
        make=body.string("make"),
        model=body.string("model"),
        year=body.integer("year"),
    )


def vin(raw: object, units: UnitSystem) -> str:
    """Decode ``GET /vehicles/{id}/vin``."""
    return JsonObject(raw, "vin").string("vin")


def location(raw: object, units: UnitSystem) -> Location:
    """Decode ``GET /vehicles/{id}/location``."""
    body = JsonObject(raw, "location")
    return Location(latitude=body.number("latitude"), longitude=body.number("longitude"))


def odometer(raw: object, units: UnitSystem) -> Odometer:
    """Decode ``GET /vehicles/{id}/odometer`` into kilometres."""
    return Odometer(distance_km=kilometres(JsonObject(raw, "odometer").number("distance"), units))


def fuel(raw: object, units: UnitSystem) -> Fuel:
    """Decode ``GET /vehicles/{id}/fuel`` into percent, litres and kilometres."""
    body = JsonObject(raw, "fuel")
    return Fuel(
        percent_remaining=_percent(body.optional_number("percentRemaining")),
        amount_remaining_l=_maybe(litres, body.optional_number("amountRemaining"), units),
        range_km=_maybe(kilometres, body.optional_number("range"), units),
    )


def battery(raw: object, units: UnitSystem) -> Battery:
    """Decode ``GET /vehicles/{id}/battery`` into percent and kilometres."""
    body = JsonObject(raw, "battery")
    return Battery(
        percent_remaining=_percent(body.optional_number("percentRemaining")),
        range_km=_maybe(kilometres, body.optional_number("range"), units),
    )


def charge(raw: object, units: UnitSystem) -> ChargeStatus:
    """Decode ``GET /vehicles/{id}/charge``: ``{"isPluggedIn": true, "state": "CHARGING"}``."""
    body = JsonObject(raw, "charge")
    state = body.string("state").strip().upper()
    if not state:
        raise body.fail("state", "a charging state")
    return ChargeStatus(is_plugged_in=body.boolean("isPluggedIn"), state=state)


def charge_limit(raw: object, units: UnitSystem) -> ChargeLimit:
    """Decode ``GET /vehicles/{id}/charge/limit``: ``{"limit": 0.8}``, a fraction 0-1,
    into percent."""
    body = JsonObject(raw, "charge/limit")
    limit = body.finite_number("limit")
    if limit is None or not 0 <= limit <= 1:
        raise body.fail("limit", "a fraction from 0 to 1")
    return ChargeLimit(limit_percent=percent(limit))


def tire_pressure(raw: object, units: UnitSystem) -> TirePressure:
    """Decode ``GET /vehicles/{id}/tires/pressure`` into kPa."""
    body = JsonObject(raw, "tires/pressure")
    return TirePressure(
        front_left_kpa=_maybe(kilopascals, body.optional_number("frontLeft"), units),
        front_right_kpa=_maybe(kilopascals, body.optional_number("frontRight"), units),
        back_left_kpa=_maybe(kilopascals, body.optional_number("backLeft"), units),
        back_right_kpa=_maybe(kilopascals, body.optional_number("backRight"), units),
    )


def engine_oil(raw: object, units: UnitSystem) -> EngineOil:
    """Decode ``GET /vehicles/{id}/engine/oil`` into percent."""
    life = JsonObject(raw, "engine/oil").optional_number("lifeRemaining")
    return EngineOil(life_remaining_percent=_percent(life))


def lock_status(raw: object, units: UnitSystem) -> LockStatus:
    """Decode ``GET /vehicles/{id}/security``; missing closure lists become empty."""
    body = JsonObject(raw, "security")

    def closures(key: str) -> tuple[Closure, ...]:
        items = body.objects(key, required=False)
        return tuple(Closure(type=i.string("type"), status=i.string("status")) for i in items)

    return LockStatus(
        is_locked=body.boolean("isLocked"),
        doors=closures("doors"),
        windows=closures("windows"),
        sunroof=closures("sunroof"),
        storage=closures("storage"),
        charging_port=closures("chargingPort"),
    )


def action_result(raw: object, units: UnitSystem) -> ActionResult:
    """Decode the answer to a command such as ``POST /security``."""
    body = JsonObject(raw, "command")
    return ActionResult(status=body.string("status"), message=body.string("message"))


def status(raw: object, units: UnitSystem) -> str:
    """Decode a bare ``{"status": …}`` answer, e.g. of a disconnect."""
    return JsonObject(raw, "status").string("status")


def connections(raw: object, units: UnitSystem) -> tuple[Connection, ...]:
    """Decode the management API's ``{"connections": [{userId, vehicleId}]}``."""
    items = JsonObject(raw, "connections").objects("connections")
    return tuple(
        Connection(user_id=i.string("userId"), vehicle_id=i.string("vehicleId")) for i in items
    )


REFRESH_TOKEN_LIFETIME = timedelta(days=60)
"""Smartcar's documented refresh-token lifetime, used when the answer does not state one."""


def token_pair(raw: object, *, issued_at: datetime) -> TokenPair:
    """Decode a token-endpoint answer; expiries count from ``issued_at``, the request time."""
    body = JsonObject(raw, "token")
    expires_in = body.number("expires_in")
    if expires_in <= 0:
        raise SmartcarProtocolError("token: 'expires_in' must be positive")
    refresh_expires_in = body.optional_number("refresh_expires_in")
    refresh_lifetime = (
        timedelta(seconds=refresh_expires_in)
        if refresh_expires_in is not None
        else REFRESH_TOKEN_LIFETIME
    )
    return TokenPair(
        access_token=Secret(body.string("access_token")),
        refresh_token=Secret(body.string("refresh_token")),
        token_type=body.string("token_type"),
        access_expires_at=issued_at + timedelta(seconds=expires_in),
        refresh_expires_at=issued_at + refresh_lifetime,
    )


BY_VEHICLE_PATH: dict[str, Decoder] = {
    "/": attributes,
    "/vin": vin,
    "/permissions": permission_page,
    "/location": location,
    "/odometer": odometer,
    "/fuel": fuel,
    "/battery": battery,
    "/security": lock_status,
    "/tires/pressure": tire_pressure,
    "/engine/oil": engine_oil,
    "/charge": charge,
    "/charge/limit": charge_limit,
}
"""Decoders of the vehicle GET endpoints, by the path a batch request names them with."""
