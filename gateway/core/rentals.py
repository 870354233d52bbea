"""Rental holds and the readings taken at their start and end: StartRental, EndRental.

At most one active rental per vehicle. Both operations are idempotent for the same rental
id, so the rental service can retry them freely. Starting needs a car that can be rented
(`ensure_rentable`: ACTIVE, with `control_security` granted, else `VehicleNotRentable`
naming each missing thing); ending is always allowed. `ensure_not_rented` is the guard that
refuses Disconnect while a rental holds the car: `ConnectionService.disconnect` calls it in
the transaction that would disconnect the car, under the vehicle's row lock.

Readings (rules in `gateway.core.rental_readings`). The hold (or its end) is committed
first; then the reading of `RENTAL_FIELDS` (at the end `END_FIELDS`: the lock status and
doors too), no older than `RentalReadingPolicy.max_age`, is
taken through the telemetry use case (`gateway.core.rental_reader`) in a task of its own,
outside any transaction and outside the caller's context (its deadline does not cut a
reading that outlives the call), and stored by `gateway.core.rental_records`. The call waits
for it at most `RentalReadingPolicy.wait`: a car that answers in time is in the answer;
otherwise the answer holds what is stored by then (the end: the final reading pending),
and the reading is stored when it arrives. Ending commits the chase of the final reading
with the end itself (pending, tried in the background after `first_retry`), so a reading
lost with its process is tried again by `gateway.core.final_readings`. A retried
StartRental whose reading never got stored takes it again.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway.core.errors import (
    RentalActive,
    RentalConflict,
    UnmetCondition,
    VehicleNotRentable,
)
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, Rental, RentalRecord, Vehicle
from gateway.core.permissions import COMMAND_PERMISSION
from gateway.core.ports import Clock, Conflict, UnitOfWork, UnitOfWorkFactory
from gateway.core.rental_reader import RentalReader
from gateway.core.rental_readings import END_FIELDS, RENTAL_FIELDS, RentalReadingPolicy
from gateway.core.rental_records import pending_final, record_end, record_start
from gateway.core.vehicles import require_vehicle

BoundedWait = Callable[["asyncio.Task[RentalRecord]", float], Awaitable[object]]
"""Waits for a reading task at most some seconds, never cancelling it."""

_log = logging.getLogger(__name__)


async def wait_at_most(task: asyncio.Task[RentalRecord], seconds: float) -> None:
    """Wait until `task` is done or `seconds` have passed (the task goes on either way)."""
    if seconds > 0:
        await asyncio.wait({task}, timeout=seconds)


class RentalService:
    """StartRental and EndRental."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        reader: RentalReader,
        clock: Clock,
        policy: RentalReadingPolicy = RentalReadingPolicy(),
        metrics: Metrics = NO_METRICS,
        wait: BoundedWait = wait_at_most,
    ) -> None:
        """`wait` bounds how long a call waits for its reading (injected: tests decide
        whether a car answered in time without waiting on a timer)."""
        self._uow = uow
        self._reader = reader
        self._clock = clock
        self._policy = policy
        self._metrics = metrics
        self._wait = wait
        self._readings: set[asyncio.Task[RentalRecord]] = set()

    async def start(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Hold the vehicle for `rental_id` and take the start reading (a retry gets the
        existing hold, and its reading)."""
        record = await self._hold(vehicle_id, rental_id)
        if record.start:
            return record
        return await self._answer(record, self._take_start(record))

    async def end(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Release the hold and take the end reading (a retry gets the ended rental as it
        stands)."""
        record, ended_now = await self._release(vehicle_id, rental_id)
        if not ended_now:
            return record
        return await self._answer(record, self._take_end(record))

    async def settle(self) -> None:
        """Wait until every reading in flight is stored (a testing and shutdown hook)."""
        while self._readings:
            await asyncio.wait(set(self._readings))

    async def aclose(self) -> None:
        """Cancel the readings in flight (shutting down: the background job takes over)."""
        for task in list(self._readings):
            task.cancel()
        await asyncio.gather(*self._readings, return_exceptions=True)

    async def _hold(self, vehicle_id: str, rental_id: str) -> RentalRecord:
        """Commit the hold, or return the existing one of a retry."""
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            existing = await uow.rentals.record(rental_id)
            if existing is not None:
                return _same_rental(existing, vehicle_id)
            ensure_rentable(vehicle)
            active = await uow.rentals.active(vehicle_id)
            if active is not None:
                raise RentalConflict(
                    f"vehicle {vehicle_id} is already held by rental {active.rental_id}",
                    metadata={"vehicle_id": vehicle_id, "rental_id": active.rental_id},
                )
            rental = Rental(
                rental_id=rental_id, vehicle_id=vehicle_id, started_at=self._clock.now()
            )
            try:
                await uow.rentals.add(rental)
                await uow.commit()
            except Conflict:
                raise RentalConflict(
                    f"vehicle {vehicle_id} was just taken by another rental; read it and retry",
                    metadata={"vehicle_id": vehicle_id},
                ) from None
        return RentalRecord(rental=rental)

    async def _release(self, vehicle_id: str, rental_id: str) -> tuple[RentalRecord, bool]:
        """Commit the end and the pending final reading; tell whether it ended now."""
        async with self._uow() as uow:
            await require_vehicle(uow, vehicle_id, for_update=True)
            record = await uow.rentals.record(rental_id)
            if record is None or record.rental.vehicle_id != vehicle_id:
                raise RentalConflict(
                    f"vehicle {vehicle_id} has no rental {rental_id}",
                    metadata={"vehicle_id": vehicle_id, "rental_id": rental_id},
                )
            if not record.rental.active:
                return record, False
            now = self._clock.now()
            final = pending_final(ended_at=now, retry_at=now + self._policy.first_retry)
            await uow.rentals.end(rental_id, ended_at=now)
            await uow.rentals.save_final(rental_id, final)
            await uow.commit()
        ended = dataclasses.replace(record.rental, ended_at=now)
        return dataclasses.replace(record, rental=ended, final=final), True

    async def _answer(
        self, record: RentalRecord, reading: Coroutine[Any, Any, RentalRecord]
    ) -> RentalRecord:
        """Run the reading in its own task; answer with it when it is stored within the
        wait, else with the rental as stored now."""
        task = asyncio.create_task(reading, context=contextvars.Context())
        self._readings.add(task)
        task.add_done_callback(self._finished)
        await self._wait(task, self._policy.wait.total_seconds())
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return await self._stored(record)

    def _finished(self, task: asyncio.Task[RentalRecord]) -> None:
        """Forget a finished reading; log one that failed (the background job retries)."""
        self._readings.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            _log.error("a rental reading was not stored", exc_info=failure)

    async def _stored(self, record: RentalRecord) -> RentalRecord:
        async with self._uow.reader() as uow:
            return await uow.rentals.record(record.rental.rental_id) or record

    async def _take_start(self, record: RentalRecord) -> RentalRecord:
        """Read the car and store the start reading (and settle a previous rental's)."""
        rental = record.rental
        taken = await self._reader.take(
            rental.vehicle_id, RENTAL_FIELDS, max_age=self._policy.max_age
        )
        async with self._uow() as uow:
            current = await _locked(uow, record)
            updated = await record_start(
                uow, current, taken.readings, now=self._clock.now(), metrics=self._metrics
            )
            await uow.commit()
        return updated

    async def _take_end(self, record: RentalRecord) -> RentalRecord:
        """Read the car and store the end reading (RECORDED when already final), with the
        lock status for the doors left open."""
        rental = record.rental
        taken = await self._reader.take(rental.vehicle_id, END_FIELDS, max_age=self._policy.max_age)
        async with self._uow() as uow:
            current = await _locked(uow, record)
            now = self._clock.now()
            updated = await record_end(
                uow, current, taken.readings, now=now, attempted_at=now, metrics=self._metrics
            )
            await uow.commit()
        return updated


async def _locked(uow: UnitOfWork, record: RentalRecord) -> RentalRecord:
    """The rental as stored now, its vehicle's row locked (the order every writer keeps)."""
    await require_vehicle(uow, record.rental.vehicle_id, for_update=True)
    return await uow.rentals.record(record.rental.rental_id) or record


def ensure_rentable(vehicle: Vehicle) -> None:
    """Raise VehicleNotRentable unless the car is ACTIVE with `control_security` granted
    (a car that cannot be unlocked cannot be rented), naming everything that is missing."""
    unmet: list[UnmetCondition] = []
    if vehicle.status is not ConnectionStatus.ACTIVE:
        unmet.append(
            UnmetCondition(
                type="CONNECTION_STATUS",
                subject=f"vehicles/{vehicle.id}",
                description=_STATUS_ADVICE[vehicle.status].format(
                    reason=f" ({vehicle.status_reason})" if vehicle.status_reason else ""
                ),
            )
        )
    missing_permission = (
        vehicle.status is not ConnectionStatus.NOT_CONNECTED
        and COMMAND_PERMISSION not in vehicle.permissions
    )
    if missing_permission:
        unmet.append(
            UnmetCondition(
                type="PERMISSION",
                subject=f"permissions/{COMMAND_PERMISSION}",
                description=f"the owner did not grant {COMMAND_PERMISSION}, which locking and "
                "unlocking need: reconnect the car and grant it",
            )
        )
    if not unmet:
        return
    metadata = {"vehicle_id": vehicle.id, "status": vehicle.status.value}
    action = vehicle.owner_action
    if action is not None:
        metadata["smartcar_error"] = action.error
        if action.resolution_url:
            metadata["resolution_url"] = action.resolution_url
        if action.doc_url:
            metadata["smartcar_doc_url"] = action.doc_url
    if missing_permission:
        metadata["missing_permissions"] = COMMAND_PERMISSION
    raise VehicleNotRentable(
        f"vehicle {vehicle.id} cannot be rented: " + "; ".join(u.description for u in unmet),
        unmet=unmet,
        metadata=metadata,
    )


_STATUS_ADVICE = {
    ConnectionStatus.NOT_CONNECTED: "the car was never connected: connect it (GetConnectUrl, "
    "Connect)",
    ConnectionStatus.EXPIRED: "the connection is EXPIRED{reason}, not ACTIVE: the owner must "
    "reconnect it",
    ConnectionStatus.DISCONNECTED: "the connection is DISCONNECTED{reason}, not ACTIVE: "
    "reconnect the car to rent it",
    ConnectionStatus.ERROR: "the connection is in ERROR{reason}, not ACTIVE: Smartcar failed "
    "repeatedly for this car (GetVehicle shows the last error)",
    ConnectionStatus.NEEDS_REAUTHENTICATION: "the connection is NEEDS_REAUTHENTICATION{reason}, "
    "not ACTIVE: the owner must act in their connected-services account or reconnect the car "
    "(GetVehicle shows Smartcar's resolution URL)",
}
"""What the CONNECTION_STATUS violation says for each status that is not ACTIVE."""


async def ensure_not_rented(uow: UnitOfWork, vehicle_id: str) -> None:
    """Raise RentalActive while a rental holds the vehicle.

    Call it in the transaction that would disconnect the car, with the vehicle's row
    locked: a concurrent StartRental locks the same row and needs ACTIVE, so it either
    committed before (and is seen here) or waits and then finds the car DISCONNECTED."""
    rental = await uow.rentals.active(vehicle_id)
    if rental is not None:
        raise RentalActive(
            f"vehicle {vehicle_id} has an active rental {rental.rental_id}; end it first",
            vehicle_id=vehicle_id,
            rental_id=rental.rental_id,
        )


def _same_rental(existing: RentalRecord, vehicle_id: str) -> RentalRecord:
    """A retried StartRental gets its rental back; a rental id of another car is a conflict."""
    rental = existing.rental
    if rental.vehicle_id != vehicle_id:
        raise RentalConflict(
            f"rental {rental.rental_id} belongs to vehicle {rental.vehicle_id}",
            metadata={"rental_id": rental.rental_id, "vehicle_id": rental.vehicle_id},
        )
    if not rental.active:
        raise RentalConflict(
            f"rental {rental.rental_id} has already ended; use a new rental id",
            metadata={"rental_id": rental.rental_id, "vehicle_id": vehicle_id},
        )
    return existing
