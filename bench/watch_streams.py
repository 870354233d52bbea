"""Benchmark: what 1,000 idle WatchVehicles streams cost, and how fast a change reaches them.

1. The gateway's CPU over `--window-s` with no stream open, then with `--streams` idle
   WatchVehicles streams open (target: under 5 % of one core for the streams).
2. GetVehicle latency with no stream and with the streams open (the issue's symptom: one
   poller per stream slowed every other call).
3. Delivery latency of one state change to every stream: `--changes` Disconnect/Connect
   of one car; for each, the time from the transition's recorded instant (`at`, the
   gateway's clock, the same machine's) to its arrival on each stream; p50/p99/max
   (target: p99 within 100 ms).

The gateway runs as `vehicle-gateway serve` (embedded simulator, SQLite, uvloop, INFO
logs, scheduler and renewal off so the window holds the streams' cost alone) pinned to
CPU 0; this process, the client, is pinned to CPU 1.

    .venv/bin/python -m bench.watch_streams [--streams 1000] [--window-s 20] [--changes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import grpc.aio

from bench import _stack
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc

CHANNELS = 10
"""Streams are spread over this many channels (HTTP/2 connections)."""
TARGET_CPU_PERCENT = 5.0
TARGET_DELIVERY_P99_S = 0.1


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--calls", type=int, default=500, help="GetVehicle calls per phase")
    return parser.parse_args()


class Watchers:
    """`count` WatchVehicles streams read in the background, noting when each change came."""

    def __init__(self, stubs: list[pb_grpc.VehicleGatewayStub], count: int) -> None:
        self.arrivals: dict[int, list[float]] = {}
        """Per change id, each stream's delay from the change's `at` to its arrival."""
        self.errors = 0
        self._open = 0
        self._all_open = asyncio.Event()
        self._count = count
        self._calls = [
            stubs[n % len(stubs)].WatchVehicles(pb.WatchVehiclesRequest(after_id=0))
            for n in range(count)
        ]
        self._tasks = [asyncio.create_task(self._read(call)) for call in self._calls]

    async def opened(self) -> None:
        """Wait until every stream delivered the history's first change (it is open)."""
        await asyncio.wait_for(self._all_open.wait(), timeout=120)

    async def _read(self, call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
        first = True
        try:
            async for change in call:
                if first:
                    first = False
                    self._open += 1
                    if self._open == self._count:
                        self._all_open.set()
                    continue
                latency_s = time.time() - change.at.ToNanoseconds() / 1e9
                self.arrivals.setdefault(change.id, []).append(latency_s)
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.CANCELLED:
                self.errors += 1

    async def close(self) -> None:
        """Cancel every stream."""
        for call in self._calls:
            call.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def cpu_percent(pid: int, window_s: float) -> float:
    """The process's CPU over `window_s` seconds, in percent of one core."""
    before, began = _stack.cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window_s)
    return 100 * (_stack.cpu_seconds(pid) - before) / (time.monotonic() - began)


async def get_vehicle_latencies(stub: pb_grpc.VehicleGatewayStub, calls: int) -> list[float]:
    """Sequential GetVehicle calls; their latencies in seconds."""
    latencies, _, _ = await _stack.drive(
        lambda: stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1")),
        requests=calls,
        concurrency=1,
    )
    return latencies


async def deliveries(
    stub: pb_grpc.VehicleGatewayStub, watchers: Watchers, changes: int, streams: int
) -> list[float]:
    """Make `changes` status changes of car-1; return every stream's delivery latency."""
    latencies: list[float] = []
    for n in range(changes):
        if n % 2 == 0:
            await stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
        else:
            await _stack.connect(stub, "car-1")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (
                len(watchers.arrivals) > n
                and len(watchers.arrivals[max(watchers.arrivals)]) >= streams
            ):
                break
            await asyncio.sleep(0.05)
        latencies += watchers.arrivals.get(max(watchers.arrivals, default=0), [])
    return latencies


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:.1f} ms"


async def main() -> None:
    """Start the gateway, measure, print the table; exit 1 over the CPU or delivery target."""
    args = parse()
    _stack.pin(1)
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as var:
        env = {
            "VG_VAR_DIR": var,
            "VG_SIMULATOR_COMMAND_LATENCY_S": "0",
            "VG_SCHEDULER_INTERVAL_S": "0",
            "VG_RENEWAL_INTERVAL_S": "0",
            "VG_WATCH_STREAMS_PER_CALLER": str(args.streams + 10),
            # Disconnect/Connect of one car back to back: open its buckets.
            "VG_VEHICLE_COMMANDS": "1000/1",
            "VG_VEHICLE_READS": "1000/1",
            "VG_APP_REQUESTS": "1000/1",
        }
        process, port = await _stack.gateway(env, cpu=0)
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
        try:
            stubs = [pb_grpc.VehicleGatewayStub(channel) for channel in channels]
            await _stack.connect(stubs[0], "car-1")
            quiet_calls = await get_vehicle_latencies(stubs[0], args.calls)
            quiet_cpu = await cpu_percent(process.pid, args.window_s)

            opening = time.monotonic()
            watchers = Watchers(stubs, args.streams)
            await watchers.opened()
            opened_s = time.monotonic() - opening
            idle_cpu = await cpu_percent(process.pid, args.window_s)
            busy_calls = await get_vehicle_latencies(stubs[0], args.calls)
            cpu_before = _stack.cpu_seconds(process.pid), time.process_time()
            delivering = time.monotonic()
            latencies = await deliveries(stubs[0], watchers, args.changes, args.streams)
            delivering = time.monotonic() - delivering
            gateway_cpu = _stack.cpu_seconds(process.pid) - cpu_before[0]
            client_cpu = time.process_time() - cpu_before[1]
            rss = _stack.rss_mb(process.pid)
            await watchers.close()
        finally:
            for channel in channels:
                await channel.close()
            process.stop()

    p = _stack.percentile
    _stack.table(
        f"WatchVehicles: {args.streams} idle streams, {args.window_s:.0f} s windows",
        [
            ("gateway CPU, no stream", f"{quiet_cpu:.2f} % of one core"),
            (f"gateway CPU, {args.streams} idle streams", f"{idle_cpu:.2f} % of one core"),
            ("target", f"< {TARGET_CPU_PERCENT:.0f} % of one core"),
            ("streams opened in", f"{opened_s:.2f} s"),
            (
                "GetVehicle p50/p99, no stream",
                f"{ms(p(quiet_calls, 50))} / {ms(p(quiet_calls, 99))}",
            ),
            (
                f"GetVehicle p50/p99, {args.streams} streams",
                f"{ms(p(busy_calls, 50))} / {ms(p(busy_calls, 99))}",
            ),
            (
                f"delivery of one change to {args.streams} streams",
                f"p50 {ms(p(latencies, 50))}, p99 {ms(p(latencies, 99))}, "
                f"max {ms(max(latencies, default=0))} ({len(latencies)} deliveries, "
                f"{args.changes} changes)",
            ),
            (
                "target",
                f"p99 <= {ms(TARGET_DELIVERY_P99_S)}: "
                + ("met" if p(latencies, 99) <= TARGET_DELIVERY_P99_S else "MISSED"),
            ),
            (
                "CPU while delivering",
                f"gateway {gateway_cpu * 1000 / max(args.changes, 1):.0f} ms, client "
                f"{client_cpu * 1000 / max(args.changes, 1):.0f} ms per change "
                f"({delivering:.1f} s for {args.changes} changes, with the Disconnect/Connect "
                "calls and the client's 50 ms checks)",
            ),
            ("stream errors", str(watchers.errors)),
            ("gateway RSS", f"{rss:.0f} MiB"),
        ],
    )
    if idle_cpu - quiet_cpu >= TARGET_CPU_PERCENT or p(latencies, 99) > TARGET_DELIVERY_P99_S:
        raise SystemExit(1)


if __name__ == "__main__":
    _stack.run(main)
