"""The one path every upstream call takes: status check, rate limits, token, one 401 retry.

A call is admitted by the rate limiter (refusal: RateLimited, no request made), runs with
an access token from the rotator, and on a 401 gets exactly one retry with a token that
differs from the refused one; a second 401 means the owner revoked access, and every
vehicle on the grant becomes DISCONNECTED. A Smartcar 429 puts the vehicle (or, for the
app-wide bucket, the whole application) in cooldown until its `retry-after`. Every
attempt is billed (`budget`), and its outcome told to the connection's health (`health`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.core.budget import BudgetLedger
from gateway.core.errors import ConnectionDisconnected, GatewayError, RateLimited
from gateway.core.health import COUNTED_FAILURES, ConnectionHealth, HealthPolicy
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, SmartcarAccess, Vehicle
from gateway.core.ports import Clock, TokenRejected, UnitOfWorkFactory
from gateway.core.ratelimit import Admission, CallKind
from gateway.core.rotation import TokenRotator
from gateway.core.secret import Secret
from gateway.core.status import ensure_connected, set_grant_status

T = TypeVar("T")
UpstreamCall = Callable[[SmartcarAccess, str], Awaitable[T]]
"""Something to ask Smartcar, given what authorises it and the Smartcar vehicle id."""

SMARTCAR_VEHICLE_LIMIT = "smartcar_vehicle"
SMARTCAR_APPLICATION_LIMIT = "smartcar_application"
SMARTCAR_OEM_LIMIT = "smartcar_oem"
"""The manufacturer's own limit for a car (Smartcar UPSTREAM:RATE_LIMIT): a vehicle cooldown."""
DEFAULT_COOLDOWN_S = 60.0
"""The cooldown after a 429 that named no `retry-after`."""
REVOKED_REASON = "Smartcar refused freshly rotated credentials: the owner revoked access"


class Upstream:
    """Runs calls to Smartcar for a vehicle under the gateway's limits and token rules,
    counting what Smartcar bills and telling the connection's health how each went."""

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
        self._health = ConnectionHealth(uow=uow, clock=clock, policy=health)

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
            result = await call(SmartcarAccess.v2(token), vehicle.smartcar_vehicle_id)
        except RateLimited as limited:
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            await self.note_rate_limit(vehicle.id, limited)
            raise
        except COUNTED_FAILURES as failure:
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            await self._health.failed(vehicle.id, failure)
            raise
        except (GatewayError, TokenRejected):
            await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
            raise
        await self._ledger.spend(vehicle.id, billed, at=self._clock.now())
        await self._health.answered(vehicle)
        return result

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
