"""Vehicle events are kept for a while, not forever: `EventRetention` deletes the ones
written longer ago than the retention (VG_EVENT_RETENTION_DAYS, 7 days by default), oldest
first, in bounded batches, as a leased background job on one replica (like the audit
trail's retention).

Storage deletes a prefix of the ids and records how far it went, so a stream that asks to
resume before it is refused (`gateway.core.event_feed`), never silently moved on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.retention import prune_in_batches

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRetentionPolicy:
    """How long vehicle events are kept (None: forever), and how much one pass deletes:
    `batch_size` events per transaction, at most `max_batches` transactions."""

    retention: timedelta | None = timedelta(days=7)
    batch_size: int = 1000
    max_batches: int = 100


class EventRetention:
    """Deletes vehicle events written longer ago than the retention."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: EventRetentionPolicy = EventRetentionPolicy(),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def run_once(self) -> int:
        """Delete expired events, oldest first; return how many were deleted."""
        policy = self._policy
        if policy.retention is None:
            return 0
        cutoff = self._clock.now() - policy.retention

        async def prune(uow: UnitOfWork, limit: int) -> int:
            return await uow.events.prune(before=cutoff, limit=limit)

        deleted = await prune_in_batches(
            self._uow, prune, batch_size=policy.batch_size, max_batches=policy.max_batches
        )
        if deleted:
            _log.info(
                "event retention deleted %d vehicle events written before %s",
                deleted,
                cutoff.isoformat(),
                extra={"event": "vehicle_events_pruned", "count": deleted},
            )
        return deleted
