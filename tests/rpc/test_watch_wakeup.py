"""A committed change reaches WatchVehicles and WatchVehicleEvents streams without waiting
for the feeds' poll: with VG_WATCH_POLL_INTERVAL_S at an hour, only the wakeup can deliver
it (this process's commit observer; on PostgreSQL also the database's notification)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import gateway_against, gateway_settings, simulator
from tests.unit.gateway.feeds import until

HOUR = "3600"
READ_TIMEOUT_S = 10
"""A bound on a read that must come at once; an hour short of the poll that would help."""


async def test_a_disconnect_reaches_open_streams_before_the_next_poll(tmp_path: Path) -> None:
    """Streams opened after car-1 connected (history first) get its Disconnect, the
    transition and its event, although the feeds' next poll is an hour away."""
    settings = gateway_settings(tmp_path, VG_WATCH_POLL_INTERVAL_S=HOUR)
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await rig.connect("car-1")
        watching = rig.stub.WatchVehicles(
            pb.WatchVehiclesRequest(vehicle_ids=["car-1"], after_id=0)
        )
        eventing = rig.stub.WatchVehicleEvents(
            pb.WatchVehicleEventsRequest(
                vehicle_ids=["car-1"],
                kinds=[pb.VEHICLE_EVENT_CONNECTION_STATUS_CHANGED],
                after_id=0,
            )
        )
        connected = await asyncio.wait_for(watching.read(), READ_TIMEOUT_S)
        assert connected.to_status == pb.ACTIVE
        assert (await asyncio.wait_for(eventing.read(), READ_TIMEOUT_S)).id > 0
        running = rig.running.gateway  # each stream read its history; wait until it follows
        await until(lambda: running.feed.following == running.event_feed.following == 1)

        await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
        gone = await asyncio.wait_for(watching.read(), READ_TIMEOUT_S)
        event = await asyncio.wait_for(eventing.read(), READ_TIMEOUT_S)
        assert (gone.from_status, gone.to_status) == (pb.ACTIVE, pb.DISCONNECTED)
        assert event.kind == pb.VEHICLE_EVENT_CONNECTION_STATUS_CHANGED
        watching.cancel()
        eventing.cancel()
