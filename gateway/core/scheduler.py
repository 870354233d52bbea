"""The telemetry scheduler: keeps fields fresh without anyone asking, inside the budget.

Each tick looks at every ACTIVE vehicle and polls, in one batch, the fields its plan says
are due: often during a rental, rarely when idle (`PollPlan`). It spends only what the
month can afford:

- a share of each vehicle's monthly allowance (`SchedulerPolicy.reserve`, and never less
  than the budget's own reserve for commands and rental readings) is never touched by
  polls, so commands and rental-time reads are never refused for lack of budget;
- what is left is spread evenly over the days left in the month, so an early burst cannot
  starve the end of the month;
- when the day's share is short, the most important due fields go first.

Sleeping cars are not polled (their backoff comes from `asleep_until`); once the backoff
passes, a car that answered ASLEEP is probed with one field before it gets a whole batch
(a sleeping car's 409 is billed per path). Polls are the lowest priority for the app-wide
Smartcar bucket (`CallKind.POLL`); a refused poll costs nothing and is tried again at a
later tick. A few polls are in flight at once (`SchedulerPolicy.concurrency`).

A car that waits for its owner (NEEDS_REAUTHENTICATION) is not polled: every
`SchedulerPolicy.owner_probe_interval` it is probed instead, one field (one billed request,
within the same daily share), asking Smartcar whether the owner acted; an answer makes it
ACTIVE again (`gateway.core.reauthentication`). Probes go after the tick's polls.
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.core.budget import BudgetPolicy, month_of
from gateway.core.cache import TelemetryCache
from gateway.core.errors import GatewayError, RateLimited
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import Availability, ConnectionStatus, FieldReading, TelemetryField, Vehicle
from gateway.core.permissions import FIELD_PERMISSIONS
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.purpose import ReadPurpose
from gateway.core.reauthentication import OwnerActions, probe_due
from gateway.core.telemetry import TelemetryService

_log = logging.getLogger(__name__)

F = TelemetryField
IMPORTANCE: Sequence[TelemetryField] = (
    F.LOCK_STATUS,
    F.LOCATION,
    F.ODOMETER,
    F.FUEL,
    F.BATTERY,
    F.CHARGE,
    F.TIRE_PRESSURE,
    F.ENGINE_OIL,
)
"""Which due fields go first when the day's budget cannot pay for all of them."""


def _hours(n: float) -> timedelta:
    return timedelta(hours=n)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPlan:
    """How old each field may get before the scheduler refreshes it."""

    rental: Mapping[TelemetryField, timedelta] = field(
        default_factory=lambda: {
            F.LOCATION: timedelta(minutes=15),
            F.LOCK_STATUS: timedelta(minutes=15),
            F.FUEL: _hours(1),
            F.BATTERY: _hours(1),
            F.CHARGE: _hours(1),
            F.ODOMETER: _hours(6),
            F.TIRE_PRESSURE: _hours(24),
            F.ENGINE_OIL: _hours(24),
        }
    )
    idle: Mapping[TelemetryField, timedelta] = field(
        default_factory=lambda: {
            F.LOCATION: _hours(12),
            F.LOCK_STATUS: _hours(12),
            F.FUEL: _hours(24),
            F.BATTERY: _hours(24),
            F.CHARGE: _hours(24),
            F.ODOMETER: _hours(24),
            F.TIRE_PRESSURE: _hours(24),
            F.ENGINE_OIL: _hours(24),
        }
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerPolicy:
    """The plan, and the share of each vehicle's monthly allowance polls may never use."""

    plan: PollPlan = field(default_factory=PollPlan)
    reserve: float = 0.3
    concurrency: int = 4
    """Polls in flight at once: Smartcar answers in seconds, so one at a time would let a
    large fleet fall behind whenever the app-wide bucket has room."""
    owner_probe_interval: timedelta | None = timedelta(hours=6)
    """How often a car waiting for its owner (NEEDS_REAUTHENTICATION) is asked whether they
    acted: one billed request each time, four a day at most. None: never (the wait then
    ends only by a reconnect or Smartcar's RESOLVED event)."""


def due_fields(
    vehicle: Vehicle,
    readings: Mapping[TelemetryField, FieldReading],
    *,
    rented_since: datetime | None,
    plan: PollPlan,
    now: datetime,
) -> list[TelemetryField]:
    """Return the fields the plan wants refreshed now, most important first.

    A rental's start makes the odometer due at once (the billing service's start reading).
    """
    intervals = plan.rental if rented_since is not None else plan.idle
    due = []
    for name in IMPORTANCE:
        interval = intervals.get(name)
        if interval is None or FIELD_PERMISSIONS[name] not in vehicle.permissions:
            continue
        reading = readings.get(name)
        if reading is not None and reading.availability is Availability.NOT_CAPABLE:
            continue
        fetched = reading.fetched_at if reading is not None else None
        stale = fetched is None or fetched + interval <= now
        before_rental = rented_since is not None and fetched is not None and fetched < rented_since
        if stale or (name is F.ODOMETER and before_rental):
            due.append(name)
    return due


def probe_field(
    vehicle: Vehicle, readings: Mapping[TelemetryField, FieldReading]
) -> TelemetryField | None:
    """Return the field a probe of the car asks for: the most important one the owner
    granted and the car can report (None: there is none to ask)."""
    for name in IMPORTANCE:
        reading = readings.get(name)
        capable = reading is None or reading.availability is not Availability.NOT_CAPABLE
        if FIELD_PERMISSIONS[name] in vehicle.permissions and capable:
            return name
    return None


def overdue_s(
    readings: Mapping[TelemetryField, FieldReading],
    due: Sequence[TelemetryField],
    intervals: Mapping[TelemetryField, timedelta],
    now: datetime,
    *,
    never_read_s: float = 0.0,
) -> float:
    """Return how long past its plan the most overdue of `due` is (`never_read_s` for a
    field never read)."""
    worst = 0.0
    for name in due:
        reading = readings.get(name)
        interval = intervals.get(name)
        if reading is None or reading.fetched_at is None or interval is None:
            worst = max(worst, never_read_s)
            continue
        worst = max(worst, (now - reading.fetched_at - interval).total_seconds())
    return worst


def daily_share(
    *,
    used: int,
    spent_today: int,
    allowance: int,
    reserve: float,
    now: datetime,
    kept: int = 0,
) -> int:
    """Return how many billed requests polls may still spend today for one vehicle.

    What the month has left for polls (allowance less the reserve, a share, or less `kept`
    requests when that is more, less what was used before today) is split evenly over
    the days left, today included.
    """
    days_in_month = calendar.monthrange(now.year, now.month)[1]
    days_left = days_in_month - now.day + 1
    for_polls = min(int(allowance * (1 - reserve)), allowance - kept)
    left_at_dawn = for_polls - (used - spent_today)
    today = left_at_dawn // days_left
    # The hard cap: polls never take the month's usage past allowance less the reserve.
    return max(0, min(today - spent_today, for_polls - used))


NEVER_READ_LAG_S = 365 * 86400.0
"""A car never read yet counts as the most overdue of all."""
APP_WIDE_LIMITS = frozenset({"application", "application_cooldown", "smartcar_application"})


@dataclass(frozen=True, slots=True)
class _Candidate:
    vehicle_id: str
    due: list[TelemetryField]
    lag_s: float
    affordable: int = 0
    probe: bool = False
    """A probe of a car waiting for its owner, not a poll."""


@dataclass(slots=True)
class TickReport:
    """What one scheduler tick did."""

    vehicles_seen: int = 0
    polls: int = 0
    paths: int = 0
    skipped_asleep: int = 0
    skipped_budget: int = 0
    refused: int = 0
    probes: int = 0
    """Cars waiting for their owner that were asked whether the owner acted."""
    lag_s: float = 0.0
    """How overdue the most overdue due field was when the tick looked at it."""


class TelemetryScheduler:
    """Polls due fields of every ACTIVE vehicle, inside the budget."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        telemetry: TelemetryService,
        cache: TelemetryCache,
        clock: Clock,
        budget: BudgetPolicy,
        policy: SchedulerPolicy = SchedulerPolicy(),
        page_size: int = 500,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._metrics = metrics
        self._uow = uow
        self._telemetry = telemetry
        self._cache = cache
        self._clock = clock
        self._budget = budget
        self._policy = policy
        self._page_size = page_size
        self._owners = OwnerActions(uow=uow, clock=clock)
        self._spent: dict[str, tuple[str, int]] = {}
        """Per vehicle: (day, billed requests the scheduler spent that day)."""

    async def tick(self) -> TickReport:
        """Poll what is due and affordable, most overdue cars first.

        The app-wide bucket is shared by the whole fleet: ordering by lag keeps it fair (no
        car starves behind cars that come first by id), and the first app-wide refusal ends
        the tick, since every later poll would be refused too.
        """
        report = TickReport()
        candidates = await self._candidates(report)
        candidates.sort(key=lambda c: c.lag_s, reverse=True)
        candidates.extend(await self._probes(report))
        app_bucket_empty = asyncio.Event()
        slots = asyncio.Semaphore(max(1, self._policy.concurrency))

        async def poll(candidate: _Candidate) -> None:
            try:
                if not app_bucket_empty.is_set() and not await self._poll(candidate, report):
                    app_bucket_empty.set()
            finally:
                slots.release()

        async with asyncio.TaskGroup() as polls:
            for candidate in candidates:
                await slots.acquire()
                if app_bucket_empty.is_set():
                    slots.release()
                    break
                polls.create_task(poll(candidate))
        self._metrics.scheduler_tick(polls=report.polls, paths=report.paths, lag_s=report.lag_s)
        return report

    async def _candidates(self, report: TickReport) -> list[_Candidate]:
        """Return every ACTIVE, awake vehicle with due fields it can afford today."""
        candidates: list[_Candidate] = []
        after: str | None = None
        now = self._clock.now()
        while True:
            async with self._uow.reader() as uow:
                page = await uow.vehicles.page(
                    status=ConnectionStatus.ACTIVE, after_id=after, limit=self._page_size
                )
                ids = [v.id for v in page]
                rentals = await uow.rentals.active_for(ids)
                used = await uow.budget.used_by(ids, month_of(now))
            for vehicle in page:
                rental = rentals.get(vehicle.id)
                found = await self._candidate(
                    vehicle, rental.started_at if rental else None, report, now
                )
                if found is None:
                    continue
                affordable = self._share(vehicle, used[vehicle.id], now)
                if affordable <= 0:
                    report.skipped_budget += 1
                    continue
                candidates.append(dataclasses.replace(found, affordable=affordable))
            if len(page) < self._page_size:
                return candidates
            after = page[-1].id

    async def _probes(self, report: TickReport) -> list[_Candidate]:
        """Return the cars waiting for their owner that are due a probe (`probe_due`),
        awake, with a field to ask and a share of today's budget left."""
        interval = self._policy.owner_probe_interval
        if interval is None:
            return []
        probes: list[_Candidate] = []
        after: str | None = None
        now = self._clock.now()
        while True:
            async with self._uow.reader() as uow:
                page = await uow.vehicles.page(
                    status=ConnectionStatus.NEEDS_REAUTHENTICATION,
                    after_id=after,
                    limit=self._page_size,
                )
                used = await uow.budget.used_by([v.id for v in page], month_of(now))
            for vehicle in page:
                report.vehicles_seen += 1
                if not probe_due(vehicle, interval=interval, now=now):
                    continue
                if vehicle.asleep_until is not None and vehicle.asleep_until > now:
                    report.skipped_asleep += 1
                    continue
                field_ = probe_field(vehicle, await self._cache.readings(vehicle.id))
                if field_ is None:
                    continue
                if self._share(vehicle, used[vehicle.id], now) <= 0:
                    report.skipped_budget += 1
                    continue
                probes.append(_Candidate(vehicle.id, [field_], lag_s=0.0, affordable=1, probe=True))
            if len(page) < self._page_size:
                return probes
            after = page[-1].id

    async def _candidate(
        self, vehicle: Vehicle, rented_since: datetime | None, report: TickReport, now: datetime
    ) -> _Candidate | None:
        report.vehicles_seen += 1
        if vehicle.asleep_until is not None and vehicle.asleep_until > now:
            report.skipped_asleep += 1
            return None
        readings = await self._cache.readings(vehicle.id)
        plan = self._policy.plan
        due = due_fields(vehicle, readings, rented_since=rented_since, plan=plan, now=now)
        if not due:
            return None
        intervals = plan.rental if rented_since else plan.idle
        lag_s = overdue_s(readings, due, intervals, now, never_read_s=NEVER_READ_LAG_S)
        report.lag_s = max(report.lag_s, lag_s)
        # A car that answered ASLEEP last time is asked for one field first: if it still
        # sleeps, that costs one billed request, not a whole batch.
        probe = vehicle.asleep_until is not None
        return _Candidate(vehicle_id=vehicle.id, due=due[:1] if probe else due, lag_s=lag_s)

    async def _poll(self, candidate: _Candidate, report: TickReport) -> bool:
        """Poll one car within its budget; return False when the app-wide bucket is empty."""
        now = self._clock.now()
        chosen = frozenset(candidate.due[: candidate.affordable])
        purpose = ReadPurpose.SCHEDULED
        if candidate.probe:
            interval = self._policy.owner_probe_interval or timedelta(0)
            if not await self._owners.probing(candidate.vehicle_id, interval=interval):
                return True  # another scheduler probed it, or the owner acted meanwhile
            report.probes += 1
            purpose = ReadPurpose.OWNER_PROBE
        try:
            answer = await self._telemetry.get(
                candidate.vehicle_id, fields=chosen, max_age=timedelta(0), purpose=purpose
            )
        except RateLimited as refused:
            report.refused += 1
            return refused.metadata.get("limit") not in APP_WIDE_LIMITS
        except GatewayError as refused:
            report.refused += 1
            _log.debug("poll refused: %s", refused.reason, extra={"vehicle": candidate.vehicle_id})
            return True
        if not answer.from_cache:  # from cache: another caller refreshed it, nothing spent
            self._note_spent(candidate.vehicle_id, len(chosen), now)
            report.polls += 1
            report.paths += len(chosen)
        return True

    def _share(self, vehicle: Vehicle, used: int, now: datetime) -> int:
        """Today's share for polls, of the car's own allowance. `used` is read once per tick
        for a page of cars: a command billed between that read and the poll comes out of
        the reserve, which is there for commands (and the budget refuses a poll that
        would cut into its own reserve)."""
        limits = self._budget.limits(vehicle)
        return daily_share(
            used=used,
            spent_today=self._spent_today(vehicle.id, now),
            allowance=limits.allowance,
            reserve=self._policy.reserve,
            now=now,
            kept=limits.reserve,
        )

    def _spent_today(self, vehicle_id: str, now: datetime) -> int:
        day, spent = self._spent.get(vehicle_id, ("", 0))
        return spent if day == now.date().isoformat() else 0

    def _note_spent(self, vehicle_id: str, paths: int, now: datetime) -> None:
        today = now.date().isoformat()
        self._spent[vehicle_id] = (today, self._spent_today(vehicle_id, now) + paths)
