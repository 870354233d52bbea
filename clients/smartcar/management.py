"""SmartcarManagement: the application management API (deleting vehicle connections)."""

from __future__ import annotations

import httpx

from clients.smartcar import _decode
from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._ids import checked_id
from clients.smartcar._transport import Call, Transport, basic_auth
from clients.smartcar._wire import meta_from_headers
from clients.smartcar.endpoints import SmartcarEndpoints
from clients.smartcar.models import Connection, Reading
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem

__all__ = ["SmartcarManagement"]

_ROUTE = "/v2.0/management/connections/"


class SmartcarManagement:
    """Management API on an injected AsyncClient, authenticated by the management token."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        endpoints: SmartcarEndpoints,
        management_token: Secret,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        if not isinstance(management_token, Secret):
            raise TypeError("management_token must be passed as Secret")
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)
        self._origin = endpoints.management_origin
        self._token = management_token

    async def delete_connections(
        self,
        *,
        vehicle_id: str | None = None,
        user_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Reading[tuple[Connection, ...]]:
        """Delete a vehicle's connections, a user's, or one user's one vehicle; return them.

        ``DELETE /v2.0/management/connections/?vehicle_id=…&user_id=…`` with Basic auth
        ``default:<management token>``.
        """
        params: dict[str, str | int] = {}
        if vehicle_id is not None:
            params["vehicle_id"] = checked_id("vehicle_id", vehicle_id)
        if user_id is not None:
            params["user_id"] = checked_id("user_id", user_id)
        if not params:
            raise ValueError("delete_connections needs vehicle_id, user_id or both")
        call = Call(
            method="DELETE",
            url=f"{self._origin}{_ROUTE}",
            route=_ROUTE,
            auth=basic_auth("default", self._token),
            secrets=(self._token,),
            params=params,
            timeout_s=timeout_s,
        )
        answer = await self._transport.send(call)
        meta = meta_from_headers(answer.headers, default_unit_system=UnitSystem.METRIC)
        return Reading(_decode.connections(answer.body, meta.unit_system), meta)
