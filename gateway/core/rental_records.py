"""Writing readings into rentals and settling final readings: the one path every writer
takes (StartRental and EndRental, the background job, webhooks), each in its own unit of
work with the vehicle's row locked first, so two writers of one car take turns.

- `record_start` stores the start readings not stored yet (`merge_start`). A previous
  rental of the car still waiting for its final reading is settled by it
  (`settle_superseded`): the reading taken at this start is the car as that rental left
  it, and anything recorded later may include the new renter's trips.
- `record_end` stores the end readings better than those held (`merge_end`) and, once every
  field the car can report is final, marks the final reading RECORDED.

Vehicle events are written with the change they report: DOORS_OPEN_AT_RENTAL_END when
the end reading's first lock status shows a door, window, trunk or sunroof open,
FINAL_READING_RECORDED when the final reading is recorded, FINAL_READING_GIVEN_UP when it
is given up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import (
    FinalReading,
    FinalReadingState,
    RentalPhase,
    RentalRecord,
    SourcedReading,
    TelemetryField,
)
from gateway.core.ports import UnitOfWork
from gateway.core.reading_events import open_at_end
from gateway.core.rental_readings import has_value, merge_end, merge_start, missing_fields
from gateway.core.vehicle_events import doors_open_at_end, final_reading
from gateway.core.vehicle_events import record as record_event

RECORDED, GIVEN_UP = "recorded", "given_up"
"""How a final reading was settled (`Metrics.rental_final_reading` outcomes)."""


async def record_start(
    uow: UnitOfWork,
    record: RentalRecord,
    taken: Mapping[TelemetryField, SourcedReading],
    *,
    now: datetime,
    metrics: Metrics = NO_METRICS,
) -> RentalRecord:
    """Store the start readings the rental has none of yet, and settle the car's previous
    rentals still waiting for a final reading; return the rental as stored now."""
    new = merge_start(record.start, taken)
    if new:
        await uow.rentals.store_readings(record.rental.rental_id, RentalPhase.START, new.values())
    updated = dataclasses.replace(record, start={**record.start, **new})
    for previous in await uow.rentals.pending_finals(record.rental.vehicle_id):
        ended_at = previous.rental.ended_at
        if ended_at is not None and ended_at <= record.rental.started_at:
            await settle_superseded(uow, previous, updated, now=now, metrics=metrics)
    return updated


async def record_end(
    uow: UnitOfWork,
    record: RentalRecord,
    taken: Mapping[TelemetryField, SourcedReading],
    *,
    now: datetime,
    attempted_at: datetime | None = None,
    metrics: Metrics = NO_METRICS,
) -> RentalRecord:
    """Store the end readings better than those held; mark the final reading RECORDED once
    every field the car can report is final. `attempted_at`: when the car was asked for
    `taken`, kept as the chase's last attempt while it stays pending (what was fetched up
    to then is not news to the next attempt). Return the rental as stored now."""
    ended_at = record.rental.ended_at
    if ended_at is None:
        raise ValueError(f"rental {record.rental.rental_id} has not ended")
    better = merge_end(record.end, taken, ended_at)
    if better:
        await uow.rentals.store_readings(record.rental.rental_id, RentalPhase.END, better.values())
        await _doors_open(uow, record, better, now=now)
    end = {**record.end, **better}
    final = record.final
    recorded = False
    if final is not None and final.state is FinalReadingState.PENDING:
        if not missing_fields(end, ended_at):
            final = dataclasses.replace(
                final, state=FinalReadingState.RECORDED, next_attempt_at=None, settled_at=now
            )
            recorded = True
            metrics.rental_final_reading(outcome=RECORDED, after_s=(now - ended_at).total_seconds())
        elif attempted_at is not None:
            final = dataclasses.replace(final, last_attempt_at=attempted_at)
        if final != record.final:
            await uow.rentals.save_final(record.rental.rental_id, final)
    updated = dataclasses.replace(record, end=end, final=final)
    if recorded:
        await record_event(uow, final_reading(updated, at=now))
    return updated


async def _doors_open(
    uow: UnitOfWork,
    record: RentalRecord,
    better: Mapping[TelemetryField, SourcedReading],
    *,
    now: datetime,
) -> None:
    """Write DOORS_OPEN_AT_RENTAL_END when the end reading gets its first lock status and it
    shows something open."""
    lock = better.get(TelemetryField.LOCK_STATUS)
    held = record.end.get(TelemetryField.LOCK_STATUS)
    if lock is None or not has_value(lock) or has_value(held):
        return
    shown = open_at_end(lock.reading)
    if shown is not None:
        rental = record.rental
        event = doors_open_at_end(rental.vehicle_id, rental.rental_id, shown, at=now)
        await record_event(uow, event)


async def settle_superseded(
    uow: UnitOfWork,
    previous: RentalRecord,
    following: RentalRecord,
    *,
    now: datetime,
    metrics: Metrics = NO_METRICS,
) -> RentalRecord:
    """The car's next rental started before `previous` got its final reading: complete the
    end reading from the next rental's start reading where it is final, and stop trying."""
    updated = await record_end(uow, previous, following.start, now=now, metrics=metrics)
    if updated.final is None or not updated.final_reading_pending:
        return updated
    reason = (
        f"rental {following.rental.rental_id} started before the car reported a value "
        "recorded after this rental's end"
    )
    return await give_up(uow, updated, reason=reason, now=now, metrics=metrics)


async def give_up(
    uow: UnitOfWork,
    record: RentalRecord,
    *,
    reason: str,
    now: datetime,
    metrics: Metrics = NO_METRICS,
) -> RentalRecord:
    """Stop trying for the rental's final reading; the end reading keeps what it holds."""
    if record.final is None:
        raise ValueError(f"rental {record.rental.rental_id} has no final reading to give up")
    final = dataclasses.replace(
        record.final,
        state=FinalReadingState.GIVEN_UP,
        next_attempt_at=None,
        settled_at=now,
        reason=reason,
    )
    await uow.rentals.save_final(record.rental.rental_id, final)
    ended_at = record.rental.ended_at or now
    metrics.rental_final_reading(outcome=GIVEN_UP, after_s=(now - ended_at).total_seconds())
    given_up = dataclasses.replace(record, final=final)
    await record_event(uow, final_reading(given_up, at=now))
    return given_up


def pending_final(*, ended_at: datetime, retry_at: datetime) -> FinalReading:
    """The chase of a rental that just ended: pending, first tried in the background at
    `retry_at` (after the rental's own reading had its chance)."""
    return FinalReading(
        state=FinalReadingState.PENDING, last_attempt_at=ended_at, next_attempt_at=retry_at
    )
