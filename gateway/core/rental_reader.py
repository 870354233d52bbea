"""Taking a rental's reading: through the telemetry use case, so the cache, coalescing,
rate limits, cooldowns, sleep and the budget all apply, and never failing.

`RentalReader.take` asks `gateway.core.telemetry.TelemetryService` for the wanted fields
no older than the given age, as a rental reading (`ReadPurpose.RENTAL`: ahead of the
scheduler's polls in the app-wide bucket, just below commands, and allowed to spend the
budget's reserve kept for commands and rental readings). Each field is marked with
its source: LIVE when this read asked Smartcar for it, CACHE when the gateway already held
it. When the car cannot be asked (rate limited, cooling down, asleep with nothing held,
unreachable, Smartcar failing, the connection not usable), the last readings held are
returned instead, marked UNAVAILABLE with the refusal's reason and their age, and the
refusal comes back beside them (its `retry_after_s` schedules the next try).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.cache import TelemetryCache
from gateway.core.errors import GatewayError
from gateway.core.model import (
    Availability,
    FieldReading,
    ReadingSource,
    SourcedReading,
    TelemetryField,
)
from gateway.core.ports import Clock
from gateway.core.purpose import ReadPurpose
from gateway.core.telemetry import TelemetryService


@dataclass(frozen=True, slots=True, kw_only=True)
class TakenReading:
    """What a rental got: a reading per field asked for, and why Smartcar was not asked
    (None when it was, or when the cache sufficed)."""

    readings: Mapping[TelemetryField, SourcedReading]
    refusal: GatewayError | None = None


class RentalReader:
    """Takes the readings of a rental through the telemetry use case."""

    def __init__(self, *, telemetry: TelemetryService, cache: TelemetryCache, clock: Clock) -> None:
        self._telemetry = telemetry
        self._cache = cache
        self._clock = clock

    async def take(
        self, vehicle_id: str, fields: Iterable[TelemetryField], *, max_age: timedelta
    ) -> TakenReading:
        """Read `fields` of the vehicle, none fetched longer than `max_age` ago; when the
        car cannot be asked, the last readings held with the reason."""
        wanted = frozenset(fields)
        if not wanted:  # the telemetry use case would read every field
            return TakenReading(readings={})
        try:
            answer = await self._telemetry.get(
                vehicle_id,
                fields=wanted,
                max_age=max(max_age, timedelta(0)),
                purpose=ReadPurpose.RENTAL,
            )
        except GatewayError as refused:
            return TakenReading(
                readings=await self._held(vehicle_id, wanted, refused), refusal=refused
            )
        taken_at = self._clock.now()
        return TakenReading(
            readings={
                f: SourcedReading(
                    reading=reading,
                    source=ReadingSource.LIVE if f in answer.fetched else ReadingSource.CACHE,
                    taken_at=taken_at,
                )
                for f, reading in answer.readings.items()
                if f in wanted
            }
        )

    async def _held(
        self, vehicle_id: str, wanted: frozenset[TelemetryField], refused: GatewayError
    ) -> dict[TelemetryField, SourcedReading]:
        """The last readings held, each marked with why it could not be refreshed."""
        held = await self._cache.readings(vehicle_id)
        taken_at = self._clock.now()
        return {
            f: SourcedReading(
                reading=_unrefreshed(f, held.get(f), refused),
                source=ReadingSource.CACHE,
                taken_at=taken_at,
            )
            for f in sorted(wanted)
        }


def _unrefreshed(
    field: TelemetryField, last: FieldReading | None, refused: GatewayError
) -> FieldReading:
    """The last reading of a field (or none), marked with why it could not be refreshed."""
    if last is None:
        return FieldReading(
            field=field, availability=Availability.UNAVAILABLE, reason=refused.reason
        )
    if last.availability in (Availability.NOT_CAPABLE, Availability.PERMISSION_MISSING):
        return last
    return dataclasses.replace(last, availability=Availability.UNAVAILABLE, reason=refused.reason)
