"""Real processes for multi-replica tests: the simulator and gateway replicas, each a
`vehicle-gateway` command of its own, all on loopback, sharing one PostgreSQL database.

Everything is asyncio-driven (asyncio subprocesses, grpc.aio, httpx.AsyncClient), so the
test never blocks while a replica starts or dies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc.aio
import httpx

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc

CLI = str(Path(sys.executable).parent / "vehicle-gateway")
CLIENT_ID, CLIENT_SECRET = "replica-tests", "replica-tests-secret"
TOKEN_KEYS = "r1:" + base64.urlsafe_b64encode(b"r" * 32).decode().rstrip("=")
START_TIMEOUT_S = 30.0


async def _started(process: asyncio.subprocess.Process, event: str) -> dict[str, Any]:
    """Read the process's JSON log lines until `event`; return that record."""
    assert process.stderr is not None
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            line = await process.stderr.readline()
            if not line:
                raise AssertionError(f"the process exited before {event}")
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == event:
                    return dict(record)


async def _drain(process: asyncio.subprocess.Process) -> None:
    """Keep reading a process's stderr so its pipe never fills up."""
    assert process.stderr is not None
    while await process.stderr.readline():
        pass


@dataclass
class Simulator:
    """A `vehicle-gateway simulator` process and a client for its control API."""

    process: asyncio.subprocess.Process
    url: str
    http: httpx.AsyncClient

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API; return its JSON."""
        response = await self.http.request(method, self.url + path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def refresh_grants(self) -> int:
        """How many refresh_token grants the simulator has answered."""
        stats = await self.control("GET", "/sim/stats")
        return int(stats["token_grants"].get("refresh_token", 0))

    async def batches(self) -> int:
        """How many batch (telemetry) requests the simulator has answered."""
        stats = await self.control("GET", "/sim/stats")
        return int(stats["requests"]["by_endpoint"].get("batch", 0))


@dataclass
class Replica:
    """One `vehicle-gateway serve` process and a stub to call it."""

    name: str
    process: asyncio.subprocess.Process
    channel: grpc.aio.Channel
    stub: pb_grpc.VehicleGatewayStub
    drain: asyncio.Task[None] = field(repr=False)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and close the channel."""
        await self.channel.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await self.process.wait()
            except TimeoutError:
                self.kill()
                await self.process.wait()
        self.drain.cancel()


@dataclass
class Fleet:
    """A simulator, a database, and the replicas started on them."""

    simulator: Simulator
    database_url: str
    var_dir: Path
    environment: Mapping[str, str]
    replicas: list[Replica] = field(default_factory=list)

    async def start_replica(self, name: str) -> Replica:
        """Start one more gateway replica on the shared database; wait until it serves."""
        env = {
            **os.environ,
            "VG_LISTEN": "127.0.0.1:0",
            "VG_VAR_DIR": str(self.var_dir / name),
            "VG_DATABASE_URL": self.database_url,
            "VG_TOKEN_KEYS": TOKEN_KEYS,
            "VG_SCHEDULER_INTERVAL_S": "0",
            "VG_RENEWAL_INTERVAL_S": "0",
            "VG_SMARTCAR_MODE": "simulated",
            # v2 connections (owner pairs rotated once across replicas) unless a test asks
            # for API V3 (`VG_SMARTCAR_API=v3` in its environment).
            "VG_SMARTCAR_API": "v2",
            "SMARTCAR_API_ORIGIN": self.simulator.url,
            "SMARTCAR_AUTH_ORIGIN": self.simulator.url + "/oauth/token",
            "SMARTCAR_CONNECT_ORIGIN": self.simulator.url,
            "SMARTCAR_VEHICLE_API_V3_ORIGIN": self.simulator.url,
            "SMARTCAR_IAM_ORIGIN": self.simulator.url,
            "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": self.simulator.url,
            "SMARTCAR_CLIENT_ID": CLIENT_ID,
            "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET,
            "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
            **self.environment,
        }
        process = await asyncio.create_subprocess_exec(
            CLI, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            started = await _started(process, "gateway_started")
        except BaseException:
            # Not a replica of the fleet yet, so nothing else would ever stop it.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{started['port']}")
        replica = Replica(
            name=name,
            process=process,
            channel=channel,
            stub=pb_grpc.VehicleGatewayStub(channel),
            drain=asyncio.create_task(_drain(process)),
        )
        self.replicas.append(replica)
        return replica

    async def connect(self, replica: Replica, vehicle_id: str) -> pb.Vehicle:
        """GetConnectUrl → simulated Connect → Connect, through one replica."""
        issued = await replica.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
        redirect = await self.simulator.http.get(issued.url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
        request = pb.ConnectRequest(
            vehicle_id=vehicle_id,
            code=query["code"][0],
            state=issued.state,
            user_id=query["user_id"][0],
        )
        return await replica.stub.Connect(request)


@contextlib.asynccontextmanager
async def fleet(database_url: str, var_dir: Path, **environment: str) -> AsyncIterator[Fleet]:
    """Start a simulator process; yield a Fleet to start replicas on; stop everything."""
    env = {**os.environ, "SMARTCAR_CLIENT_ID": CLIENT_ID, "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET}
    process = await asyncio.create_subprocess_exec(
        CLI,
        "simulator",
        "--port",
        "0",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain: asyncio.Task[None] | None = None
    try:
        started = await _started(process, "simulator_started")
        drain = asyncio.create_task(_drain(process))
        async with httpx.AsyncClient(timeout=10) as http:
            simulator = Simulator(process=process, url=str(started["url"]), http=http)
            # No latency and no per-vehicle limit at "Smartcar": the gateway's own limits
            # are what these tests are about.
            quick = {"read_latency_s": 0, "command_latency_s": 0, "vehicle_rate_limit": None}
            await simulator.control("POST", "/sim/config", quick)
            running = Fleet(
                simulator=simulator,
                database_url=database_url,
                var_dir=var_dir,
                environment=environment,
            )
            try:
                yield running
            finally:
                for replica in running.replicas:
                    await replica.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        await process.wait()
        if drain is not None:
            drain.cancel()
