"""Background jobs that exactly one replica runs: each tick takes (or renews) a lease in the
database, and only the holder does the work. A replica that dies stops renewing; its lease
expires and another replica takes over at its next tick.

Each job tells a `LeaseObserver` (the metrics) whether this replica holds its lease after
every attempt to take it, so operators see a job no replica runs (`vehicle_gateway_lease_held`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from gateway.core.ports import Clock, UnitOfWorkFactory

_log = logging.getLogger(__name__)


def replica_id() -> str:
    """Return an id for this process, unique across replicas and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LeaseObserver(Protocol):
    """Told whether this replica holds a lease; must be cheap and never raise."""

    def lease_held(self, *, lease: str, held: bool) -> None:
        """This replica holds (or does not hold) the lease `lease` now."""


class _Unobserved:
    def lease_held(self, *, lease: str, held: bool) -> None:
        """Discard."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSchedule:
    """How often a job runs, and how long its lease outlives a silent holder."""

    interval_s: float
    lease_ttl_s: float


class LeasedJob:
    """Runs `work` every `interval_s` while this replica holds the lease `name`."""

    def __init__(
        self,
        *,
        name: str,
        holder: str,
        work: Callable[[], Awaitable[object]],
        uow: UnitOfWorkFactory,
        clock: Clock,
        schedule: JobSchedule,
        observer: LeaseObserver | None = None,
    ) -> None:
        self._observer = observer or _Unobserved()
        self._name = name
        self._holder = holder
        self._work = work
        self._uow = uow
        self._clock = clock
        self._schedule = schedule

    async def tick(self) -> bool:
        """Take or renew the lease; run the work if held. Return whether it ran. A failure
        to take it counts as not holding it (the work does not run)."""
        now = self._clock.now()
        until = now + timedelta(seconds=self._schedule.lease_ttl_s)
        held = False
        try:
            async with self._uow() as uow:
                held = await uow.leases.acquire(self._name, self._holder, until=until, now=now)
                await uow.commit()
        finally:
            self._observer.lease_held(lease=self._name, held=held)
        if held:
            await self._work()
        return held

    async def run_forever(self) -> None:
        """Tick every interval until cancelled; a failing tick is logged, not fatal."""
        try:
            while True:
                try:
                    await self.tick()
                except Exception:  # noqa: BLE001 - a background job must outlive one bad tick
                    _log.exception("background job %s failed", self._name)
                await asyncio.sleep(self._schedule.interval_s)
        finally:
            await self._release()

    async def _release(self) -> None:
        self._observer.lease_held(lease=self._name, held=False)
        try:
            async with self._uow() as uow:
                await uow.leases.release(self._name, self._holder)
                await uow.commit()
        except Exception:  # noqa: BLE001 - shutting down: the lease will expire anyway
            _log.warning("could not release lease %s", self._name)
