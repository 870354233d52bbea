"""Rentals in the `rentals` table (a partial unique index allows one active per car), with
their readings (`rental_readings`, one row per rental, phase and field) and the chase of
their final reading (`rental_final_readings`, one row per ended rental).

A `RentalRecord` is read in three queries whatever the number of rentals: the rentals,
then their readings and chases by `rental_id IN (…)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import (
    FinalReading,
    FinalReadingState,
    ReadingSource,
    Rental,
    RentalPhase,
    RentalQuery,
    RentalRecord,
    SourcedReading,
    TelemetryField,
)
from storage.repositories._conflicts import execute_or_conflict
from storage.repositories._dialects import conflict_insert
from storage.repositories._direct import Columns, Direct
from storage.repositories._readings import READING_COLUMNS, reading_columns, reading_of
from storage.schema import rental_final_readings, rental_readings, rentals

_active = rentals.c.ended_at.is_(None)
_GET = Direct(select(rentals).where(rentals.c.rental_id == bindparam("rental_id")))
_ACTIVE = Direct(select(rentals).where(rentals.c.vehicle_id == bindparam("vehicle_id"), _active))
_finals = rental_final_readings
_PENDING = FinalReadingState.PENDING.value
_FINAL_COLUMNS = ("state", "attempts", "last_attempt_at", "next_attempt_at", "settled_at", "reason")


class SqlRentalRepository:
    """Rentals by id, the active one per vehicle, and their readings."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, rental_id: str) -> Rental | None:
        """Return a rental by id."""
        row = (await _GET.run(self._connection, {"rental_id": rental_id})).one_or_none()
        return None if row is None else _to_rental(row)

    async def active(self, vehicle_id: str) -> Rental | None:
        """Return the vehicle's active rental, if any."""
        row = (await _ACTIVE.run(self._connection, {"vehicle_id": vehicle_id})).one_or_none()
        return None if row is None else _to_rental(row)

    async def active_for(self, vehicle_ids: Sequence[str]) -> dict[str, Rental]:
        """Return the active rentals of these vehicles, by vehicle id."""
        if not vehicle_ids:
            return {}
        query = select(rentals).where(rentals.c.vehicle_id.in_(vehicle_ids), _active)
        found = [_to_rental(row._mapping) for row in await self._connection.execute(query)]
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

    async def record(self, rental_id: str) -> RentalRecord | None:
        """Return the rental with its readings and final reading, by id."""
        found = await self._records(select(rentals).where(rentals.c.rental_id == rental_id))
        return found[0] if found else None

    async def records(self, query: RentalQuery) -> list[RentalRecord]:
        """Return up to `query.limit` rentals ordered by (started_at, rental_id), after
        `query.after`, of one vehicle and ended within bounds when asked."""
        statement = select(rentals)
        if query.vehicle_id is not None:
            statement = statement.where(rentals.c.vehicle_id == query.vehicle_id)
        if query.ended_after is not None:
            statement = statement.where(rentals.c.ended_at >= query.ended_after)
        if query.ended_before is not None:
            statement = statement.where(rentals.c.ended_at < query.ended_before)
        if query.after is not None:
            started_at, rental_id = query.after
            statement = statement.where(
                or_(
                    rentals.c.started_at > started_at,
                    and_(rentals.c.started_at == started_at, rentals.c.rental_id > rental_id),
                )
            )
        ordered = statement.order_by(rentals.c.started_at, rentals.c.rental_id)
        return await self._records(ordered.limit(max(query.limit, 0)))

    async def following(self, rental: Rental) -> RentalRecord | None:
        """Return the first rental of the same vehicle started at or after `rental` ended."""
        if rental.ended_at is None:
            return None
        statement = (
            select(rentals)
            .where(
                rentals.c.vehicle_id == rental.vehicle_id,
                rentals.c.started_at >= rental.ended_at,
                rentals.c.rental_id != rental.rental_id,
            )
            .order_by(rentals.c.started_at, rentals.c.rental_id)
            .limit(1)
        )
        found = await self._records(statement)
        return found[0] if found else None

    async def store_readings(
        self, rental_id: str, phase: RentalPhase, readings: Iterable[SourcedReading]
    ) -> None:
        """Insert or replace the rental's readings of these fields at `phase`, in field
        order (two writers of one rental lock its rows in the same order)."""
        rows = {
            sourced.field: {
                "rental_id": rental_id,
                "phase": phase.value,
                **reading_columns(sourced.reading),
                "source": sourced.source.value,
                "taken_at": sourced.taken_at,
            }
            for sourced in readings
        }
        if not rows:
            return
        statement = conflict_insert(self._connection, rental_readings)
        upsert = statement.on_conflict_do_update(
            index_elements=[
                rental_readings.c.rental_id,
                rental_readings.c.phase,
                rental_readings.c.field,
            ],
            set_={
                name: statement.excluded[name] for name in (*READING_COLUMNS, "source", "taken_at")
            },
        )
        await self._connection.execute(upsert, [rows[f] for f in sorted(rows)])

    async def save_final(self, rental_id: str, final: FinalReading) -> None:
        """Insert or replace the chase of the rental's final reading."""
        columns = {
            "state": final.state.value,
            "attempts": final.attempts,
            "last_attempt_at": final.last_attempt_at,
            "next_attempt_at": final.next_attempt_at,
            "settled_at": final.settled_at,
            "reason": final.reason,
        }
        statement = conflict_insert(self._connection, _finals).values(
            rental_id=rental_id, **columns
        )
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_finals.c.rental_id],
                set_={name: statement.excluded[name] for name in _FINAL_COLUMNS},
            )
        )

    async def due_finals(self, *, now: datetime, limit: int) -> list[RentalRecord]:
        """Return rentals whose final reading is pending and due at `now`, longest due first."""
        due = (
            select(rentals)
            .join(_finals, _finals.c.rental_id == rentals.c.rental_id)
            .where(_finals.c.state == _PENDING, _finals.c.next_attempt_at <= now)
            .order_by(_finals.c.next_attempt_at, rentals.c.rental_id)
            .limit(max(limit, 0))
        )
        return await self._records(due)

    async def pending_finals(self, vehicle_id: str) -> list[RentalRecord]:
        """Return the vehicle's rentals whose final reading is pending, oldest first."""
        pending = (
            select(rentals)
            .join(_finals, _finals.c.rental_id == rentals.c.rental_id)
            .where(rentals.c.vehicle_id == vehicle_id, _finals.c.state == _PENDING)
            .order_by(rentals.c.started_at, rentals.c.rental_id)
        )
        return await self._records(pending)

    async def _records(self, query: Select[Any]) -> list[RentalRecord]:
        """Return the rentals a query selects (from `rentals`), with readings and chases."""
        found = [_to_rental(row._mapping) for row in await self._connection.execute(query)]
        if not found:
            return []
        ids = [rental.rental_id for rental in found]
        readings: dict[tuple[str, str], dict[TelemetryField, SourcedReading]] = defaultdict(dict)
        rows = await self._connection.execute(
            select(rental_readings).where(rental_readings.c.rental_id.in_(ids))
        )
        for row in rows:
            columns = row._mapping
            sourced = SourcedReading(
                reading=reading_of(columns),
                source=ReadingSource(columns["source"]),
                taken_at=columns["taken_at"],
            )
            readings[(columns["rental_id"], columns["phase"])][sourced.field] = sourced
        finals = {
            row.rental_id: _to_final(row)
            for row in await self._connection.execute(
                select(_finals).where(_finals.c.rental_id.in_(ids))
            )
        }
        return [
            RentalRecord(
                rental=rental,
                start=readings.get((rental.rental_id, RentalPhase.START.value), {}),
                end=readings.get((rental.rental_id, RentalPhase.END.value), {}),
                final=finals.get(rental.rental_id),
            )
            for rental in found
        ]


def _to_rental(columns: Columns) -> Rental:
    """Return the rental a row's columns hold."""
    return Rental(
        rental_id=columns["rental_id"],
        vehicle_id=columns["vehicle_id"],
        started_at=columns["started_at"],
        ended_at=columns["ended_at"],
    )


def _to_final(row: Row[Any]) -> FinalReading:
    """Return the chase a row of `rental_final_readings` holds."""
    columns = row._mapping
    return FinalReading(
        state=FinalReadingState(columns["state"]),
        attempts=columns["attempts"],
        last_attempt_at=columns["last_attempt_at"],
        next_attempt_at=columns["next_attempt_at"],
        settled_at=columns["settled_at"],
        reason=columns["reason"],
    )
