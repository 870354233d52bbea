"""Connection health: when failed upstream calls turn a connection ERROR, and back ACTIVE.

    health = ConnectionHealth(uow=uow, clock=clock, policy=HealthPolicy())
    await health.failed(vehicle_id, failure)   # after a call that counts against it
    await health.answered(vehicle)             # after any answer from Smartcar

A call that fails because Smartcar or the car could not be reached (`COUNTED_FAILURES`:
Smartcar 5xx or a timeout, an unreachable car, a command whose outcome is unknown) counts
against the connection and becomes its `last_error`; `error_after_failures` of them in a
row (5) turn an ACTIVE connection ERROR. The next answer resets the count and turns ERROR
back to ACTIVE. Other refusals (rate limits, a rejected token, errors of the request)
neither count nor reset. Every status change is saved through `status.save`, so the
history records it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from gateway.core.errors import (
    CommandOutcomeUnknown,
    GatewayError,
    UpstreamUnavailable,
    VehicleUnreachable,
)
from gateway.core.model import ConnectionStatus, Vehicle
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.status import save, with_status

COUNTED_FAILURES = (UpstreamUnavailable, CommandOutcomeUnknown, VehicleUnreachable)
"""The failures that count against a connection's health."""
RECOVERED_REASON = "Smartcar answered again"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPolicy:
    """How many consecutive upstream failures turn a connection to ERROR."""

    error_after_failures: int = 5

    def after_failure(self, vehicle: Vehicle, failure: GatewayError, *, now: datetime) -> Vehicle:
        """Return the vehicle with one more failure counted, ERROR once there are enough."""
        count = vehicle.failure_count + 1
        updated = dataclasses.replace(vehicle, failure_count=count, last_error=failure.message)
        if count >= self.error_after_failures and vehicle.status is ConnectionStatus.ACTIVE:
            reason = f"{count} upstream failures in a row; last: {failure.reason}"
            updated = with_status(updated, ConnectionStatus.ERROR, reason=reason, now=now)
        return updated

    def after_answer(self, vehicle: Vehicle, *, now: datetime) -> Vehicle:
        """Return the vehicle with no failures counted, ACTIVE again if it was ERROR."""
        updated = dataclasses.replace(vehicle, failure_count=0)
        if vehicle.status is ConnectionStatus.ERROR:
            updated = with_status(
                updated, ConnectionStatus.ACTIVE, reason=RECOVERED_REASON, now=now
            )
        return updated


def recovering(vehicle: Vehicle) -> bool:
    """Tell whether an answer changes the vehicle's health (failures counted, or ERROR)."""
    return bool(vehicle.failure_count) or vehicle.status is ConnectionStatus.ERROR


class ConnectionHealth:
    """Keeps each connection's health in storage as upstream calls fail and succeed."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, policy: HealthPolicy = HealthPolicy()
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def failed(self, vehicle_id: str, failure: GatewayError) -> None:
        """Count a failure against the vehicle's connection (see `HealthPolicy`)."""
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            if current is None:
                return
            await save(uow, current, self._policy.after_failure(current, failure, now=now))
            await uow.commit()

    async def answered(self, vehicle: Vehicle) -> None:
        """Reset the count after an answer, and ERROR to ACTIVE; nothing is written for a
        vehicle (as the caller read it) without failures counted."""
        if not recovering(vehicle):
            return
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle.id, for_update=True)
            if current is None:
                return
            await save(uow, current, self._policy.after_answer(current, now=now))
            await uow.commit()
