"""Connecting and disconnecting vehicles: Connect URLs, code exchange, deleting connections.

Tokens are stored per *grant*: one Smartcar user's token pair, shared by every fleet
vehicle it covers, never copied per vehicle. When a user connects again, every fleet
vehicle of that user which the new pair covers moves onto it, and pairs no vehicle uses
any more are erased. So all vehicles of one owner rotate one pair, while a pair scoped to
a single car (Smartcar single-select) never cuts off the owner's other cars.

New connections are made through the API the policy names (`ConnectPolicy.api`). On v2,
Connect exchanges the redirect's `code` for the owner's token pair. On API V3 there is no
owner token: the redirect's `user_id` names the owner, the application's token (shared by
the fleet, `gateway.core.application_access`) reads which cars that user connected, and the
vehicle records the user id and API instead of a grant; a `code`, when sent too, is not
needed.

Connect URLs ask for every permission the gateway uses and mark the ones the fleet cannot
work without with Smartcar's `required:` prefix (`ConnectPolicy.required_permissions`). A
redirect that carries Smartcar's `error` instead of a code is recorded on the vehicle and
answered `ConnectFailed` (`gateway.core.connect_failures`).

Which Smartcar vehicle a Connect is for: the one already linked to this fleet vehicle, else
the one whose VIN the fleet vehicle records, else the only one the authorization covers
that no other fleet vehicle uses. Anything else is AuthorizationMismatch. A successful
Connect makes the car ACTIVE whatever it was (EXPIRED, DISCONNECTED, waiting for its owner).

Disconnecting deletes the connection at Smartcar, so that it no longer counts against the
plan's vehicle limit, and erases the tokens; the vehicle and its history stay, DISCONNECTED.
Every connection that may still count there is deleted, whatever the car's status (ACTIVE,
ERROR, NEEDS_REAUTHENTICATION, EXPIRED, or a v2 car still holding its owner's pair):

- V3: the application's token deletes the owner's connection to the car (and the owner once
  none is left: `SmartcarAPI.disconnect`), after unsubscribing the car from the webhook;
- v2 with the owner's pair: the owner's token revokes it (`DELETE …/application`); when
  that pair no longer works (refused, expired, an account to act on) the application's
  token deletes it as below;
- v2 without tokens (EXPIRED: the pair was refused or outlived its 60 days): v2 revokes
  with the owner's access token only, so the application's token deletes the connection
  through API V3's Connections API (`DELETE /v3/connections/{id}` of that owner's
  connection to the car), which also holds connections made through v2 (Smartcar's
  migration guide reads their user ids from it). It needs the owner's Smartcar user id:
  without one, FAILED_PRECONDITION. (Smartcar's v2 management endpoint, `DELETE
  /v2.0/management/connections`, would do too, but with the application management token,
  which the gateway is given only to verify webhooks: not used.)

A connection Smartcar no longer has (404, or no longer listed) is gone already: success. A
failure at Smartcar (5xx, a timeout, a rate limit) keeps the car as it was, status, tokens
and what its owner must do, notes why in its status reason, and fails the call with
Smartcar's error (UNAVAILABLE or RESOURCE_EXHAUSTED, RetryInfo when known): a connection
that still counts against the plan is reported, never silently forgotten; retry Disconnect.
NOT_CONNECTED and DISCONNECTED cars (deleted already, or revoked by their owner, whose
connection Smartcar no longer lists) send nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from gateway.core.application_access import ApplicationTokenSource, as_application
from gateway.core.budget import BudgetLedger, BudgetTier
from gateway.core.connect_failures import record_failure
from gateway.core.errors import (
    AuthorizationMismatch,
    ConnectionDisconnected,
    ConnectionExpired,
    GatewayError,
    InvalidArgument,
    OwnerAccountIssue,
    PreconditionFailed,
    UpstreamUnavailable,
)
from gateway.core.model import (
    ConnectFailure,
    ConnectionStatus,
    ConnectUrl,
    Grant,
    OAuthState,
    SmartcarAccess,
    SmartcarApi,
    TokenPair,
    Vehicle,
    VehicleInfo,
    VehiclePanel,
)
from gateway.core.permissions import DEFAULT_REQUIRED_AT_CONNECT, REQUESTED_PERMISSIONS
from gateway.core.ports import (
    Clock,
    CodeRejected,
    Conflict,
    SmartcarAPI,
    UnitOfWork,
    UnitOfWorkFactory,
    WebhookSubscriptions,
)
from gateway.core.ratelimit import CallKind
from gateway.core.rentals import ensure_not_rented
from gateway.core.status import save, with_status
from gateway.core.upstream import Upstream
from gateway.core.vehicles import panel_of, require_vehicle

T = TypeVar("T")
_log = logging.getLogger(__name__)
CONNECT_BILLED_REQUESTS = {SmartcarApi.V2: 3, SmartcarApi.V3: 1}
"""What Connect costs of the car's allowance: v2 reads attributes, VIN and permissions (three
billed requests); V3 reads the vehicle (counted, conservatively, as one) and the user's
connections (not billed). Counted before the reads are sent, never refused: connecting a
car is an operator's act, whatever the budget says."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectPolicy:
    """How long a Connect `state` stays usable, which API new connections use, and which
    of the permissions asked for Connect marks required (a subset of them)."""

    state_ttl: timedelta = timedelta(minutes=15)
    api: SmartcarApi = SmartcarApi.V2
    required_permissions: frozenset[str] = DEFAULT_REQUIRED_AT_CONNECT

    def __post_init__(self) -> None:
        unknown = sorted(self.required_permissions - REQUESTED_PERMISSIONS)
        if unknown:
            raise ValueError(
                f"required permissions must be among those asked for: {', '.join(unknown)}"
            )


@dataclass(frozen=True, slots=True)
class _Link:
    """What a Connect found: the API, the owner, the car, its permissions, and the grant
    holding the owner's pair (v2 only)."""

    api: SmartcarApi
    user_id: str
    info: VehicleInfo
    permissions: frozenset[str]
    grant_id: str | None


class ConnectionService:
    """GetConnectUrl, Connect and Disconnect."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: SmartcarAPI,
        upstream: Upstream,
        clock: Clock,
        ledger: BudgetLedger,
        policy: ConnectPolicy = ConnectPolicy(),
        new_state: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        application: ApplicationTokenSource | None = None,
        subscriptions: WebhookSubscriptions | None = None,
    ) -> None:
        self._ledger = ledger
        self._budget = ledger.policy
        self._uow = uow
        self._smartcar = smartcar
        self._upstream = upstream
        self._clock = clock
        self._policy = policy
        self._new_state = new_state
        self._application = application
        self._subscriptions = subscriptions

    async def connect_url(self, vehicle_id: str, *, vin: str | None) -> ConnectUrl:
        """Register the vehicle if new, issue a single-use state bound to it, return the URL."""
        expires_at = self._clock.now() + self._policy.state_ttl
        state = OAuthState(state=self._new_state(), vehicle_id=vehicle_id, expires_at=expires_at)
        try:
            vehicle = await self._register(vehicle_id, vin, state)
        except Conflict:  # another caller registered the same new vehicle a moment ago
            vehicle = await self._register(vehicle_id, vin, state)
        url = self._smartcar.connect_url(
            state=state.state,
            vin=vin or vehicle.vin,
            required=self._policy.required_permissions,
        )
        return ConnectUrl(url=url, state=state.state, expires_at=state.expires_at)

    async def _register(self, vehicle_id: str, vin: str | None, state: OAuthState) -> Vehicle:
        """Store the state, creating the vehicle (NOT_CONNECTED) on first sight."""
        async with self._uow() as uow:
            vehicle = await uow.vehicles.get(vehicle_id, for_update=True)
            if vehicle is None:
                vehicle = Vehicle(
                    id=vehicle_id,
                    status=ConnectionStatus.NOT_CONNECTED,
                    created_at=self._clock.now(),
                    vin=vin,
                )
                await uow.vehicles.add(vehicle)
            elif vin and vehicle.vin != vin and vehicle.smartcar_vehicle_id is None:
                vehicle = dataclasses.replace(vehicle, vin=vin)
                await uow.vehicles.update(vehicle)
            await uow.states.add(state)
            await uow.commit()
        return vehicle

    async def connect(
        self,
        vehicle_id: str,
        *,
        code: str,
        state: str,
        user_id: str = "",
        failure: ConnectFailure | None = None,
    ) -> VehiclePanel:
        """Link the vehicle to its Smartcar car: on v2 by exchanging the code and storing the
        tokens, on V3 by the redirect's user id (see the module docstring). A redirect that
        carried `failure` instead uses the state up, is noted on the vehicle, and raises
        ConnectFailed."""
        await self._take_state(vehicle_id, state)
        if failure is not None:
            raise await self._failed(vehicle_id, failure)
        if self._policy.api is SmartcarApi.V3:
            return await self._connect_v3(vehicle_id, user_id)
        if not code:
            raise InvalidArgument.of("code", "is required: the code of the Connect redirect")
        try:
            tokens = await self._smartcar.exchange_code(code)
        except CodeRejected:
            raise InvalidArgument.of(
                "code", "Smartcar rejected it (expired or already used); connect again"
            ) from None
        access = SmartcarAccess.v2(tokens.access_token)
        user_id = await self._smartcar.user_id(access)
        covered = await self._smartcar.vehicle_ids(access)
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id)
        smartcar_id = await self._choose(vehicle, covered, access)
        await self._count_reads(vehicle, SmartcarApi.V2)
        info = await self._smartcar.vehicle_info(access, smartcar_id)
        permissions = await self._smartcar.permissions(access, smartcar_id)
        return await self._link(vehicle_id, user_id, tokens, covered, info, permissions)

    async def _connect_v3(self, vehicle_id: str, user_id: str) -> VehiclePanel:
        """Link the vehicle to the car the user connected, read with the application token."""
        if not user_id:
            raise InvalidArgument.of(
                "user_id", "is required for Smartcar API V3: the user_id of the Connect redirect"
            )
        if self._application is None:
            raise UpstreamUnavailable(
                "new connections use Smartcar API V3, which this gateway has no application "
                "credentials for"
            )
        application = self._application

        async def ask(call: Callable[[SmartcarAccess], Awaitable[T]]) -> T:
            return await as_application(application, user_id, call)

        covered = await ask(self._smartcar.vehicle_ids)
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id)
        smartcar_id = await ask(lambda access: self._choose(vehicle, covered, access))
        await self._count_reads(vehicle, SmartcarApi.V3)
        info = await ask(lambda access: self._smartcar.vehicle_info(access, smartcar_id))
        permissions = await ask(lambda access: self._smartcar.permissions(access, smartcar_id))
        shown = await self._link_v3(vehicle_id, user_id, info, permissions)
        if self._subscriptions is not None:
            subscriptions = self._subscriptions
            try:
                await ask(lambda access: subscriptions.subscribe(access, smartcar_id))
            except GatewayError as failure:  # the car is connected; its events can wait
                _log.warning(
                    "car connected but not subscribed to the webhook",
                    extra={"vehicle_id": vehicle_id, "reason": failure.reason},
                )
        return shown

    async def _failed(self, vehicle_id: str, failure: ConnectFailure) -> GatewayError:
        """Record why the owner's Connect failed; return the error to answer with."""
        async with self._uow() as uow:
            refused = await record_failure(uow, vehicle_id, failure)
            await uow.commit()
        _log.info(
            "Connect failed at Smartcar",
            extra={"vehicle_id": vehicle_id, "reason": refused.reason},
        )
        return refused

    async def _count_reads(self, vehicle: Vehicle, api: SmartcarApi) -> None:
        """Count the billed reads Connect is about to make of the car, before it makes them."""
        await self._ledger.charge(
            vehicle, CONNECT_BILLED_REQUESTS[api], tier=BudgetTier.UNCAPPED, at=self._clock.now()
        )

    async def _take_state(self, vehicle_id: str, state: str) -> None:
        async with self._uow() as uow:
            issued = await uow.states.take(state)
            await uow.commit()
        if issued is None or issued.expires_at <= self._clock.now():
            raise InvalidArgument.of(
                "state", "is unknown, expired or already used; get a new Connect URL"
            )
        if issued.vehicle_id != vehicle_id:
            raise InvalidArgument.of("state", "was issued for another vehicle")

    async def _choose(self, vehicle: Vehicle, covered: list[str], access: SmartcarAccess) -> str:
        """Pick the Smartcar vehicle this fleet vehicle is."""
        if vehicle.smartcar_vehicle_id in covered:
            return vehicle.smartcar_vehicle_id
        async with self._uow() as uow:
            free = [s for s in covered if await _unclaimed(uow, s, vehicle.id)]
        if vehicle.vin:
            for smartcar_id in free:
                if (await self._smartcar.vehicle_info(access, smartcar_id)).vin == vehicle.vin:
                    return smartcar_id
            raise AuthorizationMismatch(
                f"the authorization includes no car with VIN {vehicle.vin} that is not already "
                "connected as another fleet vehicle",
                metadata={"vehicle_id": vehicle.id, "vin": vehicle.vin},
            )
        if len(free) == 1:
            return free[0]
        raise AuthorizationMismatch(
            f"the authorization covers {len(free)} cars not linked to other fleet vehicles; "
            "ask for a Connect URL with the car's VIN to pick one",
            metadata={"vehicle_id": vehicle.id, "candidates": str(len(free))},
        )

    async def _link(
        self,
        vehicle_id: str,
        user_id: str,
        tokens: TokenPair,
        covered: list[str],
        info: VehicleInfo,
        permissions: frozenset[str],
    ) -> VehiclePanel:
        now = self._clock.now()
        grant = Grant(id=str(uuid.uuid4()), smartcar_user_id=user_id, tokens=tokens, version=1)
        async with self._uow() as uow:
            await uow.grants.add(grant)
            old_grants = await self._move_users_vehicles(uow, grant, covered, exclude=vehicle_id)
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            if vehicle.grant_id:
                old_grants.add(vehicle.grant_id)
            link = _Link(SmartcarApi.V2, user_id, info, permissions, grant_id=grant.id)
            shown = await self._save_link(uow, vehicle, link, now=now)
            await _drop_unused(uow, old_grants)
            await uow.commit()
        return shown

    async def _link_v3(
        self, vehicle_id: str, user_id: str, info: VehicleInfo, permissions: frozenset[str]
    ) -> VehiclePanel:
        """Record the V3 link: the car, its owner, the API; a v2 pair it leaves is erased
        once no vehicle uses it."""
        now = self._clock.now()
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            link = _Link(SmartcarApi.V3, user_id, info, permissions, grant_id=None)
            shown = await self._save_link(uow, vehicle, link, now=now)
            if vehicle.grant_id:
                await _drop_unused(uow, {vehicle.grant_id})
            await uow.commit()
        return shown

    async def _save_link(
        self, uow: UnitOfWork, vehicle: Vehicle, link: _Link, *, now: datetime
    ) -> VehiclePanel:
        """Make the vehicle ACTIVE on the link and return its panel;
        AuthorizationMismatch when the car got linked to another fleet vehicle meanwhile."""
        info = link.info
        linked = dataclasses.replace(
            with_status(vehicle, ConnectionStatus.ACTIVE, reason=None, now=now),
            smartcar_vehicle_id=info.smartcar_vehicle_id,
            grant_id=link.grant_id,
            api=link.api,
            smartcar_user_id=link.user_id,
            make=info.make,
            model=info.model,
            year=info.year,
            vin=info.vin,
            permissions=link.permissions,
        )
        try:
            await save(uow, vehicle, linked)
        except Conflict:
            raise AuthorizationMismatch(
                f"car {info.smartcar_vehicle_id} is already connected as another vehicle",
                metadata={"vehicle_id": vehicle.id},
            ) from None
        return await panel_of(uow, linked, at=now, policy=self._budget)

    async def _move_users_vehicles(
        self, uow: UnitOfWork, grant: Grant, covered: list[str], *, exclude: str
    ) -> set[str]:
        """Move the user's other vehicles the new pair covers onto it; return their old grants."""
        old: set[str] = set()
        for previous in await uow.grants.by_user(grant.smartcar_user_id):
            for vehicle in await uow.vehicles.by_grant(previous.id):
                if vehicle.id != exclude and vehicle.smartcar_vehicle_id in covered:
                    await uow.vehicles.update(dataclasses.replace(vehicle, grant_id=grant.id))
                    old.add(previous.id)
        return old

    async def disconnect(self, vehicle_id: str) -> VehiclePanel:
        """Delete the connection at Smartcar and erase the tokens; refused while a rental
        holds the car (`rentals.ensure_not_rented`). See "Disconnecting" in the module
        docstring for how, whatever the car's status.

        The status turns DISCONNECTED in the same transaction that checks for a rental (under
        the vehicle's row lock), so a concurrent StartRental, which needs ACTIVE, cannot slip
        in between. If Smartcar cannot delete the connection, the vehicle is restored and the
        call fails with Smartcar's error (UNAVAILABLE, RESOURCE_EXHAUSTED: retry it).
        """
        now = self._clock.now()
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            await ensure_not_rented(uow, vehicle_id)
            if not _linked(vehicle):
                return await panel_of(uow, vehicle, at=now, policy=self._budget)
            self._ensure_deletable(vehicle)
            parked = with_status(
                vehicle, ConnectionStatus.DISCONNECTED, reason=DISCONNECTED_REASON, now=now
            )
            await save(uow, vehicle, parked)
            await uow.commit()
        await self._unsubscribe(vehicle)
        try:
            await self._delete(vehicle)
        except GatewayError as failure:
            await self._restore(vehicle, parked, failure)
            raise
        return await self._erase(vehicle_id)

    def _ensure_deletable(self, vehicle: Vehicle) -> None:
        """Refuse, before anything changes, a connection the gateway has no way to delete:
        a v2 car whose tokens are gone needs the application's token and the owner's id."""
        if vehicle.api is SmartcarApi.V3 or vehicle.grant_id is not None:
            return
        if not vehicle.smartcar_user_id:
            raise PreconditionFailed(
                f"vehicle {vehicle.id}: its owner's Smartcar user id is not known, so its "
                "connection cannot be found to delete; delete it in Smartcar's dashboard, or "
                "reconnect the car",
                metadata={"vehicle_id": vehicle.id, "status": vehicle.status.value},
            )
        if self._application is None:
            raise UpstreamUnavailable(
                f"vehicle {vehicle.id}: its owner's tokens are gone and this gateway has no "
                "application credentials to delete the connection with",
                metadata={"vehicle_id": vehicle.id},
            )

    async def _unsubscribe(self, vehicle: Vehicle) -> None:
        """Remove a V3 car's webhook subscription before its connection is deleted. A
        failure is logged and the disconnect goes on: the connection is what the caller
        asked to remove, and Smartcar sends nothing for a car it no longer connects."""
        car, user = vehicle.smartcar_vehicle_id, vehicle.smartcar_user_id
        if (
            vehicle.api is not SmartcarApi.V3
            or self._subscriptions is None
            or self._application is None
            or car is None
            or user is None
        ):
            return
        subscriptions = self._subscriptions
        try:
            await as_application(
                self._application, user, lambda access: subscriptions.unsubscribe(access, car)
            )
        except GatewayError as failure:
            _log.warning(
                "car disconnected but its webhook subscription not removed",
                extra={"vehicle_id": vehicle.id, "reason": failure.reason},
            )

    async def _delete(self, vehicle: Vehicle) -> None:
        """Delete the car's connection at Smartcar: through the API its connection uses
        (the owner's tokens on v2, the application's on V3), whatever its status; a v2 car
        whose tokens are gone, or no longer work, through API V3's management of
        connections with the application's token."""

        async def revoke(access: SmartcarAccess, smartcar_id: str) -> None:
            await self._smartcar.disconnect(access, smartcar_id)

        if vehicle.api is SmartcarApi.V2 and vehicle.grant_id is None:
            await self._delete_as_application(vehicle)
            return
        try:
            await self._upstream.call(vehicle, CallKind.COMMAND, revoke, awaiting_owner=True)
        except (ConnectionDisconnected, ConnectionExpired, OwnerAccountIssue) as refused:
            # The owner's tokens cannot delete it (revoked, expired, an account to act on).
            if self._application is None or vehicle.smartcar_user_id is None:
                if isinstance(refused, ConnectionDisconnected):
                    return  # the owner removed it, and nothing else can tell otherwise
                raise
            await self._delete_as_application(vehicle)

    async def _delete_as_application(self, vehicle: Vehicle) -> None:
        """Delete the owner's connection to the car with the application's token (API V3's
        Connections API: the car's connection of that user, then the user once none is
        left); one Smartcar no longer has is gone already, which is what was asked."""
        application, user = self._application, vehicle.smartcar_user_id
        car = vehicle.smartcar_vehicle_id
        assert application is not None
        assert user is not None
        assert car is not None
        await as_application(
            application, user, lambda access: self._smartcar.disconnect(access, car)
        )

    async def _restore(self, vehicle: Vehicle, parked: Vehicle, failure: GatewayError) -> None:
        """Put the vehicle back as it was before Disconnect (its connection still counts at
        Smartcar), noting why; a status someone else set meanwhile (the rotator finding the
        pair refused) is kept."""
        now = self._clock.now()
        reason = f"disconnect failed, connection kept: {failure.reason}"
        async with self._uow() as uow:
            current = await require_vehicle(uow, vehicle.id, for_update=True)
            if _same_status(current, parked):
                restored = dataclasses.replace(
                    with_status(current, vehicle.status, reason=reason, now=now),
                    owner_action=vehicle.owner_action,
                )
            else:
                restored = dataclasses.replace(current, status_reason=reason)
            await save(uow, current, restored)
            await uow.commit()

    async def _erase(self, vehicle_id: str) -> VehiclePanel:
        """Erase the car's tokens (its pair, once no vehicle uses it) and leave it
        DISCONNECTED (the rotator may have marked it otherwise on the way)."""
        now = self._clock.now()
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            grant_id = vehicle.grant_id
            detached = dataclasses.replace(
                with_status(
                    vehicle, ConnectionStatus.DISCONNECTED, reason=DISCONNECTED_REASON, now=now
                )
                if vehicle.status is not ConnectionStatus.DISCONNECTED
                else vehicle,
                grant_id=None,
            )
            await save(uow, vehicle, detached)
            if grant_id:
                await _drop_unused(uow, {grant_id})
            shown = await panel_of(uow, detached, at=now, policy=self._budget)
            await uow.commit()
        return shown


DISCONNECTED_REASON = "disconnected through the gateway"
DELETABLE = frozenset(
    {
        ConnectionStatus.ACTIVE,
        ConnectionStatus.ERROR,
        ConnectionStatus.NEEDS_REAUTHENTICATION,
        ConnectionStatus.EXPIRED,
    }
)
"""The statuses of a connection that may still count at Smartcar (against the plan's
vehicle limit) and that Disconnect therefore deletes there."""


def _linked(vehicle: Vehicle) -> bool:
    """Tell whether the vehicle may hold a connection at Smartcar to delete: a car of a
    status that may still count there (with a Smartcar car and, on V3, an owner), or a v2
    car that still holds its owner's pair."""
    if vehicle.smartcar_vehicle_id is None:
        return False
    if vehicle.api is SmartcarApi.V2 and vehicle.grant_id is not None:
        return True
    if vehicle.api is SmartcarApi.V3 and vehicle.smartcar_user_id is None:
        return False
    return vehicle.status in DELETABLE


def _same_status(current: Vehicle, parked: Vehicle) -> bool:
    """Tell whether the vehicle still stands as Disconnect left it before asking Smartcar."""
    return (current.status, current.status_reason, current.status_changed_at) == (
        parked.status,
        parked.status_reason,
        parked.status_changed_at,
    )


async def _unclaimed(uow: UnitOfWork, smartcar_id: str, fleet_id: str) -> bool:
    """Tell whether no other fleet vehicle is linked to this Smartcar vehicle."""
    owner = await uow.vehicles.by_smartcar_id(smartcar_id)
    return owner is None or owner.id == fleet_id


async def _drop_unused(uow: UnitOfWork, grant_ids: set[str]) -> None:
    """Erase the token pairs no vehicle uses any more."""
    for grant_id in grant_ids:
        if not await uow.vehicles.by_grant(grant_id):
            await uow.grants.delete(grant_id)
