"""The feeds behind WatchVehicles and WatchVehicleEvents: rows of one table, as the database
records them, streamed to every open stream after a cursor.

`Feed` is the machinery, over a `FeedSource` (a table read in id order): `StatusFeed`
streams the status transitions (WatchVehicles), `gateway.core.event_feed.EventFeed` the
vehicle events (WatchVehicleEvents). Both keep the same guarantees:

The database is the arbiter, so a watcher on one replica sees changes made by any other:
the feed reads its table after a cursor, in short transactions, and waits
`poll_interval_s` when it has caught up, or less: its `Wakeup` rings when a row was
committed (by this process's units of work, or by another replica as the database tells
it: `storage.notifications`), and the poller reads at once. A wakeup only makes the next
read come sooner; what is delivered, and in which order, is decided by the reads alone, so
a lost or doubled ring costs latency (up to one poll interval) or one read, never a row.

One poller per feed and process, not one per stream: while at least one stream is open, a
single task reads the table and hands every new row to each open stream (fan-out); with
no stream open, it does not run and the feed costs nothing. A stream keeps its own filter
and cursor: one resuming after an id behind the poller first reads the history up to the
poller's cursor on its own, then joins the fan-out at exactly that id (no row missed,
none twice).

Each stream buffers at most `queue_size` rows. A stream whose caller reads more slowly
than rows arrive never blocks the others: when its buffer is full it is dropped from the
fan-out, hands over what it buffered, and then ends with `WatchFellBehind` naming the last
id it delivered, from which the caller resumes (`after_id`). A caller may hold at most
`streams_per_caller` open streams of each feed; one more is refused with `TooManyStreams`.

Ids are handed out when a row is inserted, but rows become visible when their transaction
commits: on PostgreSQL, id 11 may be seen while id 10 is still being committed. A cursor
that moved on to 11 would skip 10 for good. So the feed stops in front of a hole in the
ids and looks again; it steps over the hole once the row after it is older than
`gap_grace_s`, or the feed has waited that long (an id that was rolled back never fills;
holes in old history are stepped over at once). Rows are delivered in id order, and a
watcher resuming after the last id it saw misses nothing committed within the grace. A
row's `at` is when its writer recorded it, by the writer's clock: what the grace is judged
by.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from gateway.core.errors import TooManyStreams, WatchFellBehind
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import StatusTransition
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchPolicy:
    """How often the poller looks again, how much it reads at once, and the stream limits."""

    poll_interval_s: float = 0.5
    page_size: int = 500
    gap_grace_s: float = 5.0
    """How long a hole in the ids is waited for before the feed steps over it."""
    queue_size: int = 1000
    """Rows one stream may have waiting for its caller before it is ended (fell behind)."""
    streams_per_caller: int = 20
    """Open streams of one feed (WatchVehicles, WatchVehicleEvents) one caller may hold."""


class Wakeup:
    """One feed's wake-up call: `ring()` when its table gained a committed row, and the
    poller, if it waits between polls, reads at once.

    Ringing is cheap and never blocks or raises (commit observers and database
    notifications call it). A ring while the poller reads makes it read once more, so
    none is lost; a ring with no stream open costs nothing. One wakeup serves one feed:
    its poller clears it before each read."""

    __slots__ = ("_rung",)

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        """Tell the poller its table has a new committed row."""
        self._rung.set()

    @property
    def rung(self) -> bool:
        """Tell whether it rang since the poller last began a read."""
        return self._rung.is_set()

    def clear(self) -> None:
        """Forget earlier rings: the poller is about to read (and sees what they announced)."""
        self._rung.clear()

    async def wait(self) -> None:
        """Return once it rings."""
        await self._rung.wait()


@dataclass(frozen=True, slots=True)
class FeedWakeups:
    """The wakeups of both feeds (WatchVehicles, WatchVehicleEvents), made before the
    units of work whose commits ring them."""

    transitions: Wakeup = field(default_factory=Wakeup)
    events: Wakeup = field(default_factory=Wakeup)


class FeedRow(Protocol):
    """What a feed needs of a row: its increasing id (set once stored) and when its writer
    recorded it."""

    @property
    def id(self) -> int | None:
        """The row's id, increasing in insertion order."""
        ...

    @property
    def at(self) -> datetime:
        """When the writer recorded the row, by its clock."""
        ...


R = TypeVar("R", bound=FeedRow)
R_co = TypeVar("R_co", bound=FeedRow, covariant=True)


class FeedSource(Protocol[R_co]):
    """The table a feed streams: read in id order, in the feed's short transactions."""

    @property
    def rpc(self) -> str:
        """The RPC that streams it, for messages (`WatchVehicles`) and metrics."""
        ...

    async def latest_id(self, uow: UnitOfWork) -> int:
        """Return the highest id recorded (0 when there is none)."""
        ...

    async def after(self, uow: UnitOfWork, after_id: int, *, limit: int) -> Sequence[R_co]:
        """Return up to `limit` rows with an id above `after_id`, oldest first; raise a
        GatewayError when rows after `after_id` are no longer kept (a stream cannot resume
        there without missing some)."""
        ...


class _Cursor(Generic[R]):
    """A position in a table that stops in front of a recent hole in the ids."""

    def __init__(
        self, position: int, *, clock: Clock, monotonic: Callable[[], float], grace_s: float
    ) -> None:
        self.position = position
        self._clock = clock
        self._monotonic = monotonic
        self._grace_s = grace_s
        self._hole_seen_at: float | None = None

    def advance(self, page: Sequence[R]) -> tuple[list[R], bool]:
        """Step over the page's rows in order; return those passed, and whether it stopped
        at a hole that may still fill."""
        passed: list[R] = []
        for row in page:
            next_id = row.id if row.id is not None else self.position + 1
            if next_id > self.position + 1 and self._recent(row):
                now = self._monotonic()
                self._hole_seen_at = now if self._hole_seen_at is None else self._hole_seen_at
                if now - self._hole_seen_at < self._grace_s:
                    return passed, True  # the missing id may still be committing
            self._hole_seen_at = None
            self.position = next_id
            passed.append(row)
        return passed, False

    def _recent(self, row: R) -> bool:
        age = self._clock.now() - row.at
        return age.total_seconds() < self._grace_s


@dataclass(eq=False, kw_only=True)
class _Stream(Generic[R]):
    """One open stream: its filter, its buffer, and how it ends."""

    caller: str
    accepts: Callable[[R], bool]
    skip_through: int = 0
    """Rows up to this id were (or will be) delivered by the stream's own catch-up."""
    buffer: deque[R] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    fell_behind: bool = False
    failure: BaseException | None = None

    def wants(self, row: R) -> bool:
        """Tell whether this stream delivers `row`."""
        return (row.id or 0) > self.skip_through and self.accepts(row)


@dataclass(eq=False)
class _Run(Generic[R]):
    """One run of the poller: its task, its cursor (None until read), and its state."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: _Cursor[R] | None = None
    task: asyncio.Task[None] | None = None
    sleeping: bool = False


class Feed(Generic[R]):
    """Streams the rows of its source after a cursor to every open stream, from one poller.

    A feed reads the source its subclass names (`_source`), or the one given; `wakeup`
    (one of its own by default) cuts the poller's wait short when rung."""

    def __init__(
        self,
        *,
        source: FeedSource[R] | None = None,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: WatchPolicy = WatchPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: Metrics = NO_METRICS,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._source = source if source is not None else self._default_source()
        self._wakeup = wakeup if wakeup is not None else Wakeup()
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._sleep = sleep
        self._monotonic = monotonic
        self._metrics = metrics
        self._streams: set[_Stream[R]] = set()
        """Streams the poller serves (in catch-up or live); it runs while there is one."""
        self._live: set[_Stream[R]] = set()
        """Streams that receive the poller's rows."""
        self._callers: Counter[str] = Counter()
        self._run: _Run[R] | None = None

    def _default_source(self) -> FeedSource[R]:
        """The source a subclass reads when none is given."""
        raise TypeError(f"{type(self).__name__} needs a source")

    def wake(self) -> None:
        """Make the poller read now instead of at its next poll (a row was committed)."""
        self._wakeup.ring()

    @property
    def polling(self) -> bool:
        """Tell whether the poller is running (a testing hook: it runs only for streams)."""
        return self._run is not None

    @property
    def following(self) -> int:
        """Return how many streams receive the poller's rows (a testing hook)."""
        return len(self._live)

    async def stream(
        self, *, accepts: Callable[[R], bool], after_id: int | None, caller: str
    ) -> AsyncIterator[R]:
        """Yield the rows `accepts` after `after_id` (None: from now on), until the caller
        stops; raise TooManyStreams over the cap."""
        rpc = self._source.rpc
        limit = self._policy.streams_per_caller
        if self._callers[caller] >= limit:
            raise TooManyStreams(
                f"caller {caller!r} already holds {limit} {rpc} streams, the most "
                "allowed (VG_WATCH_STREAMS_PER_CALLER); close one first",
                metadata={"limit": "watch_streams_per_caller", "max_streams": str(limit)},
            )
        self._callers[caller] += 1
        self._metrics.watch_streams(rpc=rpc, open=self._open())
        stream = _Stream(caller=caller, accepts=accepts)
        try:
            run = await self._attach(stream)
            position = after_id if after_id is not None else self._position(run)
            async for row in self._catch_up(stream, run, position):
                position = row.id or position
                yield row
            # Live: what the poller hands this stream, until it falls behind. Inline, not a
            # generator of its own: a change goes out to every open stream, and each
            # generator level between the buffer and grpc costs every stream a resumption.
            while True:
                stream.wakeup.clear()
                while stream.buffer:
                    row = stream.buffer.popleft()
                    position = row.id or position
                    yield row
                self._raise_failure(stream)
                if stream.fell_behind:
                    break
                await stream.wakeup.wait()
            raise WatchFellBehind(
                f"the stream fell more than {self._policy.queue_size} changes behind; "
                f"resume with after_id={position}",
                metadata={"resume_after_id": str(position)},
            )
        finally:
            self._detach(stream)

    def _open(self) -> int:
        """How many streams of this feed are open."""
        return sum(self._callers.values())

    async def _attach(self, stream: _Stream[R]) -> _Run[R]:
        """Count the stream in (starting the poller if it is the first) and wait until the
        poller knows its cursor."""
        self._streams.add(stream)
        run = self._run
        if run is None:
            run = self._run = _Run()
            run.task = asyncio.create_task(self._poll(run), name=f"{self._source.rpc}-poller")
        await run.ready.wait()
        self._raise_failure(stream)
        return run

    def _detach(self, stream: _Stream[R]) -> None:
        """Count the stream out; the last one out stops a sleeping poller at once (a reading
        one stops after its read)."""
        self._callers[stream.caller] -= 1
        if self._callers[stream.caller] <= 0:
            del self._callers[stream.caller]
        self._metrics.watch_streams(rpc=self._source.rpc, open=self._open())
        self._streams.discard(stream)
        self._live.discard(stream)
        run = self._run
        if not self._streams and run is not None:
            self._run = None
            if run.sleeping and run.task is not None:
                run.task.cancel()

    async def _catch_up(self, stream: _Stream[R], run: _Run[R], position: int) -> AsyncIterator[R]:
        """Read the history after `position` up to the poller's cursor, then go live."""
        cursor = self._new_cursor(position)
        while True:
            self._raise_failure(stream)
            if cursor.position >= self._position(run):  # no await until live: none missed
                stream.skip_through = cursor.position
                self._live.add(stream)
                return
            async with self._uow.reader() as uow:
                page = await self._source.after(uow, cursor.position, limit=self._policy.page_size)
            target = self._position(run)
            within = [row for row in page if (row.id or 0) <= target]
            if not within:  # the rest up to the poller's cursor are holes it stepped over
                cursor.position = max(cursor.position, target)
                continue
            passed, stopped = cursor.advance(within)
            for row in passed:
                if stream.wants(row):
                    yield row
            if stopped:
                await self._sleep(self._policy.poll_interval_s)

    async def _poll(self, run: _Run[R]) -> None:
        """The poller: read after the cursor, hand each row to the live streams, pause
        when caught up; stop when no stream is left. A failed read ends every stream
        with that failure (the edge maps it, e.g. a database briefly unavailable)."""
        try:
            self._wakeup.clear()
            async with self._uow.reader() as uow:
                latest = await self._source.latest_id(uow)
            run.cursor = cursor = self._new_cursor(latest)
            run.ready.set()
            while self._run is run:
                self._wakeup.clear()  # a ring from here on is for a row this read may miss
                async with self._uow.reader() as uow:
                    page = await self._source.after(
                        uow, cursor.position, limit=self._policy.page_size
                    )
                if self._run is not run:
                    return  # the last stream left during the read (a new run may have begun)
                passed, stopped = cursor.advance(page)
                for row in passed:
                    self._publish(row)
                if (stopped or len(page) < self._policy.page_size) and self._run is run:
                    run.sleeping = True
                    await self._pause()
                    run.sleeping = False
        except Exception as exc:  # noqa: BLE001 - handed to every stream, which raises it
            self._fail_all(run, exc)

    async def _pause(self) -> None:
        """Wait `poll_interval_s`, or until the wakeup rings (at once if it rang during
        the read)."""
        if self._wakeup.rung:
            return
        napping = asyncio.ensure_future(self._sleep(self._policy.poll_interval_s))
        ringing = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait((napping, ringing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            napping.cancel()
            ringing.cancel()

    def _publish(self, row: R) -> None:
        """Hand one row to every live stream that wants it; drop a stream that is full."""
        for stream in list(self._live):
            if not stream.wants(row):
                continue
            if len(stream.buffer) >= self._policy.queue_size:
                stream.fell_behind = True
                self._live.discard(stream)
            else:
                stream.buffer.append(row)
            stream.wakeup.set()

    def _fail_all(self, run: _Run[R], exc: BaseException) -> None:
        """End every stream of this run with `exc` (a run already left has none)."""
        run.ready.set()
        if self._run is not run:
            return
        self._run = None
        for stream in self._streams:
            stream.failure = exc
            stream.wakeup.set()
        self._streams.clear()
        self._live.clear()

    def _position(self, run: _Run[R]) -> int:
        """Return the poller's cursor (the poller has read it: `ready` was awaited)."""
        assert run.cursor is not None
        return run.cursor.position

    def _new_cursor(self, position: int) -> _Cursor[R]:
        return _Cursor(
            position,
            clock=self._clock,
            monotonic=self._monotonic,
            grace_s=self._policy.gap_grace_s,
        )

    @staticmethod
    def _raise_failure(stream: _Stream[R]) -> None:
        if stream.failure is not None:
            raise stream.failure


class _Transitions:
    """The status transitions table, as the WatchVehicles feed reads it."""

    rpc = "WatchVehicles"

    async def latest_id(self, uow: UnitOfWork) -> int:
        """Return the highest transition id recorded."""
        return await uow.transitions.latest_id()

    async def after(
        self, uow: UnitOfWork, after_id: int, *, limit: int
    ) -> Sequence[StatusTransition]:
        """Return transitions after `after_id`, oldest first (the history is kept whole)."""
        return await uow.transitions.after(after_id, limit=limit)


class StatusFeed(Feed[StatusTransition]):
    """Streams status transitions after a cursor to every open stream, from one poller."""

    def _default_source(self) -> FeedSource[StatusTransition]:
        return _Transitions()

    def changes(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str = "anonymous"
    ) -> AsyncIterator[StatusTransition]:
        """Yield transitions after `after_id` (None: from now on), for the given vehicles
        (all when empty), until the caller stops; raise TooManyStreams over the cap."""
        return self.stream(accepts=for_vehicles(vehicle_ids), after_id=after_id, caller=caller)


class _OfVehicle(Protocol):
    @property
    def vehicle_id(self) -> str: ...


V = TypeVar("V", bound=_OfVehicle)


def for_vehicles(vehicle_ids: frozenset[str]) -> Callable[[V], bool]:
    """Return a filter passing rows of the given vehicles (every row when empty)."""
    if not vehicle_ids:
        return lambda row: True
    return lambda row: row.vehicle_id in vehicle_ids
