"""Billed Smartcar requests per vehicle and calendar month, in the `request_budget` table."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import BudgetCharge
from storage.repositories._dialects import dialect_insert
from storage.repositories._direct import Direct
from storage.schema import request_budget

_budget = request_budget.c


class SqlBudgetRepository:
    """Counters by (vehicle, `YYYY-MM`); adding is one atomic upsert, safe across processes."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, vehicle_id: str, month: str, requests: int) -> int:
        """Add billed requests atomically; return the month's new total."""
        charged = await self.charge(vehicle_id, month, requests, limit=None)
        return charged.billed

    async def charge(
        self, vehicle_id: str, month: str, requests: int, *, limit: int | None
    ) -> BudgetCharge:
        """Add billed requests unless the month's total would pass `limit`: one upsert
        whose update applies only below the limit (the row lock it takes makes concurrent
        charges see each other's totals), so what it returns is what was counted."""
        if limit is not None and requests > limit:  # a first insert would pass it alone
            return await self._refused(vehicle_id, month)
        statement = _charge(self._connection.dialect.name, capped=limit is not None)
        values = {"vehicle_id": vehicle_id, "month": month, "billed": requests}
        if limit is not None:
            values["cap"] = limit
        row = (await statement.run(self._connection, values)).one_or_none()
        if row is None:
            return await self._refused(vehicle_id, month)
        return BudgetCharge(
            accepted=True, billed=row["billed"], warned=row["warned_at"] is not None
        )

    async def mark_warned(self, vehicle_id: str, month: str, *, at: datetime) -> bool:
        """Mark the month warned; True only for the statement that changed it."""
        statement = (
            update(request_budget)
            .where(
                _budget.vehicle_id == vehicle_id,
                _budget.month == month,
                _budget.warned_at.is_(None),
            )
            .values(warned_at=at)
        )
        return (await self._connection.execute(statement)).rowcount == 1

    async def used(self, vehicle_id: str, month: str) -> int:
        """Return the billed requests of the month so far (0 if none)."""
        used = await _USED.run(self._connection, {"vehicle_id": vehicle_id, "month": month})
        row = used.one_or_none()
        return int(row["billed"]) if row else 0

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

    async def _refused(self, vehicle_id: str, month: str) -> BudgetCharge:
        """The answer to a refused charge: the month as it stands."""
        query = select(_budget.billed, _budget.warned_at).where(
            _budget.vehicle_id == vehicle_id, _budget.month == month
        )
        row = (await self._connection.execute(query)).one_or_none()
        if row is None:
            return BudgetCharge(accepted=False, billed=0, warned=False)
        return BudgetCharge(accepted=False, billed=row.billed, warned=row.warned_at is not None)


_USED = Direct(
    select(_budget.billed).where(
        _budget.vehicle_id == bindparam("vehicle_id"), _budget.month == bindparam("month")
    )
)
"""Built once, run with the vehicle and the month."""


@functools.cache
def _charge(dialect: str, *, capped: bool) -> Direct:
    """The charge upsert in `dialect`, built once: its update applies only while the total
    stays within the `cap` parameter (when `capped`)."""
    statement = dialect_insert(dialect, request_budget)
    added = _budget.billed + statement.excluded.billed
    return Direct(
        statement.on_conflict_do_update(
            index_elements=[_budget.vehicle_id, _budget.month],
            set_={"billed": added},
            where=added <= bindparam("cap") if capped else None,
        ).returning(_budget.billed, _budget.warned_at)
    )
