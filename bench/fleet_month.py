"""Thirty simulated days of a fleet under the scheduler, the budget and token renewal.

The real gateway (core, SQLite storage, Smartcar adapter) runs against the real simulator
over loopback HTTP; both clocks move together in steps of `--tick-min` simulated minutes.
The fleet is a mix: cars rented a few times a week (unlock at the start, lock at the end,
an odometer read at each end by "billing"), idle cars, sleepy cars (asleep most nights),
EVs and ICE cars (the simulator's catalog). Before the measured month the fleet sits idle
for `--pre-age-days`, so refresh tokens approach their 60 days during the month and renewal
has to work. Reports: vehicles over budget, refresh tokens expired, commands refused for
budget, polls of sleeping cars, field freshness percentiles, and how the ended rentals'
final readings (recorded after the end) stand, the background job run at every tick.

With `--hammer-share` above 0, a careless caller joins: it reads every field of a random
share of the cars with `max_age=0`, `--hammer-reads` times per tick (one simulated minute
apart), all month. The month then shows whether the budget protects commands and rental
readings from it: commands refused for budget, cars over their allowance, final readings.

    .venv/bin/python -m bench.fleet_month --vehicles 1000 --days 30

Not a test: it prints a table (and JSON with --json) and exits 0.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench import _fleet
from bench._stack import percentile
from gateway.core.errors import GatewayError, RequestAllowanceExhausted
from gateway.core.facade import Gateway
from gateway.core.model import ConnectionStatus, FinalReadingState, LockAction, TelemetryField


@dataclass
class Car:
    """One fleet car and its role in the simulation."""

    fleet_id: str
    smartcar_id: str
    renter: bool
    sleepy: bool
    hammered: bool = False
    rental_ends: datetime | None = None
    rental_id: str = ""


@dataclass
class Tally:
    """What the month produced."""

    rentals: int = 0
    rentals_refused: Counter[str] = field(default_factory=Counter)
    final_reading_s: float = 0.0
    commands: int = 0
    commands_refused: Counter[str] = field(default_factory=Counter)
    billing_reads: int = 0
    billing_reads_failed: Counter[str] = field(default_factory=Counter)
    ages: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    ticks: int = 0
    polls: int = 0
    polls_of_sleeping_cars: int = 0
    scheduler_s: float = 0.0
    hammer_reads: Counter[str] = field(default_factory=Counter)
    """The careless caller's reads by outcome: `live` (Smartcar was asked), `held_<reason>`
    (answered with the last values, marked), `refused_<reason>` (an error)."""


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _fleet.add_stack_arguments(parser)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tick-min", type=int, default=30)
    parser.add_argument("--pre-age-days", type=int, default=35)
    parser.add_argument("--renters", type=float, default=0.3, help="share of cars rented")
    parser.add_argument("--sleepy", type=float, default=0.15, help="share asleep most nights")
    parser.add_argument(
        "--hammer-share", type=float, default=0.0, help="share of cars a caller reads fresh"
    )
    parser.add_argument("--hammer-reads", type=int, default=3, help="its reads per car per tick")
    return parser.parse_args()


async def connect_fleet(stack: _fleet.FleetStack, args: argparse.Namespace) -> list[Car]:
    """Connect every car, and give each its role (rented, sleepy, idle; hammered)."""
    rng = random.Random(args.seed)
    cars = []
    for fleet_id, smartcar_id in await _fleet.connect_cars(stack, args.vehicles):
        roll = rng.random()
        cars.append(
            Car(
                fleet_id=fleet_id,
                smartcar_id=smartcar_id,
                renter=roll < args.renters,
                sleepy=args.renters <= roll < args.renters + args.sleepy,
            )
        )
    # A separate stream of draws, so the roles (and every run without the caller) stay as
    # they were before it existed.
    picker = random.Random(args.seed + 2)
    for car in cars:
        car.hammered = picker.random() < args.hammer_share
    return cars


async def rental_step(
    gateway: Gateway, car: Car, now: datetime, rng: random.Random, tally: Tally
) -> None:
    """Start or end a rental: unlock at the start, lock and read the odometer at the end."""
    if car.rental_ends is None:
        if not (8 <= now.hour < 20) or rng.random() > 0.02:
            return
        tally.rentals += 1
        car.rental_id = f"{car.fleet_id}-r{tally.rentals}"
        try:
            await gateway.start_rental(car.fleet_id, rental_id=car.rental_id)
        except GatewayError as refused:  # e.g. a car in ERROR cannot be rented
            tally.rentals_refused[refused.reason] += 1
            return
        car.rental_ends = now + timedelta(hours=rng.choice((1, 2, 3, 4, 6)))
        await command(gateway, car, LockAction.UNLOCK, tally)
        await billing_read(gateway, car, tally)
    elif now >= car.rental_ends:
        await command(gateway, car, LockAction.LOCK, tally)
        await billing_read(gateway, car, tally)
        await gateway.end_rental(car.fleet_id, rental_id=car.rental_id)
        car.rental_ends = None


async def command(gateway: Gateway, car: Car, action: LockAction, tally: Tally) -> None:
    """Send a command as the rental service would; count refusals by reason."""
    tally.commands += 1
    try:
        await gateway.command(car.fleet_id, action=action, request_id=f"{car.rental_id}-{action}")
    except RequestAllowanceExhausted:
        tally.commands_refused["budget"] += 1
    except GatewayError as error:
        tally.commands_refused[_fleet.refusal(error)] += 1


async def billing_read(gateway: Gateway, car: Car, tally: Tally) -> None:
    """The billing service reads the odometer (at most 10 minutes old)."""
    tally.billing_reads += 1
    try:
        await gateway.get_telemetry(
            car.fleet_id, fields=frozenset({TelemetryField.ODOMETER}), max_age=timedelta(minutes=10)
        )
    except GatewayError as error:
        tally.billing_reads_failed[_fleet.refusal(error)] += 1


async def hammer_round(gateway: Gateway, cars: list[Car], tally: Tally) -> None:
    """The careless caller: every field of each of its cars, nothing older than now."""
    for car in cars:
        if not car.hammered:
            continue
        try:
            answer = await gateway.get_telemetry(
                car.fleet_id, fields=frozenset(), max_age=timedelta(0)
            )
        except GatewayError as error:
            limit = error.metadata.get("limit")
            tally.hammer_reads[f"refused_{error.reason}:{limit}" if limit else "refused"] += 1
            continue
        if answer.fetched:
            tally.hammer_reads["live"] += 1
            continue
        reasons = {r.reason for r in answer.readings.values() if r.reason}
        held = sorted(r for r in reasons if r.startswith("REQUEST_"))
        tally.hammer_reads[f"held_{held[0]}" if held else "held_other"] += 1


def set_sleep(world: Any, cars: list[Car], now: datetime) -> None:
    """Sleepy cars sleep from 20:00 to 08:00; the others stay awake."""
    night = now.hour >= 20 or now.hour < 8
    for car in cars:
        if car.sleepy:
            vehicle = world.garage.get(car.smartcar_id)
            if vehicle is not None and car.rental_ends is None:
                vehicle.asleep = night


async def sample_freshness(gateway: Gateway, cars: list[Car], now: datetime, tally: Tally) -> None:
    """Record each car's field ages (from the gateway's cache) by role."""
    for car in cars:
        role = "rented" if car.rental_ends else ("sleepy" if car.sleepy else "idle")
        for name, reading in (await gateway.cache.readings(car.fleet_id)).items():
            if reading.fetched_at is not None and reading.value is not None:
                tally.ages[(role, name.value)].append((now - reading.fetched_at).total_seconds())


async def simulate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the month and return the report."""
    async with _fleet.fleet_stack(args) as stack:
        return await run_month(args, stack)


async def run_month(args: argparse.Namespace, stack: _fleet.FleetStack) -> dict[str, Any]:
    """Connect, pre-age, then step through the measured days."""
    gateway, world, clock = stack.gateway, stack.world, stack.clock
    started = time.perf_counter()
    cars = await connect_fleet(stack, args)
    connect_s = time.perf_counter() - started
    _fleet.advance_to(
        stack, _fleet.month_start_after(clock.now() + timedelta(days=args.pre_age_days))
    )
    errors_before = Counter(world.stats_json().get("errors", {}))
    rng = random.Random(args.seed + 1)
    tally = Tally()
    step_s = args.tick_min * 60
    loop_started = time.perf_counter()
    hammer_rounds = args.hammer_reads if any(c.hammered for c in cars) else 0
    for tick in range(args.days * 24 * 60 // args.tick_min):
        _fleet.advance(stack, step_s - 60 * hammer_rounds)
        for _ in range(hammer_rounds):
            _fleet.advance(stack, 60)
            await hammer_round(gateway, cars, tally)
        now = clock.now()
        set_sleep(world, cars, now)
        for car in cars:
            if car.renter:
                await rental_step(gateway, car, now, rng, tally)
        asleep = [
            c.smartcar_id for c in cars if c.sleepy and world.garage.get(c.smartcar_id).asleep
        ]
        before = dict(world.stats_json()["requests"]["by_vehicle"])
        tick_started = time.perf_counter()
        report = await gateway.scheduler.tick()
        tally.scheduler_s += time.perf_counter() - tick_started
        after = world.stats_json()["requests"]["by_vehicle"]
        tally.polls_of_sleeping_cars += sum(after.get(i, 0) - before.get(i, 0) for i in asleep)
        tally.ticks += 1
        tally.polls += report.polls
        final_started = time.perf_counter()
        await gateway.final_readings.run_once()  # in service: every VG_SCHEDULER_INTERVAL_S
        tally.final_reading_s += time.perf_counter() - final_started
        if tick % max(1, 60 // args.tick_min) == 0:
            await gateway.renewal.run_once()
        if tick % max(1, 6 * 60 // args.tick_min) == 0:
            await sample_freshness(gateway, cars, now, tally)
        if tick % max(1, 24 * 60 // args.tick_min) == 0:
            elapsed = time.perf_counter() - loop_started
            print(f"day {tick * args.tick_min // 1440 + 1}: {elapsed:.0f} s", file=sys.stderr)
    loop_s = time.perf_counter() - loop_started
    return await summarise(args, gateway, world, cars, tally, errors_before, connect_s, loop_s)


async def summarise(
    args: argparse.Namespace,
    gateway: Gateway,
    world: Any,
    cars: list[Car],
    tally: Tally,
    errors_before: Counter[str],
    connect_s: float,
    loop_s: float,
) -> dict[str, Any]:
    """Collect the month's figures."""
    stats = world.stats_json()
    billed = stats.get("billed_this_month", {})
    over_budget = sum(1 for n in billed.values() if n > 500)
    statuses: Counter[str] = Counter()
    for car in cars:
        panel = await gateway.get_vehicle(car.fleet_id)
        statuses[panel.vehicle.status.value] += 1
    errors = Counter(stats.get("errors", {})) - errors_before
    freshness = {
        f"{role}/{name}": {
            "p50_h": round(percentile(ages, 50) / 3600, 2),
            "p90_h": round(percentile(ages, 90) / 3600, 2),
            "p99_h": round(percentile(ages, 99) / 3600, 2),
        }
        for (role, name), ages in sorted(tally.ages.items())
    }
    billed_values = list(billed.values()) or [0]
    finals = await final_readings(gateway)
    return {
        "vehicles": len(cars),
        "api": args.api,
        "days": args.days,
        "app_bucket": args.app_bucket,
        "connect_s": round(connect_s, 1),
        "simulation_s": round(loop_s, 1),
        "scheduler_s": round(tally.scheduler_s, 1),
        "vehicles_over_budget": over_budget,
        "billed_per_vehicle": {
            "median": statistics.median(billed_values),
            "max": max(billed_values),
        },
        "refresh_tokens_expired": statuses.get(ConnectionStatus.EXPIRED.value, 0),
        "statuses": dict(statuses),
        "commands": tally.commands,
        "commands_refused": dict(tally.commands_refused),
        "commands_refused_for_budget": tally.commands_refused.get("budget", 0),
        "hammered_cars": sum(1 for c in cars if c.hammered),
        "hammered_renters": sum(1 for c in cars if c.hammered and c.renter),
        "hammer_reads": dict(tally.hammer_reads),
        "billed_per_hammered_vehicle": _spread(
            [billed.get(c.smartcar_id, 0) for c in cars if c.hammered]
        ),
        "billing_reads": tally.billing_reads,
        "billing_reads_failed": dict(tally.billing_reads_failed),
        "rentals": tally.rentals,
        "rentals_refused": dict(tally.rentals_refused),
        "final_readings": finals,
        "final_reading_job_s": round(tally.final_reading_s, 1),
        "polls": tally.polls,
        "polls_of_sleeping_cars": tally.polls_of_sleeping_cars,
        "asleep_item_errors": errors.get("VEHICLE_STATE:ASLEEP", 0),
        "upstream_errors": dict(errors),
        "token_grants": stats.get("token_grants", {}),
        "freshness": freshness,
    }


async def final_readings(gateway: Gateway) -> dict[str, Any]:
    """How the ended rentals' final readings stand: recorded (within 24 h of the end),
    given up (and why), still pending; the delay from end to recorded."""
    states: Counter[str] = Counter()
    given_up: Counter[str] = Counter()
    delays: list[float] = []
    token = ""
    while True:
        page = await gateway.list_rentals(
            vehicle_id=None, ended_after=None, ended_before=None, page_size=500, page_token=token
        )
        for record in page.records:
            final, ended_at = record.final, record.rental.ended_at
            if final is None or ended_at is None:
                continue
            states[final.state.value] += 1
            if final.state is FinalReadingState.RECORDED and final.settled_at is not None:
                delays.append((final.settled_at - ended_at).total_seconds())
            if final.state is FinalReadingState.GIVEN_UP:
                given_up[_why_given_up(final.reason or "")] += 1
        token = page.next_page_token
        if not token:
            break
    ended = sum(states.values())
    within_day = sum(1 for d in delays if d <= 86_400)
    return {
        "ended": ended,
        "recorded": states.get(FinalReadingState.RECORDED.value, 0),
        "recorded_within_24h_share": round(within_day / ended, 4) if ended else None,
        "given_up": dict(given_up),
        "pending": states.get(FinalReadingState.PENDING.value, 0),
        "delay_h": {
            "p50": round(percentile(delays, 50) / 3600, 2),
            "p90": round(percentile(delays, 90) / 3600, 2),
            "p99": round(percentile(delays, 99) / 3600, 2),
        },
    }


def _spread(values: list[int]) -> dict[str, float]:
    """Median and maximum (0 for none)."""
    return {"median": statistics.median(values or [0]), "max": max(values or [0])}


def _why_given_up(reason: str) -> str:
    """Name the kind of reason a final reading was given up for."""
    if reason.startswith("rental "):
        return "next_rental_first"
    if "connection was removed" in reason:
        return "disconnected"
    return "window_passed" if reason.startswith("no value") else "other"


def main() -> int:
    """Run and print."""
    args = parse()
    report = _fleet.run_report(simulate(args))
    if _fleet.printed_as_json(report, as_json=args.json):
        return 0
    width = 34
    for key in (
        "vehicles",
        "api",
        "days",
        "app_bucket",
        "connect_s",
        "simulation_s",
        "scheduler_s",
        "vehicles_over_budget",
        "billed_per_vehicle",
        "refresh_tokens_expired",
        "statuses",
        "commands",
        "commands_refused_for_budget",
        "commands_refused",
        "hammered_cars",
        "hammered_renters",
        "hammer_reads",
        "billed_per_hammered_vehicle",
        "billing_reads",
        "billing_reads_failed",
        "rentals",
        "rentals_refused",
        "final_readings",
        "final_reading_job_s",
        "polls",
        "polls_of_sleeping_cars",
        "token_grants",
    ):
        print(f"  {key:<{width}} {report[key]}")
    print("  field freshness (hours since fetched, sampled every 6 h):")
    for name, figures in report["freshness"].items():
        print(
            f"    {name:<{width - 2}} p50 {figures['p50_h']:>7}  p90 {figures['p90_h']:>7}  "
            f"p99 {figures['p99_h']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
