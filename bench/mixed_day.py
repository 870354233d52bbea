"""One simulated day of a 1,000-car fleet under three realistic callers: upstream economy.

The real gateway core, SQLite storage and Smartcar adapter run against the real simulator
over loopback HTTP, both clocks moved one simulated minute at a time (`bench._fleet`). The
day measured is the first of a month (00:00 to 24:00 UTC, 2026-04-01), so the budget's
pacing gives every car exactly one day's share of its allowance, as on any day of a month
whose earlier days spent theirs. The callers:

- the rental service (fleet_month's: a share of the cars rented a few times a week,
  during the day): StartRental (a reading) and Unlock, Lock and EndRental (a reading);
- billing: the odometer (`max_age` 10 min) at each rental's end;
- an operations dashboard: every minute, ListVehicles (all pages) and a GetTelemetry of
  every field of every car with `max_age` 5 min, asking for what is held when a rate limit
  refuses (`held_when_rate_limited`: it shows what is known, it does not act on it).

The gateway's scheduler, final-readings job and application-token renewal run every
`--tick-min` simulated minutes, as the service runs them. Everything is in simulated time
and seeded: two runs with the same arguments drive the same calls.

Reported: upstream requests (what reached Smartcar for a car, billed or not) per caller
read (goal at most 0.02), commands refused (goal 0), cars over their allowance (goal 0) and
on pace to go over it, and what the dashboard was answered: fetched, from cache within its
`max_age`, answered from what was held with a reason (and how old that was), or refused.

    .venv/bin/python -m bench.mixed_day --vehicles 1000

Not a test: it prints a table (and JSON with --json) and exits 0.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench import _fleet
from bench._stack import percentile
from bench.fleet_month import Car, Tally, rental_step, set_sleep
from gateway.core.errors import GatewayError
from gateway.core.model import Availability, Telemetry

DASHBOARD_MAX_AGE = timedelta(minutes=5)


@dataclass
class Dashboard:
    """What the operations dashboard was answered."""

    reads: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    """Per read: `fetched` (Smartcar was asked), `cached` (every field within max_age,
    nothing asked), `held_<reason>` (answered from what was held, a field marked with the
    reason), `refused_<reason>` (an error)."""
    ages_s: list[float] = field(default_factory=list)
    """Per answered read: the oldest fetch time among its available fields, as an age."""
    list_pages: int = 0
    list_s: float = 0.0
    read_s: float = 0.0


def parse() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _fleet.add_stack_arguments(parser)
    parser.add_argument("--minutes", type=int, default=24 * 60, help="length of the day")
    parser.add_argument("--tick-min", type=int, default=5, help="scheduler and jobs interval")
    parser.add_argument("--renters", type=float, default=0.3, help="share of cars rented")
    parser.add_argument("--sleepy", type=float, default=0.15, help="share asleep at night")
    parser.add_argument("--page-size", type=int, default=500, help="ListVehicles page size")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a gateway setting for this run (repeatable), e.g. VG_REQUEST_PACING=off",
    )
    return parser.parse_args()


def assign_roles(cars: list[tuple[str, str]], args: argparse.Namespace) -> list[Car]:
    """Give each car its role with fleet_month's draws (rented, sleepy, idle)."""
    rng = random.Random(args.seed)
    roles = []
    for fleet_id, smartcar_id in cars:
        roll = rng.random()
        renter = roll < args.renters
        sleepy = args.renters <= roll < args.renters + args.sleepy
        roles.append(Car(fleet_id=fleet_id, smartcar_id=smartcar_id, renter=renter, sleepy=sleepy))
    return roles


async def dashboard_round(
    stack: _fleet.FleetStack, cars: list[Car], args: argparse.Namespace, seen: Dashboard
) -> None:
    """ListVehicles, every page; then every field of every car, at most 5 minutes old."""
    gateway, now = stack.gateway, stack.clock.now()
    began = time.perf_counter()
    token = ""
    while True:
        page = await gateway.list_vehicles(status=None, page_size=args.page_size, page_token=token)
        seen.list_pages += 1
        token = page.next_page_token
        if not token:
            break
    seen.list_s += time.perf_counter() - began
    began = time.perf_counter()
    for car in cars:
        seen.reads += 1
        try:
            answer = await gateway.get_telemetry(
                car.fleet_id, fields=frozenset(), max_age=DASHBOARD_MAX_AGE, held_when_limited=True
            )
        except GatewayError as error:
            seen.outcomes[f"refused_{_fleet.refusal(error)}"] += 1
            continue
        seen.outcomes[outcome(answer)] += 1
        fetched = [r.fetched_at for r in answer.readings.values() if r.value is not None]
        if fetched:
            seen.ages_s.append((now - min(t for t in fetched if t is not None)).total_seconds())
    seen.read_s += time.perf_counter() - began


def outcome(answer: Telemetry) -> str:
    """Name what one dashboard read was answered with (see `Dashboard.outcomes`)."""
    if answer.fetched:
        return "fetched"
    reasons = sorted(
        {
            r.reason
            for r in answer.readings.values()
            if r.availability is Availability.UNAVAILABLE and r.reason and r.value is not None
        }
    )
    return f"held_{reasons[0]}" if reasons else "cached"


async def jobs(stack: _fleet.FleetStack, minute: int, tally: Tally) -> None:
    """The gateway's background work, as the service schedules it."""
    report = await stack.gateway.scheduler.tick()
    tally.ticks += 1
    tally.polls += report.polls
    await stack.gateway.final_readings.run_once()
    if minute % 60 == 0:
        await stack.gateway.renewal.run_once()


async def simulate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the day and return the report."""
    env = dict(item.split("=", 1) for item in args.env)
    async with _fleet.fleet_stack(args, env=env) as stack:
        started = time.perf_counter()
        cars = assign_roles(await _fleet.connect_cars(stack, args.vehicles), args)
        connect_s = time.perf_counter() - started
        day = _fleet.month_start_after(stack.clock.now())
        _fleet.advance_to(stack, day - timedelta(minutes=1))
        before = stack.world.stats_json()
        rng = random.Random(args.seed + 1)
        tally, seen = Tally(), Dashboard()
        loop_started = time.perf_counter()
        for minute in range(args.minutes):
            _fleet.advance(stack, 60)
            now = stack.clock.now()
            if minute % args.tick_min == 0:
                set_sleep(stack.world, cars, now)
            if minute % 30 == 0:  # fleet_month's rental service runs every 30 minutes
                for car in cars:
                    if car.renter:
                        await rental_step(stack.gateway, car, now, rng, tally)
            if minute % args.tick_min == 0:
                await jobs(stack, minute, tally)
            await dashboard_round(stack, cars, args, seen)
            if minute % 60 == 59:
                elapsed = time.perf_counter() - loop_started
                print(f"{now:%H:%M}: {elapsed:.0f} s", file=sys.stderr)
        loop_s = time.perf_counter() - loop_started
        return summarise(args, stack, cars, day, before, (tally, seen), (connect_s, loop_s))


def summarise(
    args: argparse.Namespace,
    stack: _fleet.FleetStack,
    cars: list[Car],
    day: datetime,
    before: dict[str, Any],
    tallies: tuple[Tally, Dashboard],
    seconds: tuple[float, float],
) -> dict[str, Any]:
    """Collect the day's figures."""
    (tally, seen), (connect_s, loop_s) = tallies, seconds
    after = stack.world.stats_json()
    by_endpoint = Counter(after["requests"]["by_endpoint"])
    by_endpoint.subtract(before["requests"]["by_endpoint"])
    by_vehicle = Counter(after["requests"]["by_vehicle"])
    by_vehicle.subtract(before["requests"]["by_vehicle"])
    upstream = sum(by_vehicle.values())
    caller_reads = seen.reads + tally.billing_reads
    allowance = stack.gateway.ledger.policy.monthly_allowance
    billed = after.get("billed_this_month", {})
    days_in_month = (_fleet.month_start_after(day) - day).days
    billed_values = [billed.get(car_id, 0) for car_id in (c.smartcar_id for c in cars)] or [0]
    return {
        "vehicles": args.vehicles,
        "api": args.api,
        "day": f"{day:%Y-%m-%d}",
        "minutes": args.minutes,
        "app_bucket": args.app_bucket,
        "settings": args.env,
        "connect_s": round(connect_s, 1),
        "simulation_s": round(loop_s, 1),
        "caller_reads": caller_reads,
        "upstream_requests": upstream,
        "upstream_per_caller_read": round(upstream / caller_reads, 4) if caller_reads else None,
        "upstream_by_endpoint": {k: v for k, v in sorted(by_endpoint.items()) if v},
        "commands": tally.commands,
        "commands_refused": dict(tally.commands_refused),
        "rentals": tally.rentals,
        "rentals_refused": dict(tally.rentals_refused),
        "billing_reads": tally.billing_reads,
        "billing_reads_failed": dict(tally.billing_reads_failed),
        "cars_over_allowance": sum(1 for n in billed_values if n > allowance),
        "cars_on_pace_over_allowance": sum(
            1 for n in billed_values if n * days_in_month > allowance
        ),
        "billed_per_car": {"median": statistics.median(billed_values), "max": max(billed_values)},
        "polls": tally.polls,
        "dashboard_reads": seen.reads,
        "dashboard_outcomes": dict(sorted(seen.outcomes.items())),
        "dashboard_oldest_field_age_min": {
            f"p{q}": round(percentile(seen.ages_s, q) / 60, 1) for q in (50, 90, 99, 100)
        },
        "dashboard_list_pages": seen.list_pages,
        "dashboard_list_s": round(seen.list_s, 1),
        "dashboard_read_s": round(seen.read_s, 1),
    }


def main() -> int:
    """Run and print."""
    args = parse()
    report = _fleet.run_report(simulate(args))
    if _fleet.printed_as_json(report, as_json=args.json):
        return 0
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"  {key:<{width}} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
