"""Benchmark: what a flood of unauthenticated calls costs the callers that are let in.

A `vehicle-gateway serve` (embedded simulator, SQLite, an access policy, plaintext on
loopback with bearer tokens) pinned to CPU 0; the load client on CPU 1. The rental service
connects car-1, then times StartRental (each followed by EndRental) alone, and again while
`--flood` Unlock calls without credentials arrive `--concurrency` at a time. Reported:
StartRental p50/p99 in both phases, the flood's rate, and the audit rows the gateway
wrote (counted in its SQLite file).

    .venv/bin/python -m bench.refusal_flood [--flood 3000] [--concurrency 50] [--rentals 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sqlite3
import tempfile
import time
from pathlib import Path

import grpc.aio

from bench import _stack
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc

TOKEN = "bench-rental-token-0123456789"  # noqa: S105 - a throwaway token for a benchmark
POLICY = f"""
[roles.rental]
methods = ["*"]

[[callers]]
name = "rental-service"
roles = ["rental"]
token_sha256 = ["{hashlib.sha256(TOKEN.encode()).hexdigest()}"]
"""


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rentals", type=int, default=60)
    return parser.parse_args()


async def rentals(stub: pb_grpc.VehicleGatewayStub, count: int, tag: str) -> list[float]:
    """Start and end `count` rentals of car-1; return the StartRental latencies."""
    auth = (("authorization", f"Bearer {TOKEN}"),)
    latencies = []
    for n in range(count):
        rental = f"{tag}-{n}"
        began = time.perf_counter()
        await stub.StartRental(
            pb.StartRentalRequest(vehicle_id="car-1", rental_id=rental), metadata=auth
        )
        latencies.append(time.perf_counter() - began)
        ending = pb.EndRentalRequest(vehicle_id="car-1", rental_id=rental)
        await stub.EndRental(ending, metadata=auth)
    return latencies


async def flood(stub: pb_grpc.VehicleGatewayStub, calls: int, concurrency: int) -> float:
    """Send `calls` Unlocks without credentials; return the seconds it took."""
    request = pb.UnlockRequest(vehicle_id="car-1", request_id="flood")
    _, seconds, _ = await _stack.drive(
        lambda: stub.Unlock(request), requests=calls, concurrency=concurrency
    )
    return seconds


def audit_rows(database: Path) -> int:
    """Count the audit entries the gateway stored in its SQLite database."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        (count,) = connection.execute("SELECT count(*) FROM audit_log").fetchone()
    return int(count)


async def main() -> None:
    """Measure StartRental alone and under the flood; print both."""
    args = parse()
    _stack.pin(1)
    with tempfile.TemporaryDirectory() as var:
        policy = Path(var) / "policy.toml"
        policy.write_text(POLICY)
        env = {
            "VG_VAR_DIR": str(Path(var) / "state"),
            "VG_ACCESS_POLICY": str(policy),
            "VG_LISTEN": "127.0.0.1:0",
            "VG_SCHEDULER_INTERVAL_S": "0",
            "VG_SIMULATOR_COMMAND_LATENCY_S": "0",
        }
        gateway = _stack.start(
            [str(_stack.BIN / "vehicle-gateway"), "serve"], "gateway_started", env, cpu=0
        )
        try:
            port = gateway.started["port"]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.VehicleGatewayStub(channel)
                await _connect(stub)
                await rentals(stub, 5, "warm")
                alone = await rentals(stub, args.rentals, "alone")
                flooding = asyncio.create_task(flood(stub, args.flood, args.concurrency))
                during = await rentals(stub, args.rentals, "during")
                flood_s = await flooding
        finally:
            gateway.stop()
        rows = audit_rows(Path(var) / "state" / "gateway.db")

    def ms(values: list[float], q: float) -> str:
        return f"{_stack.percentile(values, q) * 1000:.1f} ms"

    _stack.table(
        f"StartRental under {args.flood:,} unauthenticated Unlocks ({args.concurrency} in flight)",
        [
            ("StartRental alone p50 / p99", f"{ms(alone, 50)} / {ms(alone, 99)}"),
            ("StartRental during the flood p50 / p99", f"{ms(during, 50)} / {ms(during, 99)}"),
            ("flood rate", f"{args.flood / flood_s:,.0f} calls/s"),
            ("audit rows stored", f"{rows:,} (rentals: {2 * (5 + 2 * args.rentals) + 1:,})"),
        ],
    )


async def _connect(stub: pb_grpc.VehicleGatewayStub) -> None:
    """Connect car-1 as the rental service (the token as metadata on each call)."""
    auth = (("authorization", f"Bearer {TOKEN}"),)

    class _Authorized:
        def __getattr__(self, name: str) -> object:
            method = getattr(stub, name)
            return lambda request: method(request, metadata=auth)

    await _stack.connect(_Authorized(), "car-1")  # type: ignore[arg-type]


if __name__ == "__main__":
    _stack.run(main)
