"""`SmartcarV2`: the SmartcarAPI port on our async Smartcar client (API v2.0).

Everything Smartcar-specific stays in this package (here, `failures`, `values`, `events`,
`signals`): paths, units, the token types of the client, error translation. Every upstream
call is bounded by min(configured timeout, the caller's remaining deadline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from clients import smartcar as sc
from gateway.core import model
from gateway.core.model import Availability, BatchReading, FieldResult, TelemetryField
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.ports import Clock
from gateway.core.secret import Secret
from gateway.edge.context import bounded_timeout_s
from gateway.edge.smartcar.command_calls import command_call
from gateway.edge.smartcar.failures import availability_of, failure_of, translate, translate_grant
from gateway.edge.smartcar.values import checked_result, telemetry_value, with_charge_limit

T = TypeVar("T")

PATHS: Mapping[TelemetryField, tuple[str, ...]] = {
    TelemetryField.LOCATION: ("/location",),
    TelemetryField.ODOMETER: ("/odometer",),
    TelemetryField.FUEL: ("/fuel",),
    TelemetryField.BATTERY: ("/battery",),
    TelemetryField.LOCK_STATUS: ("/security",),
    TelemetryField.TIRE_PRESSURE: ("/tires/pressure",),
    TelemetryField.ENGINE_OIL: ("/engine/oil",),
    TelemetryField.CHARGE: ("/charge", "/charge/limit"),
}
"""The batch paths of each field: the first answers it, the others fill in parts of it
(the charge limit, which some makes answer only while plugged in: without it the charge
is still read). Each path is billed."""


class _Send(Protocol):
    """A v2 command call of the client, its parameters bound."""

    def __call__(
        self, access_token: sc.Secret, vehicle_id: str, *, timeout_s: float | None = None
    ) -> Awaitable[sc.Reading[sc.ActionResult]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamTimeouts:
    """Upper bounds on Smartcar calls (the caller's deadline may cut them shorter)."""

    read_s: float = 15.0
    command_s: float = 60.0
    """Commands take seconds, sometimes tens of seconds, at the car."""


class SmartcarV2:
    """Implements `gateway.core.ports.SmartcarAPI` with Smartcar's v2.0 API."""

    def __init__(
        self,
        *,
        auth: sc.SmartcarAuth,
        vehicles: sc.SmartcarVehicles,
        clock: Clock,
        mode: sc.ConnectMode = "live",
        timeouts: UpstreamTimeouts = UpstreamTimeouts(),
    ) -> None:
        self._clock = clock
        self._auth = auth
        self._vehicles = vehicles
        self._mode: sc.ConnectMode = mode
        self._timeouts = timeouts

    def connect_url(self, *, state: str, vin: str | None, required: frozenset[str]) -> str:
        """Return the Connect URL for all requested scopes, `required` ones marked with
        Smartcar's `required:` prefix; a known VIN selects that car."""
        return self._auth.connect_url(
            scopes=sorted(REQUESTED_PERMISSIONS),
            required=sorted(required),
            state=state,
            mode=self._mode,
            single_select_vin=vin or None,
        )

    async def exchange_code(self, code: str) -> model.TokenPair:
        """Exchange an authorization code for a token pair."""
        try:
            pair = await self._auth.exchange_code(code, timeout_s=self._read_timeout())
        except sc.SmartcarError as error:
            raise translate_grant(error, refresh=False) from None
        return _pair(pair)

    async def refresh(self, refresh_token: Secret) -> model.TokenPair:
        """Exchange a refresh token for a new pair."""
        try:
            pair = await self._auth.refresh(
                sc.Secret(refresh_token.reveal()), timeout_s=self._read_timeout()
            )
        except sc.SmartcarError as error:
            raise translate_grant(error, refresh=True) from None
        return _pair(pair)

    async def user_id(self, access: model.SmartcarAccess) -> str:
        """Return the Smartcar user id of the token."""
        reading = await self._call(lambda t, s: self._vehicles.user(t, timeout_s=s), access)
        return reading.value

    async def vehicle_ids(self, access: model.SmartcarAccess) -> list[str]:
        """Return the Smartcar vehicle ids the token covers."""
        reading = await self._call(
            lambda t, s: self._vehicles.list_vehicles(t, limit=50, timeout_s=s), access
        )
        return list(reading.value.vehicle_ids)

    async def vehicle_info(
        self, access: model.SmartcarAccess, smartcar_vehicle_id: str
    ) -> model.VehicleInfo:
        """Return make, model, year (attributes) and VIN, read concurrently."""
        attributes, vin = await asyncio.gather(
            self._call(
                lambda t, s: self._vehicles.attributes(t, smartcar_vehicle_id, timeout_s=s),
                access,
            ),
            self._call(
                lambda t, s: self._vehicles.vin(t, smartcar_vehicle_id, timeout_s=s), access
            ),
        )
        value = attributes.value
        return model.VehicleInfo(
            smartcar_vehicle_id=value.id,
            make=value.make,
            model=value.model,
            year=value.year,
            vin=vin.value,
        )

    async def permissions(
        self, access: model.SmartcarAccess, smartcar_vehicle_id: str
    ) -> frozenset[str]:
        """Return the permissions granted for the vehicle."""
        reading = await self._call(
            lambda t, s: self._vehicles.permissions(t, smartcar_vehicle_id, limit=100, timeout_s=s),
            access,
        )
        return frozenset(reading.value.permissions)

    async def read(
        self,
        access: model.SmartcarAccess,
        smartcar_vehicle_id: str,
        fields: frozenset[TelemetryField],
    ) -> BatchReading:
        """Read the fields in one batch; each field's items become its own result."""
        wanted = sorted(fields)
        paths = [path for field in wanted for path in PATHS[field]]
        batch = await self._call(
            lambda t, s: self._vehicles.batch(t, smartcar_vehicle_id, paths, timeout_s=s),
            access,
        )
        received_at = self._clock.now()
        results = {}
        for field in wanted:
            first, *others = PATHS[field]
            try:
                item = batch.item(first)
            except KeyError:
                continue
            parts = [_part(batch, path) for path in others]
            results[field] = _field_result(field, item, parts, received_at=received_at)
        return BatchReading(results=results)

    def read_cost(self, api: model.SmartcarApi, fields: frozenset[TelemetryField]) -> int:
        """Return the batch's paths: Smartcar bills each (CHARGE has two)."""
        return sum(len(PATHS[field]) for field in fields)

    async def command(
        self, access: model.SmartcarAccess, smartcar_vehicle_id: str, command: model.Command
    ) -> None:
        """Send the command; an unconfirmed command is CommandOutcomeUnknown."""
        send = self._sender(command)
        await self._call(
            lambda t, s: send(t, smartcar_vehicle_id, timeout_s=s), access, command=True
        )

    def _sender(self, command: model.Command) -> _Send:
        """Return the client call that sends `command` (bound to its parameters)."""
        send: _Send = command_call(command, self._vehicles)
        return send

    async def disconnect(self, access: model.SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Revoke the application's access to the vehicle."""
        await self._call(
            lambda t, s: self._vehicles.disconnect(t, smartcar_vehicle_id, timeout_s=s),
            access,
        )

    async def _call(
        self,
        request: Callable[[sc.Secret, float], Awaitable[T]],
        access: model.SmartcarAccess,
        *,
        command: bool = False,
    ) -> T:
        if access.api is not model.SmartcarApi.V2:
            raise ValueError(f"SmartcarV2 serves v2 connections only, not {access.api.value}")
        timeout = bounded_timeout_s(self._timeouts.command_s if command else self._timeouts.read_s)
        try:
            return await request(sc.Secret(access.token.reveal()), timeout)
        except sc.SmartcarError as error:
            raise translate(error, command=command) from None

    def _read_timeout(self) -> float:
        return bounded_timeout_s(self._timeouts.read_s)


def _pair(pair: sc.TokenPair) -> model.TokenPair:
    return model.TokenPair(
        access_token=Secret(pair.access_token.reveal()),
        refresh_token=Secret(pair.refresh_token.reveal()),
        access_expires_at=pair.access_expires_at,
        refresh_expires_at=pair.refresh_expires_at,
    )


def _part(batch: sc.BatchResult, path: str) -> object:
    """Return the value a path that fills in part of a field answered (None: it failed or
    Smartcar did not answer it)."""
    try:
        item = batch.item(path)
    except KeyError:
        return None
    return item.value if item.error is None else None


def _field_result(
    field: TelemetryField, item: sc.BatchItem, parts: list[object], *, received_at: datetime
) -> FieldResult:
    if item.error is not None:
        return FieldResult(
            field=field, availability=availability_of(item.error), failure=failure_of(item.error)
        )
    value = telemetry_value(item.value)
    for part in parts:
        value = None if value is None else with_charge_limit(value, part)
    if value is None:
        failure = model.UpstreamFailure(description=f"unexpected value for {item.path}")
        return FieldResult(field=field, availability=Availability.UNAVAILABLE, failure=failure)
    return checked_result(
        field,
        value,
        recorded_at=item.meta.data_age,
        received_at=received_at,
        time_name="sc-data-age",
        source=item.path,
        request_id=item.meta.request_id,
    )
