"""SmartcarConnectionsV3: the application's vehicle connections, and removing users.

On the vehicle API's origin, with the application token (smartcar-v3-notes §2.6):

- ``GET /v3/connections`` lists connections, newest first, filtered by
  ``filter[userId]``, ``filter[vehicleId]`` and ``filter[vehicle.mode]`` and paged by
  ``page[number]``/``page[size]``. The filter names come from the spec's parameter list
  and live links; Smartcar also documents ``sc-user-id`` as a user filter here, so a user
  filter is sent both ways. Smartcar reportedly hides simulated cars unless
  ``mode="simulated"`` is asked for. These calls are not billed.
- ``GET``/``DELETE /v3/connections/{connectionId}`` take the *connection* id, as the API
  reference says (the launch blog's ``/connections/:vehicleId`` is not followed).
- ``DELETE /v3/users/{userId}`` removes the user, all its connections and data (204).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx

from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._ids import checked_id
from clients.smartcar.secret import Secret
from clients.smartcar.v3 import _resources
from clients.smartcar.v3._calls import Sender, every_item, paging
from clients.smartcar.v3.endpoints import V3Endpoints
from clients.smartcar.v3.models import Paged, VehicleConnection

__all__ = ["SmartcarConnectionsV3", "VehicleMode"]

VehicleMode = Literal["live", "simulated"]


class SmartcarConnectionsV3:
    """Connections API V3 on an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        endpoints: V3Endpoints,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        self._sender = Sender(http=http, clock=clock, timeout_s=timeout_s)
        self._origin = endpoints.vehicle_origin

    async def list_connections(
        self,
        token: Secret,
        *,
        user_id: str | None = None,
        vehicle_id: str | None = None,
        mode: VehicleMode | None = None,
        page_number: int | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
    ) -> Paged[VehicleConnection]:
        """Return one page of connections (``GET /v3/connections``)."""
        params = paging(page_number, page_size, max_size=None)
        if user_id is not None:
            params["filter[userId]"] = checked_id("user_id", user_id)
        if vehicle_id is not None:
            params["filter[vehicleId]"] = checked_id("vehicle_id", vehicle_id)
        if mode is not None:
            if mode not in ("live", "simulated"):
                raise ValueError("mode must be 'live' or 'simulated'")
            params["filter[vehicle.mode]"] = mode
        answer = await self._sender.send(
            token,
            "GET",
            f"{self._origin}/v3/connections",
            route="/v3/connections",
            user_id=user_id,
            params=params or None,
            timeout_s=timeout_s,
        )
        return _resources.connections(answer.body)

    async def all_connections(
        self,
        token: Secret,
        *,
        user_id: str | None = None,
        vehicle_id: str | None = None,
        mode: VehicleMode | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[VehicleConnection]:
        """Yield every connection, page after page (see ``every_item``); ``timeout_s``
        bounds each request."""
        async for connection in every_item(
            lambda number: self.list_connections(
                token,
                user_id=user_id,
                vehicle_id=vehicle_id,
                mode=mode,
                page_number=number,
                page_size=page_size,
                timeout_s=timeout_s,
            )
        ):
            yield connection

    async def connection(
        self, token: Secret, connection_id: str, *, timeout_s: float | None = None
    ) -> VehicleConnection:
        """Return one connection by its connection id (``GET /v3/connections/{id}``)."""
        path = f"/v3/connections/{checked_id('connection_id', connection_id)}"
        answer = await self._sender.send(
            token,
            "GET",
            f"{self._origin}{path}",
            route="/v3/connections/{id}",
            timeout_s=timeout_s,
        )
        return _resources.connection(answer.body)

    async def delete_connection(
        self, token: Secret, connection_id: str, *, timeout_s: float | None = None
    ) -> None:
        """Disconnect a vehicle (``DELETE /v3/connections/{id}``); any 2xx is success."""
        path = f"/v3/connections/{checked_id('connection_id', connection_id)}"
        await self._sender.send(
            token,
            "DELETE",
            f"{self._origin}{path}",
            route="/v3/connections/{id}",
            empty_body_ok=True,
            timeout_s=timeout_s,
        )

    async def delete_user(
        self, token: Secret, user_id: str, *, timeout_s: float | None = None
    ) -> None:
        """Remove a user with all its connections and data (``DELETE /v3/users/{id}``)."""
        path = f"/v3/users/{checked_id('user_id', user_id)}"
        await self._sender.send(
            token,
            "DELETE",
            f"{self._origin}{path}",
            route="/v3/users/{id}",
            empty_body_ok=True,
            timeout_s=timeout_s,
        )
