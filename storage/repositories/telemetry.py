"""The latest telemetry reading per vehicle and field, in the `telemetry` table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.core.plain import telemetry_from_json, telemetry_to_json
from storage.repositories._dialects import conflict_insert
from storage.schema import telemetry

_REPLACED = ("availability", "value", "recorded_at", "fetched_at", "reason")


class SqlTelemetryRepository:
    """Readings by (vehicle, field); storing a field replaces its previous reading."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def latest(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        """Return the stored readings of a vehicle, by field."""
        query = select(telemetry).where(telemetry.c.vehicle_id == vehicle_id)
        readings = [_to_reading(row) for row in await self._connection.execute(query)]
        return {reading.field: reading for reading in readings}

    async def store(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Insert or replace the readings of these fields (the last one per field wins).

        Rows are written in field order, so two transactions storing readings of one car
        lock its rows in the same order and never deadlock each other.
        """
        rows = {reading.field: _to_row(vehicle_id, reading) for reading in readings}
        if rows:
            await self._connection.execute(self._upsert(), [rows[f] for f in sorted(rows)])

    def _upsert(self) -> Insert:
        """Return an INSERT … ON CONFLICT DO UPDATE of one row in this database's dialect.

        Executed with a list of rows (executemany), its compiled form is cached once; a
        multi-row VALUES would be compiled anew for every number of rows.
        """
        statement = conflict_insert(self._connection, telemetry)
        return statement.on_conflict_do_update(
            index_elements=[telemetry.c.vehicle_id, telemetry.c.field],
            set_={name: statement.excluded[name] for name in _REPLACED},
        )


def _to_row(vehicle_id: str, reading: FieldReading) -> dict[str, Any]:
    """Return the row of one reading."""
    return {
        "vehicle_id": vehicle_id,
        "field": reading.field.value,
        "availability": reading.availability.value,
        "value": None if reading.value is None else telemetry_to_json(reading.value),
        "recorded_at": reading.recorded_at,
        "fetched_at": reading.fetched_at,
        "reason": reading.reason,
    }


def _to_reading(row: Row[Any]) -> FieldReading:
    """Return the reading a row holds."""
    columns = row._mapping
    value = columns["value"]
    return FieldReading(
        field=TelemetryField(columns["field"]),
        availability=Availability(columns["availability"]),
        value=None if value is None else telemetry_from_json(value),
        recorded_at=columns["recorded_at"],
        fetched_at=columns["fetched_at"],
        reason=columns["reason"],
    )
