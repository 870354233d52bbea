"""The event feed behind WatchVehicleEvents: vehicle events as the database records them,
filtered by vehicle and kind, resumable by id, on any replica.

It is `gateway.core.watch.Feed` over the `vehicle_events` table, so it keeps every
guarantee of WatchVehicles: one poller per process, fanned out; ids in order, none missed
or doubled across a resume; a stop at holes in the ids; a slow caller ended with
`WatchFellBehind`; at most `streams_per_caller` streams per caller.

Retention (`gateway.core.event_retention`) deletes old events. A stream asked to resume
after an id whose successors are already deleted would miss them, so it fails instead with
`EventsPruned`, naming where the oldest events kept begin. Every page the feed reads is
checked against how far retention has pruned, read after the page in the same
transaction: a page read before a prune committed is whole, and one read after it is
refused, so no pruned event is ever passed over in silence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from gateway.core.errors import EventsPruned
from gateway.core.ports import UnitOfWork
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind
from gateway.core.watch import Feed, FeedSource, for_vehicles


class _Events:
    """The vehicle_events table, as the WatchVehicleEvents feed reads it."""

    rpc = "WatchVehicleEvents"

    async def latest_id(self, uow: UnitOfWork) -> int:
        """Return the highest event id recorded."""
        return await uow.events.latest_id()

    async def after(self, uow: UnitOfWork, after_id: int, *, limit: int) -> Sequence[VehicleEvent]:
        """Return events after `after_id`, oldest first; EventsPruned when retention has
        deleted some of them."""
        page = await uow.events.after(after_id, limit=limit)
        pruned = await uow.events.pruned_through()
        if after_id < pruned:
            raise EventsPruned(
                f"events up to id {pruned} were deleted by retention "
                f"(VG_EVENT_RETENTION_DAYS); resume with after_id={pruned} to get the oldest "
                f"events kept, or without after_id for new events only",
                metadata={"pruned_through_id": str(pruned), "resume_after_id": str(pruned)},
            )
        return page


class EventFeed(Feed[VehicleEvent]):
    """Streams vehicle events after a cursor to every open stream, from one poller."""

    def _default_source(self) -> FeedSource[VehicleEvent]:
        return _Events()

    def events(
        self,
        *,
        vehicle_ids: frozenset[str],
        kinds: frozenset[VehicleEventKind],
        after_id: int | None,
        caller: str = "anonymous",
    ) -> AsyncIterator[VehicleEvent]:
        """Yield events after `after_id` (None: from now on) of the given vehicles and kinds
        (all when empty), until the caller stops; raise TooManyStreams over the cap and
        EventsPruned when `after_id` lies before what retention kept."""
        of_vehicle = for_vehicles(vehicle_ids)

        def accepts(event: VehicleEvent) -> bool:
            return of_vehicle(event) and (not kinds or event.kind in kinds)

        return self.stream(accepts=accepts, after_id=after_id, caller=caller)
