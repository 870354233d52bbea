"""Unique-key violations, turned into the core's `Conflict` without spoiling the transaction.

On PostgreSQL each write that may collide runs inside a SAVEPOINT: PostgreSQL aborts the
whole transaction on a failed statement, and rolling back to the savepoint keeps the unit
of work usable after a Conflict. SQLite undoes only the failed statement by itself (its
default ON CONFLICT ABORT), so there the write runs bare and saves two round trips to
the database thread. Other integrity errors (a foreign key to a missing row) are bugs,
and propagate unchanged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from gateway.core.ports import Conflict

_UNIQUE_SQLSTATE = "23505"
_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


async def execute_or_conflict(
    connection: AsyncConnection,
    statement: Executable,
    parameters: dict[str, Any] | None = None,
    *,
    conflict: str,
) -> CursorResult[Any]:
    """Execute a write (with `parameters`, for a statement built once); a unique-key
    violation raises `Conflict(conflict)` instead."""
    try:
        if connection.dialect.name == "sqlite":
            return await connection.execute(statement, parameters)
        async with connection.begin_nested():
            return await connection.execute(statement, parameters)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict(conflict) from exc


def is_unique_violation(error: IntegrityError) -> bool:
    """Tell a unique or primary key violation from other integrity errors, on any driver."""
    original = error.orig
    if _UNIQUE_SQLSTATE in (getattr(original, "sqlstate", None), getattr(original, "pgcode", None)):
        return True
    if getattr(original, "sqlite_errorname", None) in _SQLITE_UNIQUE:
        return True
    return "UNIQUE constraint failed" in str(original)
