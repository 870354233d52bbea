"""Command requests by idempotency key, with their outcome, in the `commands` table."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import CommandRecord, CommandState, command_action
from gateway.core.plain import command_error_from_json, command_error_to_json
from gateway.core.ports import Conflict
from storage.repositories._dialects import dialect_insert
from storage.repositories._direct import Columns, Direct
from storage.schema import commands


class SqlCommandRepository:
    """Commands by request id; also the audit trail of what was asked of each car."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, request_id: str) -> CommandRecord | None:
        """Return the command recorded under this request id."""
        row = (await _GET.run(self._connection, {"request_id": request_id})).one_or_none()
        return None if row is None else _to_record(row)

    async def add(self, record: CommandRecord) -> None:
        """Insert a command; Conflict if the request id exists."""
        values = {
            "request_id": record.request_id,
            "vehicle_id": record.vehicle_id,
            "action": record.action.value,
            "charge_limit_percent": record.charge_limit_percent,
            "created_at": record.created_at,
            **_outcome(record),
        }
        added = await _add(self._connection.dialect.name).run(self._connection, values)
        if added.rowcount == 0:
            raise Conflict(f"request {record.request_id!r} exists")

    async def update(self, record: CommandRecord) -> None:
        """Write the command's state, completion time and error; LookupError if unknown."""
        values = {"key": record.request_id, **_outcome(record)}
        result = await _UPDATE.run(self._connection, values)
        if result.rowcount == 0:
            raise LookupError(f"no command {record.request_id!r} to update")

    async def delete(self, request_id: str) -> None:
        """Forget a command that surely never reached the car, freeing its request id."""
        await self._connection.execute(delete(commands).where(commands.c.request_id == request_id))

    async def resolve(self, record: CommandRecord, *, was: CommandState) -> bool:
        """Write the command's outcome only if its state is still `was`; tell if it was."""
        statement = (
            update(commands)
            .where(commands.c.request_id == record.request_id, commands.c.state == was.value)
            .values(**_outcome(record))
        )
        result = await self._connection.execute(statement)
        return bool(result.rowcount)

    async def unresolved(
        self, *, sent_after: datetime, pending_before: datetime, limit: int
    ) -> list[CommandRecord]:
        """Return open outcomes, oldest first: OUTCOME_UNKNOWN commands created after
        `sent_after`, and PENDING ones created before `pending_before`."""
        state, created = commands.c.state, commands.c.created_at
        query = (
            select(commands)
            .where(
                or_(
                    and_(state == CommandState.OUTCOME_UNKNOWN.value, created > sent_after),
                    and_(state == CommandState.PENDING.value, created < pending_before),
                )
            )
            .order_by(created, commands.c.request_id)
            .limit(limit)
        )
        return [_to_record(row._mapping) for row in await self._connection.execute(query)]

    async def next_sent_at(
        self, vehicle_id: str, *, after: datetime, request_id: str
    ) -> datetime | None:
        """Return when the vehicle's first command other than `request_id` created at or
        after `after` was created (None: there is none)."""
        query = select(func.min(commands.c.created_at)).where(
            commands.c.vehicle_id == vehicle_id,
            commands.c.created_at >= after,
            commands.c.request_id != request_id,
        )
        found: datetime | None = (await self._connection.execute(query)).scalar_one_or_none()
        return found


_GET = Direct(select(commands).where(commands.c.request_id == bindparam("request_id")))
_UPDATE = Direct(update(commands).where(commands.c.request_id == bindparam("key")))
"""Built once, run with parameters (the SET columns are the parameters but `key`)."""


@functools.cache
def _add(dialect: str) -> Direct:
    """The claim of a request id in `dialect`, built once: an INSERT that changes no row
    when the id exists (no failed statement, so no savepoint is needed on PostgreSQL)."""
    return Direct(dialect_insert(dialect, commands).on_conflict_do_nothing())


def _outcome(record: CommandRecord) -> dict[str, Any]:
    """Return the columns that say how a command ended."""
    return {
        "state": record.state.value,
        "completed_at": record.completed_at,
        "error": None if record.error is None else command_error_to_json(record.error),
    }


def _to_record(columns: Columns) -> CommandRecord:
    """Return the command a row's columns hold."""
    error = columns["error"]
    return CommandRecord(
        request_id=columns["request_id"],
        vehicle_id=columns["vehicle_id"],
        action=command_action(columns["action"]),
        charge_limit_percent=columns["charge_limit_percent"],
        state=CommandState(columns["state"]),
        created_at=columns["created_at"],
        completed_at=columns["completed_at"],
        error=None if error is None else command_error_from_json(error),
    )
