"""The status feed behind WatchVehicles: connection changes as the database records them.

The database is the arbiter, so a watcher on one replica sees changes made by any other:
the feed reads the transitions table after a cursor, in short transactions, and waits
`poll_interval_s` when it has caught up.

One poller per process, not one per stream: while at least one stream is open, a single
task reads the table and hands every new transition to each open stream (fan-out); with
no stream open, it does not run and the feed costs nothing. A stream keeps its own filter
and cursor: one resuming after an id behind the poller first reads the history up to the
poller's cursor on its own, then joins the fan-out at exactly that id (no change missed,
none twice).

Each stream buffers at most `queue_size` changes. A stream whose caller reads more slowly
than changes arrive never blocks the others: when its buffer is full it is dropped from the
fan-out, hands over what it buffered, and then ends with `WatchFellBehind` naming the last
id it delivered, from which the caller resumes (`after_id`). A caller may hold at most
`streams_per_caller` open streams; one more is refused with `TooManyStreams`.

Ids are handed out when a row is inserted, but rows become visible when their transaction
commits: on PostgreSQL, id 11 may be seen while id 10 is still being committed. A cursor
that moved on to 11 would skip 10 for good. So the feed stops in front of a hole in the
ids and looks again; it steps over the hole once the row after it is older than
`gap_grace_s`, or the feed has waited that long (an id that was rolled back never fills;
holes in old history are stepped over at once). Transitions are delivered in id order, and
a watcher resuming after the last id it saw misses nothing committed within the grace.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gateway.core.errors import TooManyStreams, WatchFellBehind
from gateway.core.model import StatusTransition
from gateway.core.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchPolicy:
    """How often the poller looks again, how much it reads at once, and the stream limits."""

    poll_interval_s: float = 0.5
    page_size: int = 500
    gap_grace_s: float = 5.0
    """How long a hole in the ids is waited for before the feed steps over it."""
    queue_size: int = 1000
    """Changes one stream may have waiting for its caller before it is ended (fell behind)."""
    streams_per_caller: int = 20
    """Open WatchVehicles streams one caller may hold at once."""


class _Cursor:
    """A position in the transitions table that stops in front of a recent hole in the ids."""

    def __init__(
        self, position: int, *, clock: Clock, monotonic: Callable[[], float], grace_s: float
    ) -> None:
        self.position = position
        self._clock = clock
        self._monotonic = monotonic
        self._grace_s = grace_s
        self._hole_seen_at: float | None = None

    def advance(self, page: Sequence[StatusTransition]) -> tuple[list[StatusTransition], bool]:
        """Step over the page's transitions in order; return those passed, and whether it
        stopped at a hole that may still fill."""
        passed: list[StatusTransition] = []
        for transition in page:
            next_id = transition.id if transition.id is not None else self.position + 1
            if next_id > self.position + 1 and self._recent(transition):
                now = self._monotonic()
                self._hole_seen_at = now if self._hole_seen_at is None else self._hole_seen_at
                if now - self._hole_seen_at < self._grace_s:
                    return passed, True  # the missing id may still be committing
            self._hole_seen_at = None
            self.position = next_id
            passed.append(transition)
        return passed, False

    def _recent(self, transition: StatusTransition) -> bool:
        age = self._clock.now() - transition.at
        return age.total_seconds() < self._grace_s


@dataclass(eq=False, kw_only=True)
class _Stream:
    """One open WatchVehicles stream: its filter, its buffer, and how it ends."""

    caller: str
    vehicle_ids: frozenset[str]
    skip_through: int = 0
    """Changes up to this id were (or will be) delivered by the stream's own catch-up."""
    buffer: deque[StatusTransition] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    fell_behind: bool = False
    failure: BaseException | None = None

    def wants(self, transition: StatusTransition) -> bool:
        """Tell whether this stream delivers `transition`."""
        return (transition.id or 0) > self.skip_through and (
            not self.vehicle_ids or transition.vehicle_id in self.vehicle_ids
        )


@dataclass(eq=False)
class _Run:
    """One run of the poller: its task, its cursor (None until read), and its state."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: _Cursor | None = None
    task: asyncio.Task[None] | None = None
    sleeping: bool = False


class StatusFeed:
    """Streams status transitions after a cursor to every open stream, from one poller."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: WatchPolicy = WatchPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._sleep = sleep
        self._monotonic = monotonic
        self._streams: set[_Stream] = set()
        """Streams the poller serves (in catch-up or live); it runs while there is one."""
        self._live: set[_Stream] = set()
        """Streams that receive the poller's changes."""
        self._callers: Counter[str] = Counter()
        self._run: _Run | None = None

    @property
    def polling(self) -> bool:
        """Tell whether the poller is running (a testing hook: it runs only for streams)."""
        return self._run is not None

    @property
    def following(self) -> int:
        """Return how many streams receive the poller's changes (a testing hook)."""
        return len(self._live)

    async def changes(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str = "anonymous"
    ) -> AsyncIterator[StatusTransition]:
        """Yield transitions after `after_id` (None: from now on), for the given vehicles
        (all when empty), until the caller stops; raise TooManyStreams over the cap."""
        limit = self._policy.streams_per_caller
        if self._callers[caller] >= limit:
            raise TooManyStreams(
                f"caller {caller!r} already holds {limit} WatchVehicles streams, the most "
                "allowed (VG_WATCH_STREAMS_PER_CALLER); close one first",
                metadata={"limit": "watch_streams_per_caller", "max_streams": str(limit)},
            )
        self._callers[caller] += 1
        stream = _Stream(caller=caller, vehicle_ids=vehicle_ids)
        try:
            run = await self._attach(stream)
            position = after_id if after_id is not None else self._position(run)
            async for transition in self._catch_up(stream, run, position):
                position = transition.id or position
                yield transition
            async for transition in self._follow(stream):
                position = transition.id or position
                yield transition
            raise WatchFellBehind(
                f"the stream fell more than {self._policy.queue_size} changes behind; "
                f"resume with after_id={position}",
                metadata={"resume_after_id": str(position)},
            )
        finally:
            self._detach(stream)

    async def _attach(self, stream: _Stream) -> _Run:
        """Count the stream in (starting the poller if it is the first) and wait until the
        poller knows its cursor."""
        self._streams.add(stream)
        run = self._run
        if run is None:
            run = self._run = _Run()
            run.task = asyncio.create_task(self._poll(run), name="watch-poller")
        await run.ready.wait()
        self._raise_failure(stream)
        return run

    def _detach(self, stream: _Stream) -> None:
        """Count the stream out; the last one out stops a sleeping poller at once (a reading
        one stops after its read)."""
        self._callers[stream.caller] -= 1
        if self._callers[stream.caller] <= 0:
            del self._callers[stream.caller]
        self._streams.discard(stream)
        self._live.discard(stream)
        run = self._run
        if not self._streams and run is not None:
            self._run = None
            if run.sleeping and run.task is not None:
                run.task.cancel()

    async def _catch_up(
        self, stream: _Stream, run: _Run, position: int
    ) -> AsyncIterator[StatusTransition]:
        """Read the history after `position` up to the poller's cursor, then go live."""
        cursor = self._new_cursor(position)
        while True:
            self._raise_failure(stream)
            if cursor.position >= self._position(run):  # no await until live: none missed
                stream.skip_through = cursor.position
                self._live.add(stream)
                return
            async with self._uow.reader() as uow:
                page = await uow.transitions.after(cursor.position, limit=self._policy.page_size)
            target = self._position(run)
            within = [t for t in page if (t.id or 0) <= target]
            if not within:  # the rest up to the poller's cursor are holes it stepped over
                cursor.position = max(cursor.position, target)
                continue
            passed, stopped = cursor.advance(within)
            for transition in passed:
                if stream.wants(transition):
                    yield transition
            if stopped:
                await self._sleep(self._policy.poll_interval_s)

    async def _follow(self, stream: _Stream) -> AsyncIterator[StatusTransition]:
        """Yield what the poller hands this stream; return when it fell behind."""
        while True:
            stream.wakeup.clear()
            while stream.buffer:
                yield stream.buffer.popleft()
            self._raise_failure(stream)
            if stream.fell_behind:
                return
            await stream.wakeup.wait()

    async def _poll(self, run: _Run) -> None:
        """The poller: read after the cursor, hand each change to the live streams, sleep
        when caught up; stop when no stream is left. A failed read ends every stream
        with that failure (the edge maps it, e.g. a database briefly unavailable)."""
        try:
            async with self._uow.reader() as uow:
                latest = await uow.transitions.latest_id()
            run.cursor = cursor = self._new_cursor(latest)
            run.ready.set()
            while self._run is run:
                async with self._uow.reader() as uow:
                    page = await uow.transitions.after(
                        cursor.position, limit=self._policy.page_size
                    )
                if self._run is not run:
                    return  # the last stream left during the read (a new run may have begun)
                passed, stopped = cursor.advance(page)
                for transition in passed:
                    self._publish(transition)
                if (stopped or len(page) < self._policy.page_size) and self._run is run:
                    run.sleeping = True
                    await self._sleep(self._policy.poll_interval_s)
                    run.sleeping = False
        except Exception as exc:  # noqa: BLE001 - handed to every stream, which raises it
            self._fail_all(run, exc)

    def _publish(self, transition: StatusTransition) -> None:
        """Hand one change to every live stream that wants it; drop a stream that is full."""
        for stream in list(self._live):
            if not stream.wants(transition):
                continue
            if len(stream.buffer) >= self._policy.queue_size:
                stream.fell_behind = True
                self._live.discard(stream)
            else:
                stream.buffer.append(transition)
            stream.wakeup.set()

    def _fail_all(self, run: _Run, exc: BaseException) -> None:
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

    def _position(self, run: _Run) -> int:
        """Return the poller's cursor (the poller has read it: `ready` was awaited)."""
        assert run.cursor is not None
        return run.cursor.position

    def _new_cursor(self, position: int) -> _Cursor:
        return _Cursor(
            position,
            clock=self._clock,
            monotonic=self._monotonic,
            grace_s=self._policy.gap_grace_s,
        )

    @staticmethod
    def _raise_failure(stream: _Stream) -> None:
        if stream.failure is not None:
            raise stream.failure
