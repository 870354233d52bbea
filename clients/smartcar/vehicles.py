"""SmartcarVehicles: Smartcar's Vehicle API v2.0 — reads, batch, lock/unlock, charging,
disconnect.

The access token is an argument of every call and is never kept: one client serves
every vehicle of every owner without a token crossing from one call to another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import httpx

from clients.smartcar import _decode
from clients.smartcar._batch import read_batch, request_body
from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._ids import checked_id
from clients.smartcar._transport import Answer, BearerAuth, Call, Transport
from clients.smartcar._wire import meta_from_headers
from clients.smartcar.endpoints import SmartcarEndpoints
from clients.smartcar.models import (
    ActionResult,
    Attributes,
    BatchResult,
    Battery,
    ChargeLimit,
    ChargeStatus,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    PermissionPage,
    Reading,
    TirePressure,
    VehiclePage,
)
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem

__all__ = ["SmartcarVehicles"]

T = TypeVar("T")
Decode = Callable[[object, UnitSystem], T]


class SmartcarVehicles:
    """Vehicle API v2.0 on an injected ``httpx.AsyncClient``.

    Every method takes ``timeout_s`` to bound that call (httpx's connect/read/write/pool
    timeouts); without it the client's ``timeout_s`` applies, else the AsyncClient's own.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        endpoints: SmartcarEndpoints,
        unit_system: UnitSystem = UnitSystem.METRIC,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)
        self._origin = endpoints.api_origin
        self._unit_system = UnitSystem(unit_system)

    async def user(self, access_token: Secret, *, timeout_s: float | None = None) -> Reading[str]:
        """Return the id of the Smartcar user the token belongs to (``GET /user``)."""
        answer = await self._send(access_token, "GET", "/v2.0/user", timeout_s=timeout_s)
        return self._reading(answer, _decode.user_id)

    async def list_vehicles(
        self,
        access_token: Secret,
        *,
        limit: int | None = None,
        offset: int | None = None,
        timeout_s: float | None = None,
    ) -> Reading[VehiclePage]:
        """Return one page of the vehicle ids the token reaches (``GET /vehicles``)."""
        answer = await self._send(
            access_token,
            "GET",
            "/v2.0/vehicles",
            params=_paging(limit, offset),
            timeout_s=timeout_s,
        )
        return self._reading(answer, _decode.vehicle_page)

    async def attributes(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[Attributes]:
        """Return id, make, model and year (``GET /vehicles/{id}``)."""
        return await self._read(access_token, vehicle_id, "/", _decode.attributes, timeout_s)

    async def vin(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[str]:
        """Return the VIN (``GET /vehicles/{id}/vin``)."""
        return await self._read(access_token, vehicle_id, "/vin", _decode.vin, timeout_s)

    async def permissions(
        self,
        access_token: Secret,
        vehicle_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        timeout_s: float | None = None,
    ) -> Reading[PermissionPage]:
        """Return one page of granted permissions (``GET /vehicles/{id}/permissions``)."""
        return await self._read(
            access_token,
            vehicle_id,
            "/permissions",
            _decode.permission_page,
            timeout_s,
            params=_paging(limit, offset),
        )

    async def location(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[Location]:
        """Return latitude and longitude (``GET /vehicles/{id}/location``)."""
        return await self._read(access_token, vehicle_id, "/location", _decode.location, timeout_s)

    async def odometer(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[Odometer]:
        """Return the odometer in km (``GET /vehicles/{id}/odometer``)."""
        return await self._read(access_token, vehicle_id, "/odometer", _decode.odometer, timeout_s)

    async def fuel(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[Fuel]:
        """Return fuel in percent, litres and km of range (``GET /vehicles/{id}/fuel``)."""
        return await self._read(access_token, vehicle_id, "/fuel", _decode.fuel, timeout_s)

    async def battery(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[Battery]:
        """Return charge in percent and km of range (``GET /vehicles/{id}/battery``)."""
        return await self._read(access_token, vehicle_id, "/battery", _decode.battery, timeout_s)

    async def lock_status(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[LockStatus]:
        """Return locked state and open closures (``GET /vehicles/{id}/security``)."""
        return await self._read(
            access_token, vehicle_id, "/security", _decode.lock_status, timeout_s
        )

    async def tire_pressure(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[TirePressure]:
        """Return tire pressures in kPa (``GET /vehicles/{id}/tires/pressure``)."""
        return await self._read(
            access_token, vehicle_id, "/tires/pressure", _decode.tire_pressure, timeout_s
        )

    async def engine_oil(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[EngineOil]:
        """Return remaining oil life in percent (``GET /vehicles/{id}/engine/oil``)."""
        return await self._read(
            access_token, vehicle_id, "/engine/oil", _decode.engine_oil, timeout_s
        )

    async def charge(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ChargeStatus]:
        """Return whether the cable is plugged in and the charging state
        (``GET /vehicles/{id}/charge``, ``read_charge``)."""
        return await self._read(access_token, vehicle_id, "/charge", _decode.charge, timeout_s)

    async def charge_limit(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ChargeLimit]:
        """Return the charge limit in percent (``GET /vehicles/{id}/charge/limit``,
        ``read_charge``; some makes answer CHARGING_PLUG_NOT_CONNECTED when unplugged)."""
        return await self._read(
            access_token, vehicle_id, "/charge/limit", _decode.charge_limit, timeout_s
        )

    async def batch(
        self,
        access_token: Secret,
        vehicle_id: str,
        paths: Iterable[str],
        *,
        timeout_s: float | None = None,
    ) -> BatchResult:
        """Read several paths in one round trip (``POST /vehicles/{id}/batch``).

        ``paths`` are taken from ``BATCH_PATHS`` (``"/odometer"``, ``"/fuel"`` …). Each
        item carries its own status, value or typed error, and meta.
        """
        body = request_body(paths)
        answer = await self._send_to_vehicle(
            access_token, vehicle_id, "POST", "/batch", json_body=body, timeout_s=timeout_s
        )
        return read_batch(
            answer.body,
            answer.headers,
            requested=self._unit_system,
            now=answer.received_at,
            secrets=(access_token,),
        )

    async def lock(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ActionResult]:
        """Lock the doors (``POST /vehicles/{id}/security {"action": "LOCK"}``)."""
        body = {"action": "LOCK"}
        return await self._command(access_token, vehicle_id, "/security", body, timeout_s)

    async def unlock(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ActionResult]:
        """Unlock the doors (``POST /vehicles/{id}/security {"action": "UNLOCK"}``)."""
        body = {"action": "UNLOCK"}
        return await self._command(access_token, vehicle_id, "/security", body, timeout_s)

    async def start_charge(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ActionResult]:
        """Start charging (``POST /vehicles/{id}/charge {"action": "START"}``,
        ``control_charge``)."""
        body = {"action": "START"}
        return await self._command(access_token, vehicle_id, "/charge", body, timeout_s)

    async def stop_charge(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[ActionResult]:
        """Stop charging (``POST /vehicles/{id}/charge {"action": "STOP"}``,
        ``control_charge``)."""
        body = {"action": "STOP"}
        return await self._command(access_token, vehicle_id, "/charge", body, timeout_s)

    async def set_charge_limit(
        self,
        access_token: Secret,
        vehicle_id: str,
        percent: int,
        *,
        timeout_s: float | None = None,
    ) -> Reading[ActionResult]:
        """Set the charge limit (``POST /vehicles/{id}/charge/limit``, ``control_charge``).

        ``percent`` is an integer 0-100, sent as v2's fraction (``{"limit": 0.8}``);
        Smartcar accepts 0.5 to 1 and answers a VALIDATION error otherwise.
        """
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError("percent must be an integer from 0 to 100")
        body = {"limit": percent / 100}
        return await self._command(access_token, vehicle_id, "/charge/limit", body, timeout_s)

    async def disconnect(
        self, access_token: Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Reading[str]:
        """Revoke this application's access to the vehicle (``DELETE …/application``)."""
        answer = await self._send_to_vehicle(
            access_token, vehicle_id, "DELETE", "/application", timeout_s=timeout_s
        )
        return self._reading(answer, _decode.status)

    async def _command(
        self,
        access_token: Secret,
        vehicle_id: str,
        path: str,
        body: Mapping[str, object],
        timeout_s: float | None,
    ) -> Reading[ActionResult]:
        answer = await self._send_to_vehicle(
            access_token, vehicle_id, "POST", path, json_body=body, timeout_s=timeout_s
        )
        return self._reading(answer, _decode.action_result)

    async def _read(
        self,
        access_token: Secret,
        vehicle_id: str,
        path: str,
        decode: Decode[T],
        timeout_s: float | None,
        *,
        params: Mapping[str, str | int] | None = None,
    ) -> Reading[T]:
        suffix = "" if path == "/" else path
        answer = await self._send_to_vehicle(
            access_token, vehicle_id, "GET", suffix, params=params, timeout_s=timeout_s
        )
        return self._reading(answer, decode)

    async def _send_to_vehicle(
        self,
        access_token: Secret,
        vehicle_id: str,
        method: str,
        suffix: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: object = None,
        timeout_s: float | None = None,
    ) -> Answer:
        path = f"/v2.0/vehicles/{checked_id('vehicle_id', vehicle_id)}{suffix}"
        return await self._send(
            access_token,
            method,
            path,
            route=f"/v2.0/vehicles/{{id}}{suffix}",
            params=params,
            json_body=json_body,
            timeout_s=timeout_s,
        )

    async def _send(
        self,
        access_token: Secret,
        method: str,
        path: str,
        *,
        route: str | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: object = None,
        timeout_s: float | None = None,
    ) -> Answer:
        call = Call(
            method=method,
            url=f"{self._origin}{path}",
            route=route or path,
            auth=BearerAuth(access_token),
            secrets=(access_token,),
            headers={"sc-unit-system": self._unit_system.value},
            params=params,
            json_body=json_body,
            timeout_s=timeout_s,
        )
        return await self._transport.send(call)

    def _reading(self, answer: Answer, decode: Decode[T]) -> Reading[T]:
        meta = meta_from_headers(answer.headers, default_unit_system=self._unit_system)
        return Reading(decode(answer.body, meta.unit_system), meta)


def _paging(limit: int | None, offset: int | None) -> dict[str, str | int] | None:
    """Return the paging query, or ValueError naming a bad limit or offset."""
    params: dict[str, str | int] = {}
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive integer")
        params["limit"] = limit
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be a non-negative integer")
        params["offset"] = offset
    return params or None
