"""Vehicle events are kept for a while, not forever: `EventRetention` deletes the ones
written longer ago than the retention (VG_EVENT_RETENTION_DAYS, 7 days by default), oldest
first, in bounded batches, as a leased background job on one replica (like the audit
trail's retention).

Storage deletes a prefix of the ids and records how far it went, so a stream that asks to
resume before it is refused (`gateway.core.event_feed`), never silently moved on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.retention import Retention


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRetentionPolicy:
    """How long vehicle events are kept (None: forever), and how much one pass deletes:
    `batch_size` events per transaction, at most `max_batches` transactions."""

    retention: timedelta | None = timedelta(days=7)
    batch_size: int = 1000
    max_batches: int = 100


class EventRetention(Retention):
    """Deletes vehicle events written longer ago than the retention."""

    what = "vehicle events"
    event = "vehicle_events_pruned"

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: EventRetentionPolicy = EventRetentionPolicy(),
    ) -> None:
        super().__init__(uow=uow, clock=clock, policy=policy)

    async def _prune(self, uow: UnitOfWork, *, before: datetime, limit: int) -> int:
        return await uow.events.prune(before=before, limit=limit)
