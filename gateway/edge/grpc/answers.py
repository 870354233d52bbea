"""GetTelemetry's protobuf answers, built once per set of readings.

A cached read hands the servicer the very `FieldReading` objects the telemetry cache holds
(they are immutable, and the cache replaces a vehicle's mapping when a reading changes), so
the answer built for them stays right until one of them is replaced. `TelemetryAnswers`
keeps the last answer per vehicle, field set and `from_cache`, with the readings it was
built from, and hands it out again while every reading is the same object: a cached read
then converts nothing (building the messages and their timestamps was a fifth of a cached
read's CPU). A reading replaced by a newer one, or an answer from Smartcar (new objects),
builds afresh and replaces the kept answer.

An answer from readings the cache holds encoded (`Telemetry.encoded`, `encoded_reading`
below as the cache's encoder) is their bytes joined and parsed: a serialized `Telemetry`
holding one reading each, concatenated, is the `Telemetry` holding them all, and the
vehicle id and cache flag are set on it. Nothing is kept for those.

Answers handed out are shared between calls and never changed: grpc only serializes them.
At most `size` answers are kept, by default as many as the cache holds readings as objects
for (`HOT_VEHICLES`): any other vehicle's readings are new objects on each read, so its
answer would never be found again. Past `size` the oldest kept is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.cache import HOT_VEHICLES
from gateway.core.model import FieldReading, Telemetry, TelemetryField
from gateway.edge.grpc.convert import field_reading_message, telemetry_message

_Key = tuple[str, bool, tuple[TelemetryField, ...]]
T = TypeVar("T")
M = TypeVar("M")


class TelemetryAnswers:
    """The last GetTelemetry answer per vehicle and field set, while its readings hold."""

    def __init__(self, size: int = HOT_VEHICLES) -> None:
        self._size = max(1, size)
        self._kept: dict[_Key, tuple[tuple[FieldReading, ...], pb.Telemetry]] = {}
        self._last: dict[str, tuple[Telemetry, pb.Telemetry]] = {}
        """Per vehicle, the last answer object handed in and its message: the core hands a
        cached read the very answer object it served before while nothing changed
        (`gateway.core.telemetry`), which is then found without looking at its readings."""
        self.built = 0
        """Answers built (not found kept) since start."""

    def message(self, telemetry: Telemetry) -> pb.Telemetry:
        """Return the answer for `telemetry`, built only when its readings changed."""
        last = self._last.get(telemetry.vehicle_id)
        if last is not None and last[0] is telemetry:
            return last[1]
        if telemetry.encoded is not None:
            joined = pb.Telemetry.FromString(b"".join(telemetry.encoded))
            joined.vehicle_id = telemetry.vehicle_id
            joined.from_cache = telemetry.from_cache
            return joined
        message = self._message(telemetry)
        self._last.pop(telemetry.vehicle_id, None)
        self._last[telemetry.vehicle_id] = (telemetry, message)
        if len(self._last) > self._size:
            del self._last[next(iter(self._last))]
        return message

    def _message(self, telemetry: Telemetry) -> pb.Telemetry:
        readings = tuple(telemetry.readings.values())
        key = (telemetry.vehicle_id, telemetry.from_cache, tuple(telemetry.readings))
        kept = self._kept.get(key)
        if kept is not None and _same(kept[0], readings):
            return kept[1]
        message = telemetry_message(telemetry)
        self.built += 1
        self._kept.pop(key, None)
        self._kept[key] = (readings, message)
        if len(self._kept) > self._size:
            del self._kept[next(iter(self._kept))]
        return message


def _same(kept: tuple[FieldReading, ...], now: tuple[FieldReading, ...]) -> bool:
    """True when both hold the very same reading objects, in order."""
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))


def encoded_reading(reading: FieldReading) -> bytes:
    """A reading encoded for the telemetry cache to hold (its `ReadingEncoder`): a
    serialized `Telemetry` holding just this reading."""
    return pb.Telemetry(readings=[field_reading_message(reading)]).SerializeToString()


class LastConverted(Generic[T, M]):
    """The message `convert` made of the last object it was given, given again for that
    very object: a change published to every open stream is converted once, not once per
    stream (messages are never changed after they are made; grpc only serializes them)."""

    def __init__(self, convert: Callable[[T], M]) -> None:
        self._convert = convert
        self._last: tuple[T, M] | None = None

    def message(self, item: T) -> M:
        """`convert(item)`, made once for a run of the same object."""
        last = self._last
        if last is not None and last[0] is item:
            return last[1]
        message = self._convert(item)
        self._last = (item, message)
        return message
