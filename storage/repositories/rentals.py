"""Rental holds in the `rentals` table; a partial unique index allows one active per car."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import Rental
from storage.repositories._conflicts import execute_or_conflict
from storage.schema import rentals

_active = rentals.c.ended_at.is_(None)


class SqlRentalRepository:
    """Rentals by id, and the active one per vehicle."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, rental_id: str) -> Rental | None:
        """Return a rental by id."""
        query = select(rentals).where(rentals.c.rental_id == rental_id)
        row = (await self._connection.execute(query)).one_or_none()
        return None if row is None else _to_rental(row)

    async def active(self, vehicle_id: str) -> Rental | None:
        """Return the vehicle's active rental, if any."""
        return (await self.active_for([vehicle_id])).get(vehicle_id)

    async def active_for(self, vehicle_ids: Sequence[str]) -> dict[str, Rental]:
        """Return the active rentals of these vehicles, by vehicle id."""
        if not vehicle_ids:
            return {}
        query = select(rentals).where(rentals.c.vehicle_id.in_(vehicle_ids), _active)
        found = [_to_rental(row) for row in await self._connection.execute(query)]
        return {rental.vehicle_id: rental for rental in found}

    async def add(self, rental: Rental) -> None:
        """Insert a rental; Conflict if the id exists or another rental holds the car."""
        statement = insert(rentals).values(
            rental_id=rental.rental_id,
            vehicle_id=rental.vehicle_id,
            started_at=rental.started_at,
            ended_at=rental.ended_at,
        )
        await execute_or_conflict(
            self._connection,
            statement,
            conflict=f"rental {rental.rental_id!r} exists or {rental.vehicle_id!r} is held",
        )

    async def end(self, rental_id: str, *, ended_at: datetime) -> None:
        """Mark the rental as ended (an ended one keeps its first end time); LookupError if
        there is no such rental."""
        statement = update(rentals).where(rentals.c.rental_id == rental_id, _active)
        result = await self._connection.execute(statement.values(ended_at=ended_at))
        if result.rowcount == 0 and await self.get(rental_id) is None:
            raise LookupError(f"no rental {rental_id!r} to end")


def _to_rental(row: Row[Any]) -> Rental:
    """Return the rental a row holds."""
    columns = row._mapping
    return Rental(
        rental_id=columns["rental_id"],
        vehicle_id=columns["vehicle_id"],
        started_at=columns["started_at"],
        ended_at=columns["ended_at"],
    )
