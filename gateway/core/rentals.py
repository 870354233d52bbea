"""Rental holds: at most one active rental per vehicle, and no Disconnect while one holds it.

Both operations are idempotent for the same rental id, so the rental service can retry
them freely. Starting needs an ACTIVE connection (a car that cannot be unlocked cannot be
rented); ending is always allowed. `ensure_not_rented` is the guard that refuses
Disconnect while a rental holds the car: `ConnectionService.disconnect` calls it in the
transaction that would disconnect the car, under the vehicle's row lock.
"""

from __future__ import annotations

import dataclasses

from gateway.core.errors import RentalActive, RentalConflict
from gateway.core.model import Rental
from gateway.core.ports import Clock, Conflict, UnitOfWork, UnitOfWorkFactory
from gateway.core.status import ensure_connected
from gateway.core.vehicles import require_vehicle


class RentalService:
    """StartRental and EndRental."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def start(self, vehicle_id: str, *, rental_id: str) -> Rental:
        """Hold the vehicle for `rental_id` (returns the existing hold on a retry)."""
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            existing = await uow.rentals.get(rental_id)
            if existing is not None:
                return _same_rental(existing, vehicle_id)
            ensure_connected(vehicle)
            active = await uow.rentals.active(vehicle_id)
            if active is not None:
                raise RentalConflict(
                    f"vehicle {vehicle_id} is already held by rental {active.rental_id}",
                    metadata={"vehicle_id": vehicle_id, "rental_id": active.rental_id},
                )
            now = self._clock.now()
            rental = Rental(rental_id=rental_id, vehicle_id=vehicle_id, started_at=now)
            try:
                await uow.rentals.add(rental)
                await uow.commit()
            except Conflict:
                raise RentalConflict(
                    f"vehicle {vehicle_id} was just taken by another rental; read it and retry",
                    metadata={"vehicle_id": vehicle_id},
                ) from None
        return rental

    async def end(self, vehicle_id: str, *, rental_id: str) -> Rental:
        """Release the hold (returns the ended rental on a retry)."""
        async with self._uow() as uow:
            await require_vehicle(uow, vehicle_id, for_update=True)
            rental = await uow.rentals.get(rental_id)
            if rental is None or rental.vehicle_id != vehicle_id:
                raise RentalConflict(
                    f"vehicle {vehicle_id} has no rental {rental_id}",
                    metadata={"vehicle_id": vehicle_id, "rental_id": rental_id},
                )
            if not rental.active:
                return rental
            now = self._clock.now()
            ended = dataclasses.replace(rental, ended_at=now)
            await uow.rentals.end(rental_id, ended_at=now)
            await uow.commit()
        return ended


async def ensure_not_rented(uow: UnitOfWork, vehicle_id: str) -> None:
    """Raise RentalActive while a rental holds the vehicle.

    Call it in the transaction that would disconnect the car, with the vehicle's row
    locked: a concurrent StartRental locks the same row and needs ACTIVE, so it either
    committed before (and is seen here) or waits and then finds the car DISCONNECTED."""
    rental = await uow.rentals.active(vehicle_id)
    if rental is not None:
        raise RentalActive(
            f"vehicle {vehicle_id} has an active rental {rental.rental_id}; end it first",
            vehicle_id=vehicle_id,
            rental_id=rental.rental_id,
        )


def _same_rental(existing: Rental, vehicle_id: str) -> Rental:
    """A retried StartRental gets its rental back; a rental id of another car is a conflict."""
    if existing.vehicle_id != vehicle_id:
        raise RentalConflict(
            f"rental {existing.rental_id} belongs to vehicle {existing.vehicle_id}",
            metadata={"rental_id": existing.rental_id, "vehicle_id": existing.vehicle_id},
        )
    if not existing.active:
        raise RentalConflict(
            f"rental {existing.rental_id} has already ended; use a new rental id",
            metadata={"rental_id": existing.rental_id, "vehicle_id": vehicle_id},
        )
    return existing
