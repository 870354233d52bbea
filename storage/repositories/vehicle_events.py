"""Vehicle events in the `vehicle_events` table (the outbox WatchVehicleEvents streams),
the low-level latches in `vehicle_event_latches`, and how far retention has pruned, in
`vehicle_event_horizon`.

Ids come from the database and increase, so a stream resumes after the last id it saw.
Retention deletes a prefix of the ids (never a row after one it keeps) and moves the
horizon in the same transaction, so "every id up to the horizon is gone, every later one
is kept" always holds. The kinds of the events added are kept in `written` until the unit
of work commits, for the metric of events written (see `storage.uow`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.plain import event_detail_from_json, event_detail_to_json
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind
from storage.repositories._dialects import conflict_insert
from storage.repositories._direct import Columns, Direct
from storage.schema import vehicle_event_horizon, vehicle_event_latches, vehicle_events

_events = vehicle_events.c
_latches = vehicle_event_latches.c
_horizon = vehicle_event_horizon.c
_ADD = Direct(insert(vehicle_events).returning(vehicle_events))
"""Built once, run with the event's columns as parameters."""
HORIZON = "vehicle_events"
"""The horizon row's name."""


class SqlVehicleEventRepository:
    """Vehicle events appended and read back by id; latches; the retention horizon."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.written: list[VehicleEventKind] = []
        """The kinds of the events added since the last commit (storage.uow counts them)."""

    async def add(self, event: VehicleEvent) -> VehicleEvent:
        """Append an event (any id it carries is ignored); return it with its new id."""
        values = {
            "vehicle_id": event.vehicle_id,
            "kind": event.kind.value,
            "at": event.at,
            "rental_id": event.rental_id,
            "description": event.description,
            "detail": event_detail_to_json(event.detail),
        }
        row = (await _ADD.run(self._connection, values)).one_or_none()
        assert row is not None  # an INSERT … RETURNING returns its row
        added = _to_event(row)
        self.written.append(added.kind)
        return added

    async def after(self, after_id: int, *, limit: int) -> list[VehicleEvent]:
        """Return events with an id above `after_id`, oldest first (for streams)."""
        query = (
            select(vehicle_events)
            .where(_events.id > after_id)
            .order_by(_events.id)
            .limit(max(limit, 0))
        )
        return [_to_event(row._mapping) for row in await self._connection.execute(query)]

    async def latest_id(self) -> int:
        """Return the highest event id recorded (0 when there is none)."""
        query = select(func.coalesce(func.max(_events.id), 0))
        latest: int = (await self._connection.execute(query)).scalar_one()
        return latest

    async def pruned_through(self) -> int:
        """Return the highest id retention has deleted (0: nothing yet)."""
        query = select(_horizon.pruned_through).where(_horizon.name == HORIZON)
        found: int | None = (await self._connection.execute(query)).scalar_one_or_none()
        return found or 0

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete the oldest events (at most `limit`) up to the first one written at or
        after `before`, and move the horizon to the last id deleted; return how many."""
        oldest = select(_events.id, _events.at).order_by(_events.id).limit(max(limit, 0))
        through: int | None = None
        for row in await self._connection.execute(oldest):
            if row.at >= before:
                break
            through = row.id
        if through is None:
            return 0
        result = await self._connection.execute(delete(vehicle_events).where(_events.id <= through))
        statement = conflict_insert(self._connection, vehicle_event_horizon).values(
            name=HORIZON, pruned_through=through, pruned_at=before
        )
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_horizon.name],
                set_={"pruned_through": through, "pruned_at": before},
                where=_horizon.pruned_through < through,  # never back (two passes at once)
            )
        )
        return int(result.rowcount or 0)

    async def latch(self, vehicle_id: str, kind: VehicleEventKind, *, at: datetime) -> bool:
        """Set the latch; True only for the statement that set it (ON CONFLICT DO NOTHING)."""
        statement = (
            conflict_insert(self._connection, vehicle_event_latches)
            .values(vehicle_id=vehicle_id, kind=kind.value, latched_at=at)
            .on_conflict_do_nothing(index_elements=[_latches.vehicle_id, _latches.kind])
            .returning(_latches.vehicle_id)
        )
        return (await self._connection.execute(statement)).one_or_none() is not None

    async def unlatch(self, vehicle_id: str, kind: VehicleEventKind) -> None:
        """Clear the latch (none set is fine)."""
        await self._connection.execute(
            delete(vehicle_event_latches).where(
                _latches.vehicle_id == vehicle_id, _latches.kind == kind.value
            )
        )


def _to_event(columns: Columns) -> VehicleEvent:
    """Return the event a row's columns hold."""
    kind = VehicleEventKind(columns["kind"])
    return VehicleEvent(
        id=columns["id"],
        vehicle_id=columns["vehicle_id"],
        kind=kind,
        at=columns["at"],
        rental_id=columns["rental_id"],
        description=columns["description"],
        detail=event_detail_from_json(kind, columns["detail"]),
    )
