"""Benchmark: throughput of two gateway replicas against one, on one shared PostgreSQL.

Set-up, all on loopback: a throwaway PostgreSQL cluster (tests/services.py), one
standalone simulator (`vehicle-gateway simulator --no-limits`, read latency
`--read-latency-s`, no command latency), and two `vehicle-gateway serve` replicas on the
same database, the same token key and the same simulator, with the scheduler and token
renewal off and the gateway's own buckets opened up (VG_VEHICLE_READS, VG_APP_REQUESTS) so
that what is measured is the gateway, not its rate limiter. `--cars` cars are connected
once, through replica A, and read once through each replica (replica B finds A's readings
in PostgreSQL).

Workloads, each measured through replica A alone (B left running, idle) and then through
both, the client spreading calls over the two channels (call i reads car i mod N through
replica (i + i // N) mod R: consecutive calls alternate replicas, and every car is read
through both):

(a) cached GetTelemetry, max_age 1 h: answered from each replica's memory; PostgreSQL is
    only asked for the vehicle row when a replica's 2 s snapshot of it has expired.
(b) GetTelemetry, max_age 0 (the shared-state workload): each call reads the vehicle and
    its grant from PostgreSQL, asks the simulator for one batch, then writes the car's
    monthly budget row (an upsert) and its readings and vehicle row. Both replicas write
    the same rows, so this is where sharing one database costs: row locks, WAL, and
    coalescing only within a replica (reads of one car in flight on two replicas make two
    batches; the "upstream batches per call" row shows it).
(c) GetVehicle: one read transaction of three SELECTs (vehicle, active rental, budget) per
    call: PostgreSQL reads alone, no writes and no upstream.

Reported per workload: successful calls/s, p50/p99 latency, errors by status code, the
ratio two/one; the gateway's CPU per successful call (the serving replicas' CPU seconds,
from /proc, over the calls answered: replica A alone, then A and B together) and its
ratio two/one, what coordinating replicas costs (target: at most 1.1), printed beside the
throughput ratio; CPU seconds per process of the stack (from /proc; PostgreSQL counts the
postmaster and its backends, closed ones included), the CPU of every other process on the
machine (from /proc/stat: if it is not near 0, other work disturbed the run), how busy the
machine was; the PostgreSQL sessions opened while measuring (connections the replicas
made); for (b), upstream batches per call. With fewer cars than calls in flight, several
reads of one car meet on a replica and share a batch (below 1 per call).

THE LIMIT: this machine has 2 CPUs (the number is printed). Replica A is pinned to CPU 0
and replica B to CPU 1; PostgreSQL, the simulator and this load client (one Python
process, uvloop) are not pinned and take CPU time from both. With one replica, CPU 1 is
left to the client, PostgreSQL and the simulator; with two, every CPU is shared by a
replica and the rest of the stack. So a ratio two/one near 1 is what 2 CPUs allow, not a
property of the gateway: read it with the "% busy" of the CPU rows, and rerun on a bigger
machine to measure scaling.

With `--control`, each workload is also measured through replica A alone at half the
calls in flight: the load each of two replicas carries. A replica's CPU per call depends
on its load (a busier event loop handles more calls per wakeup), so this tells what
coordination costs from what serving half the calls costs.

    .venv/bin/python -m bench.replica_throughput [--requests 20000] [--concurrency 32]
                                                 [--cars 50] [--workloads cached,upstream,vehicle]
                                                 [--control]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from bench import _stack
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from storage.crypto import generate_key_entry
from tests.services import PostgresCluster

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"
OPEN_BUCKET = "1000000/0.000001"
"""A bucket no benchmark empties: a million tokens, refilled a million per second."""
HOUR = duration_pb2.Duration(seconds=3600)
NOW = duration_pb2.Duration(seconds=0)
DATABASE = "bench_replicas"
SESSIONS_QUERY = "SELECT sessions FROM pg_stat_database WHERE datname = 'bench_replicas'"
MACHINE = "machine"
TARGET_CPU_RATIO = 1.1
"""Gateway CPU per call with two replicas over that with one (issue 15, part 5)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One kind of call: which RPC, and the request it sends for a car."""

    key: str
    title: str
    rpc: str
    request: Callable[[str], Message]


WORKLOADS: Mapping[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "cached",
            "(a) cached GetTelemetry, max_age 1 h",
            "GetTelemetry",
            lambda car: pb.GetTelemetryRequest(vehicle_id=car, max_age=HOUR),
        ),
        Workload(
            "upstream",
            "(b) GetTelemetry, max_age 0: PostgreSQL reads and writes, one upstream batch",
            "GetTelemetry",
            lambda car: pb.GetTelemetryRequest(vehicle_id=car, max_age=NOW),
        ),
        Workload(
            "vehicle",
            "(c) GetVehicle: PostgreSQL reads only",
            "GetVehicle",
            lambda car: pb.GetVehicleRequest(vehicle_id=car),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Replica:
    """A running gateway replica and a stub on its channel."""

    name: str
    process: _stack.Process
    stub: pb_grpc.VehicleGatewayStub


@dataclass(slots=True)
class Stack:
    """Everything a measurement looks at: the replicas, PostgreSQL and the simulator."""

    replicas: list[Replica]
    postgres: PostgresCluster
    simulator: _stack.Process
    simulator_url: str
    http: httpx.AsyncClient

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the stack, this client included."""
        used = {r.name: _stack.cpu_seconds(r.process.pid) for r in self.replicas}
        used["PostgreSQL"] = _stack.tree_cpu_seconds(postmaster_pid(self.postgres.data))
        used["simulator"] = _stack.cpu_seconds(self.simulator.pid)
        used["client"] = time.process_time()
        used[MACHINE] = machine_busy_seconds()
        return used

    def sessions(self) -> int:
        """How many sessions PostgreSQL has opened on the benchmark's database so far (its
        statistics lag by up to a second)."""
        done = subprocess.run(
            [
                str(self.postgres.bin / "psql"),
                *("-h", "127.0.0.1", "-p", str(self.postgres.port), "-U", "postgres"),
                *("-d", "postgres", "-Atc"),
                SESSIONS_QUERY,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return int(done.stdout.strip() or 0)

    async def upstream_batches(self) -> int:
        """How many read round trips (v2 batches, V3 signals) the simulator has answered."""
        stats = (await self.http.get(self.simulator_url + "/sim/stats")).json()
        by_endpoint = stats["requests"]["by_endpoint"]
        # One read round trip: a v2 batch, or V3's signals of a car (the default API).
        return int(by_endpoint.get("batch", 0)) + int(by_endpoint.get("v3/signals", 0))


@dataclass(slots=True)
class Result:
    """One measurement: `calls` calls through `replicas` replicas."""

    replicas: int
    calls: int
    seconds: float
    latencies: list[float]
    errors: Counter[str]
    cpu: dict[str, float]
    """CPU seconds per process of the stack, and the whole machine's under MACHINE."""
    upstream_batches: int
    sessions: int
    """PostgreSQL sessions opened during the measurement (connections made)."""

    serving: tuple[str, ...] = ()
    """The replicas the calls went through."""

    @property
    def ok(self) -> int:
        """Calls answered without an error."""
        return len(self.latencies)

    @property
    def gateway_cpu_s(self) -> float:
        """CPU seconds the serving replicas used while measuring."""
        return sum(self.cpu[name] for name in self.serving)

    @property
    def cpu_per_call_ms(self) -> float:
        """The serving replicas' CPU milliseconds per successful call."""
        return self.gateway_cpu_s / self.ok * 1000 if self.ok else 0.0

    @property
    def rate(self) -> float:
        """Successful calls per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """Throughput, latency and errors on one line."""
        errors = sum(self.errors.values())
        detail = (
            " (" + ", ".join(f"{code} {n}" for code, n in self.errors.most_common()) + ")"
            if errors
            else ""
        )
        return (
            f"{self.rate:,.0f} calls/s, p50 {_stack.percentile(self.latencies, 50) * 1000:.2f} ms,"
            f" p99 {_stack.percentile(self.latencies, 99) * 1000:.2f} ms,"
            f" errors {errors}{detail}, {self.seconds:.1f} s"
        )

    def cpu_summary(self, cpus: int) -> str:
        """CPU seconds per process and how busy the machine was."""
        ours = {name: seconds for name, seconds in self.cpu.items() if name != MACHINE}
        total = sum(ours.values())
        machine = self.cpu[MACHINE]
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in ours.items())
        busy = machine / (self.seconds * cpus) * 100 if self.seconds else 0.0
        return (
            f"{parts} = {total:.1f}; other processes {max(0.0, machine - total):.1f}; "
            f"machine {machine:.1f} of {cpus} CPUs x {self.seconds:.1f} s ({busy:.0f} % busy)"
        )


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument("--cars", type=int, default=50, help="cars connected and read")
    parser.add_argument(
        "--read-latency-s", type=float, default=0.02, help="the simulator's read latency"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="also measure one replica at half the calls in flight (the load each of two "
        "replicas carries), to tell coordination from load-dependent CPU per call",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, of {', '.join(WORKLOADS)} (default: all)",
    )
    args = parser.parse_args()
    chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown or not chosen:
        parser.error(f"--workloads: unknown {', '.join(unknown) or '(none given)'}")
    if args.requests < 1 or args.concurrency < 1 or args.cars < 1:
        parser.error("--requests, --concurrency and --cars must be positive")
    args.workloads = chosen
    return args


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat: all but idle
    and iowait)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(data: Path) -> int:
    """The postmaster's pid, from the first line of postmaster.pid in the data directory."""
    return int((data / "postmaster.pid").read_text().splitlines()[0])


def replica_env(
    database_url: str, token_keys: str, simulator_url: str, var: Path
) -> dict[str, str]:
    """The environment of a replica: shared database, key and simulator; limits opened."""
    return {
        "VG_VAR_DIR": str(var),
        "VG_DATABASE_URL": database_url,
        "VG_TOKEN_KEYS": token_keys,
        "VG_SCHEDULER_INTERVAL_S": "0",
        "VG_RENEWAL_INTERVAL_S": "0",
        "VG_LOG_LEVEL": "WARNING",
        # The gateway's own buckets opened up: what is measured is the gateway.
        "VG_VEHICLE_READS": OPEN_BUCKET,
        "VG_APP_REQUESTS": OPEN_BUCKET,
        "VG_SMARTCAR_MODE": "simulated",
        "SMARTCAR_CLIENT_ID": CLIENT_ID,
        "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET,
        "SMARTCAR_API_ORIGIN": simulator_url,
        "SMARTCAR_AUTH_ORIGIN": simulator_url + "/oauth/token",
        "SMARTCAR_CONNECT_ORIGIN": simulator_url,
        "SMARTCAR_VEHICLE_API_V3_ORIGIN": simulator_url,
        "SMARTCAR_IAM_ORIGIN": simulator_url,
        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": simulator_url,
        "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
    }


def spread(
    replicas: Sequence[Replica], cars: Sequence[str], workload: Workload, errors: Counter[str]
) -> Callable[[], Awaitable[Any]]:
    """A call for `_stack.drive`: the i-th reads car i mod N through replica
    (i + i // N) mod R, counting failures by status code in `errors`."""
    methods = [getattr(r.stub, workload.rpc) for r in replicas]
    requests = [workload.request(car) for car in cars]
    counter = itertools.count()

    async def call() -> Any:
        n = next(counter)
        method = methods[(n + n // len(cars)) % len(methods)]
        try:
            return await method(requests[n % len(cars)])
        except grpc.aio.AioRpcError as error:
            errors[error.code().name] += 1
            raise

    return call


async def measure(
    stack: Stack,
    replicas: int,
    cars: Sequence[str],
    workload: Workload,
    args: argparse.Namespace,
    *,
    concurrency: int | None = None,
) -> Result:
    """Warm up, then make `--requests` calls through the first `replicas` replicas
    (`concurrency` in flight, `--concurrency` unless given)."""
    used = stack.replicas[:replicas]
    in_flight = concurrency or args.concurrency
    warm: Counter[str] = Counter()
    await _stack.drive(
        spread(used, cars, workload, warm),
        requests=min(2_000, max(100, args.requests // 10)),
        concurrency=in_flight,
    )
    errors: Counter[str] = Counter()
    sessions_before = stack.sessions()
    cpu_before = stack.cpu_seconds()
    batches_before = await stack.upstream_batches()
    latencies, seconds, _ = await _stack.drive(
        spread(used, cars, workload, errors),
        requests=args.requests,
        concurrency=in_flight,
    )
    cpu_after = stack.cpu_seconds()
    batches = await stack.upstream_batches() - batches_before
    await asyncio.sleep(1.1)  # PostgreSQL flushes its statistics at most once a second
    sessions = stack.sessions() - sessions_before
    return Result(
        replicas=replicas,
        calls=args.requests,
        seconds=seconds,
        latencies=latencies,
        errors=errors,
        cpu={name: cpu_after[name] - cpu_before[name] for name in cpu_before},
        upstream_batches=batches,
        sessions=sessions,
        serving=tuple(r.name for r in used),
    )


@dataclass(frozen=True, slots=True)
class Ratios:
    """Two replicas over one: throughput, and the gateway's CPU per call."""

    throughput: float
    cpu_per_call: float

    def verdict(self) -> str:
        """The CPU ratio against its target."""
        met = "met" if self.cpu_per_call <= TARGET_CPU_RATIO else "MISSED"
        return f"{self.cpu_per_call:.2f} (target <= {TARGET_CPU_RATIO}: {met})"


def cpu_per_call(one: Result, two: Result) -> tuple[str, str]:
    """The table row of the gateway's CPU per call, one replica and two."""
    parts = " + ".join(f"{name} {two.cpu[name]:.1f}" for name in two.serving)
    return (
        "gateway CPU per call",
        f"1 replica {one.cpu_per_call_ms:.2f} ms (A {one.gateway_cpu_s:.1f} CPU-s / "
        f"{one.ok:,} calls), 2 replicas {two.cpu_per_call_ms:.2f} ms ({parts} CPU-s / "
        f"{two.ok:,} calls)",
    )


def report(
    workload: Workload,
    one: Result,
    two: Result,
    args: argparse.Namespace,
    half: Result | None = None,
) -> Ratios:
    """Print one workload's table (with the control `half` when measured); return the
    ratios two/one."""
    cpus = os.cpu_count() or 1
    ratio = two.rate / one.rate if one.rate else 0.0
    cpu_ratio = two.cpu_per_call_ms / one.cpu_per_call_ms if one.cpu_per_call_ms else 0.0
    ratios = Ratios(throughput=ratio, cpu_per_call=cpu_ratio)
    rows = [
        ("1 replica (A, CPU 0)", one.summary()),
        ("2 replicas (A CPU 0, B CPU 1)", two.summary()),
        ("ratio two/one", f"{ratio:.2f} (on {cpus} CPUs: near 1 is the machine's limit)"),
        cpu_per_call(one, two),
        ("CPU per call, two/one", ratios.verdict()),
        *(
            [
                (
                    f"control: 1 replica, {args.concurrency // 2} in flight",
                    f"{half.summary()}; CPU per call {half.cpu_per_call_ms:.2f} ms "
                    f"(x{half.cpu_per_call_ms / one.cpu_per_call_ms:.2f} of "
                    f"{args.concurrency} in flight)",
                )
            ]
            if half is not None and one.cpu_per_call_ms
            else []
        ),
        ("CPU-s, 1 replica", one.cpu_summary(cpus)),
        ("CPU-s, 2 replicas", two.cpu_summary(cpus)),
        (
            "PostgreSQL sessions opened",
            f"1 replica {one.sessions}, 2 replicas {two.sessions} (connections made while "
            "measuring)",
        ),
    ]
    if workload.key == "upstream":
        rows.append(
            (
                "upstream reads per call (batch or V3 signals)",
                f"1 replica {one.upstream_batches / one.calls:.2f}, "
                f"2 replicas {two.upstream_batches / two.calls:.2f} "
                "(below 1: coalesced within a replica)",
            )
        )
    _stack.table(
        f"{workload.title}: {args.requests:,} calls, {args.concurrency} in flight, "
        f"{args.cars} cars",
        rows,
    )
    return ratios


async def prepare(stack: Stack, cars: Sequence[str]) -> list[tuple[str, str]]:
    """Connect the cars through replica A, read each once through every replica; return
    what that took, as table rows."""
    first = stack.replicas[0]
    began = time.perf_counter()
    for car in cars:
        vehicle = await _stack.connect(first.stub, car)
        if vehicle.status != pb.ACTIVE:
            raise RuntimeError(f"{car} did not connect: {pb.ConnectionStatus.Name(vehicle.status)}")
    connected = time.perf_counter() - began
    rows = [("connect through A", f"{len(cars)} cars in {connected:.1f} s")]
    for replica in stack.replicas:
        began = time.perf_counter()
        cached = 0
        for car in cars:
            answer = await replica.stub.GetTelemetry(
                pb.GetTelemetryRequest(vehicle_id=car, max_age=HOUR)
            )
            cached += answer.from_cache
        rows.append(
            (
                f"first read through {replica.name}",
                f"{cached}/{len(cars)} from cache, {time.perf_counter() - began:.1f} s",
            )
        )
    return rows


async def run_all(args: argparse.Namespace, cluster: PostgresCluster, var: Path) -> None:
    """Start the simulator and both replicas, measure every workload, print the tables."""
    began = time.perf_counter()
    database_url = cluster.create_database(DATABASE)
    token_keys = generate_key_entry("bench")
    cars = [f"car-{n}" for n in range(args.cars)]
    with contextlib.ExitStack() as processes:
        simulator = _stack.start(
            [
                str(_stack.BIN / "vehicle-gateway"),
                "simulator",
                "--port",
                "0",
                "--no-limits",
                "--vehicles",
                str(max(50, args.cars)),
                "--read-latency-s",
                str(args.read_latency_s),
                "--command-latency-s",
                "0",
            ],
            "simulator_started",
            {"SMARTCAR_CLIENT_ID": CLIENT_ID, "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET},
        )
        processes.callback(simulator.stop)
        simulator_url = str(simulator.started["url"])
        replicas: list[Replica] = []
        async with contextlib.AsyncExitStack() as channels:
            for name, cpu in (("A", 0), ("B", 1)):
                env = replica_env(database_url, token_keys, simulator_url, var / name)
                process, port = await _stack.gateway(env, cpu=cpu)
                processes.callback(process.stop)
                channel = await channels.enter_async_context(
                    grpc.aio.insecure_channel(f"127.0.0.1:{port}")
                )
                replicas.append(Replica(name, process, pb_grpc.VehicleGatewayStub(channel)))
            http = await channels.enter_async_context(httpx.AsyncClient(timeout=30))
            stack = Stack(
                replicas=replicas,
                postgres=cluster,
                simulator=simulator,
                simulator_url=simulator_url,
                http=http,
            )
            setup = await prepare(stack, cars)
            setup.append(("set-up in all", f"{time.perf_counter() - began:.1f} s"))
            _stack.table("set-up", setup)
            ratios: list[tuple[str, str]] = []
            for key in args.workloads:
                workload = WORKLOADS[key]
                began_workload = time.perf_counter()
                one = await measure(stack, 1, cars, workload, args)
                two = await measure(stack, 2, cars, workload, args)
                half = (
                    await measure(
                        stack, 1, cars, workload, args, concurrency=max(1, args.concurrency // 2)
                    )
                    if args.control
                    else None
                )
                ratio = report(workload, one, two, args, half)
                ratios.append(
                    (
                        workload.title.split(":")[0],
                        f"CPU per call {ratio.verdict()}, {one.cpu_per_call_ms:.2f} → "
                        f"{two.cpu_per_call_ms:.2f} ms; throughput {ratio.throughput:.2f} "
                        f"({one.rate:,.0f} → {two.rate:,.0f} calls/s); "
                        f"{time.perf_counter() - began_workload:.1f} s with warm-ups",
                    )
                )
    cpus = os.cpu_count() or 1
    _stack.table(
        "two replicas / one, on one PostgreSQL",
        [
            *ratios,
            (
                "the limit",
                f"{cpus} CPUs for 2 replicas (A pinned to CPU 0, B to CPU 1), PostgreSQL, "
                "the simulator and this client (all three unpinned): a ratio near 1 is the "
                "machine's, not the gateway's",
            ),
            ("duration", f"{time.perf_counter() - began:.1f} s in all"),
        ],
    )


async def main() -> None:
    """Start PostgreSQL in a scratch directory, run the benchmark, remove everything."""
    args = parse()
    # Not under a private temporary directory: the server runs as `postgres` when this
    # runs as root, and must reach its directory (tests/conftest.py does the same).
    pg_dir = Path(tempfile.mkdtemp(prefix="vg-bench-postgres-"))
    try:
        with (
            PostgresCluster.start(pg_dir) as cluster,
            tempfile.TemporaryDirectory(prefix="vg-bench-var-") as var,
        ):
            await run_all(args, cluster, Path(var))
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    _stack.run(main)
