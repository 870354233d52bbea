"""Benchmark: how many odometer reads per second the Smartcar simulator serves on one core.

The simulator runs as `vehicle-gateway simulator --port 0 --no-limits` (uvloop when
installed, no latency, no rate limits) in a subprocess pinned to one CPU; this process
pins itself to another CPU, connects one vehicle (authorize + token exchange), then
drives `GET /v2.0/vehicles/{id}/odometer` with an aiohttp client over keep-alive
connections and bounded concurrency for a bounded time, on loopback only. After a short
warm-up it prints requests, requests per second, latency percentiles and errors, and
cross-checks the count against the simulator's own `/sim/stats`.

    .venv/bin/python bench/simulator_throughput.py [--duration-s 10] [--concurrency 32]

Target: at least 1,000 requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import aiohttp

TARGET_RPS = 1_000
START_DEADLINE_S = 15.0
REDIRECT_URI = "http://localhost:8000/callback"


@dataclass
class Tally:
    """What the load generator observed."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str) -> None:
        """Count one failed request."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def parse_args() -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="unmeasured seconds (1)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    return parser.parse_args()


def pick_cores() -> tuple[int, int]:
    """Return (server core, load-generator core): two different CPUs when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[0], cores[1] if len(cores) > 1 else cores[0]


def start_simulator(core: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start the simulator pinned to `core` and return it with its base URL."""
    command = [sys.executable, "-m", "gateway.cli", "simulator", "--port", "0", "--no-limits"]
    command += ["--read-latency-s", "0", "--command-latency-s", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    os.sched_setaffinity(process.pid, {core})
    assert process.stderr is not None
    ready, _, _ = select.select([process.stderr], [], [], START_DEADLINE_S)
    if not ready:
        process.kill()
        raise SystemExit("the simulator did not start in time")
    started = json.loads(process.stderr.readline())
    return process, str(started["url"])


async def connect_vehicle(session: aiohttp.ClientSession, base_url: str) -> tuple[str, str]:
    """Run Connect and the code exchange; return (access token, vehicle id)."""
    params = {
        "response_type": "code",
        "client_id": "bench",
        "redirect_uri": REDIRECT_URI,
        "scope": "read_odometer",
        "state": "bench",
    }
    async with session.get(
        f"{base_url}/oauth/authorize", params=params, allow_redirects=False
    ) as response:
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    basic = {"Authorization": "Basic " + base64.b64encode(b"bench:secret").decode()}
    async with session.post(f"{base_url}/oauth/token", data=form, headers=basic) as response:
        token = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base_url}/v2.0/vehicles", headers=headers) as response:
        vehicle_id = (await response.json())["vehicles"][0]
    return token, vehicle_id


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    *,
    measure_from: float,
    stop_at: float,
    tally: Tally,
) -> None:
    """Send reads back to back until `stop_at`, recording those started after `measure_from`."""
    while (started := time.perf_counter()) < stop_at:
        try:
            async with session.get(url, headers=headers) as response:
                await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            if started >= measure_from:
                tally.fail(type(exc).__name__)
            continue
        if started < measure_from:
            continue
        if status == 200:
            tally.latencies_s.append(time.perf_counter() - started)
        else:
            tally.fail(f"HTTP {status}")


async def drive(base_url: str, args: argparse.Namespace) -> tuple[Tally, float, int]:
    """Connect a vehicle, run the load, and return the tally, duration and server count."""
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        token, vehicle_id = await connect_vehicle(session, base_url)
        url = f"{base_url}/v2.0/vehicles/{vehicle_id}/odometer"
        headers = {"Authorization": f"Bearer {token}"}
        tally = Tally()
        measure_from = time.perf_counter() + args.warmup_s
        stop_at = measure_from + args.duration_s
        await asyncio.gather(
            *(
                worker(
                    session,
                    url,
                    headers,
                    measure_from=measure_from,
                    stop_at=stop_at,
                    tally=tally,
                )
                for _ in range(args.concurrency)
            )
        )
        async with session.get(f"{base_url}/sim/stats") as response:
            served = (await response.json())["requests"]["by_endpoint"].get("odometer", 0)
    return tally, args.duration_s, served


def report(tally: Tally, duration_s: float, served: int, args: argparse.Namespace) -> None:
    """Print the results table."""
    count = len(tally.latencies_s)
    cuts = statistics.quantiles(tally.latencies_s, n=100) if count > 1 else [0.0] * 99
    rows = [
        ("requests (measured)", f"{count:,}"),
        ("duration", f"{duration_s:.1f} s"),
        ("throughput", f"{count / duration_s:,.0f} req/s"),
        ("latency p50", f"{cuts[49] * 1000:.2f} ms"),
        ("latency p90", f"{cuts[89] * 1000:.2f} ms"),
        ("latency p99", f"{cuts[98] * 1000:.2f} ms"),
        ("latency max", f"{max(tally.latencies_s, default=0.0) * 1000:.2f} ms"),
        ("errors", f"{tally.errors} {tally.error_kinds or ''}".strip()),
        ("concurrency", str(args.concurrency)),
        ("served by simulator (incl. warm-up)", f"{served:,}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("simulator throughput: GET /v2.0/vehicles/{id}/odometer")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    verdict = "meets" if count / duration_s >= TARGET_RPS else "MISSES"
    print(f"  {verdict} the target of {TARGET_RPS:,} req/s")


def main() -> int:
    """Run the benchmark and return the exit status (1 when the target is missed)."""
    args = parse_args()
    server_core, client_core = pick_cores()
    process, base_url = start_simulator(server_core)
    try:
        os.sched_setaffinity(0, {client_core})
        print(f"simulator on CPU {server_core} at {base_url}; load generator on CPU {client_core}")
        tally, duration_s, served = asyncio.run(drive(base_url, args))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    report(tally, duration_s, served, args)
    return 0 if len(tally.latencies_s) / duration_s >= TARGET_RPS else 1


if __name__ == "__main__":
    sys.exit(main())
