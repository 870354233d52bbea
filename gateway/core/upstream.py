"""The one path every upstream call takes: status check, rate limits, token, one 401 retry.

A call is checked against the car's monthly budget for its tier (`budget`: a read that
would cut into the reserve is refused before it takes anything else), admitted by the rate
limiter (refusal: RateLimited, no request made), runs with an access token from the
rotator, and on a 401 gets exactly one retry with a token that differs from the refused
one; a second 401 means the owner revoked access: the car becomes DISCONNECTED, with every
other car on its grant that Smartcar no longer lists (every car on the grant when the
listing cannot be asked, `revocation`). A Smartcar 429 puts the vehicle (or, for the
app-wide bucket, the whole application) in cooldown until its `retry-after`. Every attempt
is counted against the budget just before it is sent, and its outcome told to the
connection's health (`health`).

Two answers change the car's status here. Smartcar's CONNECTED_SERVICES_ACCOUNT errors
(`OwnerAccountIssue`) make it wait for its owner (NEEDS_REAUTHENTICATION,
`reauthentication`); such a car is sent nothing but calls made with `awaiting_owner` (the
scheduler's probe, Disconnect), and a probe answered ends the wait. A 403 ACCESS_DENIED
(`AuthorizationMismatch`) for a car whose connection Smartcar no longer lists is the owner
revoking access: DISCONNECTED (`revocation`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gateway.core.application_access import APPLICATION_REFUSED, ApplicationTokenSource
from gateway.core.budget import BudgetLedger, BudgetTier, ChargeWrite
from gateway.core.errors import (
    AuthorizationMismatch,
    ConnectionDisconnected,
    GatewayError,
    OwnerAccountIssue,
    RateLimited,
    UpstreamUnavailable,
)
from gateway.core.health import COUNTED_FAILURES, ConnectionHealth, HealthPolicy
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, SmartcarAccess, SmartcarApi, Vehicle
from gateway.core.ports import Clock, TokenRejected, UnitOfWorkFactory
from gateway.core.ratelimit import Admission, CallKind
from gateway.core.reauthentication import OwnerActions
from gateway.core.revocation import ACCESS_REVOKED, ConnectionListing, disconnect_revoked, revoked
from gateway.core.rotation import TokenRotator
from gateway.core.status import ensure_connected, set_grant_status
from gateway.core.tracing import NO_TRACING, UPSTREAM_RETRY, Tracing

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
        application: ApplicationTokenSource | None = None,
        listing: ConnectionListing | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`listing` tells a car whose owner revoked access from one Smartcar refused for
        another reason (without it, a 403 leaves the status as it is); `tracing` hears of
        the retry after a 401."""
        self._tracing = tracing
        self._metrics = metrics
        self._uow = uow
        self._rotator = rotator
        self._limiter = limiter
        self._clock = clock
        self._ledger = ledger
        self._health = ConnectionHealth(uow=uow, clock=clock, policy=health)
        self._owners = OwnerActions(uow=uow, clock=clock)
        self._application = application
        self._listing = listing

    async def call(
        self,
        vehicle: Vehicle,
        kind: CallKind,
        call: UpstreamCall[T],
        *,
        billed: int = 1,
        tier: BudgetTier = BudgetTier.UNCAPPED,
        awaiting_owner: bool = False,
        with_charge: ChargeWrite | None = None,
    ) -> T:
        """Run `call` for `vehicle`, or raise the domain error that explains why not.

        `billed` is how many requests Smartcar bills for one attempt (a batch: its paths);
        `tier` how far into the car's monthly allowance they may go (commands: no cap).
        `awaiting_owner` sends it to a car that waits for its owner (NEEDS_REAUTHENTICATION)
        too: a probe of whether the owner acted (answered, the wait ends), or Disconnect.
        `with_charge` is written in the first attempt's charge transaction, so it is
        durable exactly when that attempt may be sent (a command's claim of its request id:
        one durability point before sending, `BudgetLedger.charge`).
        """
        _ensure_callable(vehicle, awaiting_owner=awaiting_owner)
        attempt = _Attempt(billed=billed, tier=tier, awaiting_owner=awaiting_owner)
        credentials = self._credentials(vehicle)
        await self._ledger.check(vehicle, billed, tier=tier, at=self._clock.now())
        try:
            await self._limiter.admit(vehicle.id, kind, now_s=self._clock.now().timestamp())
        except RateLimited as refused:
            self._metrics.rate_limited(limit=str(refused.metadata.get("limit", "unknown")))
            raise
        try:
            access = await credentials.current()
        except ConnectionDisconnected as gone:  # its grant went: perhaps the car moved to V3
            vehicle, credentials = await self._moved(vehicle, gone, attempt)
            access = await credentials.current()
        try:
            result = await self._tracked(vehicle, call, access, attempt, with_charge=with_charge)
        except TokenRejected:
            self._tracing.event(
                UPSTREAM_RETRY, {"vg.vehicle_id": vehicle.id, "vg.retry.reason": "token_rejected"}
            )
            try:
                access = await credentials.rejected(access)
            except ConnectionDisconnected as gone:
                vehicle, credentials = await self._moved(vehicle, gone, attempt)
                access = await credentials.current()
        else:
            return result
        try:
            return await self._tracked(vehicle, call, access, attempt)
        except TokenRejected:
            raise await credentials.refused_again(vehicle) from None

    async def _moved(
        self, seen: Vehicle, gone: ConnectionDisconnected, attempt: _Attempt
    ) -> tuple[Vehicle, _Credentials]:
        """The vehicle and its credentials as stored now, when its connection changed since
        `seen` was read (the fleet migration moved it to V3 and erased its v2 pair while a
        call was on its way); re-raise `gone` when nothing changed."""
        async with self._uow.reader() as uow:
            current = await uow.vehicles.get(seen.id)
        if current is None or (current.api, current.grant_id) == (seen.api, seen.grant_id):
            raise gone
        _ensure_callable(current, awaiting_owner=attempt.awaiting_owner)
        return current, self._credentials(current)

    def _credentials(self, vehicle: Vehicle) -> _Credentials:
        """What authorises calls for the vehicle: its owner's pair (v2), or the application's
        token with the owner's user id (V3)."""
        if vehicle.smartcar_vehicle_id is None:
            raise ConnectionDisconnected(f"vehicle {vehicle.id} has no Smartcar authorization")
        if vehicle.api is SmartcarApi.V3:
            if vehicle.smartcar_user_id is None:
                raise ConnectionDisconnected(f"vehicle {vehicle.id} has no Smartcar owner")
            if self._application is None:
                raise UpstreamUnavailable(
                    f"vehicle {vehicle.id} is connected through Smartcar API V3, which this "
                    "gateway is not configured for",
                    metadata={"vehicle_id": vehicle.id},
                )
            return _ApplicationCredentials(self._application, vehicle.smartcar_user_id)
        if vehicle.grant_id is None:
            raise ConnectionDisconnected(f"vehicle {vehicle.id} has no Smartcar authorization")
        return _OwnerCredentials(self._rotator, vehicle.grant_id, self.revoked)

    async def _tracked(
        self,
        vehicle: Vehicle,
        call: UpstreamCall[T],
        access: SmartcarAccess,
        attempt: _Attempt,
        *,
        with_charge: ChargeWrite | None = None,
    ) -> T:
        """One attempt: count it against the budget before it is sent (a refusal sends
        nothing; `with_charge` is written with the count), note rate limits, keep the
        connection's health, and note what Smartcar said of the owner (an account to act
        on, access revoked, a probe answered)."""
        assert vehicle.smartcar_vehicle_id is not None
        await self._ledger.charge(
            vehicle,
            attempt.billed,
            tier=attempt.tier,
            at=self._clock.now(),
            with_charge=with_charge,
        )
        try:
            result = await call(access, vehicle.smartcar_vehicle_id)
        except RateLimited as limited:
            await self.note_rate_limit(vehicle.id, limited)
            raise
        except COUNTED_FAILURES as failure:
            await self._health.failed(vehicle.id, failure)
            raise
        except OwnerAccountIssue as issue:
            await self._owners.required(vehicle.id, issue.action)
            raise
        except AuthorizationMismatch as refused:
            raise await self._refused_access(vehicle, refused) from None
        await self._health.answered(vehicle)
        if attempt.awaiting_owner and vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION:
            await self._owners.answered(vehicle.id)
        return result

    async def _refused_access(
        self, vehicle: Vehicle, refused: AuthorizationMismatch
    ) -> GatewayError:
        """A 403 ACCESS_DENIED: when Smartcar no longer lists the owner's connection to the
        car, the owner revoked it (DISCONNECTED, `revocation`); otherwise the refusal stands."""
        if self._listing is None:
            return refused
        if not revoked(vehicle, await self._listing.listed(vehicle.smartcar_user_id)):
            return refused
        async with self._uow() as uow:
            await disconnect_revoked(uow, vehicle.id, reason=ACCESS_REVOKED, now=self._clock.now())
            await uow.commit()
        return ConnectionDisconnected(
            f"vehicle {vehicle.id}: {ACCESS_REVOKED}; reconnect it",
            metadata={"vehicle_id": vehicle.id},
            upstream=refused.upstream,
        )

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

    async def revoked(self, grant_id: str, vehicle: Vehicle) -> None:
        """Freshly rotated credentials were refused for `vehicle`: the owner revoked access.
        With a listing of the owner's connections, the car is DISCONNECTED, and so is every
        other car on its pair that Smartcar no longer lists (the rest keep the pair); without
        one, every vehicle on the pair is."""
        listed = None
        if self._listing is not None:
            listed = await self._listing.listed(vehicle.smartcar_user_id)
        now = self._clock.now()
        async with self._uow() as uow:
            if listed is None:
                await set_grant_status(
                    uow, grant_id, ConnectionStatus.DISCONNECTED, reason=REVOKED_REASON, now=now
                )
            else:
                for other in await uow.vehicles.by_grant(grant_id):
                    if other.id == vehicle.id or revoked(other, listed):
                        await disconnect_revoked(uow, other.id, reason=REVOKED_REASON, now=now)
            await uow.commit()


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What one call's attempts share: what each costs, how far into the budget it may go,
    and whether a car waiting for its owner may be sent it."""

    billed: int
    tier: BudgetTier
    awaiting_owner: bool


def _ensure_callable(vehicle: Vehicle, *, awaiting_owner: bool) -> None:
    """Raise why the vehicle cannot be called (`status.ensure_connected`); a car waiting for
    its owner can be, by a call made `awaiting_owner`."""
    waiting = vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
    if not (awaiting_owner and waiting):
        ensure_connected(vehicle)


class _Credentials(Protocol):
    """How one vehicle's calls are authorised, and what a refusal means for it."""

    async def current(self) -> SmartcarAccess: ...

    async def rejected(self, access: SmartcarAccess) -> SmartcarAccess: ...

    async def refused_again(self, vehicle: Vehicle) -> GatewayError: ...


@dataclass(frozen=True, slots=True)
class _OwnerCredentials:
    """v2: the owner's token pair, rotated exactly once per expiry (`rotation`). Freshly
    rotated credentials refused again mean the owner revoked access: the car becomes
    DISCONNECTED (`Upstream.revoked`)."""

    rotator: TokenRotator
    grant_id: str
    revoke: Callable[[str, Vehicle], Awaitable[None]]

    async def current(self) -> SmartcarAccess:
        return SmartcarAccess.v2(await self.rotator.access_token(self.grant_id))

    async def rejected(self, access: SmartcarAccess) -> SmartcarAccess:
        return SmartcarAccess.v2(await self.rotator.after_rejection(self.grant_id, access.token))

    async def refused_again(self, vehicle: Vehicle) -> GatewayError:
        await self.revoke(self.grant_id, vehicle)
        return ConnectionDisconnected(
            f"vehicle {vehicle.id}: {REVOKED_REASON}; reconnect it",
            metadata={"vehicle_id": vehicle.id},
        )


@dataclass(frozen=True, slots=True)
class _ApplicationCredentials:
    """V3: the application's token for the owner named by `user_id`. A fresh token refused
    again says nothing about the owner (V3 refuses another user's car with 403): the
    application's own credentials are at fault, so the car keeps its status."""

    source: ApplicationTokenSource
    user_id: str

    async def current(self) -> SmartcarAccess:
        return SmartcarAccess.v3(await self.source.current(), user_id=self.user_id)

    async def rejected(self, access: SmartcarAccess) -> SmartcarAccess:
        return SmartcarAccess.v3(await self.source.rejected(access.token), user_id=self.user_id)

    async def refused_again(self, vehicle: Vehicle) -> GatewayError:
        return UpstreamUnavailable(APPLICATION_REFUSED, metadata={"vehicle_id": vehicle.id})
