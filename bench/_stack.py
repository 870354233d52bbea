"""Shared pieces of the gateway benchmarks: start processes, drive load, read /proc, print.

Not a benchmark itself (the leading underscore). Everything runs on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import httpx

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc

BIN = Path(sys.executable).parent
START_DEADLINE_S = 60.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process, its live children, and the children it has reaped
    (PostgreSQL: the postmaster, its backends, and the backends of closed connections).
    A child that exited but is not reaped yet is missed for a moment."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(entry.name) == root:  # utime, stime, cutime, cstime
                total += sum(int(v) for v in stat[11:15]) / ticks
            elif int(stat[1]) == root:
                total += (int(stat[11]) + int(stat[12])) / ticks
    return total


def rss_mb(pid: int) -> float:
    """A process's resident memory in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pin(cpu: int) -> None:
    """Pin this process to one CPU when the machine has more than one."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


@dataclass
class Process:
    """A started child and the JSON record it announced itself with."""

    popen: subprocess.Popen[str]
    started: dict[str, Any]

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.popen.pid

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 15 s)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(
    command: Sequence[str], event: str, env: Mapping[str, str], *, cpu: int | None = None
) -> Process:
    """Start `command`, wait for the JSON log line with `event` on stderr, and return it."""
    full_env = {**os.environ, **env}
    preexec = (
        (lambda: os.sched_setaffinity(0, {cpu}))
        if cpu is not None and (os.cpu_count() or 1) > 1
        else None
    )
    popen = subprocess.Popen(
        list(command),
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    assert popen.stderr is not None
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([popen.stderr], [], [], 0.5)
        if not ready:
            if popen.poll() is not None:
                break
            continue
        line = popen.stderr.readline()
        if not line:
            break
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            _drain_in_background(popen)
            return Process(popen=popen, started=record)
    popen.kill()
    raise RuntimeError(f"{command[0]} did not report {event}")


def _drain_in_background(popen: subprocess.Popen[str]) -> None:
    import threading

    def drain() -> None:
        assert popen.stderr is not None
        for _ in popen.stderr:
            pass

    threading.Thread(target=drain, daemon=True).start()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def gateway(env: Mapping[str, str], *, cpu: int | None = 0) -> tuple[Process, int]:
    """Start `vehicle-gateway serve` (embedded simulator unless `env` says otherwise) on a
    port picked here; return it once its health check answers SERVING, and the port."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = free_port()
    full_env = {**os.environ, "VG_LISTEN": f"127.0.0.1:{port}", **env}
    preexec = (
        (lambda: os.sched_setaffinity(0, {cpu}))
        if cpu is not None and (os.cpu_count() or 1) > 1
        else None
    )
    popen = subprocess.Popen(
        [str(BIN / "vehicle-gateway"), "serve"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    _drain_in_background(popen)

    async def ready() -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if popen.poll() is not None:
                    break
                try:
                    answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the gateway did not become SERVING")

    await ready()
    return Process(popen=popen, started={"port": port}), port


async def connect(stub: pb_grpc.VehicleGatewayStub, vehicle_id: str) -> pb.Vehicle:
    """GetConnectUrl → the (simulated) Connect redirect → Connect."""
    issued = await stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
    async with httpx.AsyncClient(timeout=10) as http:
        redirect = await http.get(issued.url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    request = pb.ConnectRequest(
        vehicle_id=vehicle_id,
        code=query["code"][0],
        state=issued.state,
        user_id=query["user_id"][0],
    )
    return await stub.Connect(request)


async def drive(
    call: Callable[[], Awaitable[Any]], *, requests: int, concurrency: int
) -> tuple[list[float], float, int]:
    """Make `requests` calls with `concurrency` in flight; return latencies, seconds, errors."""
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def worker() -> None:
        nonlocal errors
        for _ in remaining:
            began = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began, errors


def table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Print a two-column table."""
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}\n" + "-" * len(title))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a benchmark's main on uvloop when installed (as the service runs)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        asyncio.run(main())
    else:
        uvloop.run(main())
