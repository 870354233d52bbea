"""`vehicle-gateway simulator`: run the Smartcar simulator alone.

    vehicle-gateway simulator [--host 127.0.0.1] [--port 8770] [--seed 7] [--vehicles 50]
                              [--read-latency-s 0] [--command-latency-s 2] [--no-limits]
                              [--state-file PATH]

`--port 0` picks a free port. Either way one JSON line goes to stderr once the simulator
listens: `{"event": "simulator_started", "url": "http://127.0.0.1:8770", "port": 8770, …}`.
Client credentials come from SMARTCAR_CLIENT_ID / SMARTCAR_CLIENT_SECRET when set (any
client is accepted otherwise). `--no-limits` disables the per-vehicle and app-wide rate
limits and the monthly allowance (benchmarks, development). `--state-file` keeps the
simulator's state (tokens, connections, clock) in PATH across restarts; without it the
simulator forgets everything when it stops. uvloop is used when installed.
SIGINT and SIGTERM stop the server cleanly; the exit status is then 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clients.simulator.config import ConfigError, SimulatorConfig
from clients.simulator.runner import serve_simulator
from clients.simulator.state_file import StateFileError

DEFAULT_PORT = 8770


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `simulator` sub-command to a `vehicle-gateway` parser."""
    parser = subparsers.add_parser(
        "simulator",
        help="run the Smartcar API simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0 picks one)"
    )
    parser.add_argument("--seed", type=int, default=7, help="fleet seed (7)")
    parser.add_argument("--vehicles", type=int, default=50, help="catalog size (50)")
    parser.add_argument("--read-latency-s", type=float, default=0.0, help="read latency (0)")
    parser.add_argument(
        "--command-latency-s", type=float, default=2.0, help="lock/unlock latency (2)"
    )
    parser.add_argument(
        "--no-limits", action="store_true", help="disable rate limits and the monthly allowance"
    )
    parser.add_argument(
        "--state-file", type=Path, help="keep the state here across restarts (default: none)"
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> SimulatorConfig:
    """Build the simulator's settings from the command line and the environment."""
    limits: dict[str, Any] = {}
    if args.no_limits:
        limits = {"vehicle_rate_limit": None, "app_rate_limit": None, "monthly_request_limit": None}
    return SimulatorConfig(
        seed=args.seed,
        vehicles=args.vehicles,
        client_id=environ.get("SMARTCAR_CLIENT_ID") or None,
        client_secret=environ.get("SMARTCAR_CLIENT_SECRET") or None,
        read_latency_s=args.read_latency_s,
        command_latency_s=args.command_latency_s,
        **limits,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status (2: bad settings, 1: no bind)."""
    try:
        config = config_from_args(args, os.environ)
    except ConfigError as exc:
        _log_event("simulator_error", field=exc.field, message=exc.message)
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(config, host=args.host, port=args.port, state_file=args.state_file))
    except StateFileError as exc:
        _log_event("simulator_error", field="--state-file", message=str(exc))
        return 2
    except OSError as exc:
        _log_event("simulator_error", message=f"cannot listen on {args.host}:{args.port}: {exc}")
        return 1
    return 0


async def _serve(config: SimulatorConfig, *, host: str, port: int, state_file: Path | None) -> None:
    """Serve, log where, and wait for a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_simulator(config, host=host, port=port, state_file=state_file) as sim:
        _log_event(
            "simulator_started",
            url=sim.base_url,
            port=sim.port,
            seed=config.seed,
            vehicles=config.vehicles,
            any_client=config.client_id is None,
        )
        await stop.wait()
    _log_event("simulator_stopped")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's loop factory when uvloop is installed (None: asyncio's default)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _log_event(event: str, **fields: object) -> None:
    """Write one JSON log line to stderr."""
    sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stderr.flush()
