"""SQLite for SQLAlchemy's asyncio engine without a thread hop per statement.

SQLAlchemy's `sqlite+aiosqlite` dialect drives its connection through an object shaped like
an aiosqlite connection. aiosqlite runs every call (each statement, each fetch, each cursor
made or closed) on a worker thread and wakes the event loop for its answer: a dozen round
trips between threads for a two-statement transaction, each costing a wake-up of both
sides and a turn at the GIL. That was most of what a command cost the gateway.

`LoopConnection` is that object over the standard `sqlite3` module, running statements on
the event loop itself. A statement on a local database in WAL mode takes microseconds and
SQLite releases the GIL while it steps, so running it inline is cheaper than handing it
to a thread. Two things may take long, and they still leave the loop:

- **Commit**: the fsync of the write-ahead log runs on a worker thread, one hop per
  transaction, so a slow disk delays the transaction's caller, not every other call.
- **Waiting for the write lock**: every connection has a busy timeout of 0, so a statement
  never blocks the loop on another writer. Writers of this process wait their turn on
  `WriteTurn`, an asyncio lock taken by `BEGIN IMMEDIATE` and released when the
  transaction ends (commit, rollback, close); a statement refused as busy anyway (another
  process holds the lock: a CLI command, a second engine) is run again on a worker thread
  with the full busy timeout, as aiosqlite would have run it.

Durability is SQLite's own: WAL with `synchronous=FULL` (the default), each commit synced
before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

BEGIN_WRITE = "BEGIN IMMEDIATE"
"""The statement that opens a writing transaction (see storage.database)."""


class WriteTurn:
    """Whose turn it is to write to one database file, among this process's connections
    of one engine: taken by `BEGIN IMMEDIATE`, released when that transaction ends. Waiting
    longer than `timeout_s` fails as SQLite's own busy timeout would."""

    def __init__(self, *, timeout_s: float) -> None:
        self._lock = asyncio.Lock()
        self._timeout_s = timeout_s

    async def take(self) -> None:
        """Wait for the turn; sqlite3.OperationalError('database is locked') after the
        timeout."""
        if not self._lock.locked():  # free: taken at once, without a timer
            await self._lock.acquire()
            return
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout=self._timeout_s)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    def give_back(self) -> None:
        """End the turn (the holder's transaction ended)."""
        self._lock.release()


def _busy(error: sqlite3.OperationalError) -> bool:
    """Tell whether SQLite refused a statement because another connection holds a lock."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error)


class LoopCursor:
    """An aiosqlite-shaped cursor over a sqlite3 cursor (what SQLAlchemy's adapter uses)."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: LoopConnection) -> None:
        self._connection = connection
        self._cursor = connection.sqlite.cursor()

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> LoopCursor:
        """Run one statement; `BEGIN IMMEDIATE` first waits for this process's write turn."""
        if operation == BEGIN_WRITE:
            await self._connection.begin_write(self._cursor)
        else:
            await self._connection.run(self._cursor.execute, operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Sequence[Any]]) -> LoopCursor:
        await self._connection.run(self._cursor.executemany, operation, list(parameters))
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class LoopConnection:
    """An aiosqlite-shaped connection running sqlite3 on the event loop (see the module)."""

    def __init__(self, sqlite: sqlite3.Connection, turn: WriteTurn, *, busy_ms: int) -> None:
        self.sqlite = sqlite
        self._connection: sqlite3.Connection | None = sqlite
        """Set while open (SQLAlchemy's adapter checks it before commit and rollback)."""
        self._turn = turn
        self._busy_ms = busy_ms
        self._holds_turn = False

    def __repr__(self) -> str:
        return f"LoopConnection(open={self._connection is not None})"

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    def cursor(self) -> LoopCursor:
        return LoopCursor(self)

    async def begin_write(self, cursor: sqlite3.Cursor) -> None:
        """Open a writing transaction once this process's turn to write has come."""
        await self._turn.take()
        self._holds_turn = True
        try:
            await self.run(cursor.execute, BEGIN_WRITE, ())
        except BaseException:
            self._end_turn()
            raise

    async def run(self, step: Callable[..., T], *args: Any) -> T:
        """Run a statement inline; if another process's lock refuses it, again on a worker
        thread that waits up to the busy timeout."""
        try:
            return step(*args)
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        return await asyncio.to_thread(self._waiting, step, *args)

    def _waiting(self, step: Callable[..., T], *args: Any) -> T:
        """Run `step` with the busy timeout on (on a worker thread)."""
        self.sqlite.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            return step(*args)
        finally:
            self.sqlite.execute("PRAGMA busy_timeout = 0")

    async def commit(self) -> None:
        """Commit, syncing the log on a worker thread; the write turn ends either way."""
        try:
            if self.sqlite.in_transaction:
                await _uninterrupted(asyncio.to_thread(self.sqlite.commit))
        finally:
            self._end_turn()

    async def rollback(self) -> None:
        try:
            self.sqlite.rollback()
        finally:
            self._end_turn()

    async def close(self) -> None:
        try:
            self.stop()
        finally:
            self._end_turn()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self.sqlite.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.sqlite.create_function(*args, **kwargs)

    def _end_turn(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            self._turn.give_back()


async def _uninterrupted(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile (then re-raise the
    cancellation): a commit on its way in a worker thread cannot be called back, and the
    connection must not be used again before it ends."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        raise


async def connect(
    database: str, *, turn: WriteTurn, busy_ms: int, uri: bool = False
) -> LoopConnection:
    """Open `database` in autocommit mode (the engine issues BEGIN itself) with a busy
    timeout of 0 (see the module); usable from the worker threads that commit."""
    sqlite = sqlite3.connect(
        database, timeout=0, isolation_level=None, check_same_thread=False, uri=uri
    )
    return LoopConnection(sqlite, turn, busy_ms=busy_ms)
