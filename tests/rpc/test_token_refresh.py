"""Token refresh against the simulator over HTTP when Smartcar's answer is lost on the way
back: the refresh token was spent, and only a retry inside the 60 s grace saves the pair."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from gateway.settings import Settings
from tests.rpc.rig import fresh_odometer, gateway_against, gateway_settings, simulator

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def without_retry_waits(settings: Settings) -> Settings:
    """Return `settings` whose rotation retries a lost answer at once (no real wait)."""
    rotation = dataclasses.replace(settings.policies.rotation, retry_backoff_s=0.0)
    policies = dataclasses.replace(settings.policies, rotation=rotation)
    return dataclasses.replace(settings, policies=policies)


async def test_a_refresh_whose_connection_was_reset_is_retried_inside_the_grace(
    tmp_path: Path,
) -> None:
    """Smartcar rotates the pair, then resets the connection before answering: the read
    still succeeds (the same refresh token, presented again inside the grace, mints a
    pair), and minutes later the car is ACTIVE, readable, and nothing was ever refused."""
    clock = ManualClock(START)
    settings = without_retry_waits(gateway_settings(tmp_path))
    async with simulator() as url, gateway_against(settings, url, clock) as rig:
        await rig.connect("car-1")
        await rig.advance(2 * 3600)
        await rig.sim("POST", "/sim/faults", {"kind": "reset", "path": "token", "count": 1})
        telemetry = await rig.stub.GetTelemetry(fresh_odometer("car-1"))
        assert [r.availability for r in telemetry.readings] == [pb.AVAILABLE]
        await rig.advance(5 * 60)
        await rig.stub.GetTelemetry(fresh_odometer("car-1"))
        vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        stats = await rig.stats()
    assert vehicle.status == pb.ACTIVE
    assert stats["faults_injected"]["reset"] == 1
    assert stats["token_grants"]["refresh_token"] == 2
    assert stats["refresh_token_reuses"] == 1
    assert not any(stats["token_rejections"].values())
