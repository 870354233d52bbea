"""Hearing on PostgreSQL that a status transition or vehicle event was committed, by this
replica or any other: LISTEN/NOTIFY on a connection of its own.

Migration 0014 makes every statement that inserts into `status_transitions` or
`vehicle_events` notify channel `vehicle_gateway_feed`, with the table's name as payload.
NOTIFY is transactional: PostgreSQL delivers it when the inserting transaction commits and
never for one rolled back, so a notification announces a committed row (several of one
transaction for one table arrive as one).

`FeedNotifications` keeps one asyncpg connection outside the engine's pool (a connection
that LISTENs is held for good; taking it from the pool would shrink the pool), listens,
and calls `on_change[table]()` for each notification (the feeds' `Wakeup.ring`). It only
makes the feeds read sooner: their polls go on, so a notification missed while the
connection was down costs latency, never a row. When the connection ends it is made again
after `retry_s`, and once listening again every callback is called (what was committed in
between is not known). A table it does not know is ignored. LISTEN needs a session of its
own: through a proxy that pools by transaction (PgBouncer's transaction mode) nothing is
heard, and the feeds are back to their polls.

SQLite has no notifications: `listens_on(engine)` is false there, and the process that
commits wakes its own watchers (`storage.uow`'s commit observers), which on SQLite is the
only process writing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

CHANNEL = "vehicle_gateway_feed"
"""The channel migration 0014's triggers notify."""
TRANSITIONS = "status_transitions"
"""The payload of a notification of committed status transitions."""
EVENTS = "vehicle_events"
"""The payload of a notification of committed vehicle events."""
RETRY_S = 5.0
"""How long to wait before making a lost listening connection again."""
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0

_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")
"""Connect arguments of SQLAlchemy's asyncpg dialect that asyncpg itself does not take."""
_CONNECTION_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_log = logging.getLogger(__name__)


def listens_on(engine: AsyncEngine) -> bool:
    """Tell whether the engine's database notifies (PostgreSQL) or not (SQLite)."""
    return engine.dialect.name == "postgresql"


class FeedNotifications:
    """Listens for committed feed rows on the engine's PostgreSQL database while entered
    (`async with`), calling `on_change[table]()` for each notification."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        on_change: Mapping[str, Callable[[], None]],
        retry_s: float = RETRY_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not listens_on(engine):
            raise ValueError(f"{engine.dialect.name} has no notifications: only PostgreSQL")
        _, connect_args = engine.dialect.create_connect_args(engine.url)
        self._connect_args: dict[str, Any] = {
            key: value for key, value in connect_args.items() if key not in _SQLALCHEMY_ONLY
        }
        self._on_change = dict(on_change)
        self._retry_s = retry_s
        self._sleep = sleep
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        # Never the connect arguments: they hold the password.
        return f"FeedNotifications(channel={CHANNEL!r}, listening={self._listening})"

    @property
    def listening(self) -> bool:
        """Tell whether the connection is up and listening (a testing hook)."""
        return self._listening

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="feed-notifications")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        """Listen; when the connection is lost or cannot be made, wait and listen again."""
        while True:
            try:
                await self._listen()
            except _CONNECTION_LOST as error:
                _log.warning(
                    "feed notifications unavailable (%s); watchers fall back to polling, "
                    "retrying in %.0f s",
                    type(error).__name__,
                    self._retry_s,
                    extra={"event": "feed_notifications_lost", "error": type(error).__name__},
                )
            await self._sleep(self._retry_s)

    async def _listen(self) -> None:
        """Connect, LISTEN, and hand on notifications until the connection ends."""
        connection = await asyncpg.connect(timeout=CONNECT_TIMEOUT_S, **self._connect_args)
        ended = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: ended.set())
            await connection.add_listener(CHANNEL, self._heard)
            self._listening = True
            self._ring_all()  # anything committed while nobody listened
            await ended.wait()
            _log.warning(
                "feed notifications connection closed; retrying in %.0f s",
                self._retry_s,
                extra={"event": "feed_notifications_lost", "error": "closed"},
            )
        finally:
            self._listening = False
            await _close(connection)

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        """Call the callback of the table a notification names."""
        on_change = self._on_change.get(payload)
        if on_change is not None:
            on_change()

    def _ring_all(self) -> None:
        for on_change in self._on_change.values():
            on_change()


async def _close(connection: Any) -> None:
    """Close gracefully when it still can, else drop the socket."""
    if connection.is_closed():
        return
    try:
        await connection.close(timeout=CLOSE_TIMEOUT_S)
    except _CONNECTION_LOST:
        connection.terminate()
    except asyncio.CancelledError:
        connection.terminate()
        raise
