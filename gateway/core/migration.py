"""Moving a v2 fleet to Smartcar API V3, a batch at a time, while the gateway serves.

    migration = FleetMigration(uow=uow, smartcar=smartcar, application=tokens, clock=clock)
    report = await migration.run(batch_size=100, dry_run=False)

A connection moves when it is on v2, served (ACTIVE, ERROR or NEEDS_REAUTHENTICATION) or
EXPIRED, and its owner's V3 connections include the car. An EXPIRED car lost its v2 token
pair (refresh token past its 60 days, or refused), which need not mean its connection is
gone: when Smartcar still lists it, the move makes it ACTIVE again (the status change
recorded with the reason); when the owner revoked it, Smartcar does not list it and it stays
EXPIRED. The owner is the Smartcar
user id the connection recorded (migration 0007 copied it from the grant for connections
made before); the application token lists that user's connections
(`GET /v3/connections?filter[userId]`, not billed), one listing per user and run, so the check
costs the cars' allowances nothing. Moving a car is one transaction under its row lock: it
is read again, and only if it is still the same v2 connection it becomes V3 (same Smartcar
vehicle, the user id kept; the status kept, or ACTIVE for an EXPIRED car) and its grant is
detached; the owner's token pair is erased once no vehicle uses it. With a webhook
configured, the moved car is then subscribed to it as a new V3 connection is (a refusal is
noted in its outcome: the car has moved all the same). Nothing is sent to Smartcar for the
v2 side: revoking there would remove the very connection V3 now uses.

A request in flight when its car moves finishes with the v2 token it already holds;
the next one uses V3. The run is resumable: a car already on V3 is skipped, so running
again after a stop goes on where it ended. `dry_run` checks every car the same way and
writes nothing. The report says, per car, what was done or why not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from gateway.core.application_access import ApplicationTokenSource, as_application
from gateway.core.errors import GatewayError
from gateway.core.model import ConnectionStatus, SmartcarAccess, SmartcarApi, Vehicle
from gateway.core.ports import Clock, UnitOfWorkFactory, WebhookSubscriptions
from gateway.core.status import save, with_status

SERVED = frozenset(
    {
        ConnectionStatus.ACTIVE,
        ConnectionStatus.ERROR,
        ConnectionStatus.NEEDS_REAUTHENTICATION,
    }
)
"""The statuses of connections the gateway serves (a car waiting for its owner included: its
connection stands): they move as they are."""
MOVABLE = SERVED | {ConnectionStatus.EXPIRED}
"""The statuses whose connections may move. An EXPIRED car lost its v2 token pair, not
necessarily its connection: when Smartcar still lists it for its owner, it moves and is
ACTIVE again. NOT_CONNECTED and DISCONNECTED cars have no connection to move."""
REVIVED = "moved to Smartcar API V3, which still lists its connection (its v2 tokens had expired)"


class ConnectedCars(Protocol):
    """What the migration asks of Smartcar: the cars a V3 access's user connected (the
    `SmartcarAPI` port's `vehicle_ids`)."""

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the Smartcar vehicle ids the access covers."""
        ...


class Outcome(StrEnum):
    """What the migration did with one vehicle."""

    MIGRATED = "migrated"
    WOULD_MIGRATE = "would_migrate"
    ALREADY_V3 = "already_v3"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class VehicleOutcome:
    """One vehicle's result, and why when it did not move."""

    vehicle_id: str
    outcome: Outcome
    reason: str | None = None


@dataclass(slots=True)
class MigrationReport:
    """What a run did: counts per outcome, each vehicle's result, and where it stopped."""

    dry_run: bool
    outcomes: list[VehicleOutcome] = field(default_factory=list)
    last_vehicle_id: str | None = None

    def counts(self) -> dict[str, int]:
        """Return how many vehicles ended with each outcome."""
        counted = {outcome.value: 0 for outcome in Outcome}
        for result in self.outcomes:
            counted[result.outcome.value] += 1
        return counted


class FleetMigration:
    """Moves v2 connections to API V3 (see the module docstring)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: ConnectedCars,
        application: ApplicationTokenSource,
        clock: Clock,
        subscriptions: WebhookSubscriptions | None = None,
    ) -> None:
        self._subscriptions = subscriptions
        self._uow = uow
        self._smartcar = smartcar
        self._application = application
        self._clock = clock

    async def run(
        self,
        *,
        batch_size: int = 100,
        dry_run: bool = False,
        after_id: str | None = None,
        limit: int | None = None,
        progress: Callable[[VehicleOutcome], Awaitable[None]] | None = None,
    ) -> MigrationReport:
        """Examine the vehicles after `after_id` in id order, `batch_size` per read, at most
        `limit` of them; move each that can move (none when `dry_run`)."""
        report = MigrationReport(dry_run=dry_run)
        users: dict[str, frozenset[str]] = {}
        cursor = after_id
        while limit is None or len(report.outcomes) < limit:
            take = batch_size if limit is None else min(batch_size, limit - len(report.outcomes))
            async with self._uow.reader() as uow:
                batch = await uow.vehicles.page(status=None, after_id=cursor, limit=take)
            if not batch:
                break
            for vehicle in batch:
                result = await self._one(vehicle, users, dry_run=dry_run)
                report.outcomes.append(result)
                report.last_vehicle_id = vehicle.id
                if progress is not None:
                    await progress(result)
            cursor = batch[-1].id
        return report

    async def _one(
        self, vehicle: Vehicle, users: dict[str, frozenset[str]], *, dry_run: bool
    ) -> VehicleOutcome:
        """Check and move one vehicle; a failure is reported, never raised."""
        if vehicle.api is SmartcarApi.V3:
            return VehicleOutcome(vehicle.id, Outcome.ALREADY_V3)
        reason = _unmovable(vehicle)
        if reason is not None:
            return VehicleOutcome(vehicle.id, Outcome.SKIPPED, reason)
        assert vehicle.smartcar_user_id is not None
        try:
            cars = users.get(vehicle.smartcar_user_id)
            if cars is None:
                cars = await self._connected_cars(vehicle.smartcar_user_id)
                users[vehicle.smartcar_user_id] = cars
            if vehicle.smartcar_vehicle_id not in cars:
                return VehicleOutcome(
                    vehicle.id,
                    Outcome.SKIPPED,
                    f"user {vehicle.smartcar_user_id} has no V3 connection to car "
                    f"{vehicle.smartcar_vehicle_id}",
                )
            if dry_run:
                return VehicleOutcome(vehicle.id, Outcome.WOULD_MIGRATE)
            moved = await self._move(vehicle)
            if moved.outcome is Outcome.MIGRATED:
                return await self._subscribed(vehicle, moved)
            return moved
        except GatewayError as failure:
            return VehicleOutcome(vehicle.id, Outcome.FAILED, _described(failure))

    async def _connected_cars(self, user_id: str) -> frozenset[str]:
        """Return the cars the user connected, as API V3 lists them (a refused application
        token is replaced once)."""
        listed = await as_application(self._application, user_id, self._smartcar.vehicle_ids)
        return frozenset(listed)

    async def _subscribed(self, vehicle: Vehicle, moved: VehicleOutcome) -> VehicleOutcome:
        """Subscribe a moved car to the application's webhook, when one is configured; a
        refusal is noted in the outcome (the car has moved all the same)."""
        if self._subscriptions is None:
            return moved
        assert vehicle.smartcar_user_id is not None
        assert vehicle.smartcar_vehicle_id is not None
        subscriptions, car = self._subscriptions, vehicle.smartcar_vehicle_id
        try:
            await as_application(
                self._application,
                vehicle.smartcar_user_id,
                lambda access: subscriptions.subscribe(access, car),
            )
        except GatewayError as failure:
            return dataclasses.replace(
                moved, reason=f"not subscribed to the webhook: {_described(failure)}"
            )
        return moved

    async def _move(self, seen: Vehicle) -> VehicleOutcome:
        """Make the connection V3 if it is still the one examined (an EXPIRED one ACTIVE
        again, the change recorded); erase an unused pair."""
        async with self._uow() as uow:
            current = await uow.vehicles.get(seen.id, for_update=True)
            if current is None or not _same_connection(current, seen):
                return VehicleOutcome(
                    seen.id, Outcome.SKIPPED, "the connection changed while it was examined"
                )
            grant_id = current.grant_id
            moved = dataclasses.replace(current, api=SmartcarApi.V3, grant_id=None)
            revived = current.status is ConnectionStatus.EXPIRED
            if revived:
                now = self._clock.now()
                moved = with_status(moved, ConnectionStatus.ACTIVE, reason=REVIVED, now=now)
            await save(uow, current, moved)
            if grant_id is not None and not await uow.vehicles.by_grant(grant_id):
                await uow.grants.delete(grant_id)
            await uow.commit()
        return VehicleOutcome(seen.id, Outcome.MIGRATED, REVIVED if revived else None)


def _unmovable(vehicle: Vehicle) -> str | None:
    """Say why a v2 vehicle cannot move, or None if it may."""
    if vehicle.status not in MOVABLE:
        return f"status {vehicle.status.value}: no connection to move"
    if vehicle.smartcar_vehicle_id is None:
        return "not linked to a Smartcar vehicle"
    if vehicle.grant_id is None and vehicle.status is not ConnectionStatus.EXPIRED:
        return "not linked to a Smartcar vehicle"
    if not vehicle.smartcar_user_id:
        return "its owner's Smartcar user id is not known"
    return None


def _same_connection(current: Vehicle, seen: Vehicle) -> bool:
    """Tell whether the vehicle still holds the v2 connection that was examined."""
    return (
        current.api is SmartcarApi.V2
        and current.status is seen.status
        and current.grant_id == seen.grant_id
        and current.smartcar_vehicle_id == seen.smartcar_vehicle_id
        and current.smartcar_user_id == seen.smartcar_user_id
    )


def _described(failure: GatewayError) -> str:
    return f"{failure.reason}: {failure}"
