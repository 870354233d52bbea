"""Benchmark: the gateway in front of fleets of 100, 100,000 and 1,000,000 connected
vehicles, on SQLite and on PostgreSQL, with the telemetry cache bounded below the largest.

For each backend and each fleet size the database is seeded directly, not through Connect:
the schema is migrated exactly as the gateway does on start (`storage.database.migrate`),
then vehicles (ACTIVE, every requested permission, API v2), token grants and five telemetry
readings per vehicle (location, odometer, fuel, battery, lock status; fetched at seeding
time) are bulk-loaded: on PostgreSQL with COPY (asyncpg `copy_records_to_table`), on SQLite
through SQLAlchemy Core executemany, in chunks. On PostgreSQL the load ends with
VACUUM ANALYZE, as autovacuum would soon after.

Grants are shared: v2 token pairs belong to a Smartcar user and cover all of that owner's
cars, so each grant (one random pair, encrypted with `storage.crypto` under a key generated
here and handed to the gateway through VG_TOKEN_KEYS; access tokens valid for a day) serves
`--cars-per-owner` consecutive vehicles (10 by default: 100,000 grants for 1,000,000 cars).
Nothing measured here uses a token (every read is answered from the gateway's cache or its
database); the grants are there so that the tables have the size and shape of a real fleet.

Then one `vehicle-gateway serve` per fleet starts on its database (embedded simulator,
scheduler and token renewal off, WARNING logs, the cache at VG_CACHE_VEHICLES = `--cache`),
all pinned to CPU 0, and this client, pinned to CPU 1, measures them side by side: the
measured pages and cached reads are made in `--rounds` rounds, each taking the fleets in
turn, so that load from outside (the machine is shared) falls on every fleet alike
instead of on whichever was measured when it came.

1. walks ListVehicles with page tokens, one page at a time, `--pages` pages at the
   default page size (50) and as many at the largest (500), from the first vehicle
   (starting over at the end);
2. picks the working set: `--working-set` vehicles (default: as many as the cache holds,
   the whole fleet when it is smaller) drawn at random from the fleet with a fixed seed —
   the cars in use, which a bounded cache is for. It reads each of them once (loading it
   into the cache), then 2,000 more at random among them (one fleet after another);
3. makes `--reads` GetTelemetry calls (`--concurrency` in flight, max_age 1 h) on vehicles
   drawn uniformly from the working set: every answer must come from the cache, which the
   table checks three ways (`from_cache` of each answer, AVAILABLE readings, the embedded
   simulator's request count staying at 0);
4. reads cars outside the working set, each once (`--misses` per phase, one phase per
   `--miss-concurrency`): each misses the cache and is loaded from the database (fresh
   readings, so nothing goes upstream), evicting the least recently used car; skipped when
   the working set is the whole fleet;
5. reads each gateway's RSS after the cached reads and after the misses.

Targets: cached GetTelemetry p99 on the largest fleet at most 1.2x the smallest fleet's,
the p99 of a read that misses the cache at most 20 ms, ListVehicles pages on the largest
fleet as fast as on the one before it, and the gateway's RSS at most 400 MiB. PostgreSQL
runs on CPU 0 beside the gateway, so the server side has one core on either backend.

    .venv/bin/python -m bench.fleet_scale [--backends sqlite,postgresql]
        [--fleets 100,100000] [--cache N] [--working-set N] [--reads 20000]
        [--concurrency 32] [--misses 5000] [--miss-concurrency 1,8] [--pages 200]
        [--rounds 5] [--cars-per-owner 10] [--data-dir DIR]
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
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
from google.protobuf import duration_pb2
from sqlalchemy import JSON, Table, insert
from sqlalchemy.engine import make_url
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
from gateway.core.telemetry import TelemetryPolicy
from gateway.core.validation import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from storage import schema
from storage.crypto import Keyring, TokenCipher, generate_key_entry
from storage.database import create_engine, migrate
from storage.repositories.grants import SqlGrantRepository, tokens_context
from tests.services import PostgresCluster, run_apart

BACKENDS = ("sqlite", "postgresql")
TARGET_P99_RATIO = 1.2
TARGET_MISS_P99_MS = 20.0
TARGET_RSS_MB = 400.0
SEED_CHUNK = 20_000
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
DEFAULT_CACHE = TelemetryPolicy().cache_vehicles


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--fleets", default="100,100000", help="comma-separated fleet sizes, smallest first"
    )
    parser.add_argument(
        "--cache",
        type=int,
        default=DEFAULT_CACHE,
        help=f"VG_CACHE_VEHICLES of the gateway (default {DEFAULT_CACHE:,}, the gateway's)",
    )
    parser.add_argument(
        "--working-set",
        type=int,
        default=0,
        help="vehicles the cached reads are drawn from (default: --cache; at most the fleet)",
    )
    parser.add_argument("--reads", type=int, default=20_000, help="measured GetTelemetry calls")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--misses", type=int, default=5_000, help="reads of uncached cars per miss phase"
    )
    parser.add_argument(
        "--miss-concurrency", default="1,8", help="comma-separated: one miss phase each"
    )
    parser.add_argument("--pages", type=int, default=200, help="ListVehicles pages per size")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="the measured pages and cached reads are made in this many rounds, each "
        "taking the fleets in turn",
    )
    parser.add_argument("--cars-per-owner", type=int, default=10, help="vehicles per grant")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where databases go (default: the system's temporary folder); /dev/shm for "
        "a large fleet where the temporary folder has no room",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown or not args.backends:
        parser.error(f"--backends: choose among {', '.join(BACKENDS)}")
    try:
        args.fleets = sorted({int(n) for n in args.fleets.split(",") if n.strip()})
        args.miss_concurrency = [int(n) for n in args.miss_concurrency.split(",") if n.strip()]
    except ValueError:
        parser.error("--fleets and --miss-concurrency take comma-separated whole numbers")
    numbers = [args.cache, args.reads, args.concurrency, args.pages, args.cars_per_owner]
    numbers.append(args.rounds)
    if not args.fleets or min(args.fleets + args.miss_concurrency + numbers) < 1:
        parser.error("fleet sizes, counts and concurrencies must be positive")
    if args.fleets[-1] > 9_999_999:
        parser.error("--fleets: at most 9,999,999 vehicles (seven-digit ids)")
    if args.working_set < 0 or args.misses < 0:
        parser.error("--working-set and --misses must not be negative")
    args.working_set = args.working_set or args.cache
    return args


# --- seeding --------------------------------------------------------------------------------


def vehicle_id(number: int) -> str:
    """The fleet id of vehicle `number` (zero-padded, so id order is number order)."""
    return f"car-{number:07d}"


@dataclass(frozen=True, slots=True)
class Seeder:
    """Builds the rows of one fleet: every vehicle connected, its readings fresh at `now`;
    `cars_per_owner` consecutive vehicles share their owner's grant."""

    cipher: TokenCipher
    now: datetime
    cars_per_owner: int

    def owner(self, number: int) -> int:
        """The number of the owner (and grant) of vehicle `number`."""
        return number // self.cars_per_owner

    def grants(self, numbers: range) -> list[dict[str, Any]]:
        """The `smartcar_grants` rows of the owners whose first vehicle is in `numbers`."""
        return [self.grant(self.owner(n)) for n in numbers if n % self.cars_per_owner == 0]

    def grant(self, owner: int) -> dict[str, Any]:
        """The `smartcar_grants` row of one owner: a random pair, encrypted."""
        identifier = f"grant-{owner:07d}"
        plaintext = json.dumps(
            {"access_token": secrets.token_urlsafe(24), "refresh_token": secrets.token_urlsafe(24)}
        ).encode()
        return {
            "id": identifier,
            "smartcar_user_id": f"user-{owner:07d}",
            "tokens": self.cipher.encrypt(plaintext, context=tokens_context(identifier)),
            "key_id": self.cipher.active_key_id,
            "access_expires_at": self.now + timedelta(days=1),
            "refresh_expires_at": self.now + timedelta(days=60),
            "version": 1,
            "refresh_claimed_until": None,
            "created_at": self.now - timedelta(days=1),
            "updated_at": self.now - timedelta(days=1),
        }

    def vehicle(self, number: int) -> dict[str, Any]:
        """The `vehicles` row of vehicle `number`: ACTIVE with every requested permission."""
        return {
            "id": vehicle_id(number),
            "smartcar_vehicle_id": f"sc-{number:07d}",
            "grant_id": f"grant-{self.owner(number):07d}",
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
            "api": "v2",
            "owner_commands_only": False,
            # Before the gateway starts: its first look for changed vehicles finds none.
            "updated_at": self.now - timedelta(days=1),
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
                "field": kind.value,
                "availability": "AVAILABLE",
                "value": telemetry_to_json(value),
                "recorded_at": self.now - timedelta(minutes=1),
                "fetched_at": self.now,
                "reason": None,
            }
            for kind, value in values.items()
        ]

    def chunk(self, numbers: range) -> list[tuple[Table, list[dict[str, Any]]]]:
        """The rows of the vehicles `numbers`, by table, in the order they are inserted."""
        return [
            (schema.smartcar_grants, self.grants(numbers)),
            (schema.vehicles, [self.vehicle(n) for n in numbers]),
            (schema.telemetry, [row for n in numbers for row in self.telemetry(n)]),
        ]


async def seed(url: str, vehicles: int, cipher: TokenCipher, *, cars_per_owner: int) -> None:
    """Migrate the empty database at `url` as the gateway would, then load the fleet."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        seeder = Seeder(cipher=cipher, now=datetime.now(UTC), cars_per_owner=cars_per_owner)
        chunks = (
            range(first, min(first + SEED_CHUNK, vehicles))
            for first in range(0, vehicles, SEED_CHUNK)
        )
        if engine.dialect.name == "postgresql":
            await copy_fleet(url, seeder, chunks)
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("VACUUM ANALYZE")
        else:
            for numbers in chunks:
                async with engine.begin() as connection:
                    for table, rows in seeder.chunk(numbers):
                        if rows:
                            await connection.execute(insert(table), rows)
        await check_seeded(engine, cipher, vehicles, seeder)
    finally:
        await engine.dispose()


async def copy_fleet(url: str, seeder: Seeder, chunks: Iterable[range]) -> None:
    """Load the fleet into PostgreSQL with COPY, one transaction per chunk of vehicles.

    COPY takes the rows as the database stores them: JSON columns as their text, times as
    aware datetimes (timestamptz); columns left out get their server defaults.
    """
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        for numbers in chunks:
            async with connection.transaction():
                for table, rows in seeder.chunk(numbers):
                    if not rows:
                        continue
                    columns = list(rows[0])
                    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
                    records = [
                        tuple(
                            json.dumps(row[c])
                            if c in json_columns and row[c] is not None
                            else row[c]
                            for c in columns
                        )
                        for row in rows
                    ]
                    await connection.copy_records_to_table(
                        table.name, records=records, columns=columns
                    )
    finally:
        await connection.close()


async def check_seeded(
    engine: AsyncEngine, cipher: TokenCipher, vehicles: int, seeder: Seeder
) -> None:
    """Read the last grant back through the gateway's own repository (it must decrypt)."""
    identifier = f"grant-{seeder.owner(vehicles - 1):07d}"
    async with engine.connect() as connection:
        grant = await SqlGrantRepository(connection, cipher).get(identifier)
    if grant is None or grant.tokens.access_expires_at <= datetime.now(UTC):
        raise RuntimeError("the seeded token grants do not read back")


# --- databases ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Databases:
    """Makes and drops databases of one backend; tells the CPU its server has used."""

    new: Callable[[str], str]
    """Make an empty database by name; return its URL."""
    drop: Callable[[str], None]
    """Drop the database of that name (its room is needed for the next fleet)."""
    cpu_seconds: Callable[[], float]
    """CPU seconds of the database server so far (0 for SQLite: it runs in the gateway)."""


@contextlib.contextmanager
def databases(backend: str, parent: Path | None) -> Iterator[Databases]:
    """Yield a way to make empty databases of `backend` in a new folder under `parent`.

    PostgreSQL: a throwaway cluster, started while this process is on CPU 0 so that its
    processes stay there with the gateway. Everything is removed at the end.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"vg-fleet-{backend}-", dir=parent))
    try:
        if backend == "sqlite":
            yield Databases(
                new=lambda name: f"sqlite+aiosqlite:///{directory / name}.db",
                drop=lambda name: (directory / f"{name}.db").unlink(missing_ok=True),
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
                drop=lambda name: drop_database(cluster, name),
                cpu_seconds=lambda: _stack.tree_cpu_seconds(postmaster),
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def drop_database(cluster: PostgresCluster, name: str) -> None:
    """Drop one database of the cluster."""
    import asyncpg

    async def drop() -> None:
        dsn = make_url(cluster.url("postgres")).set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await connection.close()

    run_apart(drop)


# --- measurements ---------------------------------------------------------------------------


class Walker:
    """Walks ListVehicles with page tokens, one page at a time, across several calls of
    `pages`: from the start again after the last page; checks that ids only grow within
    one pass."""

    def __init__(self, stub: pb_grpc.VehicleGatewayAsyncStub, *, page_size: int) -> None:
        self._stub = stub
        self.page_size = page_size
        self.latencies: list[float] = []
        self.seen: set[str] = set()
        self.errors = 0
        self.out_of_order = 0
        self._token = ""
        self._last = ""

    async def pages(self, count: int) -> None:
        """Request the next `count` pages."""
        for _ in range(count):
            request = pb.ListVehiclesRequest(page_size=self.page_size, page_token=self._token)
            began = time.perf_counter()
            try:
                answer = await self._stub.ListVehicles(request)
            except grpc.aio.AioRpcError:
                self.errors += 1
                self._token, self._last = "", ""
                continue
            self.latencies.append(time.perf_counter() - began)
            for vehicle in answer.vehicles:
                self.out_of_order += vehicle.vehicle_id <= self._last
                self._last = vehicle.vehicle_id
                self.seen.add(vehicle.vehicle_id)
            self._token = answer.next_page_token
            if not self._token:  # the last page: start over
                self._last = ""


@dataclass(slots=True)
class Reads:
    """GetTelemetry calls of one kind on one fleet (possibly over several rounds):
    latencies, seconds, and everything that was not cached."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    """The calls that failed, by status code."""
    vehicles: set[str] = field(default_factory=set)
    """The vehicles read."""
    not_from_cache: int = 0
    not_available: int = 0

    async def read(self, stub: pb_grpc.VehicleGatewayAsyncStub, targets: Sequence[str]) -> None:
        """Make one GetTelemetry call per entry of `targets`, `concurrency` in flight."""
        pending = iter(targets)

        async def call() -> None:
            request = pb.GetTelemetryRequest(
                vehicle_id=next(pending), fields=REQUESTED_FIELDS, max_age=MAX_AGE
            )
            try:
                answer = await stub.GetTelemetry(request)
            except grpc.aio.AioRpcError as error:
                self.failures[error.code().name] += 1
                raise
            self.not_from_cache += not answer.from_cache
            self.not_available += sum(r.availability != pb.AVAILABLE for r in answer.readings)

        latencies, seconds, errors = await _stack.drive(
            call, requests=len(targets), concurrency=self.concurrency
        )
        self.latencies += latencies
        self.seconds += seconds
        self.errors += errors
        self.vehicles.update(targets)


@dataclass(frozen=True, slots=True)
class Plan:
    """Which vehicles each read phase reads (drawn once, with a seed fixed per fleet)."""

    warmup: list[str]
    """Every working-set vehicle once (shuffled), then WARMUP_READS more among them."""
    cached: list[str]
    """The measured cached reads: uniformly among the working set."""
    misses: list[list[str]]
    """One list per miss phase: distinct vehicles outside the working set."""

    @classmethod
    def draw(cls, fleet: int, args: argparse.Namespace) -> Plan:
        """Draw the working set and every phase's vehicles for a fleet of `fleet`."""
        rng = random.Random(fleet)
        size = min(fleet, args.working_set)
        working = rng.sample(range(fleet), size)
        warmup = [vehicle_id(n) for n in working]
        warmup += [vehicle_id(rng.choice(working)) for _ in range(min(WARMUP_READS, args.reads))]
        cached = [vehicle_id(rng.choice(working)) for _ in range(args.reads)]
        outside = fleet - size
        wanted = min(outside, args.misses * len(args.miss_concurrency))
        misses: list[list[str]] = [[] for _ in args.miss_concurrency]
        if wanted:
            chosen = set(working)
            picked: list[int] = []
            while len(picked) < wanted:  # rejection: the working set is a fraction
                n = rng.randrange(fleet)
                if n not in chosen:
                    chosen.add(n)
                    picked.append(n)
            share = wanted // len(misses)
            misses = [
                [vehicle_id(n) for n in picked[i * share : (i + 1) * share]]
                for i in range(len(misses))
            ]
        return cls(warmup=warmup, cached=cached, misses=misses)


async def upstream_requests(simulator_port: int) -> int:
    """How many Vehicle/Management API requests the embedded simulator has answered."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"http://127.0.0.1:{simulator_port}/sim/stats")
    return int(answer.raise_for_status().json()["requests"]["total"])


@dataclass(slots=True)
class Fleet:
    """One seeded fleet, its gateway, and everything measured on it."""

    vehicles: int
    plan: Plan
    gateway: _stack.Process
    stub: pb_grpc.VehicleGatewayAsyncStub
    simulator_port: int
    seed_s: float
    start_s: float
    walkers: dict[int, Walker]
    warmup: Reads
    reads: Reads
    misses: list[Reads]
    rss_start_mb: float
    working_set: int
    rss_cached_mb: float = 0.0
    rss_mb: float = 0.0
    upstream: int = 0
    gateway_cpu_s: float = 0.0
    """The gateway's CPU seconds during the measured cached reads."""
    database_cpu_s: float = 0.0
    """The database server's CPU seconds during the measured cached reads (0 for SQLite)."""

    def all_reads(self) -> list[Reads]:
        """Every read phase, warm-up included."""
        return [self.warmup, self.reads, *self.misses]


@contextlib.asynccontextmanager
async def running_fleet(
    dbs: Databases, vehicles: int, args: argparse.Namespace
) -> AsyncIterator[Fleet]:
    """Seed a fleet of `vehicles` and start a gateway on it; stop it and drop its database
    at the end."""
    key_entry = generate_key_entry(KEY_ID)
    cipher = TokenCipher(Keyring.from_config(key_entry))
    name = f"fleet_{vehicles}"
    url = dbs.new(name)
    try:
        began = time.perf_counter()
        await seed(url, vehicles, cipher, cars_per_owner=args.cars_per_owner)
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
                    "VG_CACHE_VEHICLES": str(args.cache),
                }
            )
            start_s = time.perf_counter() - began
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = pb_grpc.VehicleGatewayStub(channel)
                    yield Fleet(
                        vehicles=vehicles,
                        plan=Plan.draw(vehicles, args),
                        gateway=gateway,
                        stub=stub,
                        simulator_port=simulator_port,
                        seed_s=seed_s,
                        start_s=start_s,
                        walkers={
                            size: Walker(stub, page_size=size)
                            for size in (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
                        },
                        warmup=Reads(concurrency=args.concurrency),
                        reads=Reads(concurrency=args.concurrency),
                        misses=[Reads(concurrency=c) for c in args.miss_concurrency],
                        rss_start_mb=_stack.rss_mb(gateway.pid),
                        working_set=min(vehicles, args.working_set),
                    )
            finally:
                gateway.stop()
    finally:
        dbs.drop(name)


def slices(count: int, rounds: int) -> list[range]:
    """`count` split into `rounds` consecutive ranges (some perhaps empty)."""
    bounds = [count * i // rounds for i in range(rounds + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(rounds)]


async def measure(fleets: list[Fleet], dbs: Databases, args: argparse.Namespace) -> None:
    """Run every phase on every fleet; the measured listing and cached reads in rounds
    that take each fleet in turn, so that load on the machine from outside falls on the
    fleets alike."""
    for pages in slices(args.pages, args.rounds):
        for fleet in fleets:
            for walker in fleet.walkers.values():
                await walker.pages(len(pages))
    for fleet in fleets:
        await fleet.warmup.read(fleet.stub, fleet.plan.warmup)
    for part in slices(args.reads, args.rounds):
        for fleet in fleets:
            cpu_before = (_stack.cpu_seconds(fleet.gateway.pid), dbs.cpu_seconds())
            await fleet.reads.read(fleet.stub, fleet.plan.cached[part.start : part.stop])
            fleet.gateway_cpu_s += _stack.cpu_seconds(fleet.gateway.pid) - cpu_before[0]
            fleet.database_cpu_s += dbs.cpu_seconds() - cpu_before[1]
    for fleet in fleets:
        fleet.rss_cached_mb = _stack.rss_mb(fleet.gateway.pid)
        for phase, targets in zip(fleet.misses, fleet.plan.misses, strict=True):
            if targets:
                await phase.read(fleet.stub, targets)
        fleet.upstream = await upstream_requests(fleet.simulator_port)
        fleet.rss_mb = _stack.rss_mb(fleet.gateway.pid)


# --- report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals."""
    return f"{seconds * 1000:.2f} ms"


def latency(values: list[float]) -> str:
    """p50 and p99 of some latencies."""
    return f"p50 {ms(_stack.percentile(values, 50))}, p99 {ms(_stack.percentile(values, 99))}"


def p99_ratio(large: list[float], small: list[float]) -> float:
    """The p99 of `large` over the p99 of `small`."""
    return _stack.percentile(large, 99) / max(_stack.percentile(small, 99), 1e-9)


def report(backend: str, results: list[Fleet], args: argparse.Namespace) -> None:
    """Print the table of one backend: each row gives every fleet, smallest first."""

    def each(value: Callable[[Fleet], str]) -> str:
        return " | ".join(f"{r.vehicles:,}: {value(r)}" for r in results)

    smallest, largest = results[0], results[-1]
    before = results[-2] if len(results) > 1 else smallest
    rows = [
        ("seed (migrate + load)", each(lambda r: f"{r.seed_s:.1f} s")),
        ("gateway start", each(lambda r: f"{r.start_s:.1f} s")),
    ]
    for size in (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE):
        rows += [
            (
                f"ListVehicles page_size={size}",
                each(lambda r, s=size: latency(r.walkers[s].latencies)),
            ),
            (
                f"  p99 ratio {largest.vehicles:,}/{before.vehicles:,}",
                f"{p99_ratio(*(r.walkers[size].latencies for r in (largest, before))):.2f}",
            ),
            (
                "  vehicles listed, errors, disorder",
                each(
                    lambda r, s=size: (
                        f"{len(r.walkers[s].seen):,}, {r.walkers[s].errors}, "
                        f"{r.walkers[s].out_of_order}"
                    )
                ),
            ),
        ]
    rows += [
        (
            "working set (cars the cached reads are drawn from)",
            each(lambda r: f"{r.working_set:,}"),
        ),
        ("GetTelemetry (cached)", each(lambda r: latency(r.reads.latencies))),
        ("  throughput", each(lambda r: f"{args.reads / r.reads.seconds:,.0f}/s")),
        (
            "  CPU per 1,000 reads: gateway, database server",
            each(
                lambda r: (
                    f"{r.gateway_cpu_s / args.reads * 1e6:.0f} ms, "
                    f"{r.database_cpu_s / args.reads * 1e6:.0f} ms"
                )
            ),
        ),
        (
            f"  p99 ratio {largest.vehicles:,}/{smallest.vehicles:,}",
            f"{p99_ratio(largest.reads.latencies, smallest.reads.latencies):.2f} "
            f"(target ≤ {TARGET_P99_RATIO})",
        ),
        (
            "  not from cache (warm-up included)",
            each(lambda r: f"{r.reads.not_from_cache + r.warmup.not_from_cache}"),
        ),
    ]
    for index, concurrency in enumerate(args.miss_concurrency):

        def missed(r: Fleet, i: int = index) -> str:
            if not r.plan.misses[i]:
                return "— (no car outside the working set)"
            phase = r.misses[i]
            return f"{latency(phase.latencies)}, {len(phase.vehicles):,} cars"

        rows.append(
            (
                f"GetTelemetry missing the cache, {concurrency} in flight "
                f"(target p99 ≤ {TARGET_MISS_P99_MS:.0f} ms)",
                each(missed),
            )
        )
    rows += [
        (
            "errors (by code), not AVAILABLE (every read phase)",
            each(
                lambda r: (
                    f"{sum(p.errors for p in r.all_reads())} "
                    f"{dict(sum((p.failures for p in r.all_reads()), Counter()))}, "
                    f"{sum(p.not_available for p in r.all_reads())}"
                )
            ),
        ),
        ("upstream requests (simulator)", each(lambda r: f"{r.upstream}")),
        ("gateway RSS at start", each(lambda r: f"{r.rss_start_mb:.0f} MiB")),
        ("gateway RSS after the cached reads", each(lambda r: f"{r.rss_cached_mb:.0f} MiB")),
        (
            "gateway RSS after the misses",
            each(lambda r: f"{r.rss_mb:.0f} MiB") + f" (target ≤ {TARGET_RSS_MB:.0f})",
        ),
        ("warm-up (loads the working set)", each(lambda r: f"{r.warmup.seconds:.1f} s")),
    ]
    _stack.table(
        f"{backend}: {', '.join(f'{r.vehicles:,}' for r in results)} connected vehicles, "
        f"cache {args.cache:,}, {args.reads:,} cached reads at {args.concurrency} in flight, "
        f"{args.pages} pages per size",
        rows,
    )


async def main() -> None:
    """Measure every fleet on each backend; print a table per backend."""
    args = parse()
    _stack.pin(1)
    for backend in args.backends:
        with databases(backend, args.data_dir) as dbs:
            async with contextlib.AsyncExitStack() as stack:
                fleets = [
                    await stack.enter_async_context(running_fleet(dbs, n, args))
                    for n in args.fleets
                ]
                await measure(fleets, dbs, args)
        report(backend, fleets, args)


if __name__ == "__main__":
    _stack.run(main)
