"""Background jobs that exactly one replica runs: each tick takes (or renews) a lease in the
database, and only the holder does the work. A replica that dies stops renewing; its lease
expires and another replica takes over at its next tick."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.ports import Clock, UnitOfWorkFactory

_log = logging.getLogger(__name__)


def replica_id() -> str:
    """Return an id for this process, unique across replicas and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
    ) -> None:
        self._name = name
        self._holder = holder
        self._work = work
        self._uow = uow
        self._clock = clock
        self._schedule = schedule

    async def tick(self) -> bool:
        """Take or renew the lease; run the work if held. Return whether it ran."""
        now = self._clock.now()
        until = now + timedelta(seconds=self._schedule.lease_ttl_s)
        async with self._uow() as uow:
            held = await uow.leases.acquire(self._name, self._holder, until=until, now=now)
            await uow.commit()
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
        try:
            async with self._uow() as uow:
                await uow.leases.release(self._name, self._holder)
                await uow.commit()
        except Exception:  # noqa: BLE001 - shutting down: the lease will expire anyway
            _log.warning("could not release lease %s", self._name)
