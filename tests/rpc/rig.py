"""A running gateway for rpc-tier tests: real gRPC server on port 0, real SQLite, the
simulator over HTTP as Smartcar, a ManualClock advanced together with the simulator's."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.simulator import SimulatorConfig, serve_simulator
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import RunningGateway, running_gateway
from gateway.edge.clock import ManualClock
from gateway.settings import Settings
from tests.instants import START_S

CLIENT_ID = "rpc-tests"
CLIENT_SECRET = "rpc-tests-secret"


@dataclass
class Rig:
    """A gateway, a stub to call it, and handles on its Smartcar and its clock."""

    stub: pb_grpc.VehicleGatewayStub
    channel: grpc.aio.Channel
    running: RunningGateway
    http: httpx.AsyncClient
    simulator_url: str
    clock: ManualClock

    async def sim(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control surface and return its JSON."""
        response = await self.http.request(method, self.simulator_url + path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def advance(self, seconds: float) -> None:
        """Move the gateway's and Smartcar's clocks forward together."""
        self.clock.advance(seconds)
        await self.sim("POST", "/sim/clock", {"advance_seconds": seconds})

    async def stats(self) -> Any:
        """Return the simulator's request and token counts."""
        return await self.sim("GET", "/sim/stats")

    async def connect(self, vehicle_id: str, **sim_params: str) -> pb.Vehicle:
        """Walk GetConnectUrl → simulated Connect → Connect for one fleet vehicle."""
        issued = await self.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
        url = issued.url + ("&" + urllib.parse.urlencode(sim_params) if sim_params else "")
        redirect = await self.http.get(url)
        assert redirect.status_code == 302, redirect.text
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
        return await self.stub.Connect(
            pb.ConnectRequest(
                vehicle_id=vehicle_id,
                code=query["code"][0],
                state=issued.state,
                user_id=query["user_id"][0],
            )
        )

    async def telemetry(self, vehicle_id: str, *, max_age_s: int | None = None) -> pb.Telemetry:
        """Read every field of a vehicle, no older than `max_age_s` when given."""
        request = pb.GetTelemetryRequest(vehicle_id=vehicle_id)
        if max_age_s is not None:
            request.max_age.CopyFrom(duration_pb2.Duration(seconds=max_age_s))
        return await self.stub.GetTelemetry(request)


def gateway_settings(tmp_path: Path, **environment: str) -> Settings:
    """Settings for a gateway on port 0 with its state under `tmp_path`, on the test's
    database (SQLite there, or the PostgreSQL database tests/rpc/conftest.py made)."""
    env = {
        "VG_VAR_DIR": str(tmp_path / "var"),
        **({"VG_DATABASE_URL": url} if (url := os.environ.get("VG_DATABASE_URL")) else {}),
        "VG_LISTEN": "127.0.0.1:0",
        # These rigs test v2 connections (owner pairs, refresh, batches), which a fleet
        # keeps while it migrates; tests of API V3 ask for it (`VG_SMARTCAR_API=v3`).
        "VG_SMARTCAR_API": "v2",
        # Background jobs are tested directly; here they would race the upstream counts.
        "VG_SCHEDULER_INTERVAL_S": "0",
        "VG_RENEWAL_INTERVAL_S": "0",
        "VG_AUDIT_RETENTION_INTERVAL_S": "0",
        "VG_EVENT_RETENTION_INTERVAL_S": "0",
        **environment,
    }
    return Settings.from_env(env)


def pointed_at(settings: Settings, simulator_url: str) -> Settings:
    """Return `settings` with Smartcar set to the simulator at `simulator_url`."""
    smartcar = {
        **settings.smartcar,
        "SMARTCAR_API_ORIGIN": simulator_url,
        "SMARTCAR_AUTH_ORIGIN": simulator_url + "/oauth/token",
        "SMARTCAR_CONNECT_ORIGIN": simulator_url,
        "SMARTCAR_MANAGEMENT_API_ORIGIN": simulator_url,
        "SMARTCAR_VEHICLE_API_V3_ORIGIN": simulator_url,
        "SMARTCAR_IAM_ORIGIN": simulator_url,
        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": simulator_url,
        "SMARTCAR_CLIENT_ID": CLIENT_ID,
        "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET,
        "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
    }
    return replace(settings, smartcar=smartcar, smartcar_mode="simulated")


@asynccontextmanager
async def gateway_against(
    settings: Settings, simulator_url: str, clock: ManualClock
) -> AsyncIterator[Rig]:
    """Run a gateway pointed at a simulator through the SDK's SMARTCAR_* variables."""
    async with (
        running_gateway(pointed_at(settings, simulator_url), clock=clock) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        httpx.AsyncClient(timeout=10) as http,
    ):
        yield Rig(
            stub=pb_grpc.VehicleGatewayStub(channel),
            channel=channel,
            running=running,
            http=http,
            simulator_url=simulator_url,
            clock=clock,
        )


@asynccontextmanager
async def simulator(**overrides: Any) -> AsyncIterator[str]:
    """Serve a fast simulator for the gateway's credentials; yield its URL."""
    settings: dict[str, Any] = {"start_at_s": START_S, **overrides}
    config = SimulatorConfig.fast(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **settings)
    async with serve_simulator(config) as sim:
        yield sim.base_url


def status_of(error: grpc.aio.AioRpcError) -> Any:
    """Return the google.rpc.Status (with details) carried by a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries no rich status"
    return status


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """Return the ErrorInfo detail of a failed call."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            return error_details_pb2.ErrorInfo.FromString(packed.value)
    raise AssertionError("the error carries no ErrorInfo")


def fresh_odometer(vehicle_id: str) -> pb.GetTelemetryRequest:
    """A read of the odometer that must come from Smartcar (max_age 0)."""
    return pb.GetTelemetryRequest(
        vehicle_id=vehicle_id,
        fields=[pb.TelemetryField.ODOMETER],
        max_age=duration_pb2.Duration(seconds=0),
    )
