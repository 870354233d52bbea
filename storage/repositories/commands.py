"""Lock/Unlock requests by idempotency key, with their outcome, in the `commands` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import CommandRecord, CommandState, LockAction
from storage.codec import command_error_from_json, command_error_to_json
from storage.repositories._conflicts import execute_or_conflict
from storage.schema import commands


class SqlCommandRepository:
    """Commands by request id; also the audit trail of what was asked of each car."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, request_id: str) -> CommandRecord | None:
        """Return the command recorded under this request id."""
        query = select(commands).where(commands.c.request_id == request_id)
        row = (await self._connection.execute(query)).one_or_none()
        return None if row is None else _to_record(row)

    async def add(self, record: CommandRecord) -> None:
        """Insert a command; Conflict if the request id exists."""
        statement = insert(commands).values(
            request_id=record.request_id,
            vehicle_id=record.vehicle_id,
            action=record.action.value,
            created_at=record.created_at,
            **_outcome(record),
        )
        await execute_or_conflict(
            self._connection, statement, conflict=f"request {record.request_id!r} exists"
        )

    async def update(self, record: CommandRecord) -> None:
        """Write the command's state, completion time and error; LookupError if unknown."""
        statement = (
            update(commands)
            .where(commands.c.request_id == record.request_id)
            .values(**_outcome(record))
        )
        result = await self._connection.execute(statement)
        if result.rowcount == 0:
            raise LookupError(f"no command {record.request_id!r} to update")

    async def delete(self, request_id: str) -> None:
        """Forget a command that surely never reached the car, freeing its request id."""
        await self._connection.execute(delete(commands).where(commands.c.request_id == request_id))


def _outcome(record: CommandRecord) -> dict[str, Any]:
    """Return the columns that say how a command ended."""
    return {
        "state": record.state.value,
        "completed_at": record.completed_at,
        "error": None if record.error is None else command_error_to_json(record.error),
    }


def _to_record(row: Row[Any]) -> CommandRecord:
    """Return the command a row holds."""
    columns = row._mapping
    error = columns["error"]
    return CommandRecord(
        request_id=columns["request_id"],
        vehicle_id=columns["vehicle_id"],
        action=LockAction(columns["action"]),
        state=CommandState(columns["state"]),
        created_at=columns["created_at"],
        completed_at=columns["completed_at"],
        error=None if error is None else command_error_from_json(error),
    )
