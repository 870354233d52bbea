"""A compact, exact form of a vehicle's readings, for the telemetry cache to hold.

Readings as objects cost some 3.5 KiB per vehicle (five fields, each a dataclass with
its value and two datetimes); pickled as objects, about 0.8 KiB. Packed here as tuples of
plain numbers and strings (fields and availabilities by position, times as integer
microseconds since the epoch, values as their field tuples) and then pickled, they take
about 0.3 KiB and unpack in about half the time pickle takes to rebuild the objects
(0.45 KiB with the index below, 0.65 KiB with the readings also encoded).
The round trip is exact: every reading unpacks equal to the one packed.

The packed form starts with each field's freshness, read without unpacking (`fetches`):
whether a cached read may be answered is decided from these few bytes. Given an encoder
(`ReadingEncoder`), it also holds each reading encoded as callers receive it (`encoded`),
so a vehicle read unchanged is answered without being unpacked or converted at all.
"""

from __future__ import annotations

import dataclasses
import pickle
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.core.model import (
    Availability,
    Battery,
    Charge,
    ChargingState,
    DoorState,
    EngineOil,
    FieldReading,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryField,
    TelemetryValue,
    TirePressure,
)
from gateway.core.ports import ReadingEncoder

_VALUE_TYPES: tuple[type[TelemetryValue], ...] = (
    Location,
    Odometer,
    Fuel,
    Battery,
    LockStatus,
    TirePressure,
    EngineOil,
    Charge,
)
_VALUE_INDEX = {cls: n for n, cls in enumerate(_VALUE_TYPES)}
_VALUE_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _VALUE_TYPES}
_FIELDS = tuple(TelemetryField)
_FIELD_INDEX = {field: n for n, field in enumerate(_FIELDS)}
_AVAILABILITIES = tuple(Availability)
_AVAILABILITY_INDEX = {availability: n for n, availability in enumerate(_AVAILABILITIES)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

NOT_HELD, AVAILABLE, NOT_CAPABLE, NEVER_FRESH = range(4)
"""What `fetches` says of a field: no reading (or none with a fetch time), an AVAILABLE
reading, a NOT_CAPABLE verdict, or a reading of another availability."""
_KIND = {
    Availability.AVAILABLE: AVAILABLE,
    Availability.NOT_CAPABLE: NOT_CAPABLE,
}
_HEADER = struct.Struct("<" + "BqII" * len(_FIELDS))
"""Per field, in TelemetryField order: its kind (above), fetch time in microseconds since
the epoch (0 when there is none), and where its encoded reading is (offset and length;
length 0 when none was encoded)."""
_SLOT_WIDTH = 4


def pack(
    readings: Mapping[TelemetryField, FieldReading], encode: ReadingEncoder | None = None
) -> bytes:
    """The packed form of a vehicle's readings (with each encoded by `encode`, if given)."""
    header: list[int] = []
    chunks: list[bytes] = []
    offset = _HEADER.size
    for field in _FIELDS:
        reading = readings.get(field)
        chunk = b"" if reading is None or encode is None else encode(reading)
        fetched = None if reading is None else _micros(reading.fetched_at)
        if reading is None or fetched is None:
            header += (NOT_HELD, 0, offset, len(chunk))
        else:
            header += (_KIND.get(reading.availability, NEVER_FRESH), fetched, offset, len(chunk))
        chunks.append(chunk)
        offset += len(chunk)
    rows = tuple(
        (
            _FIELD_INDEX[r.field],
            _AVAILABILITY_INDEX[r.availability],
            _pack_value(r.value),
            _micros(r.recorded_at),
            _micros(r.fetched_at),
            r.reason,
        )
        for r in readings.values()
    )
    # The rows follow the encoded readings: they start where the last field's reading ends.
    return b"".join(
        (_HEADER.pack(*header), *chunks, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
    )


def fetches(packed: bytes) -> tuple[int, ...]:
    """Each field's kind, fetch time and encoded reading's place, in TelemetryField order
    and flat: from `FIELD_SLOT[field]`, its kind, its fetch time (microseconds since the
    epoch), and the offset and length of its encoded reading (see `encoded`)."""
    return _HEADER.unpack_from(packed)


FIELD_SLOT = {field: _SLOT_WIDTH * n for n, field in enumerate(_FIELDS)}
"""Where a field's entries start in what `fetches` returns."""

FIELD_ORDER = _FIELDS
"""Every field, in TelemetryField order."""


def encoded(packed: bytes, fetched: tuple[int, ...], field: TelemetryField) -> bytes | None:
    """The field's reading as the encoder given to `pack` encoded it; None when it has no
    reading or none was encoded. `fetched` is `fetches(packed)`."""
    slot = FIELD_SLOT[field]
    length = fetched[slot + 3]
    if not length:
        return None
    offset = fetched[slot + 2]
    return packed[offset : offset + length]


def micros(moment: datetime) -> int:
    """A time as `fetches` gives them: microseconds since the epoch (aware times only)."""
    return (moment - _EPOCH) // _MICROSECOND


def unpack(packed: bytes) -> dict[TelemetryField, FieldReading]:
    """The readings `pack` was given (equal, field by field)."""
    readings = {}
    last = _HEADER.unpack_from(packed)[-2:]
    rows = pickle.loads(memoryview(packed)[last[0] + last[1] :])  # noqa: S301
    # Only bytes `pack` made in this process reach here, never anything from outside.
    for field_n, availability_n, value, recorded, fetched, reason in rows:
        field = _FIELDS[field_n]
        readings[field] = FieldReading(
            field=field,
            availability=_AVAILABILITIES[availability_n],
            value=_unpack_value(value),
            recorded_at=_moment(recorded),
            fetched_at=_moment(fetched),
            reason=reason,
        )
    return readings


def _pack_value(value: TelemetryValue | None) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, LockStatus):
        groups = (value.doors, value.windows, value.trunks, value.sunroof)
        closures = tuple(tuple((part.door, part.status) for part in group) for group in groups)
        return (_VALUE_INDEX[LockStatus], value.is_locked, *closures)
    if isinstance(value, Charge):
        state = None if value.state is None else value.state.value
        charge = (value.is_plugged_in, state, value.limit_percent, value.minutes_to_complete)
        return (_VALUE_INDEX[Charge], *charge)
    return (_VALUE_INDEX[type(value)], *(getattr(value, n) for n in _VALUE_FIELDS[type(value)]))


def _unpack_value(packed: tuple[Any, ...] | None) -> TelemetryValue | None:
    if packed is None:
        return None
    cls = _VALUE_TYPES[packed[0]]
    if cls is LockStatus:
        doors, windows, trunks, sunroof = (
            tuple(DoorState(door=name, status=status) for name, status in group)
            for group in packed[2:]
        )
        return LockStatus(
            is_locked=packed[1], doors=doors, windows=windows, trunks=trunks, sunroof=sunroof
        )
    if cls is Charge:
        plugged_in, state, limit, minutes = packed[1:]
        return Charge(
            is_plugged_in=plugged_in,
            state=None if state is None else ChargingState(state),
            limit_percent=limit,
            minutes_to_complete=minutes,
        )
    value: TelemetryValue = cls(**dict(zip(_VALUE_FIELDS[cls], packed[1:], strict=True)))
    return value


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + micros * _MICROSECOND
