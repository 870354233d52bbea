"""Deleting what has outlived its retention, in bounded batches: what the audit trail's and
the vehicle events' retention jobs share (each a leased background job, run on one replica).

`Retention` is the job: each pass deletes what was written before `now - retention`,
oldest first, one short transaction per batch; a subclass says what it deletes (`_prune`)
and how its log line names it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory

_log = logging.getLogger(__name__)

Prune = Callable[[UnitOfWork, int], Awaitable[int]]
"""Deletes up to the given number of expired rows in the unit of work; returns how many."""


async def prune_in_batches(
    uow: UnitOfWorkFactory, prune: Prune, *, batch_size: int, max_batches: int
) -> int:
    """Run `prune` in one short transaction per batch of `batch_size`, until a batch comes
    back short or `max_batches` ran (the next pass goes on); return how many were deleted."""
    deleted = 0
    for _ in range(max_batches):
        async with uow() as unit:
            pruned = await prune(unit, batch_size)
            await unit.commit()
        deleted += pruned
        if pruned < batch_size:
            break
    return deleted


class RetentionPolicy(Protocol):
    """How long rows are kept (None: forever), and how much one pass deletes."""

    @property
    def retention(self) -> timedelta | None: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_batches(self) -> int: ...


class Retention:
    """A retention job: deletes rows written longer ago than the policy's retention."""

    what = "rows"
    """How the log line names what was deleted."""
    event = "pruned"
    """The log line's `event`."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, policy: RetentionPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def _prune(self, uow: UnitOfWork, *, before: datetime, limit: int) -> int:
        """Delete up to `limit` rows written before `before`; return how many."""
        raise NotImplementedError

    async def run_once(self) -> int:
        """Delete expired rows, oldest first, one short transaction per batch, until a
        batch comes back short or `max_batches` ran (the next pass goes on); return how
        many were deleted."""
        policy = self._policy
        if policy.retention is None:
            return 0
        cutoff = self._clock.now() - policy.retention

        async def prune(uow: UnitOfWork, limit: int) -> int:
            return await self._prune(uow, before=cutoff, limit=limit)

        deleted = await prune_in_batches(
            self._uow, prune, batch_size=policy.batch_size, max_batches=policy.max_batches
        )
        if deleted:
            _log.info(
                "retention deleted %d %s written before %s",
                deleted,
                self.what,
                cutoff.isoformat(),
                extra={"event": self.event, "count": deleted},
            )
        return deleted
