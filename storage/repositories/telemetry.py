"""The latest telemetry reading per vehicle and field, in the `telemetry` table."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import FieldReading, TelemetryField
from storage.repositories._dialects import dialect_insert
from storage.repositories._direct import Direct
from storage.repositories._readings import READING_COLUMNS, reading_columns, reading_of
from storage.schema import telemetry


class SqlTelemetryRepository:
    """Readings by (vehicle, field); storing a field replaces its previous reading."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def latest(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        """Return the stored readings of a vehicle, by field."""
        rows = await _LATEST.run(self._connection, {"vehicle_id": vehicle_id})
        readings = [reading_of(row) for row in rows.mappings()]
        return {reading.field: reading for reading in readings}

    async def store(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Insert or replace the readings of these fields (the last one per field wins).

        Rows are written in field order, so two transactions storing readings of one car
        lock its rows in the same order and never deadlock each other.
        """
        rows = {reading.field: _to_row(vehicle_id, reading) for reading in readings}
        if rows:
            upsert = _upsert(self._connection.dialect.name)
            await upsert.run_many(self._connection, [rows[f] for f in sorted(rows)])


_LATEST = Direct(select(telemetry).where(telemetry.c.vehicle_id == bindparam("vehicle_id")))


@functools.cache
def _upsert(dialect: str) -> Direct:
    """Return an INSERT … ON CONFLICT DO UPDATE of one row in `dialect`, built once.

    Executed with a list of rows (executemany), its compiled form is cached once; a
    multi-row VALUES would be compiled anew for every number of rows.
    """
    statement = dialect_insert(dialect, telemetry)
    return Direct(
        statement.on_conflict_do_update(
            index_elements=[telemetry.c.vehicle_id, telemetry.c.field],
            set_={name: statement.excluded[name] for name in READING_COLUMNS},
        )
    )


def _to_row(vehicle_id: str, reading: FieldReading) -> dict[str, Any]:
    """Return the row of one reading."""
    return {"vehicle_id": vehicle_id, **reading_columns(reading)}
