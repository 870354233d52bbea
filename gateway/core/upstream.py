"""The one path every upstream call takes: status check, rate limits, token, one 401 retry.

A call is admitted by the rate limiter (refusal: RateLimited, no request made), runs with
an access token from the rotator, and on a 401 gets exactly one retry with a token that
differs from the refused one; a second 401 means the owner revoked access, and every
vehicle on the grant becomes DISCONNECTED. A Smartcar 429 puts the vehicle (or, for the
app-wide bucket, the whole application) in cooldown until its `retry-after`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.core.budget import BudgetLedger
from gateway.core.errors import (
    CommandOutcomeUnknown,
    ConnectionDisconnected,
    GatewayError,
    RateLimited,
    UpstreamUnavailable,
    VehicleUnreachable,
)
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, Vehicle
from gateway.core.ports import Clock, TokenRejected, UnitOfWorkFactory
from gateway.core.ratelimit import Admission, CallKind
from gateway.core.rotation import TokenRotator
from gateway.core.secret import Secret
from gateway.core.status import ensure_connected, save, set_grant_status, with_status

T = TypeVar("T")
UpstreamCall = Callable[[Secret, str], Awaitable[T]]
"""Something to ask Smartcar, given an access token and the Smartcar vehicle id."""

SMARTCAR_VEHICLE_LIMIT = "smartcar_vehicle"
SMARTCAR_APPLICATION_LIMIT = "smartcar_application"
SMARTCAR_OEM_LIMIT = "smartcar_oem"
"""The manufacturer's own limit for a car (Smartcar UPSTREAM:RATE_LIMIT): a vehicle cooldown."""
DEFAULT_COOLDOWN_S = 60.0
"""The cooldown after a 429 that named no `retry-after`."""
REVOKED_REASON = "Smartcar refused freshly rotated credentials: the owner revoked access"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPolicy:
    """How many consecutive upstream failures turn a connection to ERROR."""

    error_after_failures: int = 5


class Upstream:
    """Runs calls to Smartcar for a vehicle under the gateway's limits and token rules,
    counting what Smartcar bills and tracking the connection's health."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        rotator: TokenRotator,
        limiter: Admission,
        clock: Clock,
        ledger: BudgetLedger,
        health: HealthPolicy = HealthPolicy(),
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._metrics = metrics
        self._uow = uow
        self._rotator = rotator
        self._limiter = limiter
        self._clock = clock
        self._ledger = ledger
        self._health = health

    async def call(
        self, vehicle: Vehicle, kind: CallKind, call: UpstreamCall[T], *, billed: int = 1
    ) -> T:
        """Run `call` for `vehicle`, or raise the domain error that explains why not.

        `billed` is how many requests Smartcar bills for one attempt (a batch: its paths).
        """
        ensure_connected(vehicle)
        if vehicle.grant_id is None or vehicle.smartcar_vehicle_id is None:
            raise ConnectionDisconnected(f"vehicle {vehicle.id} has no Smartcar authorization")
        try:
            await self._limiter.admit(vehicle.id, kind, now_s=self._clock.now().timestamp())
        except RateLimited as refused:
            self._metrics.rate_limited(limit=str(refused.metadata.get("limit", "unknown")))
            raise
        token = await self._rotator.access_token(vehicle.grant_id)
        try:
            result = await self._tracked(vehicle, call, token, billed)
        except TokenRejected:
            token = await self._rotator.after_rejection(vehicle.grant_id, token)
        else:
            return result
        try:
            return await self._tracked(vehicle, call, token, billed)
        except TokenRejected:
            await self._revoked(vehicle.grant_id)
            raise ConnectionDisconnected(
                f"vehicle {vehicle.id}: {REVOKED_REASON}; reconnect it",
                metadata={"vehicle_id": vehicle.id},
            ) from None

    async def _tracked(
        self, vehicle: Vehicle, call: UpstreamCall[T], token: Secret, billed: int
    ) -> T:
        """One attempt: bill it, note rate limits, and keep the connection's health."""
        assert vehicle.smartcar_vehicle_id is not None
        try:
            result = await call(token, vehicle.smartcar_vehicle_id)
        except RateLimited as limited:
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            await self.note_rate_limit(vehicle.id, limited)
            raise
        except (UpstreamUnavailable, CommandOutcomeUnknown, VehicleUnreachable) as failure:
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            await self._failed(vehicle.id, failure)
            raise
        except (GatewayError, TokenRejected):
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            raise
        await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
        if vehicle.failure_count or vehicle.status is ConnectionStatus.ERROR:
            await self._recovered(vehicle.id)
        return result

    async def _failed(self, vehicle_id: str, failure: GatewayError) -> None:
        """Count a failure; enough in a row turn an ACTIVE connection to ERROR."""
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            if current is None:
                return
            count = current.failure_count + 1
            updated = dataclasses.replace(current, failure_count=count, last_error=failure.message)
            if (
                count >= self._health.error_after_failures
                and current.status is ConnectionStatus.ACTIVE
            ):
                reason = f"{count} upstream failures in a row; last: {failure.reason}"
                updated = with_status(updated, ConnectionStatus.ERROR, reason=reason, now=now)
            await save(uow, current, updated)
            await uow.commit()

    async def _recovered(self, vehicle_id: str) -> None:
        """An answer after failures: reset the count; ERROR becomes ACTIVE again."""
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            if current is None:
                return
            updated = dataclasses.replace(current, failure_count=0)
            if current.status is ConnectionStatus.ERROR:
                reason = "Smartcar answered again"
                updated = with_status(updated, ConnectionStatus.ACTIVE, reason=reason, now=now)
            await save(uow, current, updated)
            await uow.commit()

    async def note_rate_limit(self, vehicle_id: str, limited: RateLimited) -> None:
        """Start the cooldown Smartcar asked for with a 429."""
        self._metrics.rate_limited(limit=str(limited.metadata.get("limit", "smartcar")))
        if limited.metadata.get("limit") == SMARTCAR_APPLICATION_LIMIT:
            now_s = self._clock.now().timestamp()
            until_s = now_s + (limited.retry_after_s or DEFAULT_COOLDOWN_S)
            await self._limiter.cool_down_application(until_s=until_s, now_s=now_s)
        else:
            await self.cool_down(vehicle_id, retry_after_s=limited.retry_after_s)

    async def cool_down(self, vehicle_id: str, *, retry_after_s: float | None) -> None:
        """Refuse upstream calls for the vehicle until `retry_after_s` (default: a minute)."""
        now_s = self._clock.now().timestamp()
        until_s = now_s + (retry_after_s or DEFAULT_COOLDOWN_S)
        await self._limiter.cool_down(vehicle_id, until_s=until_s, now_s=now_s)

    async def _revoked(self, grant_id: str) -> None:
        async with self._uow() as uow:
            await set_grant_status(
                uow,
                grant_id,
                ConnectionStatus.DISCONNECTED,
                reason=REVOKED_REASON,
                now=self._clock.now(),
            )
            await uow.commit()
