"""The status feed behind WatchVehicles: connection changes as the database records them.

The database is the arbiter, so a watcher on one replica sees changes made by any other:
the feed reads the transitions table after a cursor, in short transactions, and waits
`poll_interval_s` when it has caught up.

Ids are handed out when a row is inserted, but rows become visible when their transaction
commits: on PostgreSQL, id 11 may be seen while id 10 is still being committed. A cursor
that moved on to 11 would skip 10 for good. So the feed stops in front of a hole in the
ids and looks again; it steps over the hole once the row after it is older than
`gap_grace_s`, or the feed has waited that long (an id that was rolled back never fills;
holes in old history are stepped over at once). Transitions are delivered in id order, and
a watcher resuming after the last id it saw misses nothing committed within the grace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from gateway.core.model import StatusTransition
from gateway.core.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchPolicy:
    """How often a caught-up watcher looks again, and how much it reads at once."""

    poll_interval_s: float = 0.5
    page_size: int = 500
    gap_grace_s: float = 5.0
    """How long a hole in the ids is waited for before the feed steps over it."""


class StatusFeed:
    """Streams status transitions after a cursor, forever (until the caller stops)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: WatchPolicy = WatchPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._sleep = sleep
        self._monotonic = monotonic

    async def changes(
        self, *, vehicle_ids: frozenset[str], after_id: int | None
    ) -> AsyncIterator[StatusTransition]:
        """Yield transitions after `after_id` (None: from now on), for the given vehicles."""
        cursor = after_id if after_id is not None else await self._latest_id()
        hole_seen_at: float | None = None
        while True:
            async with self._uow.reader() as uow:
                batch = await uow.transitions.after(cursor, limit=self._policy.page_size)
            stopped = False
            for transition in batch:
                next_id = transition.id if transition.id is not None else cursor + 1
                if next_id > cursor + 1 and self._recent(transition):
                    now = self._monotonic()
                    hole_seen_at = now if hole_seen_at is None else hole_seen_at
                    if now - hole_seen_at < self._policy.gap_grace_s:
                        stopped = True  # the missing id may still be committing
                        break
                hole_seen_at = None
                cursor = next_id
                if not vehicle_ids or transition.vehicle_id in vehicle_ids:
                    yield transition
            if stopped or len(batch) < self._policy.page_size:
                await self._sleep(self._policy.poll_interval_s)

    def _recent(self, transition: StatusTransition) -> bool:
        age = self._clock.now() - transition.at
        return age.total_seconds() < self._policy.gap_grace_s

    async def _latest_id(self) -> int:
        async with self._uow.reader() as uow:
            return await uow.transitions.latest_id()
