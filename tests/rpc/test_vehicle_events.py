"""WatchVehicleEvents end to end: a real gateway on port 0 with its webhook receiver, the
simulator as Smartcar (delivering webhooks), SQLite. One rental's life makes every kind of
event; streams filter by vehicle and kind, resume by id with nothing missed or doubled, and
a resume before what retention kept is OUT_OF_RANGE.

The rest is proven on fakes and on PostgreSQL (tests/unit/gateway/test_vehicle_events.py,
test_event_feed.py, tests/integration/storage/test_event_*.py): here the edge, the wiring
and the stores run together, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from clients.simulator import SimulatorConfig
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from gateway.edge.http.metrics import PrometheusMetrics
from tests.instants import START
from tests.rpc.rig import Rig, error_info_of, gateway_against, gateway_settings, simulator

pytestmark = pytest.mark.one_database

DEADLINE_S = 10.0
REAUTHENTICATE = "https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1"


async def take(rig: Rig, request: pb.WatchVehicleEventsRequest, count: int) -> list[Any]:
    """Open a stream and return its first `count` events (failing after DEADLINE_S)."""
    stream = rig.stub.WatchVehicleEvents(request)
    try:
        async with asyncio.timeout(DEADLINE_S):
            return [await stream.read() for _ in range(count)]
    finally:
        stream.cancel()


async def until_kinds(rig: Rig, after_id: int, *kinds: int) -> list[Any]:
    """Stream from `after_id` until an event of each of `kinds` came; return them all."""
    stream = rig.stub.WatchVehicleEvents(pb.WatchVehicleEventsRequest(after_id=after_id))
    seen: list[Any] = []
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not set(kinds) <= {e.kind for e in seen}:
                seen.append(await stream.read())
    finally:
        stream.cancel()
    return seen


async def applied(rig: Rig, *, fuel_percent: float) -> None:
    """Wait until the receiver applied the webhook that brought the fuel to `fuel_percent`
    (it applies events after acknowledging them), so later commands do not race it."""
    request = pb.GetTelemetryRequest(
        vehicle_id="car-1",
        fields=[pb.TelemetryField.FUEL],
        max_age=duration_pb2.Duration(seconds=86400),
    )
    async with asyncio.timeout(DEADLINE_S):
        while True:  # poll with a deadline: the application runs in the background
            [reading] = (await rig.stub.GetTelemetry(request)).readings
            if reading.HasField("fuel") and reading.fuel.percent_remaining == fuel_percent:
                return
            await asyncio.sleep(0.01)


async def active_again(rig: Rig) -> None:
    """Wait until the receiver applied the webhook that ended car-1's wait for its owner."""
    async with asyncio.timeout(DEADLINE_S):
        while True:  # poll with a deadline: the application runs in the background
            panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
            if panel.status == pb.ACTIVE:
                return
            await asyncio.sleep(0.01)


async def webhook(rig: Rig, hook: str, smartcar_id: str, body: dict[str, Any]) -> None:
    """Have the simulator deliver one event to the gateway's receiver."""
    await rig.sim("POST", f"/sim/webhooks/{hook}/events", {"vehicle_id": smartcar_id, **body})


async def test_a_rentals_life_makes_every_kind_of_event(tmp_path: Path) -> None:
    """Connect, Unlock, a rental ended with a door open, a VEHICLE_ERROR webhook with its
    resolution (the car waits for its owner until Smartcar says it is resolved), fuel
    dropping below 15 % twice, a car passing 80 % of its allowance and
    Disconnect each make their event, in order, for the right rental; filters and resumes
    return exactly what they should; resuming before what retention kept is OUT_OF_RANGE."""
    settings = gateway_settings(
        tmp_path,
        VG_WEBHOOK_LISTEN="127.0.0.1:0",
        SMARTCAR_MANAGEMENT_TOKEN=SimulatorConfig().management_token or "",
        VG_WATCH_POLL_INTERVAL_S="0.02",
        VG_METRICS_LISTEN="127.0.0.1:0",
    )
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        vehicle = await rig.connect("car-1")
        sc_id = vehicle.smartcar_vehicle_id

        # A lock state known, then changed by a command, during a rental.
        await rig.sim("POST", f"/sim/vehicles/{sc_id}/state", {"locked": True})
        await rig.stub.GetTelemetry(
            pb.GetTelemetryRequest(
                vehicle_id="car-1",
                fields=[pb.TelemetryField.LOCK_STATUS],
                max_age=duration_pb2.Duration(seconds=0),
            )
        )
        await rig.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
        await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="unlock-1"))
        await rig.sim("POST", f"/sim/vehicles/{sc_id}/state", {"door_open": True})
        await rig.advance(3600)
        ended = await rig.stub.EndRental(pb.EndRentalRequest(vehicle_id="car-1", rental_id="r-1"))
        if ended.final_reading_pending:  # the background job's part, run here directly
            await rig.advance(3600)  # past the car's next report
            await rig.running.gateway.final_readings.run_once()

        # Smartcar's webhooks (from now on: the simulator also sends one after each command):
        # an account error with its resolution; fuel at 12 %, then 9 %.
        callback = f"http://127.0.0.1:{rig.running.webhook_port}/webhooks/smartcar"
        hook = (await rig.sim("POST", "/sim/webhooks", {"callback_url": callback}))["webhookId"]
        error = {
            "type": "CONNECTED_SERVICES_ACCOUNT",
            "code": "AUTHENTICATION_FAILED",
            "description": "Please re-authenticate.",
            "resolution": {"type": "REAUTHENTICATE", "url": REAUTHENTICATE},
        }
        await webhook(rig, hook, sc_id, {"type": "VEHICLE_ERROR", "error": error})
        for percent in (12, 9):
            await rig.advance(60)
            fuel = {"internalcombustionengine-fuellevel": {"unit": "percent", "value": percent}}
            await webhook(rig, hook, sc_id, {"type": "VEHICLE_STATE", "signals": fuel})
            await applied(rig, fuel_percent=percent)  # in this order: they travel apart

        received = await until_kinds(
            rig, 0, pb.VEHICLE_EVENT_VEHICLE_ERROR, pb.VEHICLE_EVENT_LOW_FUEL
        )

        # The account error made the car wait for its owner; Smartcar's word that it is
        # resolved makes it ACTIVE again.
        resolved = {**error, "state": "RESOLVED"}
        await webhook(rig, hook, sc_id, {"type": "VEHICLE_ERROR", "error": resolved})
        await active_again(rig)

        # The month passes 80 % of a small allowance of its own at the next command.
        await rig.sim("POST", f"/sim/vehicles/{sc_id}/state", {"door_open": False})
        panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        await rig.stub.SetRequestAllowance(
            pb.SetRequestAllowanceRequest(
                vehicle_id="car-1", monthly_allowance=panel.requests_this_month
            )
        )
        await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="lock-1"))
        await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
        received += await take(rig, pb.WatchVehicleEventsRequest(after_id=received[-1].id), 5)

        by_kind: dict[int, list[Any]] = {}
        for event in received:
            by_kind.setdefault(event.kind, []).append(event)
        ids = [e.id for e in received]
        assert ids == sorted(set(ids))
        assert [
            e.status_change.to_status for e in by_kind[pb.VEHICLE_EVENT_CONNECTION_STATUS_CHANGED]
        ] == [pb.ACTIVE, pb.NEEDS_REAUTHENTICATION, pb.ACTIVE, pb.DISCONNECTED]
        unlock, lock = by_kind[pb.VEHICLE_EVENT_LOCK_STATE_CHANGED]
        assert (unlock.lock_state.locked, unlock.lock_state.origin) == (
            False,
            pb.READING_ORIGIN_COMMAND,
        )
        assert (unlock.lock_state.request_id, unlock.rental_id) == ("unlock-1", "r-1")
        # Smartcar's webhook of the locked car may be applied before Lock's answer is: the
        # first of the two to commit the new state makes the one event.
        assert (lock.lock_state.locked, lock.rental_id) == (True, "")
        assert (lock.lock_state.origin, lock.lock_state.request_id) in {
            (pb.READING_ORIGIN_COMMAND, "lock-1"),
            (pb.READING_ORIGIN_WEBHOOK, ""),
        }
        [doors] = by_kind[pb.VEHICLE_EVENT_DOORS_OPEN_AT_RENTAL_END]
        assert doors.rental_id == "r-1"
        assert [(c.kind, c.name) for c in doors.open_at_end.open] == [
            (pb.CLOSURE_DOOR, "frontLeft")
        ]
        [final] = by_kind[pb.VEHICLE_EVENT_FINAL_READING_RECORDED]
        assert (final.rental_id, final.final_reading.state) == ("r-1", pb.FINAL_READING_RECORDED)
        account, over = by_kind[pb.VEHICLE_EVENT_VEHICLE_ERROR]
        assert (account.vehicle_error.code, account.vehicle_error.state) == (
            "AUTHENTICATION_FAILED",
            pb.VEHICLE_ERROR_ACTIVE,
        )
        assert (over.vehicle_error.code, over.vehicle_error.state) == (
            "AUTHENTICATION_FAILED",
            pb.VEHICLE_ERROR_RESOLVED,
        )
        assert (account.vehicle_error.resolution_type, account.vehicle_error.resolution_url) == (
            "REAUTHENTICATE",
            REAUTHENTICATE,
        )
        [low] = by_kind[pb.VEHICLE_EVENT_LOW_FUEL]
        assert (low.low_level.percent, low.low_level.origin) == (12, pb.READING_ORIGIN_WEBHOOK)
        [budget] = by_kind[pb.VEHICLE_EVENT_BUDGET_WARNING]
        assert budget.budget_warning.warning_percent == 80

        # Filters and a resume from the middle: exactly the rest, once each, in order.
        middle = len(received) // 2
        rest = await take(
            rig, pb.WatchVehicleEventsRequest(after_id=ids[middle]), len(ids) - middle - 1
        )
        assert [e.id for e in rest] == ids[middle + 1 :]
        statuses = pb.WatchVehicleEventsRequest(
            vehicle_ids=["car-1"], kinds=[pb.VEHICLE_EVENT_CONNECTION_STATUS_CHANGED], after_id=0
        )
        assert [e.id for e in await take(rig, statuses, 4)] == [
            e.id for e in by_kind[pb.VEHICLE_EVENT_CONNECTION_STATUS_CHANGED]
        ]
        metrics = rig.running.gateway.metrics
        assert isinstance(metrics, PrometheusMetrics)
        assert 'vehicle_gateway_vehicle_events_total{kind="LOW_FUEL"} 1.0' in (
            metrics.exposition().decode()
        )

        # A week later retention has deleted them all: resuming from 0 is refused.
        await rig.advance(8 * 86400)
        assert await rig.running.gateway.event_retention.run_once() == len(ids)
        stream = rig.stub.WatchVehicleEvents(pb.WatchVehicleEventsRequest(after_id=0))
        with pytest.raises(grpc.aio.AioRpcError) as pruned:
            await asyncio.wait_for(stream.read(), DEADLINE_S)
        assert pruned.value.code() is grpc.StatusCode.OUT_OF_RANGE
        info = error_info_of(pruned.value)
        assert (info.reason, info.metadata["resume_after_id"]) == ("EVENTS_PRUNED", str(ids[-1]))
