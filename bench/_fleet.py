"""Shared pieces of the simulated-time fleet benchmarks (`fleet_month`, `mixed_day`).

Not a benchmark itself (the leading underscore). The real gateway core, SQLite storage and
Smartcar adapter run in this process against the real simulator over loopback HTTP; a
`ManualClock` and the simulator's clock are moved together (`advance`), so a day or a month
passes in minutes of real time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from clients.simulator import BucketLimit, SimulatorConfig, serve_simulator
from gateway.app import running_gateway
from gateway.core.errors import GatewayError
from gateway.core.facade import Gateway
from gateway.core.ratelimit import BucketSpec, RateLimits
from gateway.edge.clock import ManualClock
from gateway.settings import Settings

CLIENT_ID, CLIENT_SECRET = "fleet-month", "fleet-month-secret"
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
"""Where both clocks start, whatever today's date (each script moves on from here to the
month or day it measures)."""


@dataclass
class FleetStack:
    """What a simulated-time benchmark drives: the gateway's core, the simulator's world,
    the gateway's clock, and an HTTP client for the simulated Connect redirects."""

    gateway: Gateway
    world: Any
    clock: ManualClock
    http: httpx.AsyncClient


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options every simulated-time fleet benchmark shares."""
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument(
        "--app-bucket",
        default="120/30",
        help="app-wide Smartcar bucket 'capacity/seconds per token' (Smartcar default 120/30)",
    )
    parser.add_argument("--poll-concurrency", type=int, default=4, help="polls in flight")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--api", choices=("v3", "v2"), default="v3", help="Smartcar API of the connections"
    )
    parser.add_argument("--json", action="store_true")


def tmpfs() -> Path | None:
    """Where the database goes: tmpfs when there is one (the benchmarks measure policy,
    not disk fsyncs)."""
    shm = Path("/dev/shm")  # noqa: S108 - a private temporary directory is made inside it
    return shm if shm.is_dir() else None


def app_bucket(spec: str) -> BucketSpec:
    """Parse 'capacity/seconds per token'."""
    capacity, period = spec.split("/")
    return BucketSpec(capacity=int(capacity), refill_per_s=1 / float(period))


@asynccontextmanager
async def fleet_stack(
    args: argparse.Namespace, *, env: dict[str, str] | None = None
) -> AsyncIterator[FleetStack]:
    """Start the simulator (`args.vehicles` cars, `args.seed`, no latency, the app-wide
    bucket of `args.app_bucket`) and the gateway on a ManualClock at the simulator's time,
    both with the same app-wide bucket; `env` adds gateway settings."""
    app = app_bucket(args.app_bucket)
    sim_config = SimulatorConfig(
        start_at_s=START.timestamp(),
        seed=args.seed,
        vehicles=args.vehicles,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        read_latency_s=0.0,
        command_latency_s=0.0,
        app_rate_limit=BucketLimit(capacity=app.capacity, refill_per_s=app.refill_per_s),
    )
    with tempfile.TemporaryDirectory(dir=tmpfs()) as tmp:
        async with serve_simulator(sim_config) as sim:
            clock = ManualClock(sim.world.clock.now())
            settings = Settings.from_env(
                {
                    "VG_VAR_DIR": str(Path(tmp) / "var"),
                    "VG_LISTEN": "127.0.0.1:0",
                    "VG_SCHEDULER_INTERVAL_S": "0",
                    "VG_RENEWAL_INTERVAL_S": "0",
                    "VG_SCHEDULER_CONCURRENCY": str(args.poll_concurrency),
                    "SMARTCAR_API_ORIGIN": sim.base_url,
                    "SMARTCAR_AUTH_ORIGIN": sim.base_url + "/oauth/token",
                    "SMARTCAR_CONNECT_ORIGIN": sim.base_url,
                    "SMARTCAR_VEHICLE_API_V3_ORIGIN": sim.base_url,
                    "SMARTCAR_IAM_ORIGIN": sim.base_url,
                    "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": sim.base_url,
                    "SMARTCAR_CLIENT_ID": CLIENT_ID,
                    "SMARTCAR_CLIENT_SECRET": CLIENT_SECRET,
                    "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
                    "VG_SMARTCAR_MODE": "simulated",
                    "VG_SMARTCAR_API": args.api,
                    **(env or {}),
                }
            )
            policies = replace(settings.policies, rate_limits=RateLimits(application=app))
            settings = replace(settings, policies=policies)
            async with (
                running_gateway(settings, clock=clock) as running,
                httpx.AsyncClient(timeout=30) as http,
            ):
                yield FleetStack(gateway=running.gateway, world=sim.world, clock=clock, http=http)


async def connect_cars(stack: FleetStack, count: int) -> list[tuple[str, str]]:
    """Connect `count` cars (`car-00000`, …) through GetConnectUrl → simulated Connect →
    Connect, with the app-wide bucket lifted meanwhile (the set-up must not wait on it);
    return each car's fleet id and Smartcar id."""
    world = stack.world
    configured = world.config.app_rate_limit
    world.reconfigure({"app_rate_limit": None})
    cars = []
    for n in range(count):
        fleet_id = f"car-{n:05d}"
        issued = await stack.gateway.get_connect_url(fleet_id)
        redirect = await stack.http.get(issued.url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
        panel = await stack.gateway.connect(
            fleet_id, code=query["code"][0], state=issued.state, user_id=query["user_id"][0]
        )
        cars.append((fleet_id, panel.vehicle.smartcar_vehicle_id or ""))
    world.reconfigure({"app_rate_limit": configured.to_json() if configured else None})
    return cars


def advance(stack: FleetStack, seconds: float) -> None:
    """Move both clocks."""
    stack.clock.advance(seconds)
    stack.world.clock.advance(seconds)


def advance_to(stack: FleetStack, moment: datetime) -> None:
    """Move both clocks to `moment` (not before now)."""
    advance(stack, max(0.0, (moment - stack.clock.now()).total_seconds()))


def month_start_after(moment: datetime) -> datetime:
    """Return 00:00 UTC on the first day of the month after `moment`."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def refusal(error: GatewayError) -> str:
    """Name a refusal by its reason and, for a rate limit, which limit refused it."""
    limit = error.metadata.get("limit")
    return f"{error.reason}:{limit}" if limit else error.reason


def run_report(report: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a benchmark to its report on uvloop when installed (the service's event loop,
    `gateway.cli.serve`)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.run(report)
    return uvloop.run(report)


def printed_as_json(report: dict[str, Any], *, as_json: bool) -> bool:
    """Print the report as indented JSON when `as_json`; tell whether it was printed."""
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
    return as_json
