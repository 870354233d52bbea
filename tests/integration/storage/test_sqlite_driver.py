"""SQLite on the event loop (storage.sqlite_driver): writers of one engine take turns
without failing, a lock held by another process is waited for off the loop, and a turn
ends with its transaction however it ends."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sqlite_driver import WriteTurn

INSERT = text("INSERT INTO scheduler_leases (name, holder, expires_at) VALUES (:n, 'h', :at)")
COUNT = text("SELECT count(*) FROM scheduler_leases")
AT = "2026-03-10 12:00:00.000000"


async def test_writers_of_one_engine_take_turns(engine: AsyncEngine) -> None:
    """A second writer waits for the first one's commit (no 'database is locked'), and
    both writes land."""
    first_holds = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with engine.connect() as connection:
            await connection.execute(INSERT, {"n": "first", "at": AT})
            first_holds.set()
            await release_first.wait()
            await connection.commit()

    async def second() -> None:
        async with engine.connect() as connection:
            await connection.execute(INSERT, {"n": "second", "at": AT})
            await connection.commit()

    holder = asyncio.create_task(first())
    await first_holds.wait()
    waiter = asyncio.create_task(second())
    for _ in range(20):  # the waiter runs as far as it can: to its turn, where it waits
        await asyncio.sleep(0)
    assert not waiter.done()
    release_first.set()
    await asyncio.gather(holder, waiter)
    async with engine.connect() as connection:
        assert (await connection.execute(COUNT)).scalar_one() == 2


async def test_a_turn_ends_with_a_rolled_back_transaction(engine: AsyncEngine) -> None:
    """A writer that leaves without committing gives its turn back: the next one writes."""

    async def abandon() -> None:
        async with engine.connect() as connection:
            await connection.execute(INSERT, {"n": "abandoned", "at": AT})
            raise RuntimeError("the unit of work failed")

    with pytest.raises(RuntimeError):
        await abandon()
    async with engine.connect() as connection:
        await connection.execute(INSERT, {"n": "next", "at": AT})
        await connection.commit()
        assert (await connection.execute(COUNT)).scalar_one() == 1


async def test_another_process_lock_is_waited_for_off_the_loop(
    engine: AsyncEngine, db_path: Path
) -> None:
    """While another connection (another process) holds the write lock, a writer waits on
    a worker thread: the event loop goes on serving, and the write lands once the lock is
    released."""
    outsider = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        outsider.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with engine.connect() as connection:
                await connection.execute(INSERT, {"n": "patient", "at": AT})
                await connection.commit()

        writer = asyncio.create_task(write())
        turns = 0
        while turns < 50:  # the loop keeps turning while the writer waits
            await asyncio.sleep(0)
            turns += 1
        assert not writer.done()
        outsider.execute("ROLLBACK")
        await writer
    finally:
        outsider.close()
    async with engine.connect() as connection:
        assert (await connection.execute(COUNT)).scalar_one() == 1


async def test_waiting_too_long_for_a_turn_fails_as_sqlite_would() -> None:
    """A turn not given back within the timeout is 'database is locked', as SQLite's own
    busy timeout would answer."""
    turn = WriteTurn(timeout_s=0.0)
    await turn.take()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await turn.take()
    turn.give_back()
    await turn.take()
