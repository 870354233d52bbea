"""The request budget: what Smartcar bills, per vehicle and calendar month (UTC), and who
may spend what is left of it.

Smartcar bills every request that reaches a car (each path of a v2 batch) against a monthly
allowance per vehicle, and answers 430 BILLING:VEHICLE_REQUEST_LIMIT past it. The gateway
counts every attempt that may reach Smartcar BEFORE it is sent (an upper bound: Smartcar
bills only the requests that succeed), and splits each car's allowance in two:

    0 ........................ allowance - reserve ................ allowance ........
    | interactive reads, polls  | commands, rental readings,          | commands only:
    | (`BudgetTier.OPEN`)       | command checks (`BudgetTier.RESERVE`)| Smartcar decides

- `OPEN` (a caller's GetTelemetry, the scheduler's polls) may spend only down to the
  reserve: a request that would cut into it is refused (`RequestBudgetReserved`), and the
  telemetry use case answers from what it holds, marked with its age.
- `RESERVE` (a rental's start and end readings, reads settling a command's unknown outcome)
  may spend the reserve, up to the allowance (`RequestAllowanceExhausted` past it).
- `UNCAPPED` (Lock, Unlock, Connect, Disconnect) is counted and never refused here: the
  count is an upper bound, so past it Smartcar, not the gateway, says whether the car is
  over its plan.

`OPEN` is also paced (`BudgetPolicy.paced`, on by default): by the end of day d of a month
of D days, it may have brought the month to `(allowance - reserve) * d / D` at most. A
caller reading one car as fast as it may would otherwise spend the whole open part in the
first days (a fresh read every minute spends 450 requests in two and a half days), and
every rental reading and command check after that would cut into the reserve until
commands ran past Smartcar's limit before the month was out (measured: 11 commands
refused by Smartcar's 430 in a month, docs/benchmarks.md run 7). Paced, what the open part
has not yet released stays available to the reserve tier as well, a read past today's
share is answered from what the gateway holds (REQUEST_BUDGET_RESERVED, retry tomorrow),
and the scheduler's own daily share (`gateway.core.scheduler.daily_share`) fits inside.

The allowance is the car's own (`Vehicle.request_allowance`, set by SetRequestAllowance) or
the fleet's (`BudgetPolicy.monthly_allowance`, VG_MONTHLY_REQUEST_ALLOWANCE); the reserve
follows from it (`BudgetPolicy.reserve_for`). A charge is one atomic statement against a cap,
so replicas sharing the database never take a car past it between them.

The first charge that brings a car's month to `warning_percent` (80 %) of its allowance is
reported once per car and month, across replicas (storage marks the month warned
atomically): one metric, one log line (`event: budget_warning`), a BUDGET_WARNING vehicle
event written with the mark (WatchVehicleEvents), and the `BudgetWarning` that `charge`
returns.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gateway.core.errors import RateLimited, RequestAllowanceExhausted, RequestBudgetReserved
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import Vehicle
from gateway.core.ports import UnitOfWork, UnitOfWorkFactory
from gateway.core.vehicle_events import BudgetWarningDetail, budget_warning, record

ChargeWrite = Callable[[UnitOfWork], Awaitable[None]]
"""A write made in the same transaction as an accepted charge (`BudgetLedger.charge`)."""

_log = logging.getLogger(__name__)

BUDGET_LIMIT = "request_budget"
"""The `limit` metadata of a request refused to keep the reserve."""
ALLOWANCE_LIMIT = "request_allowance"
"""The `limit` metadata of a request refused because the gateway counts the allowance spent."""


class BudgetTier(StrEnum):
    """How far into a car's monthly allowance a request may go (see the module docstring)."""

    OPEN = "open"
    RESERVE = "reserve"
    UNCAPPED = "uncapped"


def _percent_of(total: int, percent: int) -> int:
    """`percent` % of `total`, rounded up, in integers (no float rounding at the edge)."""
    return -(-total * percent // 100)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLimits:
    """One car's figures for the month: its allowance, the reserve, and where it warns."""

    allowance: int
    reserve: int
    overridden: bool
    """True when the allowance is the car's own, not the fleet's."""
    warning_at: int
    """The month's count at which the car is reported as running low."""

    def cap(self, tier: BudgetTier) -> int | None:
        """The most the month may count after a request of `tier`; None: no cap."""
        if tier is BudgetTier.OPEN:
            return self.allowance - self.reserve
        if tier is BudgetTier.RESERVE:
            return self.allowance
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetPolicy:
    """The fleet's monthly allowance per car, and how much of each car's allowance is kept
    for commands and rental readings.

    The reserve is `fixed_reserve` requests when set (VG_REQUEST_RESERVE=N), else
    `reserve_percent` of the car's allowance, rounded up, but at least `reserve_floor`; and
    never more than half the allowance, so interactive reads keep at least the other half
    (this matters only for cars given a small allowance of their own).

    Why 10 %, at least 20: the reserve must outlast a car whose interactive callers have
    spent everything they may. 20 requests carry one rental through on v2, where a
    reading is a batch billed per path: an unlock and a lock (2), up to three reads
    settling each if their answers are lost (6), and a start and an end reading of
    odometer, fuel, battery and location, the end's with the lock status too (9). At the
    default 500, 10 % (50) keeps two to three such rentals' worth for the end of a month.
    """

    monthly_allowance: int = 500
    reserve_percent: int = 10
    reserve_floor: int = 20
    fixed_reserve: int | None = None
    warning_percent: int = 80
    paced: bool = True
    """Release the open part day by day (see the module docstring)."""

    def allowance_of(self, vehicle: Vehicle) -> int:
        """The car's monthly allowance: its own when set, else the fleet's."""
        return vehicle.request_allowance or self.monthly_allowance

    def reserve_for(self, allowance: int) -> int:
        """The requests of `allowance` kept for commands and rental readings."""
        if self.fixed_reserve is not None:
            wanted = self.fixed_reserve
        else:
            wanted = max(_percent_of(allowance, self.reserve_percent), self.reserve_floor)
        return min(wanted, allowance // 2)

    def open_cap(self, limits: BudgetLimits, at: datetime) -> int:
        """The most the month may count after an OPEN request at `at`: the open part, or,
        paced, the share of it released by the end of `at`'s day (UTC)."""
        open_part = limits.allowance - limits.reserve
        if not self.paced:
            return open_part
        utc = at.astimezone(UTC)
        days = (next_month_start(utc) - datetime(utc.year, utc.month, 1, tzinfo=UTC)).days
        return -(-open_part * utc.day // days)

    def limits(self, vehicle: Vehicle) -> BudgetLimits:
        """The car's figures: allowance, reserve, and the count at which it warns."""
        allowance = self.allowance_of(vehicle)
        return BudgetLimits(
            allowance=allowance,
            reserve=self.reserve_for(allowance),
            overridden=vehicle.request_allowance is not None,
            warning_at=_percent_of(allowance, self.warning_percent),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetWarning:
    """A car's month reached the warning share of its allowance (reported once a month)."""

    vehicle_id: str
    month: str
    requests_this_month: int
    monthly_allowance: int
    at: datetime


def _paced_only(limits: BudgetLimits, tier: BudgetTier, cap: int, wanted: int) -> bool:
    """True when only the day's pace refused an OPEN request: the month would reach
    `wanted` requests, past today's `cap` but within the open part."""
    return tier is BudgetTier.OPEN and cap < wanted <= limits.allowance - limits.reserve


def _next_day_start(at: datetime) -> datetime:
    """Return 00:00 UTC of the day after `at`'s."""
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + timedelta(days=1)


def month_of(at: datetime) -> str:
    """Return the billing month of an instant, `YYYY-MM` in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m")


def projected_month_total(used: int, at: datetime) -> int:
    """The month's total if the car goes on spending at its pace so far: `used` over the
    days of the month begun (today counts whole, as pacing releases a day at a time), times
    the days of the month, rounded up. A car spending its paced open share every day
    projects no more than that share; only what it spends beyond (rental readings, command
    checks, commands) projects it past the allowance."""
    utc = at.astimezone(UTC)
    days = calendar.monthrange(utc.year, utc.month)[1]
    return -(-used * days // utc.day)


def next_month_start(at: datetime) -> datetime:
    """Return when the month after `at`'s begins: the first, 00:00 UTC."""
    utc = at.astimezone(UTC)
    return datetime(utc.year + (utc.month == 12), utc.month % 12 + 1, 1, tzinfo=UTC)


class BudgetLedger:
    """Counts billed requests per car and month before they are sent, within each tier's
    cap, and tells how many a car used."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, policy: BudgetPolicy, metrics: Metrics = NO_METRICS
    ) -> None:
        self._uow = uow
        self.policy = policy
        self._metrics = metrics

    async def check(
        self, vehicle: Vehicle, requests: int, *, tier: BudgetTier, at: datetime
    ) -> None:
        """Raise the refusal `charge` would give, from a plain read: so a request the budget
        refuses takes nothing else first (a rate-limit token, a fetch claim). `charge`
        still decides, atomically."""
        limits = self.policy.limits(vehicle)
        cap = self._cap(limits, tier, at)
        if cap is None:
            return
        used = await self.used(vehicle.id, at=at)
        if used + requests > cap:
            paced = _paced_only(limits, tier, cap, used + requests)
            raise self._refusal(vehicle.id, limits, tier, used=used, at=at, paced=paced)

    async def charge(
        self,
        vehicle: Vehicle,
        requests: int,
        *,
        tier: BudgetTier,
        at: datetime,
        with_charge: ChargeWrite | None = None,
    ) -> BudgetWarning | None:
        """Count `requests` billed requests about to be sent for the car, unless they would
        take its month past the cap of `tier` (then raise, counting nothing). Return the
        warning when this charge is the one that brought the month to its warning share.
        `with_charge` writes what must be durable together with an accepted charge (a
        command's claim of its request id) in the charge's own transaction; what it
        raises rolls the charge back and propagates."""
        limits = self.policy.limits(vehicle)
        month = month_of(at)
        cap = self._cap(limits, tier, at)
        async with self._uow() as uow:
            charged = await uow.budget.charge(vehicle.id, month, requests, limit=cap)
            first = False
            if charged.accepted and charged.billed >= limits.warning_at and not charged.warned:
                first = await uow.budget.mark_warned(vehicle.id, month, at=at)
            if first:
                detail = BudgetWarningDetail(
                    month=month,
                    requests_this_month=charged.billed,
                    monthly_allowance=limits.allowance,
                    warning_percent=self.policy.warning_percent,
                )
                await record(uow, budget_warning(vehicle.id, detail, at=at))
            if charged.accepted and with_charge is not None:
                await with_charge(uow)
            await uow.commit()
        if not charged.accepted:
            paced = cap is not None and _paced_only(limits, tier, cap, charged.billed + requests)
            raise self._refusal(vehicle.id, limits, tier, used=charged.billed, at=at, paced=paced)
        self._metrics.budget_spent(
            requests=requests,
            month_total=charged.billed,
            allowance=limits.allowance,
            projected_total=projected_month_total(charged.billed, at),
        )
        if not first:
            return None
        warning = BudgetWarning(
            vehicle_id=vehicle.id,
            month=month,
            requests_this_month=charged.billed,
            monthly_allowance=limits.allowance,
            at=at,
        )
        self._metrics.budget_warning()
        _log.warning(
            "vehicle passed %d %% of its monthly request allowance",
            self.policy.warning_percent,
            extra={
                "event": "budget_warning",
                "vehicle": vehicle.id,
                "month": month,
                "requests_this_month": charged.billed,
                "monthly_request_allowance": limits.allowance,
                "request_reserve": limits.reserve,
            },
        )
        return warning

    def _cap(self, limits: BudgetLimits, tier: BudgetTier, at: datetime) -> int | None:
        """The cap of `tier` at `at` (the open part paced day by day)."""
        if tier is BudgetTier.OPEN:
            return self.policy.open_cap(limits, at)
        return limits.cap(tier)

    async def used(self, vehicle_id: str, *, at: datetime) -> int:
        """Return how many billed requests the vehicle used in the month of `at`."""
        async with self._uow.reader() as uow:
            return await uow.budget.used(vehicle_id, month_of(at))

    def _refusal(
        self,
        vehicle_id: str,
        limits: BudgetLimits,
        tier: BudgetTier,
        *,
        used: int,
        at: datetime,
        paced: bool = False,
    ) -> RateLimited:
        """The error refusing a request of `tier` at `used` requests this month (`paced`:
        only today's share stood in its way)."""
        resets_at = next_month_start(at)
        metadata = {
            "vehicle_id": vehicle_id,
            "month": month_of(at),
            "requests_this_month": str(used),
            "monthly_request_allowance": str(limits.allowance),
            "request_reserve": str(limits.reserve),
            "resets_at": resets_at.isoformat(),
        }
        retry_after_s = (resets_at - at).total_seconds()
        if tier is BudgetTier.OPEN:
            until, why = resets_at, ""
            if paced:
                until, why = _next_day_start(at), ", today's share of what reads may spend"
            return RequestBudgetReserved(
                f"vehicle {vehicle_id} used {used} of its {limits.allowance} billed requests "
                f"this month{why}; the last {limits.reserve} are kept for commands and rental "
                f"readings, so reads are answered from what the gateway holds until "
                f"{until:%Y-%m-%d} (UTC)",
                metadata={"limit": BUDGET_LIMIT, **metadata},
                retry_after_s=(until - at).total_seconds(),
            )
        return RequestAllowanceExhausted(
            f"vehicle {vehicle_id} used {used} of its {limits.allowance} billed requests this "
            f"month: nothing is read from the car until {resets_at:%Y-%m-%d} (UTC)",
            metadata={"limit": ALLOWANCE_LIMIT, **metadata},
            retry_after_s=retry_after_s,
        )
