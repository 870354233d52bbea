"""The chase of final readings: until every field of an ended rental's end reading the car
can report holds a value recorded at or after the end, the gateway keeps asking.

`FinalReadings.run_once` is a leased background job (one replica runs it, like the
scheduler). Each pass takes the rentals due (`RentalRepository.due_finals`: longest due
first, `RentalReadingPolicy.batch` of them, `concurrency` at once), and for each:

- when the car's next rental has started, that rental's start reading completes the end
  reading where it is final, and the chase ends (`settle_superseded`): anything the car
  records later may include the next renter's trips;
- when `give_up_after` has passed since the end, the chase is given up and the end reading
  keeps the newest values known;
- otherwise the fields still missing are read through the telemetry use case
  (`gateway.core.rental_reader`) as rental readings (`ReadPurpose.RENTAL`: ahead of the
  scheduler's polls in the app-wide bucket, just below commands, and allowed to spend the
  budget's reserve), accepting what was
  fetched since the last attempt: a value a poll, another caller or a webhook brought in
  meanwhile costs no request. A car known to be asleep is answered from the cache
  (telemetry's sleep rule), so it costs nothing until its backoff passes. Then the rental
  is RECORDED when complete, else tried again later (`next_attempt_at`: doubling, never
  before a rate limit's retry time); a car whose connection was removed (DISCONNECTED) is
  given up at once.

Webhooks complete final readings too: `complete_from_webhook`, which the inbox calls in the
transaction applying a vehicle's readings, marks their source WEBHOOK.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import ConnectionDisconnected
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import (
    FieldReading,
    FinalReadingState,
    ReadingSource,
    RentalRecord,
    SourcedReading,
)
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.rental_reader import RentalReader, TakenReading
from gateway.core.rental_readings import (
    RENTAL_FIELDS,
    RentalReadingPolicy,
    missing_fields,
    next_attempt_at,
)
from gateway.core.rental_records import give_up, record_end, settle_superseded
from gateway.core.vehicles import require_vehicle

_log = logging.getLogger(__name__)

_JUST_AFTER = timedelta(microseconds=1)

_Write = Callable[[UnitOfWork, RentalRecord], Awaitable[RentalRecord]]
"""A write on a rental, given the job's unit of work and the rental as stored now."""


@dataclass(slots=True)
class FinalReadingPass:
    """What one pass of the job did."""

    due: int = 0
    recorded: int = 0
    given_up: int = 0
    retried: int = 0
    failed: int = 0
    """Rentals whose attempt raised (logged; tried again at the next pass)."""


class FinalReadings:
    """Asks again for the final readings of ended rentals (a leased background job)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        reader: RentalReader,
        clock: Clock,
        policy: RentalReadingPolicy = RentalReadingPolicy(),
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._uow = uow
        self._reader = reader
        self._clock = clock
        self._policy = policy
        self._metrics = metrics

    async def run_once(self) -> FinalReadingPass:
        """Try every rental whose final reading is due now."""
        async with self._uow.reader() as uow:
            due = await uow.rentals.due_finals(now=self._clock.now(), limit=self._policy.batch)
        report = FinalReadingPass(due=len(due))
        slots = asyncio.Semaphore(self._policy.concurrency)

        async def attempt(record: RentalRecord) -> None:
            async with slots:
                try:
                    settled = await self._attempt(record)
                except Exception:  # noqa: BLE001 - one rental's failure must not stop the pass
                    _log.exception(
                        "final reading attempt failed",
                        extra={"rental_id": record.rental.rental_id},
                    )
                    report.failed += 1
                    return
            _count(report, settled)

        async with asyncio.TaskGroup() as attempts:
            for record in due:
                attempts.create_task(attempt(record))
        return report

    async def _attempt(self, record: RentalRecord) -> RentalRecord:
        """One try for one rental; return it as stored after."""
        rental = record.rental
        ended_at = rental.ended_at
        if ended_at is None or record.final is None:
            return record
        now = self._clock.now()
        async with self._uow.reader() as uow:
            following = await uow.rentals.following(rental)
        if following is not None:
            return await self._write(
                record,
                lambda uow, current: settle_superseded(
                    uow, current, following, now=now, metrics=self._metrics
                ),
            )
        if now >= ended_at + self._policy.give_up_after:
            hours = self._policy.give_up_after.total_seconds() / 3600
            reason = f"no value recorded after the end came within {hours:g} h of it"
            return await self._write(
                record,
                lambda uow, current: give_up(
                    uow, current, reason=reason, now=now, metrics=self._metrics
                ),
            )
        since = record.final.last_attempt_at or ended_at
        taken = await self._reader.take(
            rental.vehicle_id,
            missing_fields(record.end, ended_at),
            max_age=now - since - _JUST_AFTER,  # only what was fetched after the last attempt
        )
        attempted_at = self._clock.now()

        async def store(uow: UnitOfWork, current: RentalRecord) -> RentalRecord:
            updated = await record_end(
                uow,
                current,
                taken.readings,
                now=attempted_at,
                attempted_at=attempted_at,
                metrics=self._metrics,
            )
            return await self._after(uow, updated, taken, at=attempted_at)

        return await self._write(record, store)

    async def _after(
        self, uow: UnitOfWork, record: RentalRecord, taken: TakenReading, *, at: datetime
    ) -> RentalRecord:
        """Schedule the next try of a rental still pending (or give up on a car whose
        connection was removed)."""
        final = record.final
        if final is None or not record.final_reading_pending:
            return record
        refusal = taken.refusal
        if isinstance(refusal, ConnectionDisconnected):
            reason = f"the car's connection was removed before it reported: {refusal.message}"
            return await give_up(uow, record, reason=reason, now=at, metrics=self._metrics)
        retry_after = None
        if refusal is not None and refusal.retry_after_s is not None:
            retry_after = at + timedelta(seconds=refusal.retry_after_s)
        attempts = final.attempts + 1
        final = dataclasses.replace(
            final,
            attempts=attempts,
            next_attempt_at=next_attempt_at(
                attempts=attempts, now=at, policy=self._policy, not_before=retry_after
            ),
        )
        await uow.rentals.save_final(record.rental.rental_id, final)
        return dataclasses.replace(record, final=final)

    async def _write(self, record: RentalRecord, write: _Write) -> RentalRecord:
        """Run `write` on the rental as stored now, under its vehicle's row lock, unless
        its final reading was settled meanwhile (a webhook, another pass)."""
        async with self._uow() as uow:
            await require_vehicle(uow, record.rental.vehicle_id, for_update=True)
            current = await uow.rentals.record(record.rental.rental_id)
            if current is None or not current.final_reading_pending:
                return current or record
            updated = await write(uow, current)
            await uow.commit()
        return updated


async def complete_from_webhook(
    uow: UnitOfWork,
    vehicle_id: str,
    readings: Iterable[FieldReading],
    *,
    at: datetime,
    metrics: Metrics = NO_METRICS,
) -> None:
    """Offer a webhook's readings to the vehicle's rentals waiting for a final reading (in
    the inbox's transaction, the vehicle's row locked). A rental the car's next rental
    followed is left to that rental's start reading."""
    pushed = {
        r.field: SourcedReading(reading=r, source=ReadingSource.WEBHOOK, taken_at=at)
        for r in readings
        if r.field in RENTAL_FIELDS
    }
    if not pushed:
        return
    for record in await uow.rentals.pending_finals(vehicle_id):
        if await uow.rentals.following(record.rental) is None:
            await record_end(uow, record, pushed, now=at, metrics=metrics)


def _count(report: FinalReadingPass, record: RentalRecord) -> None:
    """Count how one rental's attempt left it."""
    final = record.final
    if final is None:
        return
    if final.state is FinalReadingState.RECORDED:
        report.recorded += 1
    elif final.state is FinalReadingState.GIVEN_UP:
        report.given_up += 1
    else:
        report.retried += 1
