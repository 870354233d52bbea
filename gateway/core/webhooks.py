"""Webhooks, the core side: store each event once, then apply what it reports to its vehicle.

    inbox = WebhookInbox(uow=uow, cache=cache, clock=clock, decoder=decoder, metrics=metrics)
    event = ...                           # a WebhookEvent the receiving adapter built
    if await inbox.receive(event):        # durable now; False: this eventId came before
        ...                               # acknowledge, then in the background:
        if event.pending:                 # not failed on arrival (text no store keeps)
            await inbox.apply(event)
    await inbox.drain_pending()           # at start: whatever a crash left unapplied

Receiving only stores, so the edge can acknowledge within Smartcar's 15 s; applying is
separate and serialised per vehicle, because Smartcar delivers one vehicle's events
concurrently, more than once, and out of order. The inbox reads no wire format: the
adapter that received the event built its envelope (`WebhookEvent`: id, type, vehicle,
the body kept for audit), and the `WebhookDecoder` port tells what the stored body reports
(`gateway.core.reports`). Applying an event:

- a `StateReport`: its readings are written to storage and the telemetry cache, except
  over a reading the car recorded later (a late, older event never replaces newer data),
  with the vehicle events their changes make (`gateway.core.reading_events`: a lock state
  changed, a fuel or charge level gone low), and offered to the car's ended rentals still
  waiting for a final reading (`gateway.core.final_readings.complete_from_webhook`, source
  WEBHOOK);
  `last_telemetry_at` moves to the event's arrival, and `asleep_until` is cleared (the car
  reported, so it is awake) unless the report says the car is asleep.
- an `ErrorReport`: each error is a VEHICLE_ERROR vehicle event (active or resolved, with
  Smartcar's resolution); an active error becomes the vehicle's `last_error`
  (`LABEL: description`, or the label alone); a resolved one clears `last_error` if it is
  that error. An error only the owner can resolve (`ReportedError.owner_action`: Smartcar's
  CONNECTED_SERVICES_ACCOUNT errors) makes an ACTIVE or ERROR car wait for them
  (NEEDS_REAUTHENTICATION, with Smartcar's resolution), and that error reported RESOLVED
  makes a waiting car ACTIVE again (`gateway.core.reauthentication`). Other errors leave
  the status as it is: they concern the car itself, and the connection health rules
  (`health`) decide ERROR from failed calls.
- an event for a Smartcar vehicle no fleet vehicle is linked to, one for a Smartcar user
  other than the one a V3 car is connected by (API V3 routes by vehicle and user: another
  user's connection to the same car is not the fleet's), or one the decoder reports as
  `NotHandled`, is marked applied with the reason (outcome `skipped`).

Every stored event ends applied or failed, never stuck pending:

- values the decoder rejects (outside the bounds of `plausibility`, of a wrong type, in an
  unknown unit) are left out field by field: the good fields apply, the event is marked
  applied with the rejections in `error` (each naming its field), each counted
  (`Metrics.webhook_value_rejected`) and logged;
- an event whose body holds text no store keeps (a lone surrogate, NUL: `payload`) is
  stored already failed, its payload with those characters replaced, and never applied;
- an event whose application raises anything is marked failed with the reason (logged,
  counted), so `drain_pending` goes on with the next one and start-up is never blocked.
  Only a cancelled application leaves its event pending, to be applied at the next start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from gateway.core import payload as payloads
from gateway.core.cache import TelemetryCache
from gateway.core.final_readings import complete_from_webhook
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import FieldReading, SmartcarApi, Vehicle, WebhookEvent
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory, WebhookDecoder
from gateway.core.reading_events import LowLevelPolicy, store_readings
from gateway.core.reauthentication import resolves, resumed, waiting
from gateway.core.reports import (
    ErrorReport,
    NotHandled,
    Rejection,
    ReportedError,
    StateReport,
    VehicleReport,
)
from gateway.core.status import save
from gateway.core.vehicle_events import (
    ErrorState,
    ReadingOrigin,
    VehicleErrorReport,
    record,
    vehicle_error,
)

APPLIED, SKIPPED, FAILED = "applied", "skipped", "failed"
"""How a stored event was settled (`Metrics.webhook_event` outcomes)."""
MAX_REASON_LENGTH = 2000
"""Longest `error` stored for an event (the rejections of one event can be many)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Applied:
    """What applying one event did: its note (skipped or rejected parts) and new readings."""

    outcome: str
    note: str | None
    vehicle_id: str | None = None
    written: tuple[FieldReading, ...] = ()
    rejected: tuple[Rejection, ...] = ()


class WebhookInbox:
    """Receives webhook events (store once) and applies them (per vehicle, in turn)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        cache: TelemetryCache,
        clock: Clock,
        decoder: WebhookDecoder,
        metrics: Metrics = NO_METRICS,
        drain_batch: int = 100,
        levels: LowLevelPolicy = LowLevelPolicy(),
    ) -> None:
        """`levels`: when a stored fuel or charge level makes a LOW_FUEL or LOW_CHARGE
        event."""
        self._levels = levels
        self._uow = uow
        self._cache = cache
        self._clock = clock
        self._decoder = decoder
        self._metrics = metrics
        self._drain_batch = drain_batch
        self._locks: dict[str, asyncio.Lock] = {}

    async def receive(self, event: WebhookEvent) -> bool:
        """Store the event; False (nothing written) when its id was received before."""
        async with self._uow() as uow:
            stored = await uow.webhook_events.add(event)
            await uow.commit()
        if stored and event.failed_at is not None:
            self._failed(event, event.error or "")
        return stored

    async def apply(self, event: WebhookEvent) -> None:
        """Apply a stored event to its vehicle, after that vehicle's earlier events; if that
        raises, mark the event failed instead (only cancellation leaves it pending). An event
        no longer pending is left alone, so applying a redelivered event again is safe."""
        lock = self._locks.setdefault(event.smartcar_vehicle_id or "", asyncio.Lock())
        async with lock:
            try:
                applied = await self._apply(event)
            except Exception as exc:  # noqa: BLE001 - whatever it was, the event ends failed
                await self._mark_failed(event, exc)
                return
        if applied is None:  # applied (or failed) already: nothing to do, nothing to count
            return
        self._metrics.webhook_event(outcome=applied.outcome)
        for rejection in applied.rejected:
            self._metrics.webhook_value_rejected(field=rejection.field.value)
        if applied.rejected:
            _log.warning(
                "webhook event applied without its rejected values",
                extra={"event_id": event.event_id, "reason": applied.note},
            )
        if applied.vehicle_id is not None and applied.written:
            await self._cache_newer(applied.vehicle_id, applied.written)

    async def drain_pending(self) -> int:
        """Apply every stored event still pending (oldest first), marking failed any that
        cannot be; return how many were taken."""
        seen: set[str] = set()
        while True:
            async with self._uow() as uow:
                batch = await uow.webhook_events.pending(limit=self._drain_batch)
            # An event that could not even be marked failed comes back: skip it this time.
            fresh = [event for event in batch if event.event_id not in seen]
            if not fresh:
                return len(seen)
            for event in fresh:
                seen.add(event.event_id)
                await self.apply(event)

    async def _apply(self, event: WebhookEvent) -> _Applied | None:
        """Apply the stored event, read again under the vehicle's row lock: None when it is
        no longer pending (another delivery of the same event applied it first)."""
        async with self._uow() as uow:
            vehicle = await _linked_vehicle(uow, event.smartcar_vehicle_id)
            stored = await uow.webhook_events.get(event.event_id)
            if stored is None or not stored.pending:
                return None
            event = stored
            if vehicle is None:
                applied = _Applied(
                    SKIPPED,
                    f"no fleet vehicle is linked to Smartcar vehicle {event.smartcar_vehicle_id}",
                )
            elif (stranger := _another_owner(vehicle, self._decoder.owner(event))) is not None:
                applied = _Applied(SKIPPED, stranger)
            else:
                report = self._decoder.decode(event)
                applied = await _apply_report(
                    uow,
                    vehicle,
                    event,
                    report,
                    _Context(self._clock.now(), self._levels, self._metrics),
                )
            note = None if applied.note is None else _bounded(applied.note)
            await uow.webhook_events.mark_applied(event.event_id, at=self._clock.now(), error=note)
            await uow.commit()
        return applied

    async def _mark_failed(self, event: WebhookEvent, exc: Exception) -> None:
        """Record that applying the event raised; if even that fails, it stays pending."""
        reason = _bounded(f"not applied: {type(exc).__name__}: {exc}")
        extra = {"event_id": payloads.printable(event.event_id), "reason": reason}
        try:
            async with self._uow() as uow:
                await uow.webhook_events.mark_failed(
                    event.event_id, at=self._clock.now(), reason=reason
                )
                await uow.commit()
        except Exception:  # noqa: BLE001 - storage is failing too: retried at the next start
            _log.error("webhook event not applied; it stays pending", exc_info=exc, extra=extra)
            _log.exception("webhook event could not be marked failed", extra=extra)
            return
        self._metrics.webhook_event(outcome=FAILED)
        _log.error("webhook event not applied; marked failed", exc_info=exc, extra=extra)

    def _failed(self, event: WebhookEvent, reason: str) -> None:
        """Count and log an event stored failed on arrival."""
        self._metrics.webhook_event(outcome=FAILED)
        _log.warning(
            "webhook event stored failed",
            extra={"event_id": payloads.printable(event.event_id), "reason": reason},
        )

    async def _cache_newer(self, vehicle_id: str, written: tuple[FieldReading, ...]) -> None:
        """Put the readings in the cache, unless a poll cached newer ones meanwhile. The event
        is applied (storage holds the readings) whether or not the cache takes them."""
        try:
            cached = await self._cache.readings(vehicle_id)
            newer = [r for r in written if not _older(r, cached.get(r.field))]
            await self._cache.put(vehicle_id, newer)
        except Exception:  # noqa: BLE001 - the cache is an optimisation; storage is the truth
            _log.exception("webhook readings not cached", extra={"vehicle_id": vehicle_id})


async def _linked_vehicle(uow: UnitOfWork, smartcar_id: str | None) -> Vehicle | None:
    """Return the fleet vehicle linked to the Smartcar id, its row locked for the update."""
    if smartcar_id is None:
        return None
    linked = await uow.vehicles.by_smartcar_id(smartcar_id)
    return None if linked is None else await uow.vehicles.get(linked.id, for_update=True)


def _another_owner(vehicle: Vehicle, owner: str | None) -> str | None:
    """Say why an event is not the vehicle's when it names a Smartcar user other than the one
    the V3 car is connected by (None when it is the car's, or names no user)."""
    if (
        owner is None
        or vehicle.api is not SmartcarApi.V3
        or vehicle.smartcar_user_id in (None, owner)
    ):
        return None
    return (
        f"the event is for Smartcar user {payloads.printable(owner)}'s connection; "
        f"the car is connected by another user"
    )


@dataclass(frozen=True, slots=True)
class _Context:
    """What applying one event needs besides the event: when it is applied (the time its
    vehicle events are written at) and the low-level thresholds."""

    now: datetime
    levels: LowLevelPolicy
    metrics: Metrics = NO_METRICS


async def _apply_report(
    uow: UnitOfWork, vehicle: Vehicle, event: WebhookEvent, report: VehicleReport, ctx: _Context
) -> _Applied:
    """Apply what the event reports to its (locked) vehicle."""
    match report:
        case StateReport():
            return await _apply_state(uow, vehicle, event, report, ctx)
        case ErrorReport():
            await _apply_errors(uow, vehicle, report, at=event.received_at, now=ctx.now)
            return _Applied(APPLIED, None)
        case NotHandled(reason=reason):
            return _Applied(SKIPPED, reason)


async def _apply_state(
    uow: UnitOfWork, vehicle: Vehicle, event: WebhookEvent, report: StateReport, ctx: _Context
) -> _Applied:
    """Store the valid readings newer than the stored ones (with the events they make),
    and offer them to the car's rentals waiting for a final reading; the car is awake
    unless it says it is asleep."""
    stored = await uow.telemetry.latest(vehicle.id)
    newer = tuple(
        reading for reading in report.readings if not _older(reading, stored.get(reading.field))
    )
    updated = vehicle
    if newer:
        await store_readings(
            uow,
            vehicle.id,
            newer,
            origin=ReadingOrigin.WEBHOOK,
            at=ctx.now,
            levels=ctx.levels,
            previous=stored,
        )
        await complete_from_webhook(
            uow, vehicle.id, newer, at=event.received_at, metrics=ctx.metrics
        )
        updated = dataclasses.replace(
            updated, last_telemetry_at=_latest(vehicle.last_telemetry_at, event.received_at)
        )
    if not report.asleep:
        updated = dataclasses.replace(updated, asleep_until=None)
    if updated != vehicle:
        await uow.vehicles.update(updated)
    note = None
    if report.rejections:
        note = "rejected " + "; ".join(str(rejection) for rejection in report.rejections)
    return _Applied(APPLIED, note, vehicle.id, newer, report.rejections)


async def _apply_errors(
    uow: UnitOfWork, vehicle: Vehicle, report: ErrorReport, *, at: datetime, now: datetime
) -> None:
    """Write a VEHICLE_ERROR event per error (at `now`); keep the newest active error on the
    vehicle, forget one the report says is resolved. An error only the owner can resolve
    makes the car wait for them; that error resolved ends the wait (both changes at `at`,
    when the event arrived)."""
    updated = vehicle
    for error in report.errors:
        last_error = updated.last_error
        await record(uow, vehicle_error(vehicle.id, _error_report(error), at=now))
        if error.resolved:
            if last_error is not None and (last_error + ":").startswith(error.label + ":"):
                updated = dataclasses.replace(updated, last_error=None)
            if resolves(updated, error.label):
                reason = f"Smartcar reported {error.label} resolved"
                updated = resumed(updated, reason=reason, now=at)
            continue
        description = error.description
        last_error = error.label if description is None else f"{error.label}: {description}"
        updated = dataclasses.replace(updated, last_error=last_error)
        if error.owner_action is not None:
            updated = waiting(updated, error.owner_action, now=at) or updated
    if updated != vehicle:
        await save(uow, vehicle, updated)


def _error_report(error: ReportedError) -> VehicleErrorReport:
    """The detail of the VEHICLE_ERROR event one reported error makes."""
    return VehicleErrorReport(
        type=error.type,
        code=error.code,
        description=error.description,
        state=ErrorState.RESOLVED if error.resolved else ErrorState.ACTIVE,
        resolution_type=error.resolution_type,
        resolution_url=error.resolution_url,
    )


def _older(reading: FieldReading, current: FieldReading | None) -> bool:
    """Tell whether `reading` was recorded before the one it would replace."""
    if current is None or current.recorded_at is None or reading.recorded_at is None:
        return False
    return reading.recorded_at < current.recorded_at


def _bounded(reason: str) -> str:
    """Return a reason every store keeps, cut to MAX_REASON_LENGTH characters."""
    reason = payloads.printable(reason)
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 1] + "…"


def _latest(known: datetime | None, new: datetime) -> datetime:
    return new if known is None or new > known else known
