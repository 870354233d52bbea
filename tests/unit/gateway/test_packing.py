"""The telemetry cache's packed form: exact round trips for every kind of reading, and
smaller than pickling the objects."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

from gateway.core.model import (
    Availability,
    FieldReading,
    LockStatus,
    Odometer,
    TelemetryField,
)
from gateway.core.packing import (
    AVAILABLE,
    FIELD_SLOT,
    NOT_CAPABLE,
    NOT_HELD,
    encoded,
    fetches,
    micros,
    pack,
    unpack,
)
from tests.integration.storage.builders import VALUES

AT = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)


def every_field_available() -> dict[TelemetryField, FieldReading]:
    """One AVAILABLE reading per field, with microsecond times."""
    return {
        field: FieldReading(
            field=field,
            availability=Availability.AVAILABLE,
            value=value,
            recorded_at=AT - timedelta(seconds=n, microseconds=7),
            fetched_at=AT,
        )
        for n, (field, value) in enumerate(VALUES.items())
    }


def test_every_value_type_round_trips_exactly() -> None:
    """Each field's value, both times to the microsecond, and the field order come back."""
    readings = every_field_available()
    unpacked = unpack(pack(readings))
    assert unpacked == readings
    assert list(unpacked) == list(readings)
    assert all(r.fetched_at is not None and r.fetched_at.tzinfo == UTC for r in unpacked.values())


def test_readings_without_values_round_trip() -> None:
    """NOT_CAPABLE, UNAVAILABLE with a reason, missing times, an empty door list, none."""
    readings = {
        TelemetryField.FUEL: FieldReading(
            field=TelemetryField.FUEL,
            availability=Availability.NOT_CAPABLE,
            fetched_at=AT,
            reason="COMPATIBILITY:VEHICLE_NOT_CAPABLE",
        ),
        TelemetryField.LOCATION: FieldReading(
            field=TelemetryField.LOCATION, availability=Availability.UNAVAILABLE, reason="x"
        ),
        TelemetryField.LOCK_STATUS: FieldReading(
            field=TelemetryField.LOCK_STATUS,
            availability=Availability.AVAILABLE,
            value=LockStatus(is_locked=True),
        ),
    }
    assert unpack(pack(readings)) == readings
    assert unpack(pack({})) == {}


def test_times_in_another_zone_come_back_as_the_same_instant_in_utc() -> None:
    """A reading stamped in UTC+2 unpacks to the same instant, expressed in UTC."""
    berlin = timezone(timedelta(hours=2))
    reading = FieldReading(
        field=TelemetryField.ODOMETER,
        availability=Availability.AVAILABLE,
        value=Odometer(distance_km=1.0),
        fetched_at=AT.astimezone(berlin),
    )
    back = unpack(pack({TelemetryField.ODOMETER: reading}))[TelemetryField.ODOMETER]
    assert back.fetched_at == AT
    assert back.fetched_at is not None
    assert back.fetched_at.tzinfo == UTC


def test_the_packed_form_is_smaller_than_the_pickled_objects() -> None:
    """The point of packing: well under the bytes of pickling the readings themselves, the
    index of fetch times (`fetches`) included."""
    readings = every_field_available()
    objects = len(pickle.dumps(readings, protocol=pickle.HIGHEST_PROTOCOL))
    assert len(pack(readings)) < 0.6 * objects


def test_each_reading_is_held_as_its_encoder_encoded_it() -> None:
    """With an encoder, each field's reading is held encoded (`encoded`), the fetch times
    and kinds are indexed (`fetches`), and the readings still unpack exactly."""
    readings = every_field_available()
    del readings[TelemetryField.FUEL]
    readings[TelemetryField.BATTERY] = FieldReading(
        field=TelemetryField.BATTERY, availability=Availability.NOT_CAPABLE, fetched_at=AT
    )

    def encode(reading: FieldReading) -> bytes:
        return f"<{reading.field.value}:{reading.availability.value}>".encode()

    packed = pack(readings, encode)
    fetched = fetches(packed)
    for field in TelemetryField:
        held = readings.get(field)
        assert encoded(packed, fetched, field) == (None if held is None else encode(held))
        kind = fetched[FIELD_SLOT[field]]
        if held is None:
            assert kind == NOT_HELD
        else:
            assert kind == (NOT_CAPABLE if field is TelemetryField.BATTERY else AVAILABLE)
            assert fetched[FIELD_SLOT[field] + 1] == micros(AT)
    assert unpack(packed) == readings
    assert encoded(pack(readings), fetches(pack(readings)), TelemetryField.ODOMETER) is None
