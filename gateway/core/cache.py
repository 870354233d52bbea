"""The telemetry cache: the latest readings per vehicle, held compactly in memory.

Loaded from storage on a vehicle's first use, shared with the other replicas through the
`SharedTelemetry` port when there is one; `gateway.core.telemetry` (GetTelemetry), the
commands, the webhooks and the scheduler all read and write it here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from gateway.core.model import FieldReading, TelemetryField
from gateway.core.packing import pack, unpack
from gateway.core.ports import ReadingEncoder, SharedTelemetry, UnitOfWorkFactory

HOT_VEHICLES = 1024
"""Vehicles whose readings the cache also holds as objects (the most recently used).

What is kept per set of reading objects (the core's fresh answers, the edge's protobuf
answers) is kept for as many vehicles and no more: any other vehicle is answered from its
packed readings, with new objects on each read, so an answer kept for it would never be
found again, and would only give the garbage collector more to walk."""


class TelemetryCache:
    """The latest readings per vehicle in memory, loaded from storage on first use.

    Held compactly: every vehicle's readings are kept packed (`gateway.core.packing`: about
    0.65 KiB for five fields with their encoded form, against some 3.5 KiB as objects),
    and only the `hot` most recently used are also kept as objects, so 100,000 cached
    vehicles cost the gateway some 130 MiB in all (bench/fleet_scale: 117 MiB at start,
    246 MiB with 100,000 held) and a read of a hot vehicle unpacks nothing. A mapping
    handed out is never changed afterwards: a new reading replaces the vehicle's mapping.

    Bounded: at most `size` vehicles are held; past it the least recently used is dropped
    (its readings stay in storage, where every reading put here already is, and the next
    use loads them again). So memory follows `size`, not the fleet.

    With `encode`, each reading is also held encoded as callers receive it, so a read of
    a vehicle held only packed is answered without unpacking (`gateway.core.telemetry`).

    With `shared` (Redis), readings are also exchanged with the other replicas: what one
    fetches, the others find by `refresh` instead of asking Smartcar again. Without it,
    `refresh` reads storage, which every replica shares too.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        shared: SharedTelemetry | None = None,
        *,
        hot: int = HOT_VEHICLES,
        size: int = 100_000,
        encode: ReadingEncoder | None = None,
    ) -> None:
        self._uow = uow
        self.encode = encode
        """Encodes each reading held, as callers receive it (`gateway.core.packing`)."""
        self.shared = shared
        self._packed: OrderedDict[str, bytes] = OrderedDict()
        """Every held vehicle's readings, packed, least recently used first."""
        self._hot: OrderedDict[str, Mapping[TelemetryField, FieldReading]] = OrderedDict()
        self._size = max(1, size)
        self._hot_size = min(max(1, hot), self._size)
        self.evictions = 0
        """Vehicles dropped to stay within `size` since start."""

    def __len__(self) -> int:
        """How many vehicles are held."""
        return len(self._packed)

    async def readings(self, vehicle_id: str) -> Mapping[TelemetryField, FieldReading]:
        """Return the vehicle's cached readings (from storage the first time)."""
        cached = self.held(vehicle_id)
        if cached is not None:
            return cached
        return self.keep(vehicle_id, await self._stored(vehicle_id))

    def held(self, vehicle_id: str) -> Mapping[TelemetryField, FieldReading] | None:
        """The vehicle's cached readings, None when they were never loaded."""
        hot = self._hot.get(vehicle_id)
        if hot is not None:
            self._hot.move_to_end(vehicle_id)
            self._packed.move_to_end(vehicle_id)
            return hot
        packed = self._packed.get(vehicle_id)
        if packed is None:
            return None
        self._packed.move_to_end(vehicle_id)
        return self._warm(vehicle_id, unpack(packed))

    def cold(self, vehicle_id: str) -> bytes | None:
        """The packed readings of a vehicle held but not as objects (`gateway.core.packing`),
        counted as a use; None when it is held as objects or not at all."""
        if vehicle_id in self._hot:
            return None
        packed = self._packed.get(vehicle_id)
        if packed is not None:
            self._packed.move_to_end(vehicle_id)
        return packed

    def keep(
        self, vehicle_id: str, stored: dict[TelemetryField, FieldReading]
    ) -> Mapping[TelemetryField, FieldReading]:
        """Hold readings just loaded from storage, unless some are held already."""
        held = self.held(vehicle_id)
        return held if held is not None else self._replace(vehicle_id, stored)

    async def refresh(self, vehicle_id: str) -> Mapping[TelemetryField, FieldReading]:
        """Take in what other replicas, the scheduler or webhooks have fetched since: the
        shared readings (else storage's), each kept where newer than the one held here."""
        found = await self.shared.readings(vehicle_id) if self.shared is not None else None
        if found is None:
            found = await self._stored(vehicle_id)
        cached = dict(self.held(vehicle_id) or {})
        for field, reading in found.items():
            if fetched_at(reading) > fetched_at(cached.get(field)):
                cached[field] = reading
        return self._replace(vehicle_id, cached)

    async def put(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Record readings already made durable in storage, and share them."""
        readings = list(readings)
        cached = dict(self.held(vehicle_id) or {})
        for reading in readings:
            cached[reading.field] = reading
        self._replace(vehicle_id, cached)
        if self.shared is not None and readings:
            await self.shared.put(vehicle_id, readings)

    def _replace(
        self, vehicle_id: str, readings: dict[TelemetryField, FieldReading]
    ) -> Mapping[TelemetryField, FieldReading]:
        self._packed[vehicle_id] = pack(readings, self.encode)
        self._packed.move_to_end(vehicle_id)
        while len(self._packed) > self._size:
            dropped, _ = self._packed.popitem(last=False)
            self._hot.pop(dropped, None)
            self.evictions += 1
        return self._warm(vehicle_id, readings)

    def _warm(
        self, vehicle_id: str, readings: Mapping[TelemetryField, FieldReading]
    ) -> Mapping[TelemetryField, FieldReading]:
        self._hot[vehicle_id] = readings
        self._hot.move_to_end(vehicle_id)
        if len(self._hot) > self._hot_size:
            self._hot.popitem(last=False)
        return readings

    async def _stored(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        async with self._uow.reader() as uow:
            return await uow.telemetry.latest(vehicle_id)


def fetched_at(reading: FieldReading | None) -> datetime:
    """When a reading was fetched; the oldest possible time for none (or unknown)."""
    if reading is None or reading.fetched_at is None:
        return datetime.min.replace(tzinfo=UTC)
    return reading.fetched_at
