"""The one path every upstream call takes: status check, rate limits, token, one 401 retry.

A call is admitted by the rate limiter (refusal: RateLimited, no request made), runs with
an access token from the rotator, and on a 401 gets exactly one retry with a token that
differs from the refused one; a second 401 means the owner revoked access, and every
vehicle on the grant becomes DISCONNECTED. A Smartcar 429 puts the vehicle (or, for the
app-wide bucket, the whole application) in cooldown until its `retry-after`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.core.errors import ConnectionDisconnected, RateLimited
from gateway.core.model import ConnectionStatus, Vehicle
from gateway.core.ports import Clock, TokenRejected, UnitOfWorkFactory
from gateway.core.ratelimit import CallKind, RateLimiter
from gateway.core.rotation import TokenRotator
from gateway.core.secret import Secret
from gateway.core.status import ensure_connected, set_grant_status

T = TypeVar("T")
UpstreamCall = Callable[[Secret, str], Awaitable[T]]
"""Something to ask Smartcar, given an access token and the Smartcar vehicle id."""

SMARTCAR_VEHICLE_LIMIT = "smartcar_vehicle"
SMARTCAR_APPLICATION_LIMIT = "smartcar_application"
DEFAULT_COOLDOWN_S = 60.0
"""The cooldown after a 429 that named no `retry-after`."""
REVOKED_REASON = "Smartcar refused freshly rotated credentials: the owner revoked access"


class Upstream:
    """Runs calls to Smartcar for a vehicle under the gateway's limits and token rules."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, rotator: TokenRotator, limiter: RateLimiter, clock: Clock
    ) -> None:
        self._uow = uow
        self._rotator = rotator
        self._limiter = limiter
        self._clock = clock

    async def call(self, vehicle: Vehicle, kind: CallKind, call: UpstreamCall[T]) -> T:
        """Run `call` for `vehicle`, or raise the domain error that explains why not."""
        ensure_connected(vehicle)
        if vehicle.grant_id is None or vehicle.smartcar_vehicle_id is None:
            raise ConnectionDisconnected(f"vehicle {vehicle.id} has no Smartcar authorization")
        self._limiter.admit(vehicle.id, kind, now_s=self._clock.now().timestamp())
        token = await self._rotator.access_token(vehicle.grant_id)
        try:
            return await self._attempt(vehicle, call, token)
        except TokenRejected:
            token = await self._rotator.after_rejection(vehicle.grant_id, token)
        try:
            return await self._attempt(vehicle, call, token)
        except TokenRejected:
            await self._revoked(vehicle.grant_id)
            raise ConnectionDisconnected(
                f"vehicle {vehicle.id}: {REVOKED_REASON}; reconnect it",
                metadata={"vehicle_id": vehicle.id},
            ) from None

    async def _attempt(self, vehicle: Vehicle, call: UpstreamCall[T], token: Secret) -> T:
        assert vehicle.smartcar_vehicle_id is not None
        try:
            return await call(token, vehicle.smartcar_vehicle_id)
        except RateLimited as limited:
            self.note_rate_limit(vehicle.id, limited)
            raise

    def note_rate_limit(self, vehicle_id: str, limited: RateLimited) -> None:
        """Start the cooldown Smartcar asked for with a 429."""
        if limited.metadata.get("limit") == SMARTCAR_APPLICATION_LIMIT:
            until_s = self._clock.now().timestamp() + (limited.retry_after_s or DEFAULT_COOLDOWN_S)
            self._limiter.cool_down_application(until_s=until_s)
        else:
            self.cool_down(vehicle_id, retry_after_s=limited.retry_after_s)

    def cool_down(self, vehicle_id: str, *, retry_after_s: float | None) -> None:
        """Refuse upstream calls for the vehicle until `retry_after_s` (default: a minute)."""
        until_s = self._clock.now().timestamp() + (retry_after_s or DEFAULT_COOLDOWN_S)
        self._limiter.cool_down(vehicle_id, until_s=until_s)

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
