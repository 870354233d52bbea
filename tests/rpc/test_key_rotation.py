"""Key rotation while the gateway serves: a new active key, re-encryption in batches racing
reads that refresh tokens, and nothing lost."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.cli import main as cli_main
from gateway.edge.clock import ManualClock
from gateway.edge.grpc.server import SERVICE_NAME
from gateway.settings import SettingsError
from storage.crypto import Keyring, TokenCipher
from storage.database import create_engine
from storage.keys import key_usage, reencrypt
from tests.instants import START
from tests.rpc.rig import (
    Rig,
    error_info_of,
    fresh_odometer,
    gateway_against,
    gateway_settings,
    simulator,
)

OLD = "old:" + base64.urlsafe_b64encode(b"o" * 32).decode().rstrip("=")
NEW = "new:" + base64.urlsafe_b64encode(b"n" * 32).decode().rstrip("=")
CARS = [f"car-{n}" for n in range(6)]


async def test_rotating_keys_under_load_loses_no_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cars connected under `old`; the gateway restarts with `new` active (and `old` still
    known); re-encryption one row at a time races reads that rotate tokens. Afterwards
    every pair is under `new`, every car is ACTIVE and readable, no refresh was refused,
    and `keys status` says `old` may be retired."""
    clock = ManualClock(START)
    database = gateway_settings(tmp_path).resolved_database_url
    async with simulator() as url:
        old_only = gateway_settings(tmp_path, VG_TOKEN_KEYS=OLD)
        async with gateway_against(old_only, url, clock) as rig:
            for car in CARS:
                await rig.connect(car)
        engine = create_engine(database)
        try:
            assert await key_usage(engine) == {"old": len(CARS)}
            rolled = gateway_settings(tmp_path, VG_TOKEN_KEYS=f"{NEW},{OLD}")
            async with gateway_against(rolled, url, clock) as rig:

                async def load() -> int:
                    reads = 0
                    for _ in range(12):
                        await rig.advance(50 * 60)  # tokens age past their 2 h now and then
                        for car in CARS:
                            await rig.stub.GetTelemetry(fresh_odometer(car))
                            reads += 1
                    return reads

                async def rotate() -> int:
                    cipher = TokenCipher(Keyring.from_config(f"{NEW},{OLD}"))
                    report = await reencrypt(engine, cipher, batch_size=1)
                    return report.reencrypted

                reads, reencrypted = await asyncio.gather(load(), rotate())
                assert reads == 12 * len(CARS)
                assert reencrypted > 0
                for car in CARS:
                    vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id=car))
                    assert vehicle.status == pb.ConnectionStatus.ACTIVE
                    await rig.advance(20)
                    await rig.stub.GetTelemetry(fresh_odometer(car))
                stats = await rig.stats()
            assert await key_usage(engine) == {"new": len(CARS)}
        finally:
            await engine.dispose()
    assert stats["token_grants"]["refresh_token"] > 0
    assert not any("invalid_grant" in key for key in stats.get("errors", {}))

    monkeypatch.setenv("VG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VG_TOKEN_KEYS", f"{NEW},{OLD}")
    assert await asyncio.to_thread(cli_main, ["keys", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {
        "active": "new",
        "keys": {"new": len(CARS)},
        "retirable": ["old"],
        "missing": [],
    }


async def test_keys_generate_prints_a_usable_entry(capsys: pytest.CaptureFixture[str]) -> None:
    """`keys generate` prints an entry VG_TOKEN_KEYS accepts, with the id asked for."""
    assert await asyncio.to_thread(cli_main, ["keys", "generate", "--id", "k2027"]) == 0
    entry = capsys.readouterr().out.strip()
    assert Keyring.from_config(entry).active_key_id == "k2027"


async def test_a_key_still_in_use_cannot_be_retired(tmp_path: Path) -> None:
    """Pairs stored under `old`: a gateway configured with `new` alone refuses to start,
    naming the missing key, instead of losing those connections at their next use."""
    clock = ManualClock(START)
    async with simulator() as url:
        async with gateway_against(
            gateway_settings(tmp_path, VG_TOKEN_KEYS=OLD), url, clock
        ) as rig:
            await rig.connect("car-1")
        retired_too_soon = gateway_settings(tmp_path, VG_TOKEN_KEYS=NEW)
        with pytest.raises(SettingsError, match="lacks key\\(s\\) old, still used by 1"):
            async with gateway_against(retired_too_soon, url, clock):
                pass


async def health_of(rig: Rig) -> list[int]:
    """Return the health statuses a replica reports for the server and for the gateway."""
    stub = health_pb2_grpc.HealthStub(rig.channel)
    answers = [
        await stub.Check(health_pb2.HealthCheckRequest(service=name)) for name in ("", SERVICE_NAME)
    ]
    return [answer.status for answer in answers]


async def test_a_replica_lacking_a_newly_rotated_key_answers_key_unavailable_and_drains(
    tmp_path: Path,
) -> None:
    """Replica A knows only `old`; replica B, on the same database, already encrypts with
    `new`. A car connected through B: A answers UNAVAILABLE with reason KEY_UNAVAILABLE
    naming the key (never INTERNAL) and reports NOT_SERVING, while B serves the car."""
    clock = ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    stale_settings = gateway_settings(tmp_path, VG_TOKEN_KEYS=OLD)
    rolled_settings = gateway_settings(tmp_path, VG_TOKEN_KEYS=f"{NEW},{OLD}")
    async with (
        simulator() as url,
        gateway_against(stale_settings, url, clock) as stale,
        gateway_against(rolled_settings, url, clock) as rolled,
    ):
        serving = health_pb2.HealthCheckResponse.SERVING
        assert await health_of(stale) == [serving, serving]
        await rolled.connect("car-1")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stale.stub.GetTelemetry(fresh_odometer("car-1"))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        info = error_info_of(refused.value)
        assert (info.reason, info.metadata["key_id"]) == ("KEY_UNAVAILABLE", "new")
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert await health_of(stale) == [not_serving, not_serving]
        assert await health_of(rolled) == [serving, serving]
        await rolled.stub.GetTelemetry(fresh_odometer("car-1"))
