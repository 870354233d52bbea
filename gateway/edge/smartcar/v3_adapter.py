"""`SmartcarV3`: the SmartcarAPI port's vehicle calls on Smartcar's API V3, and
`SmartcarRouter`, which sends each call to the API its connection uses.

    v3 = SmartcarV3(vehicles=SmartcarVehiclesV3(…), connections=SmartcarConnectionsV3(…),
                    clock=clock)
    smartcar = SmartcarRouter(v2=SmartcarV2(…), v3=v3)     # what the core is given

Every V3 call carries the application's token as Bearer and the owner's user id as
`sc-user-id` (`SmartcarAccess.v3`). How each port call maps:

- `vehicle_ids`: the user's connections (`GET /v3/connections?filter[userId]`, not billed);
- `vehicle_info`: `GET /v3/vehicles/{id}` (make, model, year) and the VIN signal
  (`vehicleidentification-vin`, read alone); a VIN Smartcar cannot give is empty;
- `permissions`: the permissions of the user's connection to that car (`/connections`);
- `read`: ONE `GET /v3/vehicles/{id}/signals` (one billed request), translated by
  `v3_readings.batch_reading`;
- `command`: `POST …/commands/security/lock|unlock`, `…/commands/charge/start|stop` and
  `…/commands/charge/set-limit` (`{"data": {"attributes": {"percent": n}}}`); a 202
  Smartcar has not confirmed is `CommandOutcomeUnknown` (`v3_commands`);
- `disconnect`: `DELETE /v3/connections/{id}` of that user's connection to the car, then
  `DELETE /v3/users/{id}` when the user has no connection left (nothing of theirs is kept
  at Smartcar for the application once the fleet let the last car go); a connection that
  is already gone is nothing to revoke.

The Connect redirect, the code exchange and refreshing are v2's alone: on V3 the
application token comes from `iam` (the IAM client-credentials grant) and the owner from
the redirect's `user_id`. Failures are translated once (`failures.translate`), as on v2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from clients import smartcar as sc
from clients.smartcar.v3 import (
    CommandExecution,
    SignalCode,
    SignalStatus,
    SmartcarConnectionsV3,
    SmartcarManagementV3,
    SmartcarVehiclesV3,
    VehicleConnection,
)
from gateway.core import model
from gateway.core.model import BatchReading, SmartcarAccess, SmartcarApi, TelemetryField
from gateway.core.ports import Clock, SmartcarAPI
from gateway.core.secret import Secret
from gateway.edge.context import bounded_timeout_s
from gateway.edge.smartcar.adapter import UpstreamTimeouts
from gateway.edge.smartcar.command_calls import command_call
from gateway.edge.smartcar.failures import translate
from gateway.edge.smartcar.v3_commands import ensure_confirmed
from gateway.edge.smartcar.v3_readings import batch_reading

T = TypeVar("T")


class _Send(Protocol):
    """A V3 command call of the client, its parameters bound."""

    def __call__(
        self,
        token: sc.Secret,
        vehicle_id: str,
        *,
        user_id: str,
        timeout_s: float | None = None,
    ) -> Awaitable[CommandExecution]: ...


class SmartcarV3:
    """The vehicle calls of `gateway.core.ports.SmartcarAPI` on Smartcar's API V3."""

    def __init__(
        self,
        *,
        vehicles: SmartcarVehiclesV3,
        connections: SmartcarConnectionsV3,
        clock: Clock,
        timeouts: UpstreamTimeouts = UpstreamTimeouts(),
        billed_per_signal: bool = False,
    ) -> None:
        self._vehicles = vehicles
        self._connections = connections
        self._clock = clock
        self._timeouts = timeouts
        self._billed_per_signal = billed_per_signal

    async def user_id(self, access: SmartcarAccess) -> str:
        """Return the owner the access names (V3 names it; nothing is asked)."""
        return _user(access)

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the cars the user connected to the application."""
        connections = await self._user_connections(access)
        return [c.vehicle_id for c in connections if c.vehicle_id]

    async def vehicle_info(
        self, access: SmartcarAccess, smartcar_vehicle_id: str
    ) -> model.VehicleInfo:
        """Return make, model and year, and the VIN signal, read concurrently."""
        user = _user(access)
        vehicle, vin = await asyncio.gather(
            self._call(
                lambda t, s: self._vehicles.vehicle(
                    t, smartcar_vehicle_id, user_id=user, timeout_s=s
                ),
                access,
            ),
            self._call(
                lambda t, s: self._vehicles.signal(
                    t, smartcar_vehicle_id, SignalCode.VIN.value, user_id=user, timeout_s=s
                ),
                access,
            ),
        )
        value = vin.body.get("value") if vin.status is SignalStatus.SUCCESS else None
        return model.VehicleInfo(
            smartcar_vehicle_id=smartcar_vehicle_id,
            make=vehicle.make,
            model=vehicle.model,
            year=vehicle.year,
            vin=value if isinstance(value, str) else "",
        )

    async def permissions(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> frozenset[str]:
        """Return the permissions of the user's connection to the car (none if there is
        no such connection any more)."""
        connection = await self._connection(access, smartcar_vehicle_id)
        return frozenset(connection.permissions) if connection is not None else frozenset()

    async def read(
        self,
        access: SmartcarAccess,
        smartcar_vehicle_id: str,
        fields: frozenset[TelemetryField],
    ) -> BatchReading:
        """Read every signal in one request; each field asked for gets its own result."""
        user = _user(access)
        signals = await self._call(
            lambda t, s: self._vehicles.signals(t, smartcar_vehicle_id, user_id=user, timeout_s=s),
            access,
        )
        return batch_reading(signals, fields, received_at=self._clock.now())

    def read_cost(self, api: SmartcarApi, fields: frozenset[TelemetryField]) -> int:
        """Return what a read of `fields` counts against the car's monthly allowance.

        A read is ONE `GET /signals` request whatever the fields, and users of the live
        API see it billed as one call (smartcar-v3-notes §5; Smartcar itself has not
        said whether V3 bills per request or per signal). So it counts 1; with
        `billed_per_signal` (VG_V3_READ_BILLING=signal, for a plan billed per signal) it
        counts one per field asked for, the upper bound either way."""
        return max(1, len(fields)) if self._billed_per_signal else 1

    async def command(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, command: model.Command
    ) -> None:
        """Send the command; unconfirmed (a 202 still pending) is CommandOutcomeUnknown."""
        user = _user(access)
        send = self._sender(command)
        execution = await self._call(
            lambda t, s: send(t, smartcar_vehicle_id, user_id=user, timeout_s=s),
            access,
            command=True,
        )
        ensure_confirmed(execution)

    def _sender(self, command: model.Command) -> _Send:
        """Return the client call that sends `command` (bound to its parameters)."""
        send: _Send = command_call(command, self._vehicles)
        return send

    async def disconnect(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Delete the user's connection to the car, and the user once none is left. A
        connection or user Smartcar no longer has (404: the owner removed it, or an earlier
        attempt did) is gone already, which is what was asked."""
        connection = await self._connection(access, smartcar_vehicle_id)
        if connection is not None:
            await self._call(
                lambda t, s: _gone_is_done(
                    self._connections.delete_connection(t, connection.id, timeout_s=s)
                ),
                access,
            )
        if not await self._user_connections(access):
            user = _user(access)
            await self._call(
                lambda t, s: _gone_is_done(self._connections.delete_user(t, user, timeout_s=s)),
                access,
            )

    async def _connection(
        self, access: SmartcarAccess, smartcar_vehicle_id: str
    ) -> VehicleConnection | None:
        """Return the user's connection to the car, if it exists."""
        for connection in await self._user_connections(access):
            if connection.vehicle_id == smartcar_vehicle_id:
                return connection
        return None

    async def _user_connections(self, access: SmartcarAccess) -> list[VehicleConnection]:
        """Return every connection of the user the access names (all pages)."""
        user = _user(access)

        async def listed(token: sc.Secret, timeout_s: float) -> list[VehicleConnection]:
            found = self._connections.all_connections(token, user_id=user, timeout_s=timeout_s)
            return [connection async for connection in found]

        return await self._call(listed, access)

    async def _call(
        self,
        request: Callable[[sc.Secret, float], Awaitable[T]],
        access: SmartcarAccess,
        *,
        command: bool = False,
    ) -> T:
        if access.api is not SmartcarApi.V3:
            raise ValueError(f"SmartcarV3 serves V3 connections only, not {access.api.value}")
        timeout = bounded_timeout_s(self._timeouts.command_s if command else self._timeouts.read_s)
        try:
            return await request(sc.Secret(access.token.reveal()), timeout)
        except sc.SmartcarError as error:
            raise translate(error, command=command) from None


class SmartcarSubscriptionsV3:
    """Subscribes cars to the application's webhook through the V3 management API
    (`POST /v3/subscriptions` with the webhook, user and vehicle ids). Smartcar creates a
    subscription asynchronously (202) and answers 409 for one that exists: both are
    success. Unsubscribing lists the car's subscriptions to the webhook and deletes each
    (`DELETE /v3/subscriptions/{id}`). A webhook itself is made in Smartcar's dashboard;
    its id is configured."""

    def __init__(
        self,
        *,
        management: SmartcarManagementV3,
        webhook_id: str,
        timeouts: UpstreamTimeouts = UpstreamTimeouts(),
    ) -> None:
        self._management = management
        self._webhook_id = webhook_id
        self._timeouts = timeouts

    async def subscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Subscribe the user's car to the webhook."""
        token, user = _application(access), _user(access)
        try:
            await self._management.create_subscription(
                token,
                webhook_id=self._webhook_id,
                user_id=user,
                vehicle_id=smartcar_vehicle_id,
                timeout_s=bounded_timeout_s(self._timeouts.read_s),
            )
        except sc.SmartcarError as error:
            raise translate(error) from None

    async def unsubscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Delete every subscription of the user's car to the webhook; one Smartcar no
        longer has (404) is gone already."""
        token, user = _application(access), _user(access)
        timeout = bounded_timeout_s(self._timeouts.read_s)
        try:
            found = [
                subscription.id
                async for subscription in self._management.all_subscriptions(
                    token,
                    webhook_id=self._webhook_id,
                    user_id=user,
                    vehicle_id=smartcar_vehicle_id,
                    timeout_s=timeout,
                )
            ]
            for subscription_id in found:
                await _gone_is_done(
                    self._management.delete_subscription(token, subscription_id, timeout_s=timeout)
                )
        except sc.SmartcarError as error:
            raise translate(error) from None


class SmartcarRouter:
    """The SmartcarAPI the core is given: each vehicle call goes to the adapter of the API
    its access names; Connect URLs, code exchange and refresh are v2's."""

    def __init__(self, *, v2: SmartcarAPI, v3: SmartcarV3 | None = None) -> None:
        self._v2 = v2
        self._v3 = v3

    def _for(self, access: SmartcarAccess) -> SmartcarAPI | SmartcarV3:
        if access.api is SmartcarApi.V2:
            return self._v2
        if self._v3 is None:
            raise ValueError("no Smartcar API V3 adapter is configured")
        return self._v3

    def connect_url(self, *, state: str, vin: str | None, required: frozenset[str]) -> str:
        """Return the Connect URL (the same Connect serves both APIs)."""
        return self._v2.connect_url(state=state, vin=vin, required=required)

    async def exchange_code(self, code: str) -> model.TokenPair:
        """Exchange a v2 authorization code."""
        return await self._v2.exchange_code(code)

    async def refresh(self, refresh_token: Secret) -> model.TokenPair:
        """Refresh a v2 owner's pair."""
        return await self._v2.refresh(refresh_token)

    async def user_id(self, access: SmartcarAccess) -> str:
        """Return the owner the access belongs to."""
        return await self._for(access).user_id(access)

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the cars the access covers."""
        return await self._for(access).vehicle_ids(access)

    async def vehicle_info(
        self, access: SmartcarAccess, smartcar_vehicle_id: str
    ) -> model.VehicleInfo:
        """Return the car's identity."""
        return await self._for(access).vehicle_info(access, smartcar_vehicle_id)

    async def permissions(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> frozenset[str]:
        """Return what the owner granted."""
        return await self._for(access).permissions(access, smartcar_vehicle_id)

    async def read(
        self,
        access: SmartcarAccess,
        smartcar_vehicle_id: str,
        fields: frozenset[TelemetryField],
    ) -> BatchReading:
        """Read the fields in one upstream request."""
        return await self._for(access).read(access, smartcar_vehicle_id, fields)

    def read_cost(self, api: SmartcarApi, fields: frozenset[TelemetryField]) -> int:
        """Return what a read of `fields` through `api` counts."""
        if api is SmartcarApi.V2:
            return self._v2.read_cost(api, fields)
        if self._v3 is None:
            raise ValueError("no Smartcar API V3 adapter is configured")
        return self._v3.read_cost(api, fields)

    async def command(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, command: model.Command
    ) -> None:
        """Send a command."""
        await self._for(access).command(access, smartcar_vehicle_id, command)

    async def disconnect(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Revoke the application's access to the car."""
        await self._for(access).disconnect(access, smartcar_vehicle_id)


async def _gone_is_done(deletion: Awaitable[None]) -> None:
    """Await a deletion; Smartcar answering 404 (nothing to delete) is success."""
    try:
        await deletion
    except sc.SmartcarAPIError as error:
        if error.status != 404:
            raise


def _application(access: SmartcarAccess) -> sc.Secret:
    """Return the application token of a V3 access (subscriptions are V3 only)."""
    if access.api is not SmartcarApi.V3:
        raise ValueError("webhook subscriptions are made through API V3 only")
    return sc.Secret(access.token.reveal())


def _user(access: SmartcarAccess) -> str:
    if not access.user_id:
        raise ValueError("a V3 access must name the owner's Smartcar user id")
    return access.user_id
