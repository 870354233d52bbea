"""GetTelemetry's answers, encoded once per version of a vehicle's cached readings.

An answer served whole from the telemetry cache names the cache's version of the readings
it was made from (`Telemetry.held_as`: the same object, by identity, until one of the
vehicle's readings changes; `gateway.core.cache.TelemetryCache.version`).
`TelemetryAnswers` keeps the encoded answer (the serialized `Telemetry` message) per
vehicle, field set and `from_cache`, with that version, and hands it out again while the
version is the same object: a cached read then converts and serializes nothing, and its
readings are not even unpacked (`gateway.core.telemetry`). Any other answer (something
fetched from Smartcar, or marked) is encoded afresh and not kept.

The servicer returns the encoded bytes; the call frame passes bytes through the response
serializer untouched (`gateway.edge.grpc.interceptors`). Kept answers are about 200-500
bytes each; at most `size` are kept (the cache's size by default), the oldest kept dropped
past it.
"""

from __future__ import annotations

from gateway.core.model import Telemetry, TelemetryField
from gateway.edge.grpc.convert import telemetry_message

_Key = tuple[str, bool, tuple[TelemetryField, ...]]


class TelemetryAnswers:
    """The encoded GetTelemetry answer per vehicle and field set, while its version holds."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = max(1, size)
        self._kept: dict[_Key, tuple[object, bytes]] = {}
        self.built = 0
        """Answers encoded (not found kept) since start."""

    def encoded(self, telemetry: Telemetry) -> bytes:
        """The serialized `Telemetry` message answering with `telemetry`, encoded only
        when its version of the readings was not met before."""
        version = telemetry.held_as
        if version is None:
            self.built += 1
            return telemetry_message(telemetry).SerializeToString()
        key = (telemetry.vehicle_id, telemetry.from_cache, tuple(telemetry.readings))
        kept = self._kept.get(key)
        if kept is not None and kept[0] is version:
            return kept[1]
        encoded = telemetry_message(telemetry).SerializeToString()
        self.built += 1
        self._kept.pop(key, None)
        self._kept[key] = (version, encoded)
        if len(self._kept) > self._size:
            del self._kept[next(iter(self._kept))]
        return encoded
