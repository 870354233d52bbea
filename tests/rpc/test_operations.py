"""Operations: owner-only files under VG_VAR_DIR, the audit retention job, and the loopback
health port container probes use."""

from __future__ import annotations

import asyncio
import logging
import stat
import time
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import _security, running_gateway
from gateway.core.audit import AuditTrail
from gateway.core.model import AuditQuery
from gateway.edge.clock import ManualClock
from gateway.settings import SettingsError
from tests.instants import START as T0
from tests.rpc.rig import gateway_against, gateway_settings, simulator
from tests.rpc.secure_rig import POLICY

DAY_S = 86_400


def modes(var: Path) -> dict[str, int]:
    """Return the permission bits of `var` and of everything directly in it, by name."""
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [var, *var.iterdir()]}


@pytest.mark.sqlite_only
async def test_the_var_dir_is_owner_only_and_open_files_are_tightened_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway makes VG_VAR_DIR 0700 and the database, its -wal and -shm and the
    development key 0600; a var dir left world-readable (0755, files 0644) is tightened at
    the next start, with a warning naming each path."""
    var = tmp_path / "var"
    settings = gateway_settings(tmp_path)
    async with simulator() as url:
        async with gateway_against(settings, url, ManualClock(T0)):
            created = modes(var)
        assert {"gateway.db", "gateway.db-wal", "gateway.db-shm", "dev-token-key"} <= set(created)
        assert created.pop("var") == 0o700
        assert created == dict.fromkeys(created, 0o600)

        var.chmod(0o755)
        for path in var.iterdir():
            path.chmod(0o644)
        caplog.set_level(logging.WARNING)
        async with gateway_against(settings, url, ManualClock(T0)):
            tightened = modes(var)
    assert tightened.pop("var") == 0o700
    assert tightened == dict.fromkeys(tightened, 0o600)
    warned = {
        Path(r.path).name  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "event", None) == "permissions_tightened"
    }
    assert {"var", "gateway.db", "dev-token-key"} <= warned


async def record(trail: AuditTrail, request_id: str) -> None:
    """Record one Unlock of car-1 under `request_id`, stamped by the trail's clock."""
    await trail.record(
        caller="rental-service",
        method="Unlock",
        vehicle_id="car-1",
        request_id=request_id,
        outcome="OK",
        duration_ms=1.0,
    )


async def test_the_audit_retention_job_deletes_what_is_older_than_the_retention(
    tmp_path: Path,
) -> None:
    """A gateway with VG_AUDIT_RETENTION_DAYS=30 deletes, in its leased background job, the
    entries its clock says are older than 30 days, and keeps the younger ones."""
    clock = ManualClock(T0)
    async with simulator() as url:
        async with gateway_against(gateway_settings(tmp_path), url, clock) as rig:
            await record(rig.running.gateway.audit, "old")
            clock.advance(25 * DAY_S)
            await record(rig.running.gateway.audit, "recent")
        clock.advance(10 * DAY_S)  # "old" is 35 days old now, "recent" 10
        settings = gateway_settings(
            tmp_path, VG_AUDIT_RETENTION_DAYS="30", VG_AUDIT_RETENTION_INTERVAL_S="3600"
        )
        async with gateway_against(settings, url, clock) as rig:
            trail = rig.running.gateway.audit
            deadline = time.monotonic() + 20
            while [e.request_id for e in await trail.find(AuditQuery())] != ["recent"]:
                assert time.monotonic() < deadline, "the retention job did not run"
                await asyncio.sleep(0.02)  # polling the job's effect, with a deadline


async def test_the_health_port_answers_health_alone_without_credentials(tmp_path: Path) -> None:
    """With a policy, the loopback health port answers Health/Check with no credentials,
    from the same statuses as the gRPC port (NOT_SERVING once shutdown begins), and
    serves nothing else."""
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(
        tmp_path, VG_ACCESS_POLICY=str(tmp_path / "policy.toml"), VG_HEALTH_LISTEN="127.0.0.1:0"
    )
    async with simulator() as url, gateway_against(settings, url, ManualClock(T0)) as rig:
        port = rig.running.health_port
        assert port is not None
        assert port != rig.running.port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as other:
                await pb_grpc.VehicleGatewayStub(channel).GetVehicle(
                    pb.GetVehicleRequest(vehicle_id="car-1"), timeout=5
                )
            assert other.value.code() is grpc.StatusCode.UNIMPLEMENTED
            await rig.running.health.enter_graceful_shutdown()
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_the_health_port_must_be_loopback(tmp_path: Path) -> None:
    """It asks nobody who they are, so VG_HEALTH_LISTEN on another address stops start-up."""
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(
        tmp_path, VG_ACCESS_POLICY=str(tmp_path / "policy.toml"), VG_HEALTH_LISTEN="0.0.0.0:0"
    )
    with pytest.raises(SettingsError, match="VG_HEALTH_LISTEN must be a loopback address"):
        async with running_gateway(settings, clock=ManualClock(T0)):
            pass


def test_an_exposed_health_port_may_take_any_address(tmp_path: Path) -> None:
    """With VG_HEALTH_EXPOSE=on the start-up check lets the health port bind a non-loopback
    address (Kubernetes' grpc probes come to the pod's IP); what it serves is the same
    health-only server as above. Checked without binding: the tests use loopback alone."""
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(
        tmp_path,
        VG_ACCESS_POLICY=str(tmp_path / "policy.toml"),
        VG_HEALTH_LISTEN="0.0.0.0:50052",
        VG_HEALTH_EXPOSE="on",
    )
    guard, credentials = _security(settings)
    assert not guard.development
    assert credentials is None
