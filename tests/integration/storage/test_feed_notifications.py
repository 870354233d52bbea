"""What wakes the watch feeds: a unit of work's commit observer for status transitions
(SQLite and PostgreSQL), and on PostgreSQL the notifications migration 0014's triggers send
when a transaction inserting transitions or events commits, heard by `FeedNotifications`,
also across replicas and after its connection was lost.

The feeds' pollers nap until a test says `tick`, and no test here ticks: whatever a stream
receives came through a wakeup, not a poll."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.event_feed import EventFeed
from gateway.core.model import ConnectionStatus, StatusTransition, Vehicle
from gateway.core.status import save, with_status
from gateway.core.vehicle_events import VehicleEventKind
from gateway.core.watch import StatusFeed, Wakeup
from gateway.edge.clock import ManualClock
from storage.crypto import TokenCipher
from storage.database import create_engine
from storage.notifications import EVENTS, TRANSITIONS, FeedNotifications, listens_on
from storage.uow import SqlUnitOfWork, SqlUnitOfWorkFactory, unit_of_work_factory
from tests.instants import START
from tests.unit.gateway.feeds import Naps, Stream, until


@pytest.fixture
async def other_replica(postgres_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on the first one's database: another replica's connections."""
    engine = create_engine(postgres_engine.url.render_as_string(hide_password=False))
    yield engine
    await engine.dispose()


class Heard:
    """Counts the notifications FeedNotifications hands on, by table."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_change(self) -> dict[str, Callable[[], None]]:
        """The callbacks to hand FeedNotifications."""
        return {
            TRANSITIONS: lambda: self.counts.update([TRANSITIONS]),
            EVENTS: lambda: self.counts.update([EVENTS]),
        }


async def test_a_commit_of_transitions_is_heard_once_and_a_rollback_never(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """`on_transition` hears a commit that stored transitions once (two in it or one), a
    commit without any not at all, and a unit of work left without committing never."""
    heard: list[str] = []
    observed = unit_of_work_factory(migrated_engine, cipher).observed(
        lambda kind: heard.append(kind.value), on_transition=lambda: heard.append("transition")
    )
    await seed(observed)
    assert heard == []
    async with observed() as uow:
        await uow.transitions.add(transition())
    assert heard == []
    async with observed() as uow:
        await uow.transitions.add(transition())
        await uow.transitions.add(transition())
        await uow.commit()
        assert heard == ["transition"]
        await uow.commit()
    assert heard == ["transition"]


async def test_notifications_come_only_for_committed_inserts_one_per_table_and_transaction(
    postgres_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """Rolled back: nothing is heard. Committed: one notification per table the
    transaction inserted into, however many rows."""
    writer = unit_of_work_factory(postgres_engine, cipher)
    await seed(writer)
    heard = Heard()
    async with FeedNotifications(postgres_engine, on_change=heard.on_change()) as listener:
        await until(lambda: listener.listening)
        await until(lambda: heard.counts == {TRANSITIONS: 1, EVENTS: 1})  # rung on listening
        async with writer() as uow:
            await uow.transitions.add(transition())
            await change_status(uow, ConnectionStatus.DISCONNECTED)
        async with writer() as uow:
            await uow.transitions.add(transition())
            await uow.transitions.add(transition())
            await uow.commit()
        await until(lambda: heard.counts[TRANSITIONS] == 2)
        async with writer() as uow:
            await change_status(uow, ConnectionStatus.DISCONNECTED)
            await uow.commit()
        await until(lambda: heard.counts[EVENTS] == 2)
        # Delivered in commit order: had the rollback notified, it would have come first.
        assert heard.counts == {TRANSITIONS: 3, EVENTS: 2}


async def test_streams_on_one_replica_get_what_another_commits_without_a_poll(
    postgres_engine: AsyncEngine, other_replica: AsyncEngine, cipher: TokenCipher
) -> None:
    """Replica A disconnects car-1 through units of work no observer watches; replica B's
    WatchVehicles and WatchVehicleEvents streams get the transition and its event while
    B's pollers nap: PostgreSQL's notification woke them."""
    clock = ManualClock(START)
    writer = unit_of_work_factory(postgres_engine, cipher)
    await seed(writer)
    reader = unit_of_work_factory(other_replica, cipher)
    naps = Naps()
    transitions, events = Wakeup(), Wakeup()
    feed = StatusFeed(uow=reader, clock=clock, sleep=naps.sleep, wakeup=transitions)
    event_feed = EventFeed(uow=reader, clock=clock, sleep=naps.sleep, wakeup=events)
    on_change = {TRANSITIONS: transitions.ring, EVENTS: events.ring}
    async with FeedNotifications(other_replica, on_change=on_change) as listener:
        await until(lambda: listener.listening)
        watching = Stream(feed.changes(vehicle_ids=frozenset({"car-1"}), after_id=None))
        eventing = Stream(
            event_feed.events(vehicle_ids=frozenset({"car-1"}), kinds=frozenset(), after_id=None)
        )
        await until(lambda: feed.following == event_feed.following == 1)
        taken = naps.taken

        async with writer() as uow:
            await change_status(uow, ConnectionStatus.DISCONNECTED)
            await uow.commit()
        await until(lambda: len(watching.received) == len(eventing.received) == 1)
        assert naps.taken > taken  # the pollers napped again: no tick, no poll delivered it
        async with writer() as uow:
            (stored,) = await uow.events.after(0, limit=10)
        assert stored.kind is VehicleEventKind.CONNECTION_STATUS_CHANGED
        assert eventing.received == [stored.id]
        await watching.close()
        await eventing.close()


async def test_the_listener_listens_again_after_its_connection_is_lost(
    postgres_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """Its backend terminated, the listener waits `retry_s`, connects again, rings every
    feed once (what was committed meanwhile is not known) and hears the next commit."""
    writer = unit_of_work_factory(postgres_engine, cipher)
    await seed(writer)
    heard = Heard()
    retries: list[float] = []

    async def no_wait(seconds: float) -> None:
        retries.append(seconds)

    listener = FeedNotifications(
        postgres_engine, on_change=heard.on_change(), retry_s=7.0, sleep=no_wait
    )
    async with listener:
        await until(lambda: listener.listening)
        await until(lambda: heard.counts == {TRANSITIONS: 1, EVENTS: 1})
        async with postgres_engine.connect() as connection:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        assert ended == 1
        await until(lambda: heard.counts == {TRANSITIONS: 2, EVENTS: 2})
        assert listener.listening
        assert retries == [7.0]
        async with writer() as uow:
            await uow.transitions.add(transition())
            await uow.commit()
        await until(lambda: heard.counts[TRANSITIONS] == 3)
    assert not listener.listening
    # Its repr names no connect argument (they hold the password).
    assert repr(listener) == "FeedNotifications(channel='vehicle_gateway_feed', listening=False)"


async def test_sqlite_has_no_notifications(engine: AsyncEngine) -> None:
    """On SQLite `listens_on` is false and a listener is refused with a plain ValueError."""
    assert not listens_on(engine)
    with pytest.raises(ValueError, match="only PostgreSQL"):
        FeedNotifications(engine, on_change={})


def transition() -> StatusTransition:
    """A transition of car-1 (the id is the database's)."""
    return StatusTransition(
        id=None,
        vehicle_id="car-1",
        from_status=ConnectionStatus.ACTIVE,
        to_status=ConnectionStatus.ERROR,
        reason="test",
        at=START,
    )


async def change_status(uow: SqlUnitOfWork, status: ConnectionStatus) -> None:
    """Give car-1 `status` in `uow`, as the gateway does (a transition and its event)."""
    vehicle = await uow.vehicles.get("car-1", for_update=True)
    assert vehicle is not None
    await save(uow, vehicle, with_status(vehicle, status, reason="test", now=START))


async def seed(uow: SqlUnitOfWorkFactory) -> None:
    """Store ACTIVE car-1."""
    async with uow() as unit:
        await unit.vehicles.add(
            Vehicle(id="car-1", status=ConnectionStatus.ACTIVE, status_changed_at=START)
        )
        await unit.commit()
