"""The history of connection status changes, in the `status_transitions` table.

Ids come from the database and increase, so a watcher can resume after the last id it saw.
How many transitions were added is kept in `written` until the unit of work commits, so
this process's watchers hear of them at once (see `storage.uow`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import ConnectionStatus, StatusTransition
from storage.schema import status_transitions

_transitions = status_transitions.c


class SqlTransitionRepository:
    """Status transitions, appended and read back by vehicle or by id."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.written = 0
        """Transitions added since the last commit (storage.uow tells its observer)."""

    async def add(self, transition: StatusTransition) -> StatusTransition:
        """Append a transition (any id it carries is ignored); return it with its new id."""
        statement = (
            insert(status_transitions)
            .values(
                vehicle_id=transition.vehicle_id,
                from_status=transition.from_status.value,
                to_status=transition.to_status.value,
                reason=transition.reason,
                at=transition.at,
            )
            .returning(status_transitions)
        )
        added = _to_transition((await self._connection.execute(statement)).one())
        self.written += 1
        return added

    async def for_vehicle(self, vehicle_id: str, *, limit: int) -> list[StatusTransition]:
        """Return a vehicle's most recent transitions, newest first."""
        query = (
            select(status_transitions)
            .where(_transitions.vehicle_id == vehicle_id)
            .order_by(_transitions.id.desc())
            .limit(max(limit, 0))
        )
        return [_to_transition(row) for row in await self._connection.execute(query)]

    async def after(self, after_id: int, *, limit: int) -> list[StatusTransition]:
        """Return transitions with an id above `after_id`, oldest first (for watchers)."""
        query = (
            select(status_transitions)
            .where(_transitions.id > after_id)
            .order_by(_transitions.id)
            .limit(max(limit, 0))
        )
        return [_to_transition(row) for row in await self._connection.execute(query)]

    async def latest_id(self) -> int:
        """Return the highest transition id recorded (0 when there is none)."""
        query = select(func.coalesce(func.max(_transitions.id), 0))
        latest: int = (await self._connection.execute(query)).scalar_one()
        return latest


def _to_transition(row: Row[Any]) -> StatusTransition:
    """Return the transition a row holds."""
    columns = row._mapping
    return StatusTransition(
        id=columns["id"],
        vehicle_id=columns["vehicle_id"],
        from_status=ConnectionStatus(columns["from_status"]),
        to_status=ConnectionStatus(columns["to_status"]),
        reason=columns["reason"],
        at=columns["at"],
    )
