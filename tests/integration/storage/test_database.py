"""The engine's SQLite setup: directory, WAL, foreign keys, write-locking transactions, UTC."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.database import DEFAULT_URL, create_engine
from storage.schema import UTCDateTime
from tests.integration.storage.builders import BERLIN_SUMMER, T0


def test_the_default_database_lives_under_var() -> None:
    """Without configuration the gateway keeps its SQLite file in ./var."""
    assert DEFAULT_URL == "sqlite+aiosqlite:///var/gateway.db"


async def test_create_engine_makes_the_database_directory(tmp_path: Path) -> None:
    """The directory of a SQLite file is created with the engine."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'g.db'}")
    await engine.dispose()
    assert (tmp_path / "a" / "b").is_dir()


async def test_connections_use_wal_foreign_keys_and_never_block_on_locks(
    engine: AsyncEngine,
) -> None:
    """Every connection runs in WAL mode and enforces foreign keys; its busy timeout is 0,
    because locks are waited for off the event loop (storage.sqlite_driver)."""
    async with engine.connect() as connection:
        pragmas = [
            (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 0]


async def test_a_transaction_takes_the_write_lock_at_its_first_read(
    engine: AsyncEngine, db_path: Path
) -> None:
    """A transaction that has only read already keeps other writers out (BEGIN IMMEDIATE)."""
    outsider = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                outsider.execute("BEGIN IMMEDIATE")
            await connection.rollback()
        outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()


def test_utc_datetime_converts_to_utc_and_back() -> None:
    """Aware times are stored as UTC instants and always read back aware, in UTC."""
    column = UTCDateTime()
    sqlite_dialect = sqlite.dialect()
    bound = column.process_bind_param(T0.astimezone(BERLIN_SUMMER), sqlite_dialect)
    assert bound == T0.replace(tzinfo=None)
    restored = column.process_result_value(bound, sqlite_dialect)
    assert restored == T0
    assert restored is not None
    assert restored.tzinfo == UTC
    assert column.process_result_value(T0.astimezone(BERLIN_SUMMER), sqlite_dialect) == T0
    assert column.process_bind_param(None, sqlite_dialect) is None
    postgres_bound = column.process_bind_param(T0.astimezone(BERLIN_SUMMER), postgresql.dialect())  # type: ignore[no-untyped-call]
    assert postgres_bound == T0
    assert postgres_bound is not None
    assert postgres_bound.tzinfo == UTC


def test_utc_datetime_refuses_naive_times() -> None:
    """A naive time has no instant, so storing one is a ValueError."""
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sqlite.dialect())
