"""Benchmark: what reaches Smartcar, and what the gateway adds to a command.

1. 1,000 concurrent GetTelemetry calls for one vehicle the gateway holds no reading of
   (just connected), each accepting values up to `--max-age-s` old (300): how many requests
   reach the simulator (target: 1; the rest wait for that one answer). The `max_age` is
   far longer than the burst lasts, so a slow machine cannot turn the late readers' own
   judgement of freshness into a second request: what is counted is coalescing alone.
2. Lock/Unlock through the gateway with the simulator's command latency set to
   `--command-latency-s`, each followed by the same command sent straight to the simulator
   with the gateway's own Smartcar client (`clients.smartcar.v3`, its HTTP client, an
   application token of its own): what the gateway adds is the difference of the two
   latencies' percentiles (target p99 ≤ 2 ms), sequential calls on a few cars (the per-car
   command bucket is opened up for this). `--backend postgresql` runs the gateway on a
   throwaway PostgreSQL cluster instead of its embedded SQLite.

The simulator runs as its own process (`vehicle-gateway simulator`), the gateway as
`vehicle-gateway serve` pointed at it, both on loopback; this process is the client.

    .venv/bin/python -m bench.upstream_effects [--readers 1000] [--commands 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import grpc.aio
import httpx
from google.protobuf import duration_pb2

from bench import _stack
from clients.smartcar.secret import Secret
from clients.smartcar.v3 import (
    ApplicationCredentials,
    SmartcarIAM,
    SmartcarVehiclesV3,
    V3Endpoints,
)
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from tests.services import PostgresCluster

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--command-latency-s", type=float, default=0.2)
    parser.add_argument("--cars", type=int, default=4)
    parser.add_argument("--max-age-s", type=int, default=300, help="the readers' max_age")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    return parser.parse_args()


async def main() -> None:
    """Run both measurements and print their tables."""
    args = parse()
    with contextlib.ExitStack() as stack:
        database: dict[str, str] = {}
        if args.backend == "postgresql":
            # Not under a private temporary directory: the server runs as `postgres` when
            # this runs as root, and must reach its directory.
            pg_dir = Path(tempfile.mkdtemp(prefix="vg-bench-postgres-"))
            stack.callback(shutil.rmtree, pg_dir, ignore_errors=True)
            # Durable: each commit flushed, as in production; what a command's two durability
            # points cost is part of what is measured.
            cluster = stack.enter_context(PostgresCluster.start(pg_dir, durable=True))
            database["VG_DATABASE_URL"] = cluster.create_database("bench_commands")
        await measure(args, database)


async def measure(args: argparse.Namespace, database: dict[str, str]) -> None:
    """Start the simulator and the gateway (on `database`, else its SQLite), measure."""
    env = {"SMARTCAR_CLIENT_ID": CLIENT_ID, "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET}
    simulator = _stack.start(
        [str(_stack.BIN / "vehicle-gateway"), "simulator", "--port", "0", "--no-limits"],
        "simulator_started",
        env,
        cpu=1,
    )
    url = str(simulator.started["url"])
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await http.post(
                url + "/sim/config",
                json={"read_latency_s": 0.05, "command_latency_s": args.command_latency_s},
            )
            with tempfile.TemporaryDirectory() as var:
                gateway, port = await _stack.gateway(
                    {
                        **env,
                        "VG_VAR_DIR": var,
                        "VG_SCHEDULER_INTERVAL_S": "0",
                        "VG_LOG_LEVEL": "WARNING",
                        # The gateway's own buckets opened up: what is measured is the path.
                        "VG_VEHICLE_COMMANDS": "100000/0.001",
                        "VG_APP_REQUESTS": "100000/0.001",
                        "VG_SMARTCAR_MODE": "simulated",
                        "SMARTCAR_API_ORIGIN": url,
                        "SMARTCAR_AUTH_ORIGIN": url + "/oauth/token",
                        "SMARTCAR_CONNECT_ORIGIN": url,
                        "SMARTCAR_VEHICLE_API_V3_ORIGIN": url,
                        "SMARTCAR_IAM_ORIGIN": url,
                        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": url,
                        "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
                        **database,
                    },
                    cpu=0,
                )
                try:
                    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                        stub = pb_grpc.VehicleGatewayStub(channel)
                        await coalescing(stub, http, url, args)
                        await commands(stub, url, args, gateway_pid=gateway.pid)
                finally:
                    gateway.stop()
    finally:
        simulator.stop()


async def batches(http: httpx.AsyncClient, url: str) -> int:
    """How many telemetry reads the simulator has served: v2 batches and V3 /signals."""
    served = (await http.get(url + "/sim/stats")).json()["requests"]["by_endpoint"]
    return int(served.get("batch", 0)) + int(served.get("v3/signals", 0))


async def coalescing(
    stub: pb_grpc.VehicleGatewayStub, http: httpx.AsyncClient, url: str, args: argparse.Namespace
) -> None:
    """1,000 concurrent reads of a car with nothing cached → upstream requests."""
    await _stack.connect(stub, "car-0")
    read = pb.GetTelemetryRequest(
        vehicle_id="car-0", max_age=duration_pb2.Duration(seconds=args.max_age_s)
    )
    before = await batches(http, url)
    began = time.perf_counter()
    answers = await asyncio.gather(
        *(stub.GetTelemetry(read) for _ in range(args.readers)), return_exceptions=True
    )
    burst_s = time.perf_counter() - began
    upstream = await batches(http, url) - before
    failed = sum(isinstance(a, BaseException) for a in answers)
    _stack.table(
        f"{args.readers:,} concurrent reads of one vehicle with nothing cached "
        f"(max_age {args.max_age_s} s)",
        [
            ("requests reaching Smartcar", f"{upstream} (target 1)"),
            ("reads answered", f"{args.readers - failed:,} (failed {failed})"),
            ("burst lasted", f"{burst_s:.2f} s"),
        ],
    )


async def commands(
    stub: pb_grpc.VehicleGatewayStub, url: str, args: argparse.Namespace, *, gateway_pid: int
) -> None:
    """Lock/Unlock through the gateway against the same commands sent straight to the
    simulator with the gateway's own Smartcar client (its HTTP client and token): the
    difference is what the gateway adds. The two kinds of call alternate, so both see the
    same machine. The gateway's CPU over the whole loop, per command through it, is
    reported beside (the direct calls cost it nothing)."""
    cars = [await _stack.connect(stub, f"car-{n}") for n in range(1, args.cars + 1)]
    async with httpx.AsyncClient(timeout=30) as http:
        endpoints = V3Endpoints(vehicle_origin=url, iam_origin=url, management_origin=url)
        iam = SmartcarIAM(
            http=http,
            credentials=ApplicationCredentials(
                client_id=CLIENT_ID, client_secrets=(Secret(CLIENT_SECRET),)
            ),
            endpoints=endpoints,
        )
        token = (await iam.request_token()).token.access_token
        direct_client = SmartcarVehiclesV3(http=http, endpoints=endpoints)
        through: list[float] = []
        direct: list[float] = []
        cpu_before = _stack.cpu_seconds(gateway_pid)
        for n in range(args.commands):
            car = cars[n % len(cars)]
            request_id = f"bench-{uuid.uuid4()}"
            began = time.perf_counter()
            if n % 2:
                await stub.Lock(pb.LockRequest(vehicle_id=car.vehicle_id, request_id=request_id))
            else:
                await stub.Unlock(
                    pb.UnlockRequest(vehicle_id=car.vehicle_id, request_id=request_id)
                )
            through.append(time.perf_counter() - began)
            send = direct_client.lock if n % 2 else direct_client.unlock
            began = time.perf_counter()
            await send(token, car.smartcar_vehicle_id, user_id=car.smartcar_user_id)
            direct.append(time.perf_counter() - began)
        cpu_per_command = (_stack.cpu_seconds(gateway_pid) - cpu_before) / args.commands

    def ms(values: list[float], q: float) -> float:
        return _stack.percentile(values, q) * 1000

    _stack.table(
        f"Lock/Unlock: {args.commands} sequential commands through the gateway, each followed "
        f"by one sent straight to the simulator (latency {args.command_latency_s * 1000:.0f} ms)",
        [
            (
                "straight to the simulator p50 / p99",
                f"{ms(direct, 50):.2f} / {ms(direct, 99):.2f} ms",
            ),
            ("through the gateway p50 / p99", f"{ms(through, 50):.2f} / {ms(through, 99):.2f} ms"),
            ("added p50", f"{ms(through, 50) - ms(direct, 50):.2f} ms"),
            ("added p99", f"{ms(through, 99) - ms(direct, 99):.2f} ms (target ≤ 2 ms)"),
            ("gateway CPU per command", f"{cpu_per_command * 1000:.2f} ms"),
        ],
    )


if __name__ == "__main__":
    _stack.run(main)
