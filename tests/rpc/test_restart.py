"""A gateway restarted over the same var directory: with its embedded simulator, connected
cars stay connected (the simulator keeps its state in VG_VAR_DIR/simulator.json)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc.aio
import httpx
import pytest

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import running_gateway
from gateway.edge.clock import ManualClock
from gateway.settings import Settings, SettingsError
from tests.rpc.rig import Rig, fresh_odometer, gateway_settings

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def embedded(settings: Settings, clock: ManualClock) -> AsyncIterator[Rig]:
    """Run a gateway with its embedded simulator (no SMARTCAR_API_ORIGIN) until the block ends."""
    assert settings.embedded_simulator
    async with (
        running_gateway(settings, clock=clock) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        httpx.AsyncClient(timeout=10) as http,
    ):
        assert running.simulator_url is not None
        yield Rig(
            stub=pb_grpc.VehicleGatewayStub(channel),
            channel=channel,
            running=running,
            http=http,
            simulator_url=running.simulator_url,
            clock=clock,
        )


async def test_connected_cars_survive_a_restart_with_the_embedded_simulator(
    tmp_path: Path,
) -> None:
    """Connect, stop, start again over the same var dir: the car is ACTIVE, its stored
    access token reads, Unlock works, its refresh token still refreshes; the state file is
    0600."""
    settings = gateway_settings(tmp_path, VG_SIMULATOR_COMMAND_LATENCY_S="0")
    async with embedded(settings, ManualClock(START)) as first:
        connected = await first.connect("car-1")
        assert connected.status == pb.ACTIVE
        locked = await first.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="lock-1"))
        assert locked.state == pb.SUCCEEDED

    clock = ManualClock(START)
    async with embedded(settings, clock) as second:
        reading = await second.stub.GetTelemetry(fresh_odometer("car-1"))
        assert reading.readings[0].odometer.distance_km > 0
        unlocked = await second.stub.Unlock(
            pb.UnlockRequest(vehicle_id="car-1", request_id="unlock-1")
        )
        assert unlocked.state == pb.SUCCEEDED
        clock.advance(3 * 3600)  # the gateway's access token is now due: it refreshes
        assert (await second.stub.GetTelemetry(fresh_odometer("car-1"))).readings
        stats = await second.stats()
        assert stats["token_grants"]["refresh_token"] == 1
        panel = await second.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        assert panel.status == pb.ACTIVE
        assert panel.vin == connected.vin
    state = tmp_path / "var" / "simulator.json"  # it holds tokens: the owner's alone
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


async def test_an_unreadable_simulator_state_stops_the_start_naming_the_file(
    tmp_path: Path,
) -> None:
    """A simulator.json that is not a simulator state is a configuration error naming the
    file and what to do (serve exits 2 with that line), not a traceback or a fresh start."""
    settings = gateway_settings(tmp_path)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    (settings.var_dir / "simulator.json").write_text("{not json")
    with pytest.raises(SettingsError, match=r"simulator\.json.*delete the file"):
        async with running_gateway(settings, clock=ManualClock(START)):
            pass
