"""Billed Smartcar requests per vehicle and calendar month, in the `request_budget` table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.repositories._dialects import conflict_insert
from storage.schema import request_budget

_budget = request_budget.c


class SqlBudgetRepository:
    """Counters by (vehicle, `YYYY-MM`); adding is one atomic upsert, safe across processes."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, vehicle_id: str, month: str, requests: int) -> int:
        """Add billed requests atomically; return the month's new total."""
        statement = conflict_insert(self._connection, request_budget).values(
            vehicle_id=vehicle_id, month=month, billed=requests
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_budget.vehicle_id, _budget.month],
            set_={"billed": _budget.billed + statement.excluded.billed},
        )
        total: int = (
            await self._connection.execute(statement.returning(_budget.billed))
        ).scalar_one()
        return total

    async def used(self, vehicle_id: str, month: str) -> int:
        """Return the billed requests of the month so far (0 if none)."""
        query = select(_budget.billed).where(
            _budget.vehicle_id == vehicle_id, _budget.month == month
        )
        billed: int | None = (await self._connection.execute(query)).scalar_one_or_none()
        return billed or 0

    async def used_by(self, vehicle_ids: Sequence[str], month: str) -> dict[str, int]:
        """Return the month's billed requests of each of `vehicle_ids` (0 if none)."""
        used = dict.fromkeys(vehicle_ids, 0)
        if not used:
            return used
        query = select(_budget.vehicle_id, _budget.billed).where(
            _budget.vehicle_id.in_(list(used)), _budget.month == month
        )
        for vehicle_id, billed in await self._connection.execute(query):
            used[vehicle_id] = billed
        return used
