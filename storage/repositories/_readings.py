"""A telemetry reading's columns, shared by the tables that keep readings (`telemetry`,
`rental_readings`): field, availability, value (JSON), recorded and fetched times, reason."""

from __future__ import annotations

from typing import Any

from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.core.plain import telemetry_from_json, telemetry_to_json
from storage.repositories._direct import Columns

READING_COLUMNS = ("availability", "value", "recorded_at", "fetched_at", "reason")
"""The columns a new reading of a field replaces (its key columns stay)."""


def reading_columns(reading: FieldReading) -> dict[str, Any]:
    """Return the columns of one reading, its field included."""
    return {
        "field": reading.field.value,
        "availability": reading.availability.value,
        "value": None if reading.value is None else telemetry_to_json(reading.value),
        "recorded_at": reading.recorded_at,
        "fetched_at": reading.fetched_at,
        "reason": reading.reason,
    }


def reading_of(columns: Columns) -> FieldReading:
    """Return the reading a row's columns hold."""
    value = columns["value"]
    return FieldReading(
        field=TelemetryField(columns["field"]),
        availability=Availability(columns["availability"]),
        value=None if value is None else telemetry_from_json(value),
        recorded_at=columns["recorded_at"],
        fetched_at=columns["fetched_at"],
        reason=columns["reason"],
    )
