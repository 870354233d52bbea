"""The database engine and its schema migrations.

`create_engine(url)` returns an AsyncEngine set up for the gateway: on SQLite, WAL mode,
foreign keys, a busy timeout, owner-only files (the database is made 0600 before WAL is
turned on, so SQLite gives -wal and -shm the same mode; a directory it creates is 0700),
and `BEGIN IMMEDIATE` for every transaction, so a unit of
work takes the write lock before its first read and check-then-write sequences ("no active
rental, so disconnect") are serialised across connections and processes. On PostgreSQL the
same code relies on row locks (`SELECT … FOR UPDATE`) and compare-and-swap updates. On
both, a database error names its statement but never its parameters' values
(`hide_parameters`): what a failed write carried stays out of logs and error texts.

`migrate(engine)` upgrades the schema to the newest Alembic revision; the migration scripts
live in this package (storage/migrations) so they ship with it.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from storage import sqlite_driver
from storage.permissions import DIRECTORY_MODE, secure_file

DEFAULT_URL = "sqlite+aiosqlite:///var/gateway.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "vehicle_gateway_read_only"
"""The execution option of a reader unit of work's connection."""
MIGRATIONS = Path(__file__).parent / "migrations"


POOL_SIZE = 20
"""PostgreSQL connections an engine keeps open; up to POOL_OVERFLOW more are opened in a
burst and closed again. A cached read uses no connection, so this bounds what is in flight
on the database, not the calls a replica serves."""
POOL_OVERFLOW = 10


def create_engine(url: str = DEFAULT_URL) -> AsyncEngine:
    """Return an AsyncEngine for `url`; for a SQLite file, create its directory first."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(
            parsed, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, hide_parameters=True
        )
        event.listen(engine.sync_engine, "checkin", _note_checkin)
        event.listen(engine.sync_engine, "checkout", _ping_if_idle)
        return engine
    database = _database_file(parsed)
    if database is not None:
        _create_parent_directory(database)
    turn = sqlite_driver.WriteTurn(timeout_s=SQLITE_BUSY_TIMEOUT_MS / 1000)
    target = parsed.database or ":memory:"
    creator = functools.partial(
        sqlite_driver.connect,
        target,
        turn=turn,
        busy_ms=SQLITE_BUSY_TIMEOUT_MS,
        uri=target.startswith("file:"),
    )
    engine = create_async_engine(parsed, async_creator=creator, hide_parameters=True)
    configure = functools.partial(_configure_sqlite_connection, database=database)
    event.listen(engine.sync_engine, "connect", configure)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


class DatabaseMissing(Exception):
    """A command meant to read an existing database found none, could not reach it, or
    found it never migrated (the message says which; it never repeats the URL, which may
    hold a password)."""


async def open_existing(url: str) -> AsyncEngine:
    """Return an engine on an existing database at the newest schema, creating nothing
    (no directory, no file, no table): DatabaseMissing otherwise. For the CLI's reads."""
    parsed = make_url(url)
    path = _database_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"no gateway database at {path}")
    engine = create_engine(url)
    try:
        try:
            async with engine.connect() as connection:
                reader = await connection.execution_options(**{READ_ONLY_OPTION: True})
                revision = await reader.run_sync(_current_revision)
        except (OSError, OperationalError, InterfaceError) as error:
            cause = error.orig if isinstance(error, OperationalError | InterfaceError) else error
            first_line = (str(cause).strip().splitlines() or ["no detail"])[0]
            raise DatabaseMissing(
                f"cannot open the database: {type(cause).__name__}: {first_line}"
            ) from None
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if revision != head:
            found = "no gateway schema" if revision is None else f"schema revision {revision}"
            raise DatabaseMissing(
                f"the database holds {found}, not {head}: start `vehicle-gateway serve` "
                "once (it migrates the database)"
            )
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _current_revision(connection: Connection) -> str | None:
    """Return the Alembic revision the database is at (None: never migrated); writes nothing."""
    return MigrationContext.configure(connection).get_current_revision()


def _database_file(url: URL) -> Path | None:
    """Return the file of a SQLite database (None for in-memory and URI databases)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _create_parent_directory(database: Path) -> None:
    """Create the directory of a SQLite database file, owner-only (0700)."""
    missing = [p for p in (database.parent, *database.parent.parents) if not p.exists()]
    database.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    for created in missing:
        created.chmod(DIRECTORY_MODE)  # mkdir's mode is subject to the umask


def _configure_sqlite_connection(
    dbapi_connection: Any, _record: Any, *, database: Path | None
) -> None:
    """Set up each new SQLite connection: owner-only files, WAL, foreign keys (it is opened
    in autocommit mode, for our own BEGIN, with a busy timeout of 0: storage.sqlite_driver
    waits for locks off the event loop)."""
    if database is not None:
        # Opening made the file; before WAL, so SQLite gives -wal and -shm this mode too.
        for path in (database, *(Path(f"{database}{end}") for end in ("-wal", "-shm"))):
            secure_file(path)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


PING_AFTER_IDLE_S = 1.0
"""A pooled PostgreSQL connection idle longer than this is pinged when checked out."""
_CHECKED_IN_AT = "vehicle_gateway_checked_in_at"


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Remember when a connection went back to the pool (`_ping_if_idle` reads it)."""
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """Ping a connection checked out after more than PING_AFTER_IDLE_S in the pool (or
    never used), so one the server dropped meanwhile (a restart, a failover, an idle
    timeout) is replaced before a unit of work gets it: the pool retries the checkout on
    `DisconnectionError`. A connection back from work within that window is handed out
    without a round trip: SQLAlchemy's `pool_pre_ping` pinged every checkout, three round
    trips each (BEGIN, a statement, ROLLBACK), three times per command. A connection lost
    within the window fails its unit of work's first statement as a lost connection
    (UNAVAILABLE, retryable; `storage.transient`), and the pool discards it."""
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is not None and time.monotonic() - checked_in < PING_AFTER_IDLE_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise DisconnectionError("a pooled connection did not answer its ping") from error


def _begin_immediate(connection: Connection) -> None:
    """Start SQLite transactions holding the write lock, so that they never interleave;
    a reader's (READ_ONLY_OPTION) starts deferred, reading a snapshot beside writers.

    The statement goes to the driver's cursor, not through `exec_driver_sql` (whose
    execution machinery cost more than the statement): its error is raised as
    `exec_driver_sql` would raise it (`sqlalchemy.exc.OperationalError` for a lock)."""
    begin = (
        "BEGIN" if connection.get_execution_options().get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE"
    )
    cursor = connection.connection.cursor()
    try:
        cursor.execute(begin)
    except connection.dialect.loaded_dbapi.Error as error:
        dbapi_error = connection.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(begin, None, error, dbapi_error) from error
    finally:
        cursor.close()


MIGRATION_LOCK = 0x76675F6D6967
"""The PostgreSQL advisory lock key a migration holds ("vg_mig"): replicas starting at
once, or the `migrate-schema` command beside them, upgrade one after the other."""


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision` (the newest by default).

    On PostgreSQL the transaction first takes a transaction-level advisory lock, so that
    concurrent migrations (two replicas starting on an empty database) run one after the
    other: the second finds the schema at `revision` and does nothing. SQLite's
    `BEGIN IMMEDIATE` serialises them already.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade, revision)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """Return the Alembic revision the database behind `engine` is at (None: never
    migrated); writes nothing."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _upgrade(connection: Connection, revision: str) -> None:
    """Run Alembic's upgrade on an open synchronous connection."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic configuration for our migrations (and `url`, for the alembic CLI)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
