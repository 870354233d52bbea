"""Benchmark: the gateway in front of a large fleet (100,000 connected vehicles by default)
against a small one (100), on SQLite and on PostgreSQL.

For each backend and each fleet size the database is seeded directly, not through Connect:
the schema is migrated exactly as the gateway does on start (`storage.database.migrate`),
then vehicles (ACTIVE, every requested permission), one token grant per vehicle (encrypted
with `storage.crypto` under a key generated here and handed to the gateway through
VG_TOKEN_KEYS; access tokens valid for a day) and five telemetry readings per vehicle
(location, odometer, fuel, battery, lock status; fetched at seeding time) are bulk-inserted
through SQLAlchemy Core executemany, in chunks. On PostgreSQL the load ends with
VACUUM ANALYZE, as autovacuum would soon after.

Then `vehicle-gateway serve` starts on that database (embedded simulator, scheduler and
token renewal off, WARNING logs), pinned to CPU 0, and this client, pinned to CPU 1:

1. walks ListVehicles with page tokens, one page at a time, `--pages` pages at the
   default page size (50) and as many at the largest (500), starting over at the end;
2. makes `--reads` GetTelemetry calls (`--concurrency` in flight, max_age 1 h) on vehicles
   drawn uniformly from the whole fleet, after a warm-up that reads every vehicle once
   (unless --no-warm-fleet) and 2,000 more at random; every answer must
   come from the cache, which the table checks three ways (`from_cache` of each answer,
   AVAILABLE readings, the embedded simulator's request count staying at 0);
3. reads the gateway's RSS after the load.

Targets: cached GetTelemetry p99 on the large fleet at most 1.2x the small fleet's, and
the gateway's RSS at most 300 MiB. PostgreSQL runs on CPU 0 beside the gateway, so the
server side has one core on either backend.

    .venv/bin/python -m bench.fleet_scale [--backends sqlite,postgresql] [--vehicles 100000]
        [--small 100] [--reads 20000] [--concurrency 32] [--pages 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
from google.protobuf import duration_pb2
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import _stack
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core.model import (
    Battery,
    DoorState,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryField,
    TelemetryValue,
)
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.plain import telemetry_to_json
from gateway.core.validation import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from storage import schema
from storage.crypto import Keyring, TokenCipher, generate_key_entry
from storage.database import create_engine, migrate
from storage.repositories.grants import SqlGrantRepository, tokens_context
from tests.services import PostgresCluster

BACKENDS = ("sqlite", "postgresql")
TARGET_P99_RATIO = 1.2
TARGET_RSS_MB = 300.0
SEED_CHUNK = 5_000
"""Vehicles per seeding transaction (with their grants and telemetry rows)."""
MAX_AGE = duration_pb2.Duration(seconds=3600)
SEEDED_FIELDS = (
    TelemetryField.LOCATION,
    TelemetryField.ODOMETER,
    TelemetryField.FUEL,
    TelemetryField.BATTERY,
    TelemetryField.LOCK_STATUS,
)
REQUESTED_FIELDS = [pb.TelemetryField.Value(f.name) for f in SEEDED_FIELDS]
WARMUP_READS = 2_000
KEY_ID = "fleet-scale"


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--vehicles", type=int, default=100_000, help="the large fleet")
    parser.add_argument("--small", type=int, default=100, help="the small fleet")
    parser.add_argument("--reads", type=int, default=20_000, help="measured GetTelemetry calls")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pages", type=int, default=200, help="ListVehicles pages per size")
    parser.add_argument(
        "--warm-fleet",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read every vehicle once before measuring, so the measured reads are all served "
        "from memory and the RSS is that of the whole fleet cached (--no-warm-fleet: "
        "measure first reads too, which load the vehicle from the database)",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown or not args.backends:
        parser.error(f"--backends: choose among {', '.join(BACKENDS)}")
    if min(args.vehicles, args.small, args.reads, args.concurrency, args.pages) < 1:
        parser.error("--vehicles, --small, --reads, --concurrency and --pages must be positive")
    return args


# --- seeding --------------------------------------------------------------------------------


def vehicle_id(number: int) -> str:
    """The fleet id of vehicle `number` (zero-padded, so id order is number order)."""
    return f"car-{number:07d}"


def grant_id(number: int) -> str:
    """The id of vehicle `number`'s token grant (one Smartcar user per vehicle)."""
    return f"grant-{number:07d}"


@dataclass(frozen=True, slots=True)
class Seeder:
    """Builds the rows of one fleet: every vehicle connected, its readings fresh at `now`."""

    cipher: TokenCipher
    now: datetime

    def grant(self, number: int) -> dict[str, Any]:
        """The `smartcar_grants` row of vehicle `number`: a random pair, encrypted."""
        identifier = grant_id(number)
        plaintext = json.dumps(
            {"access_token": secrets.token_urlsafe(24), "refresh_token": secrets.token_urlsafe(24)}
        ).encode()
        return {
            "id": identifier,
            "smartcar_user_id": f"user-{number:07d}",
            "tokens": self.cipher.encrypt(plaintext, context=tokens_context(identifier)),
            "key_id": self.cipher.active_key_id,
            "access_expires_at": self.now + timedelta(days=1),
            "refresh_expires_at": self.now + timedelta(days=60),
            "version": 1,
            "refresh_claimed_until": None,
        }

    def vehicle(self, number: int) -> dict[str, Any]:
        """The `vehicles` row of vehicle `number`: ACTIVE with every requested permission."""
        return {
            "id": vehicle_id(number),
            "smartcar_vehicle_id": f"sc-{number:07d}",
            "grant_id": grant_id(number),
            "status": "ACTIVE",
            "status_reason": None,
            "status_changed_at": self.now - timedelta(days=1),
            "make": "BENCH",
            "model": "Fleet",
            "year": 2020 + number % 5,
            "vin": f"1BENCH{number:011d}",
            "permissions": sorted(REQUESTED_PERMISSIONS),
            "last_telemetry_at": self.now,
            "created_at": self.now - timedelta(days=1),
            "failure_count": 0,
        }

    def telemetry(self, number: int) -> list[dict[str, Any]]:
        """The `telemetry` rows of vehicle `number`: one AVAILABLE reading per seeded field."""
        values: dict[TelemetryField, TelemetryValue] = {
            TelemetryField.LOCATION: Location(
                latitude=48.0 + number % 1000 / 1000, longitude=11.0 + number % 997 / 997
            ),
            TelemetryField.ODOMETER: Odometer(distance_km=10_000.0 + number % 90_000),
            TelemetryField.FUEL: Fuel(
                percent_remaining=float(number % 100), amount_remaining_l=20.0, range_km=300.0
            ),
            TelemetryField.BATTERY: Battery(percent_remaining=80.0, range_km=40.0),
            TelemetryField.LOCK_STATUS: LockStatus(
                is_locked=number % 2 == 0,
                doors=(
                    DoorState(door="front_left", status="CLOSED"),
                    DoorState(door="front_right", status="CLOSED"),
                ),
            ),
        }
        return [
            {
                "vehicle_id": vehicle_id(number),
                "field": field.value,
                "availability": "AVAILABLE",
                "value": telemetry_to_json(value),
                "recorded_at": self.now - timedelta(minutes=1),
                "fetched_at": self.now,
                "reason": None,
            }
            for field, value in values.items()
        ]


async def seed(url: str, vehicles: int, cipher: TokenCipher) -> None:
    """Migrate the empty database at `url` as the gateway would, then insert the fleet."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        seeder = Seeder(cipher=cipher, now=datetime.now(UTC))
        for first in range(0, vehicles, SEED_CHUNK):
            numbers = range(first, min(first + SEED_CHUNK, vehicles))
            async with engine.begin() as connection:
                await connection.execute(
                    insert(schema.smartcar_grants), [seeder.grant(n) for n in numbers]
                )
                await connection.execute(
                    insert(schema.vehicles), [seeder.vehicle(n) for n in numbers]
                )
                await connection.execute(
                    insert(schema.telemetry), [row for n in numbers for row in seeder.telemetry(n)]
                )
        if engine.dialect.name == "postgresql":
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("VACUUM ANALYZE")
        await check_seeded(engine, cipher, vehicles)
    finally:
        await engine.dispose()


async def check_seeded(engine: AsyncEngine, cipher: TokenCipher, vehicles: int) -> None:
    """Read the last grant back through the gateway's own repository (it must decrypt)."""
    async with engine.connect() as connection:
        grant = await SqlGrantRepository(connection, cipher).get(grant_id(vehicles - 1))
    if grant is None or grant.tokens.access_expires_at <= datetime.now(UTC):
        raise RuntimeError("the seeded token grants do not read back")


# --- databases ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Databases:
    """Makes empty databases of one backend; tells the CPU its server has used."""

    new: Callable[[str], str]
    """Make an empty database by name; return its URL."""
    cpu_seconds: Callable[[], float]
    """CPU seconds of the database server so far (0 for SQLite: it runs in the gateway)."""


@contextlib.contextmanager
def databases(backend: str) -> Iterator[Databases]:
    """Yield a way to make empty databases of `backend`.

    PostgreSQL: a throwaway cluster, started while this process is on CPU 0 so that its
    processes stay there with the gateway. Everything is removed at the end.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"vg-fleet-{backend}-"))
    try:
        if backend == "sqlite":
            yield Databases(
                new=lambda name: f"sqlite+aiosqlite:///{directory / name}.db",
                cpu_seconds=lambda: 0.0,
            )
            return
        with contextlib.ExitStack() as stack:
            _stack.pin(0)
            try:
                cluster = stack.enter_context(PostgresCluster.start(directory))
            finally:
                _stack.pin(1)
            postmaster = int((cluster.data / "postmaster.pid").read_text().splitlines()[0])
            yield Databases(
                new=cluster.create_database,
                cpu_seconds=lambda: _stack.tree_cpu_seconds(postmaster),
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """One ListVehicles walk: page latencies, distinct vehicles seen, errors, disorder."""

    latencies: list[float]
    listed: int
    errors: int
    out_of_order: int


async def walk(stub: pb_grpc.VehicleGatewayAsyncStub, *, page_size: int, pages: int) -> Listing:
    """Request `pages` pages one after another, following page tokens (from the start again
    after the last page); check that ids only grow within one pass."""
    latencies: list[float] = []
    seen: set[str] = set()
    errors = out_of_order = 0
    token, last = "", ""
    for _ in range(pages):
        request = pb.ListVehiclesRequest(page_size=page_size, page_token=token)
        began = time.perf_counter()
        try:
            answer = await stub.ListVehicles(request)
        except grpc.aio.AioRpcError:
            errors += 1
            token, last = "", ""
            continue
        latencies.append(time.perf_counter() - began)
        for vehicle in answer.vehicles:
            out_of_order += vehicle.vehicle_id <= last
            last = vehicle.vehicle_id
            seen.add(vehicle.vehicle_id)
        token = answer.next_page_token
        if not token:  # the last page: start over
            last = ""
    return Listing(latencies=latencies, listed=len(seen), errors=errors, out_of_order=out_of_order)


@dataclass(frozen=True, slots=True)
class Reads:
    """Cached GetTelemetry calls: latencies, seconds, and everything that was not cached."""

    latencies: list[float]
    seconds: float
    errors: int
    vehicles: frozenset[str]
    """The vehicles read."""
    not_from_cache: int
    not_available: int


async def read_spread(
    stub: pb_grpc.VehicleGatewayAsyncStub,
    rng: random.Random,
    *,
    fleet: int,
    reads: int,
    concurrency: int,
    every_vehicle_first: bool = False,
) -> Reads:
    """Make `reads` GetTelemetry calls on vehicles drawn uniformly from the fleet; with
    `every_vehicle_first`, read each vehicle of the fleet once before (shuffled)."""
    targets = [vehicle_id(rng.randrange(fleet)) for _ in range(reads)]
    if every_vehicle_first:
        everyone = [vehicle_id(n) for n in range(fleet)]
        rng.shuffle(everyone)
        targets = everyone + targets
    reads = len(targets)
    pending = iter(targets)
    not_from_cache = not_available = 0

    async def call() -> None:
        nonlocal not_from_cache, not_available
        request = pb.GetTelemetryRequest(
            vehicle_id=next(pending), fields=REQUESTED_FIELDS, max_age=MAX_AGE
        )
        answer = await stub.GetTelemetry(request)
        not_from_cache += not answer.from_cache
        not_available += sum(r.availability != pb.AVAILABLE for r in answer.readings)

    latencies, seconds, errors = await _stack.drive(call, requests=reads, concurrency=concurrency)
    return Reads(
        latencies=latencies,
        seconds=seconds,
        errors=errors,
        vehicles=frozenset(targets),
        not_from_cache=not_from_cache,
        not_available=not_available,
    )


async def upstream_requests(simulator_port: int) -> int:
    """How many Vehicle/Management API requests the embedded simulator has answered."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"http://127.0.0.1:{simulator_port}/sim/stats")
    return int(answer.raise_for_status().json()["requests"]["total"])


@dataclass(frozen=True, slots=True)
class FleetResult:
    """Everything measured on one fleet size."""

    vehicles: int
    seed_s: float
    start_s: float
    list_s: float
    reads_s: float
    listings: dict[int, Listing]
    warmup: Reads
    reads: Reads
    upstream: int
    rss_start_mb: float
    rss_mb: float
    gateway_cpu_s: float
    """The gateway's CPU seconds during the measured reads."""
    database_cpu_s: float
    """The database server's CPU seconds during the measured reads (0 for SQLite)."""


async def measure_fleet(dbs: Databases, vehicles: int, args: argparse.Namespace) -> FleetResult:
    """Seed a fleet of `vehicles`, start a gateway on it, list, read, and measure."""
    key_entry = generate_key_entry(KEY_ID)
    cipher = TokenCipher(Keyring.from_config(key_entry))
    url = dbs.new(f"fleet_{vehicles}")
    began = time.perf_counter()
    await seed(url, vehicles, cipher)
    seed_s = time.perf_counter() - began
    simulator_port = _stack.free_port()
    with tempfile.TemporaryDirectory(prefix="vg-fleet-var-") as var:
        began = time.perf_counter()
        gateway, port = await _stack.gateway(
            {
                "VG_VAR_DIR": var,
                "VG_DATABASE_URL": url,
                "VG_TOKEN_KEYS": key_entry,
                "VG_SCHEDULER_INTERVAL_S": "0",
                "VG_RENEWAL_INTERVAL_S": "0",
                "VG_LOG_LEVEL": "WARNING",
                "VG_SIMULATOR_PORT": str(simulator_port),
            }
        )
        start_s = time.perf_counter() - began
        try:
            rss_start_mb = _stack.rss_mb(gateway.pid)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.VehicleGatewayStub(channel)
                began = time.perf_counter()
                listings = {
                    size: await walk(stub, page_size=size, pages=args.pages)
                    for size in (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
                }
                list_s = time.perf_counter() - began
                rng = random.Random(vehicles)
                began = time.perf_counter()
                warmup = await read_spread(
                    stub,
                    rng,
                    fleet=vehicles,
                    reads=min(WARMUP_READS, args.reads),
                    concurrency=args.concurrency,
                    every_vehicle_first=args.warm_fleet,
                )
                cpu_before = (_stack.cpu_seconds(gateway.pid), dbs.cpu_seconds())
                reads = await read_spread(
                    stub, rng, fleet=vehicles, reads=args.reads, concurrency=args.concurrency
                )
                gateway_cpu_s = _stack.cpu_seconds(gateway.pid) - cpu_before[0]
                database_cpu_s = dbs.cpu_seconds() - cpu_before[1]
                reads_s = time.perf_counter() - began
            upstream = await upstream_requests(simulator_port)
            rss_mb = _stack.rss_mb(gateway.pid)
        finally:
            gateway.stop()
    return FleetResult(
        vehicles=vehicles,
        seed_s=seed_s,
        start_s=start_s,
        list_s=list_s,
        reads_s=reads_s,
        listings=listings,
        reads=reads,
        warmup=warmup,
        upstream=upstream,
        rss_start_mb=rss_start_mb,
        rss_mb=rss_mb,
        gateway_cpu_s=gateway_cpu_s,
        database_cpu_s=database_cpu_s,
    )


# --- report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals."""
    return f"{seconds * 1000:.2f} ms"


def report(backend: str, small: FleetResult, large: FleetResult, args: argparse.Namespace) -> None:
    """Print the table of one backend: each row the small fleet, then the large one."""

    def both(value: Callable[[FleetResult], str]) -> str:
        return f"{small.vehicles:,}: {value(small)} | {large.vehicles:,}: {value(large)}"

    def latency(values: list[float]) -> str:
        return f"p50 {ms(_stack.percentile(values, 50))}, p99 {ms(_stack.percentile(values, 99))}"

    def listing(size: int) -> list[tuple[str, str]]:
        def pages(r: FleetResult) -> str:
            return latency(r.listings[size].latencies)

        def checks(r: FleetResult) -> str:
            walked = r.listings[size]
            return f"{walked.listed:,}, {walked.errors}, {walked.out_of_order}"

        return [
            (f"ListVehicles page_size={size}", both(pages)),
            ("  vehicles listed, errors, disorder", both(checks)),
        ]

    rows = [
        ("seed (migrate + insert)", both(lambda r: f"{r.seed_s:.1f} s")),
        ("gateway start", both(lambda r: f"{r.start_s:.1f} s")),
        *listing(DEFAULT_PAGE_SIZE),
        *listing(MAX_PAGE_SIZE),
    ]
    ratio = _stack.percentile(large.reads.latencies, 99) / max(
        _stack.percentile(small.reads.latencies, 99), 1e-9
    )
    rows += [
        ("GetTelemetry (cached)", both(lambda r: latency(r.reads.latencies))),
        ("  throughput", both(lambda r: f"{args.reads / r.reads.seconds:,.0f}/s")),
        (
            "  CPU per 1,000 reads: gateway, database server",
            both(
                lambda r: (
                    f"{r.gateway_cpu_s / args.reads * 1e6:.0f} ms, "
                    f"{r.database_cpu_s / args.reads * 1e6:.0f} ms"
                )
            ),
        ),
        (
            f"  p99 ratio {large.vehicles:,}/{small.vehicles:,}",
            f"{ratio:.2f} (target ≤ {TARGET_P99_RATIO})",
        ),
        (
            "  vehicles read: measured, with warm-up",
            both(
                lambda r: (
                    f"{len(r.reads.vehicles):,}, {len(r.reads.vehicles | r.warmup.vehicles):,}"
                )
            ),
        ),
        ("  errors (warm-up included)", both(lambda r: f"{r.reads.errors + r.warmup.errors}")),
        (
            "  not from cache, not AVAILABLE (warm-up included)",
            both(
                lambda r: (
                    f"{r.reads.not_from_cache + r.warmup.not_from_cache}, "
                    f"{r.reads.not_available + r.warmup.not_available}"
                )
            ),
        ),
        ("upstream requests (simulator)", both(lambda r: f"{r.upstream}")),
        ("gateway RSS at start", both(lambda r: f"{r.rss_start_mb:.0f} MiB")),
        (
            "gateway RSS after the load",
            both(lambda r: f"{r.rss_mb:.0f} MiB") + f" (target ≤ {TARGET_RSS_MB:.0f})",
        ),
        (
            "phase time: list, reads with warm-up",
            both(lambda r: f"{r.list_s:.1f} s, {r.reads_s:.1f} s"),
        ),
    ]
    _stack.table(
        f"{backend}: {large.vehicles:,} vs {small.vehicles:,} connected vehicles, "
        f"{args.reads:,} reads at {args.concurrency} in flight, {args.pages} pages per size",
        rows,
    )


async def main() -> None:
    """Measure the small and the large fleet on each backend; print a table per backend."""
    args = parse()
    _stack.pin(1)
    for backend in args.backends:
        with databases(backend) as dbs:
            small = await measure_fleet(dbs, args.small, args)
            large = await measure_fleet(dbs, args.vehicles, args)
        report(backend, small, large, args)


if __name__ == "__main__":
    _stack.run(main)
