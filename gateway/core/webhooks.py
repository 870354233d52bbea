"""Smartcar webhooks, the core side: store each event once, then apply it to its vehicle.

    inbox = WebhookInbox(uow=uow, cache=cache, clock=clock)
    event = inbox.event_from(payload)     # MalformedEvent when it is no Smartcar event
    if await inbox.receive(event):        # durable now; False: this eventId came before
        ...                               # acknowledge, then in the background:
        await inbox.apply(event)
    await inbox.drain_pending()           # at start: whatever a crash left unapplied

Receiving only stores, so the edge can acknowledge within Smartcar's 15 s; applying is
separate and serialised per vehicle, because Smartcar delivers one vehicle's events
concurrently, more than once, and out of order. Applying an event:

- VEHICLE_STATE: the readings its signals carry (see `signals`) are written to storage and
  the telemetry cache, except over a reading the car recorded later (a late, older event
  never replaces newer data); `last_telemetry_at` moves to the event's arrival, and
  `asleep_until` is cleared (the car reported, so it is awake) unless the event itself
  says the car is asleep.
- VEHICLE_ERROR: an active error (`state` ERROR) becomes the vehicle's `last_error`
  (`TYPE:CODE: description`); a RESOLVED one clears `last_error` if it is that error. The
  connection status stays as it is: these errors concern the car or the owner's OEM
  account, and the upstream health rules (`upstream`) decide ERROR from failed calls.
- an event for a Smartcar vehicle no fleet vehicle is linked to, or of a type the gateway
  does not handle, is marked applied with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import datetime

from gateway.core import signals
from gateway.core.model import FieldReading, Vehicle, WebhookEvent
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.telemetry import TelemetryCache

VERIFY = "VERIFY"
VEHICLE_STATE = "VEHICLE_STATE"
VEHICLE_ERROR = "VEHICLE_ERROR"


class MalformedEvent(ValueError):
    """A webhook body that is not a Smartcar event (no string `eventId` or `eventType`)."""


class WebhookInbox:
    """Receives Smartcar webhook events (store once) and applies them (per vehicle, in turn)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        cache: TelemetryCache,
        clock: Clock,
        drain_batch: int = 100,
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock
        self._drain_batch = drain_batch
        self._locks: dict[str, asyncio.Lock] = {}

    def event_from(self, payload: Mapping[str, object]) -> WebhookEvent:
        """Return the event a parsed webhook body describes, received now."""
        event_id, event_type = payload.get("eventId"), payload.get("eventType")
        if not isinstance(event_id, str) or not event_id:
            raise MalformedEvent("eventId must be a non-empty string")
        if not isinstance(event_type, str) or not event_type:
            raise MalformedEvent("eventType must be a non-empty string")
        return WebhookEvent(
            event_id=event_id,
            event_type=event_type,
            smartcar_vehicle_id=smartcar_vehicle_id(payload),
            received_at=self._clock.now(),
            payload=payload,
        )

    async def receive(self, event: WebhookEvent) -> bool:
        """Store the event; False (nothing written) when its id was received before."""
        async with self._uow() as uow:
            stored = await uow.webhook_events.add(event)
            await uow.commit()
        return stored

    async def apply(self, event: WebhookEvent) -> None:
        """Apply a stored event to its vehicle, after that vehicle's earlier events."""
        lock = self._locks.setdefault(event.smartcar_vehicle_id or "", asyncio.Lock())
        async with lock:
            await self._apply(event)

    async def drain_pending(self) -> int:
        """Apply every stored event not applied yet (oldest first); return how many."""
        seen: set[str] = set()
        while True:
            async with self._uow() as uow:
                batch = await uow.webhook_events.pending(limit=self._drain_batch)
            fresh = [event for event in batch if event.event_id not in seen]
            if not fresh:
                return len(seen)
            for event in fresh:
                seen.add(event.event_id)
                await self.apply(event)

    async def _apply(self, event: WebhookEvent) -> None:
        written: list[FieldReading] = []
        error: str | None = None
        async with self._uow() as uow:
            vehicle = await _linked_vehicle(uow, event.smartcar_vehicle_id)
            if vehicle is None:
                error = (
                    f"no fleet vehicle is linked to Smartcar vehicle {event.smartcar_vehicle_id}"
                )
            elif event.event_type == VEHICLE_STATE:
                written = await _apply_state(uow, vehicle, event)
            elif event.event_type == VEHICLE_ERROR:
                await _apply_error(uow, vehicle, event)
            else:
                error = f"event type {event.event_type} is not handled"
            await uow.webhook_events.mark_applied(event.event_id, at=self._clock.now(), error=error)
            await uow.commit()
        if vehicle is not None and written:
            await self._cache_newer(vehicle.id, written)

    async def _cache_newer(self, vehicle_id: str, written: list[FieldReading]) -> None:
        """Put the readings in the cache, unless a poll cached newer ones meanwhile."""
        cached = await self._cache.readings(vehicle_id)
        newer = [r for r in written if not _older(r, cached.get(r.field))]
        await self._cache.put(vehicle_id, newer)


def smartcar_vehicle_id(payload: Mapping[str, object]) -> str | None:
    """Return the Smartcar vehicle id of an event (`data.vehicle.id`, else `vehicleId`)."""
    vehicle = _data(payload).get("vehicle")
    found = vehicle.get("id") if isinstance(vehicle, Mapping) else None
    if not isinstance(found, str):
        found = payload.get("vehicleId")
    return found if isinstance(found, str) and found else None


async def _linked_vehicle(uow: UnitOfWork, smartcar_id: str | None) -> Vehicle | None:
    """Return the fleet vehicle linked to the Smartcar id, its row locked for the update."""
    if smartcar_id is None:
        return None
    linked = await uow.vehicles.by_smartcar_id(smartcar_id)
    return None if linked is None else await uow.vehicles.get(linked.id, for_update=True)


async def _apply_state(
    uow: UnitOfWork, vehicle: Vehicle, event: WebhookEvent
) -> list[FieldReading]:
    """Store the event's readings newer than the stored ones; the car is awake."""
    carried = signals.index(_data(event.payload).get("signals"))
    stored = await uow.telemetry.latest(vehicle.id)
    newer = [
        reading
        for reading in signals.readings(carried, fetched_at=event.received_at)
        if not _older(reading, stored.get(reading.field))
    ]
    updated = vehicle
    if newer:
        await uow.telemetry.store(vehicle.id, newer)
        updated = dataclasses.replace(
            updated, last_telemetry_at=_latest(vehicle.last_telemetry_at, event.received_at)
        )
    if not signals.reports_asleep(carried):
        updated = dataclasses.replace(updated, asleep_until=None)
    if updated != vehicle:
        await uow.vehicles.update(updated)
    return newer


async def _apply_error(uow: UnitOfWork, vehicle: Vehicle, event: WebhookEvent) -> None:
    """Keep the newest active error on the vehicle; forget one Smartcar says is resolved."""
    errors = _data(event.payload).get("errors")
    last_error = vehicle.last_error
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        label = ":".join(str(error[k]) for k in ("type", "code") if error.get(k)) or "UNKNOWN"
        if error.get("state") == "RESOLVED":
            if last_error is not None and (last_error + ":").startswith(label + ":"):
                last_error = None
            continue
        description = error.get("description")
        last_error = f"{label}: {description}" if isinstance(description, str) else label
    if last_error != vehicle.last_error:
        await uow.vehicles.update(dataclasses.replace(vehicle, last_error=last_error))


def _older(reading: FieldReading, current: FieldReading | None) -> bool:
    """Tell whether `reading` was recorded before the one it would replace."""
    if current is None or current.recorded_at is None or reading.recorded_at is None:
        return False
    return reading.recorded_at < current.recorded_at


def _latest(known: datetime | None, new: datetime) -> datetime:
    return new if known is None or new > known else known


def _data(payload: Mapping[str, object]) -> Mapping[str, object]:
    data = payload.get("data")
    return data if isinstance(data, Mapping) else {}
