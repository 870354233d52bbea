"""Two replicas on one PostgreSQL database: an event one replica commits reaches a
WatchVehicleEvents stream served by the other, and an event whose id became visible before
an earlier one committed waits for it (PostgreSQL's commit order), so the stream delivers
both, in id order, once each.

Each replica is an engine of its own with its own feed; the feeds' pollers nap until the
test says `tick` (`tests.unit.gateway.feeds`), so nothing waits for real time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.event_feed import EventFeed
from gateway.core.model import ConnectionStatus, Vehicle
from gateway.core.status import save, with_status
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    VehicleEventKind,
    budget_warning,
    record,
)
from gateway.edge.clock import ManualClock
from storage.crypto import TokenCipher
from storage.database import create_engine
from storage.uow import SqlUnitOfWorkFactory, unit_of_work_factory
from tests.instants import START
from tests.unit.gateway.feeds import Naps, Stream, until

WARNING = BudgetWarningDetail(
    month="2026-03", requests_this_month=400, monthly_allowance=500, warning_percent=80
)


@pytest.fixture
async def other_replica(postgres_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on the first one's database: another replica's connections."""
    engine = create_engine(postgres_engine.url.render_as_string(hide_password=False))
    yield engine
    await engine.dispose()


async def test_a_stream_on_one_replica_gets_what_another_commits_in_commit_order(
    postgres_engine: AsyncEngine, other_replica: AsyncEngine, cipher: TokenCipher
) -> None:
    """Replica A disconnects car-1 (its status change event) while replica B streams: B
    delivers it. Then A takes id n for an event and, before committing it, commits id n+1:
    B waits at the hole, and once n commits delivers n, then n+1."""
    clock = ManualClock(START)
    writer = unit_of_work_factory(postgres_engine, cipher)
    naps = Naps()
    feed = EventFeed(
        uow=unit_of_work_factory(other_replica, cipher),
        clock=clock,
        sleep=naps.sleep,
        monotonic=lambda: 0.0,  # the grace never runs out: the hole must fill
    )
    await seed(writer)
    stream = Stream(feed.events(vehicle_ids=frozenset({"car-1"}), kinds=frozenset(), after_id=None))
    await until(lambda: feed.following == 1)

    async with writer() as uow:
        vehicle = await uow.vehicles.get("car-1", for_update=True)
        assert vehicle is not None
        gone = with_status(vehicle, ConnectionStatus.DISCONNECTED, reason="test", now=clock.now())
        await save(uow, vehicle, gone)
        await uow.commit()
    await naps.tick()
    await until(lambda: len(stream.received) == 1)

    slow = writer()
    async with slow as first:
        await record(first, budget_warning("car-1", WARNING, at=clock.now()))
        async with writer() as second:
            await record(second, budget_warning("car-1", WARNING, at=clock.now()))
            await second.commit()
        for _ in range(3):
            await naps.tick()
        assert len(stream.received) == 1  # n+1 is visible, n is not yet: B waits
        await first.commit()
    await naps.tick()
    await until(lambda: len(stream.received) == 3)
    status_id, n, n_plus_1 = stream.received
    assert n_plus_1 == n + 1 > status_id
    async with writer() as uow:
        kinds = [e.kind for e in await uow.events.after(0, limit=10)]
    assert kinds == [
        VehicleEventKind.CONNECTION_STATUS_CHANGED,
        VehicleEventKind.BUDGET_WARNING,
        VehicleEventKind.BUDGET_WARNING,
    ]
    await stream.close()


async def seed(uow: SqlUnitOfWorkFactory) -> None:
    """Store ACTIVE car-1."""
    async with uow() as unit:
        await unit.vehicles.add(
            Vehicle(id="car-1", status=ConnectionStatus.ACTIVE, status_changed_at=START)
        )
        await unit.commit()
