"""Deleting what has outlived its retention, in bounded batches: the loop the audit trail's
and the vehicle events' retention jobs share (each a leased background job, run on one
replica)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.core.ports import UnitOfWork, UnitOfWorkFactory

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
