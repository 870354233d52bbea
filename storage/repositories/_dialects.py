"""INSERT … ON CONFLICT, which SQLite (3.35+) and PostgreSQL both speak, each in its own construct.

SQLAlchemy has no dialect-neutral upsert: `sqlite.insert` and `postgresql.insert` build the
same statement with the same methods (`on_conflict_do_update`, `on_conflict_do_nothing`,
`excluded`), so the repositories pick one here by the connection's dialect and write the
rest once. A statement on a hot path is built once per dialect (`functools.cache` on its
builder) and run with parameters: building one (its `excluded` alias above all) costs
more than running it.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

ConflictInsert = sqlite.Insert | postgresql.Insert
"""An INSERT that can say what to do ON CONFLICT."""


def conflict_insert(connection: AsyncConnection, table: Table) -> ConflictInsert:
    """Return an INSERT into `table` in the dialect of `connection`, ready for ON CONFLICT."""
    return dialect_insert(connection.dialect.name, table)


def dialect_insert(dialect: str, table: Table) -> ConflictInsert:
    """Return an INSERT into `table` in `dialect` (by name), ready for ON CONFLICT."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no INSERT … ON CONFLICT for the {dialect} dialect")
