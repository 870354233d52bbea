"""The WatchVehicleEvents feed on fakes: WatchVehicles' machinery over the vehicle events,
filtered by vehicle and kind, resumable by id, and refusing to resume where retention has
already deleted events.

The poller's sleep is injected (`Naps`), so no test waits for real time."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.core.errors import EventsPruned
from gateway.core.event_feed import EventFeed
from gateway.core.metrics import RecordingMetrics
from gateway.core.model import ConnectionStatus
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    StatusChange,
    VehicleEventKind,
    budget_warning,
    status_changed,
)
from gateway.core.watch import WatchPolicy
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.feeds import Naps, Stream, until

K = VehicleEventKind
CHANGE = StatusChange(from_status=ConnectionStatus.ACTIVE, to_status=ConnectionStatus.ERROR)
WARNING = BudgetWarningDetail(
    month="2026-03", requests_this_month=400, monthly_allowance=500, warning_percent=80
)


class Rig:
    """An event feed over a fake store, a clock at a named instant, and its napping poller."""

    def __init__(self, policy: WatchPolicy | None = None) -> None:
        self.clock = ManualClock(START)
        self.uow = FakeUnitOfWorkFactory()
        self.naps = Naps()
        self.metrics = RecordingMetrics()
        self.feed = EventFeed(
            uow=self.uow,
            clock=self.clock,
            policy=policy or WatchPolicy(),
            sleep=self.naps.sleep,
            metrics=self.metrics,
        )

    def record(self, vehicle_id: str, kind: VehicleEventKind = K.BUDGET_WARNING) -> int:
        """Commit one event (a budget warning, or a status change) with the next id, as the
        database would; return its id."""
        store = self.uow.store
        new_id = max(max(store.events, default=0), store.events_pruned_through) + 1
        at = self.clock.now()
        if kind is K.CONNECTION_STATUS_CHANGED:
            event = status_changed(vehicle_id, CHANGE, at=at)
        else:
            event = budget_warning(vehicle_id, WARNING, at=at)
        store.events[new_id] = dataclasses.replace(event, id=new_id)
        return new_id

    def prune_through(self, last_id: int) -> None:
        """Delete every event up to `last_id`, as retention does."""
        store = self.uow.store
        store.events = {key: e for key, e in store.events.items() if key > last_id}
        store.events_pruned_through = last_id

    async def open(
        self,
        *vehicle_ids: str,
        kinds: frozenset[VehicleEventKind] = frozenset(),
        after_id: int | None = None,
        caller: str = "rental",
    ) -> Stream:
        """Open a stream and wait until it follows the poller."""
        following = self.feed.following
        stream = Stream(
            self.feed.events(
                vehicle_ids=frozenset(vehicle_ids), kinds=kinds, after_id=after_id, caller=caller
            )
        )
        await until(lambda: self.feed.following > following)
        return stream


async def test_streams_filter_by_vehicle_and_kind_and_resume_without_gaps() -> None:
    """A stream gets only its vehicles and kinds; one resuming after an id gets the history
    after it, then the live events, in id order, none twice."""
    rig = Rig()
    old = [
        rig.record("car-1"),
        rig.record("car-2", K.CONNECTION_STATUS_CHANGED),
        rig.record("car-1", K.CONNECTION_STATUS_CHANGED),
    ]
    car_1 = await rig.open("car-1")
    statuses = await rig.open(kinds=frozenset({K.CONNECTION_STATUS_CHANGED}))
    resumed = await rig.open(after_id=old[0])
    car_1_statuses = await rig.open(
        "car-1", kinds=frozenset({K.CONNECTION_STATUS_CHANGED}), after_id=0
    )
    new = [
        rig.record("car-2"),
        rig.record("car-1", K.CONNECTION_STATUS_CHANGED),
        rig.record("car-1"),
    ]
    await rig.naps.tick()

    await until(lambda: len(resumed.received) == 5)
    assert car_1.received == [new[1], new[2]]
    assert statuses.received == [new[1]]
    assert resumed.received == old[1:] + new
    assert car_1_statuses.received == [old[2], new[1]]
    assert rig.metrics.open_streams == {"WatchVehicleEvents": 4}
    for stream in (car_1, statuses, resumed, car_1_statuses):
        await stream.close()
    assert rig.metrics.open_streams == {"WatchVehicleEvents": 0}


async def test_resuming_before_what_retention_kept_is_refused_naming_where_to_go_on() -> None:
    """After retention deleted events 1-3, a stream resuming after id 1 (or 0) is refused
    with EventsPruned (resume after 3); after 3, or from now on, it streams."""
    rig = Rig()
    for _ in range(5):
        rig.record("car-1")
    rig.prune_through(3)
    for after_id in (0, 1):
        refused = rig.feed.events(
            vehicle_ids=frozenset(), kinds=frozenset(), after_id=after_id, caller="rental"
        )
        with pytest.raises(EventsPruned) as pruned:
            await anext(refused)
        assert pruned.value.metadata == {"pruned_through_id": "3", "resume_after_id": "3"}
        assert "after_id=3" in pruned.value.message
    resumed = await rig.open(after_id=3)
    live = await rig.open()
    later = rig.record("car-1")
    await rig.naps.tick()
    await until(lambda: live.received == [later])
    assert resumed.received == [4, 5, later]
    for stream in (resumed, live):
        await stream.close()


async def test_a_prune_during_a_catch_up_ends_the_stream_instead_of_skipping() -> None:
    """A stream reading old history a page at a time, overtaken by retention, is ended with
    EventsPruned at its next page: it never jumps over the deleted events."""
    rig = Rig(WatchPolicy(page_size=2))
    for _ in range(6):
        rig.record("car-1")
    catching_up = rig.feed.events(
        vehicle_ids=frozenset(), kinds=frozenset(), after_id=0, caller="rental"
    )
    assert [(await anext(catching_up)).id, (await anext(catching_up)).id] == [1, 2]
    rig.prune_through(4)
    with pytest.raises(EventsPruned) as pruned:
        await anext(catching_up)
    assert pruned.value.metadata["resume_after_id"] == "4"
