"""Benchmark: what a cached GetTelemetry costs the gateway, against a bare grpc.aio server
answering the same message (bench/_echo_server.py), with the same load client in the
same run.

The gateway runs as `vehicle-gateway serve` (embedded simulator, SQLite, uvloop, INFO
logs as by default) pinned to CPU 0; the echo server too, after it; the load client is
pinned to CPU 1. One car is connected and read once, so every measured read is served from
the gateway's cache (max_age 1 h). Both servers stay up and are measured in turns,
`--rounds` times each (gateway, echo, gateway, echo, …), and the medians are compared, so
other work on the machine weighs on both alike. Reported: server CPU seconds per 1,000
calls (from /proc), the ratio gateway/echo (target ≤ 1.3), the throughput ratio
gateway/echo (target ≥ 0.8), p50/p99 latency of each.

With `--tracing` the gateway traces every call (OTEL_TRACES_EXPORTER=otlp, every trace
sampled) and exports to an OTLP sink in the load client's process that answers each
export and keeps nothing: the gateway's side of tracing, recording and exporting, is
measured; a collector's is not.

    .venv/bin/python -m bench.grpc_overhead [--requests 20000] [--concurrency 32] [--rounds 3]
                                            [--tracing]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from typing import Any

import grpc.aio
from google.protobuf import duration_pb2

from bench import _stack
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc

TARGET_CPU_RATIO = 1.3
TARGET_THROUGHPUT_RATIO = 0.8


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--log-level", default="INFO", help="the gateway's VG_LOG_LEVEL")
    parser.add_argument("--access-log", default="all", help="the gateway's VG_ACCESS_LOG")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, in turns")
    parser.add_argument(
        "--tracing", action="store_true", help="trace every call, exported to an OTLP sink"
    )
    return parser.parse_args()


async def otlp_sink() -> tuple[grpc.aio.Server, int]:
    """Start an OTLP/gRPC trace sink on loopback that accepts every export and keeps
    nothing; return it and its port."""
    from opentelemetry.proto.collector.trace.v1 import (
        trace_service_pb2,
        trace_service_pb2_grpc,
    )

    class Sink(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        async def Export(self, request: Any, context: Any) -> Any:
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def measure(
    port: int, pid: int, request: pb.GetTelemetryRequest, args: Any
) -> dict[str, float]:
    """Warm up, then drive `requests` calls; return CPU per call, throughput, latencies."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.VehicleGatewayStub(channel)
        await _stack.drive(
            lambda: stub.GetTelemetry(request), requests=2_000, concurrency=args.concurrency
        )
        cpu_before = _stack.cpu_seconds(pid)
        latencies, seconds, errors = await _stack.drive(
            lambda: stub.GetTelemetry(request), requests=args.requests, concurrency=args.concurrency
        )
        cpu = _stack.cpu_seconds(pid) - cpu_before
    return {
        "cpu_ms_per_1000": cpu / args.requests * 1e6,
        "rps": args.requests / seconds,
        "p50_ms": _stack.percentile(latencies, 50) * 1000,
        "p99_ms": _stack.percentile(latencies, 99) * 1000,
        "errors": errors,
        "rss_mb": _stack.rss_mb(pid),
    }


async def main() -> None:
    """Measure the gateway and the echo server in turns; print the medians and ratios."""
    args = parse()
    _stack.pin(1)
    request = pb.GetTelemetryRequest(
        vehicle_id="car-1", max_age=duration_pb2.Duration(seconds=3600)
    )
    tracing: dict[str, str] = {}
    sink = None
    if args.tracing:
        sink, sink_port = await otlp_sink()
        tracing = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
    with tempfile.TemporaryDirectory() as var:
        gateway, port = await _stack.gateway(
            {
                "VG_VAR_DIR": var,
                "VG_LOG_LEVEL": args.log_level,
                "VG_ACCESS_LOG": args.access_log,
                "VG_SCHEDULER_INTERVAL_S": "0",
                "VG_SIMULATOR_COMMAND_LATENCY_S": "0",
                **tracing,
            }
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.VehicleGatewayStub(channel)
                await _stack.connect(stub, "car-1")
                answer = await stub.GetTelemetry(request)
            echo_port = _stack.free_port()
            echo = _stack.start(
                [
                    str(_stack.BIN / "python"),
                    "bench/_echo_server.py",
                    str(echo_port),
                    answer.SerializeToString().hex(),
                ],
                "echo_started",
                {},
                cpu=0,
            )
            try:
                rounds: list[tuple[dict[str, float], dict[str, float]]] = []
                for _ in range(args.rounds):
                    ours = await measure(port, gateway.pid, request, args)
                    bare = await measure(echo_port, echo.pid, request, args)
                    rounds.append((ours, bare))
            finally:
                echo.stop()
        finally:
            gateway.stop()
            if sink is not None:
                await sink.stop(0)
    report(args, rounds)


def report(args: Any, rounds: list[tuple[dict[str, float], dict[str, float]]]) -> None:
    """Print the median of each figure over the rounds, and the ratios of the medians."""

    def median(side: int, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    ours = {key: median(0, key) for key in rounds[0][0]}
    bare = {key: median(1, key) for key in rounds[0][1]}
    ratio = ours["cpu_ms_per_1000"] / bare["cpu_ms_per_1000"]
    each = ", ".join(f"{r[0]['cpu_ms_per_1000'] / r[1]['cpu_ms_per_1000']:.2f}" for r in rounds)
    _stack.table(
        f"cached GetTelemetry: {args.requests:,} calls, {args.concurrency} in flight, "
        f"gateway logs at {args.log_level}, access log {args.access_log}, "
        f"tracing {'on (OTLP sink)' if args.tracing else 'off'}, "
        f"median of {len(rounds)} rounds",
        [
            (
                "server CPU per 1,000 calls",
                f"gateway {ours['cpu_ms_per_1000']:.0f} ms, echo {bare['cpu_ms_per_1000']:.0f} ms",
            ),
            ("CPU ratio gateway/echo", f"{ratio:.2f} (target ≤ {TARGET_CPU_RATIO}; rounds {each})"),
            ("throughput", f"gateway {ours['rps']:,.0f}/s, echo {bare['rps']:,.0f}/s"),
            (
                "throughput ratio gateway/echo",
                f"{ours['rps'] / bare['rps']:.2f} (target ≥ {TARGET_THROUGHPUT_RATIO})",
            ),
            ("p50 latency", f"gateway {ours['p50_ms']:.2f} ms, echo {bare['p50_ms']:.2f} ms"),
            ("p99 latency", f"gateway {ours['p99_ms']:.2f} ms, echo {bare['p99_ms']:.2f} ms"),
            ("errors", f"gateway {ours['errors']:.0f}, echo {bare['errors']:.0f}"),
            (
                "server RSS after",
                f"gateway {ours['rss_mb']:.0f} MiB, echo {bare['rss_mb']:.0f} MiB",
            ),
        ],
    )


if __name__ == "__main__":
    _stack.run(main)
