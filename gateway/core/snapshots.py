"""What reads answered from cache know of each vehicle, kept in step with the database.

A cached read needs the vehicle only to know it exists and what the owner granted. Reading
its row on every call would cost a query per read, however hot the cache; a copy kept for a
fixed time would cost one per vehicle per period, which at 100,000 vehicles is the same.
So only the granted permissions are kept (one shared set object for every vehicle granted
the same, so 100,000 vehicles cost little more than their ids), until the database says
the vehicle changed: at most every
`sync_interval`, one query asks for the rows changed since the last look (their
`updated_at`, stamped by the database), and the copies of those are replaced. The cost is
one query per interval and per change, whatever the fleet's size, and a copy is never more
than about one interval behind, on whichever replica the change was made.

Bounded like the telemetry cache (`gateway.core.cache`): at most `size` vehicles are
known, the least recently used forgotten past it, so memory follows the vehicles in use and
not the fleet. A forgotten vehicle is simply read again on its next use, as a vehicle never
seen is.

Timestamps come from the database's clock on both sides of the comparison, so replicas'
clocks do not matter. A change is stamped when its transaction starts but seen when it
commits; looking back `overlap` further than the last look covers transactions shorter
than that.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta

from gateway.core.model import Vehicle
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.vehicles import require_vehicle


class VehicleSnapshots:
    """The permissions cached reads judge vehicles by, for at most `size` vehicles (the
    least recently used forgotten past it); one change query per `sync_interval`."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        sync_interval: timedelta = timedelta(seconds=2),
        overlap: timedelta = timedelta(seconds=10),
        size: int = 100_000,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._interval = sync_interval
        self._overlap = overlap
        self._size = max(1, size)
        self._granted: OrderedDict[str, frozenset[str]] = OrderedDict()
        """What each known vehicle grants, least recently used first."""
        self._shared_sets: dict[frozenset[str], frozenset[str]] = {}
        self._since: datetime | None = None
        self._next_sync: datetime | None = None
        self._sync_lock = asyncio.Lock()

    def __len__(self) -> int:
        """How many vehicles are known."""
        return len(self._granted)

    def permissions(self, vehicle_id: str) -> frozenset[str] | None:
        """What the owner granted for a vehicle, if it is known (call `sync` first)."""
        granted = self._granted.get(vehicle_id)
        if granted is not None:
            self._granted.move_to_end(vehicle_id)
        return granted

    async def load(self, uow: UnitOfWork, vehicle_id: str) -> Vehicle:
        """Read the vehicle in `uow` (NotFound if it does not exist) and keep what it grants."""
        vehicle = await require_vehicle(uow, vehicle_id)
        self._keep(vehicle)
        return vehicle

    def _keep(self, vehicle: Vehicle) -> None:
        """Keep a vehicle just read as the most recently used."""
        self._update(vehicle)
        self._granted.move_to_end(vehicle.id)
        if len(self._granted) > self._size:
            self._granted.popitem(last=False)

    def _update(self, vehicle: Vehicle) -> None:
        """Replace a known vehicle's copy where it stands (a change is not a use)."""
        self._granted[vehicle.id] = self._shared_sets.setdefault(
            vehicle.permissions, vehicle.permissions
        )

    async def sync(self) -> None:
        """Replace the copies of vehicles changed since the last look, if it is time."""
        if self._next_sync is not None and self._clock.now() < self._next_sync:
            return
        async with self._sync_lock:
            if self._next_sync is not None and self._clock.now() < self._next_sync:
                return
            async with self._uow.reader() as uow:
                database_now, changed = await uow.vehicles.changed_since(self._since)
            for vehicle in changed:
                if vehicle.id in self._granted:
                    self._update(vehicle)
            self._since = database_now - self._overlap
            self._next_sync = self._clock.now() + self._interval
