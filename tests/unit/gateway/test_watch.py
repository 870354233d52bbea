"""The WatchVehicles fan-out on fakes: one poller for every stream, only while one is open,
each stream with its own filter and cursor, a bounded buffer per stream, a cap per caller.

The poller's sleep is injected (`Naps`): it naps until the test calls `tick`, so no test
waits for real time, and a test that never ticks proves a change came through the wakeup."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.core.errors import TooManyStreams, WatchFellBehind
from gateway.core.model import ConnectionStatus, StatusTransition
from gateway.core.ports import UnitOfWork
from gateway.core.watch import StatusFeed, Wakeup, WatchPolicy
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWork, FakeUnitOfWorkFactory
from tests.unit.gateway.feeds import Naps, Stream, until

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Rig:
    """A feed over a fake store, a clock at a named instant, and its napping poller."""

    def __init__(
        self, policy: WatchPolicy | None = None, uow: FakeUnitOfWorkFactory | None = None
    ) -> None:
        self.clock = ManualClock(START)
        self.uow = uow or FakeUnitOfWorkFactory()
        self.naps = Naps()
        self.wakeup = Wakeup()
        self.feed = StatusFeed(
            uow=self.uow,
            clock=self.clock,
            policy=policy or WatchPolicy(),
            sleep=self.naps.sleep,
            wakeup=self.wakeup,
        )

    def record(self, vehicle_id: str, to: ConnectionStatus = ConnectionStatus.ACTIVE) -> int:
        """Commit one transition with the next id, as the database would; return its id."""
        store = self.uow.store.transitions
        new_id = max(store, default=0) + 1
        store[new_id] = StatusTransition(
            id=new_id,
            vehicle_id=vehicle_id,
            from_status=ConnectionStatus.NOT_CONNECTED,
            to_status=to,
            reason=None,
            at=self.clock.now(),
        )
        return new_id

    async def open(
        self, *vehicle_ids: str, after_id: int | None = None, caller: str = "rental"
    ) -> Stream:
        """Open a stream and wait until it follows the poller."""
        following = self.feed.following
        stream = Stream(
            self.feed.changes(vehicle_ids=frozenset(vehicle_ids), after_id=after_id, caller=caller)
        )
        await until(lambda: self.feed.following > following)
        return stream


async def test_one_poller_reads_for_every_stream() -> None:
    """A hundred open streams cost one read per poll, and one change reaches all of them."""
    rig = Rig(WatchPolicy(streams_per_caller=50))
    streams = [await rig.open() for _ in range(50)]
    streams += [await rig.open(caller=f"caller-{n}") for n in range(50)]
    await rig.naps.tick()
    opened = rig.uow.opened
    await rig.naps.tick()
    await rig.naps.tick()
    assert rig.uow.opened == opened + 2

    change = rig.record("car-1")
    await rig.naps.tick()
    await until(lambda: all(s.received == [change] for s in streams))
    for stream in streams:
        await stream.close()


async def test_the_poller_runs_only_while_a_stream_is_open() -> None:
    """No stream, no poller; the first stream starts it; the last one out stops it at once."""
    rig = Rig()
    assert not rig.feed.polling
    first = await rig.open()
    second = await rig.open("car-2")
    assert rig.feed.polling
    await rig.naps.tick()
    await first.close()
    assert rig.feed.polling
    await second.close()
    assert not rig.feed.polling
    await until(lambda: rig.naps.cancelled == 1)
    opened = rig.uow.opened
    rig.record("car-2")
    for _ in range(100):
        await asyncio.sleep(0)
    assert rig.uow.opened == opened

    again = await rig.open("car-2")
    assert rig.feed.polling
    change = rig.record("car-2")
    await rig.naps.tick()
    await until(lambda: again.received == [change])
    await again.close()


async def test_each_stream_keeps_its_filter_and_its_cursor() -> None:
    """A filtered stream gets only its cars; one resuming after an id first gets the history
    after it, then the live changes, in id order, none twice."""
    rig = Rig()
    old = [rig.record("car-1"), rig.record("car-2"), rig.record("car-1")]
    live_car_1 = await rig.open("car-1")
    everything = await rig.open()
    resumed = await rig.open(after_id=old[0])
    resumed_car_2 = await rig.open("car-2", after_id=0)
    ahead = await rig.open(after_id=old[-1] + 1)
    new = [rig.record("car-2"), rig.record("car-1"), rig.record("car-1")]
    await rig.naps.tick()

    await until(lambda: len(resumed.received) == 5)
    assert live_car_1.received == [new[1], new[2]]
    assert everything.received == new
    assert resumed.received == old[1:] + new
    assert resumed_car_2.received == [old[1], new[0]]
    assert ahead.received == [new[1], new[2]]
    for stream in (live_car_1, everything, resumed, resumed_car_2, ahead):
        await stream.close()


async def test_a_stream_that_joins_while_changes_flow_misses_none() -> None:
    """A stream catching up on history while the poller moves on joins it at exactly its
    cursor: every change once, in order."""
    rig = Rig(WatchPolicy(page_size=2))
    history = [rig.record("car-1") for _ in range(5)]
    witness = await rig.open()
    catching_up = Stream(rig.feed.changes(vehicle_ids=frozenset(), after_id=0, caller="rental"))
    later = [rig.record("car-1") for _ in range(3)]
    await rig.naps.tick()
    await until(lambda: len(catching_up.received) == 8)
    await rig.naps.tick()
    assert catching_up.received == history + later
    assert witness.received == later
    await witness.close()
    await catching_up.close()


async def test_a_slow_stream_is_ended_with_where_to_resume_and_the_others_go_on() -> None:
    """A stream whose caller stops reading buffers `queue_size` changes, then is dropped:
    it hands over what it buffered and ends with WatchFellBehind naming the last id
    delivered; a reading stream gets every change meanwhile."""
    rig = Rig(WatchPolicy(queue_size=2))
    fast = await rig.open()
    slow_changes = rig.feed.changes(vehicle_ids=frozenset(), after_id=None, caller="rental")
    slow_first = asyncio.ensure_future(anext(slow_changes))
    await until(lambda: rig.feed.following == 2)

    ids = [rig.record("car-1"), rig.record("car-1")]
    await rig.naps.tick()
    await until(lambda: fast.received == ids)
    assert (await slow_first).id == ids[0]  # then the slow caller stops reading
    ids += [rig.record("car-2"), rig.record("car-1")]
    await rig.naps.tick()
    await until(lambda: fast.received == ids)
    assert rig.feed.following == 1

    assert (await anext(slow_changes)).id == ids[1]
    assert (await anext(slow_changes)).id == ids[2]
    with pytest.raises(WatchFellBehind) as fell:
        await anext(slow_changes)
    assert fell.value.metadata == {"resume_after_id": str(ids[2])}
    assert f"after_id={ids[2]}" in fell.value.message

    ids.append(rig.record("car-1"))
    await rig.naps.tick()
    await until(lambda: fast.received == ids)
    await fast.close()


async def test_a_caller_holds_at_most_its_cap_of_streams() -> None:
    """One stream over the cap is refused with TooManyStreams naming the cap; another caller
    is not affected, and closing a stream frees a place."""
    rig = Rig(WatchPolicy(streams_per_caller=2))
    first, second = await rig.open(caller="rental"), await rig.open(caller="rental")
    refused = rig.feed.changes(vehicle_ids=frozenset(), after_id=None, caller="rental")
    with pytest.raises(TooManyStreams) as over:
        await anext(refused)
    assert over.value.metadata == {"limit": "watch_streams_per_caller", "max_streams": "2"}
    assert "VG_WATCH_STREAMS_PER_CALLER" in over.value.message
    assert "rental" in over.value.message

    other = await rig.open(caller="billing")
    await first.close()
    again = await rig.open(caller="rental")
    change = rig.record("car-1")
    await rig.naps.tick()
    await until(lambda: other.received == again.received == [change])
    for stream in (second, other, again):
        await stream.close()


class FailingReads(FakeUnitOfWorkFactory):
    """A fake database whose reads fail while `failing` is set (a database gone away)."""

    failing = False

    def reader(self) -> FakeUnitOfWork:
        """A reader; ConnectionError while failing."""
        if self.failing:
            raise ConnectionError("the database went away")
        return super().reader()


async def test_a_failed_read_ends_every_stream_and_the_next_stream_starts_afresh() -> None:
    """When the poller's read fails, every open stream ends with that failure (the edge
    maps it); a stream opened afterwards gets a new poller and its changes."""
    uow = FailingReads()
    rig = Rig(uow=uow)
    naps, feed = rig.naps, rig.feed
    streams = [await rig.open("car-1"), await rig.open()]
    await naps.tick()
    uow.failing = True
    await naps.asleep.wait()
    naps.asleep.clear()
    naps.wake()
    await until(lambda: all(s.task.done() for s in streams))
    assert all(isinstance(s.ended, ConnectionError) for s in streams)
    assert not feed.polling

    uow.failing = False
    again = await rig.open()
    change = rig.record("car-1")
    await naps.tick()
    await until(lambda: again.received == [change])
    await again.close()


async def test_a_ring_delivers_a_change_without_waiting_for_the_poll() -> None:
    """A change committed and rung reaches every stream while the poller's nap has not
    ended (no tick): the wakeup, not the poll interval, delivers it."""
    rig = Rig()
    streams = [await rig.open("car-1"), await rig.open()]
    await rig.naps.asleep.wait()
    change = rig.record("car-1")
    rig.wakeup.ring()
    await until(lambda: all(s.received == [change] for s in streams))
    later = rig.record("car-1")
    rig.feed.wake()
    await until(lambda: all(s.received == [change, later] for s in streams))
    for stream in streams:
        await stream.close()


async def test_a_ring_during_a_read_makes_the_poller_read_again() -> None:
    """A row committed (and rung) while the poller reads, too late for that read, is read
    at once by the next read, not at the next poll."""
    rig = Rig()
    source = CommitsDuringRead(rig)
    rig.feed = StatusFeed(
        source=source, uow=rig.uow, clock=rig.clock, sleep=rig.naps.sleep, wakeup=rig.wakeup
    )
    stream = await rig.open("car-1")
    await rig.naps.asleep.wait()
    source.pending = 1
    first = rig.record("car-1")
    rig.wakeup.ring()
    await until(lambda: len(stream.received) == 2)
    assert stream.received == [first, first + 1]
    await stream.close()


async def test_a_ring_with_no_stream_open_reads_nothing() -> None:
    """Rings while no stream is open start no poller and open no unit of work; the next
    stream starts from what is committed then."""
    rig = Rig()
    opened = rig.uow.opened
    for _ in range(10):
        rig.record("car-1")
        rig.feed.wake()
    for _ in range(100):
        await asyncio.sleep(0)
    assert not rig.feed.polling
    assert rig.uow.opened == opened
    stream = await rig.open("car-1")
    change = rig.record("car-1")
    rig.feed.wake()
    await until(lambda: stream.received == [change])
    await stream.close()


class CommitsDuringRead:
    """The transitions table, where `pending` more rows are committed and rung right after
    a read of the poller took its snapshot (a writer's commit racing the read)."""

    rpc = "WatchVehicles"

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.pending = 0

    async def latest_id(self, uow: UnitOfWork) -> int:
        """Return the highest transition id recorded."""
        return await uow.transitions.latest_id()

    async def after(
        self, uow: UnitOfWork, after_id: int, *, limit: int
    ) -> Sequence[StatusTransition]:
        """Read, then commit and ring a row the read did not see."""
        page = await uow.transitions.after(after_id, limit=limit)
        if page and self.pending:
            self.pending -= 1
            self.rig.record("car-1")
            self.rig.wakeup.ring()
        return page
