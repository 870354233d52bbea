"""The status feed behind WatchVehicles: connection changes as the database records them.

The database is the arbiter, so a watcher on one replica sees changes made by any other:
the feed reads the transitions table after a cursor, in short transactions, and waits
`poll_interval_s` when it has caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from gateway.core.model import StatusTransition
from gateway.core.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchPolicy:
    """How often a caught-up watcher looks again, and how much it reads at once."""

    poll_interval_s: float = 0.5
    page_size: int = 500


class StatusFeed:
    """Streams status transitions after a cursor, forever (until the caller stops)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        policy: WatchPolicy = WatchPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._uow = uow
        self._policy = policy
        self._sleep = sleep

    async def changes(
        self, *, vehicle_ids: frozenset[str], after_id: int | None
    ) -> AsyncIterator[StatusTransition]:
        """Yield transitions after `after_id` (None: from now on), for the given vehicles."""
        cursor = after_id if after_id is not None else await self._latest_id()
        while True:
            async with self._uow.reader() as uow:
                batch = await uow.transitions.after(cursor, limit=self._policy.page_size)
            for transition in batch:
                cursor = transition.id if transition.id is not None else cursor
                if not vehicle_ids or transition.vehicle_id in vehicle_ids:
                    yield transition
            if len(batch) < self._policy.page_size:
                await self._sleep(self._policy.poll_interval_s)

    async def _latest_id(self) -> int:
        async with self._uow.reader() as uow:
            return await uow.transitions.latest_id()
