"""Read spacing: what interactive reads may spend of a car's budget, released evenly
through the month instead of a day at a time, and remembered so a spaced car costs nothing.

The budget (`gateway.core.budget`) paces the open part of a car's allowance day by day: by
the end of day d of D, d/D of it. Within a day nothing is paced, so a caller reading a car
every minute with `max_age` 5 min spends the whole day's share (about 15 requests at the
default 500) in its first 75 minutes, and for the rest of the day is answered with values
up to a day old. Spacing releases the same share continuously: at an instant a fraction f
through the month, interactive reads may have brought the month to

    ceil((allowance - reserve) * f) + burst        (never past the budget's own caps)

so the day's share arrives about every 1 h 36 min (500, 10 % reserve, 30 days) and a car read
without pause gets a fresh value that often; `burst` lets a car nobody read lately answer a
few fresh reads in a row. The count is the month's whole count (commands, rental readings
and polls included), as the budget's is. A read spacing refuses asks Smartcar nothing: the
telemetry use case answers the values it holds with their true ages, marked UNAVAILABLE for
REQUEST_BUDGET_RESERVED (`RequestBudgetReserved`, limit `read_spacing`, retry at the next
release), exactly as for the budget's own refusals.

Only interactive reads are spaced: a rental's readings and command checks spend the
reserve, and the scheduler keeps its own daily share (`gateway.core.scheduler.daily_share`).

`SpacedReads` also remembers, per vehicle and in this process only, until when an
interactive read was refused (by spacing or by the budget), at most `ReadSpacing.recheck`:
until then a stale read of that car is answered from what is held without a database round
trip. The memo can only withhold a request, never allow one (storage stays the arbiter, so
replicas need not share it); an allowance raised meanwhile (SetRequestAllowance) reaches
reads at most `recheck` later, and on v2, where a read costs one request per path, a
smaller read than the one refused waits for the release too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.core.budget import BudgetLedger, month_of, next_month_start
from gateway.core.errors import RequestBudgetReserved
from gateway.core.model import Vehicle

SPACING_LIMIT = "read_spacing"
"""The `limit` metadata of a read refused by spacing."""


def _month_start(at: datetime) -> datetime:
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadSpacing:
    """How interactive reads' share of a car's budget is released (module docstring)."""

    enabled: bool = True
    burst: int = 4
    """Requests above the even release a car may spend at once."""
    recheck: timedelta = timedelta(hours=1)
    """The longest a refusal is remembered before storage is asked again."""

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if self.recheck <= timedelta(0):
            raise ValueError("recheck must be positive")

    def cap(self, open_part: int, at: datetime) -> int:
        """The most the month may count after an interactive read at `at`."""
        start, end = _month_start(at), next_month_start(at)
        elapsed_us = (at - start) // timedelta(microseconds=1)
        total_us = (end - start) // timedelta(microseconds=1)
        return min(open_part, -(-open_part * elapsed_us // total_us) + self.burst)

    def release_at(self, open_part: int, *, used: int, cost: int, at: datetime) -> datetime | None:
        """When a read of `cost` requests, at `used` this month, may ask Smartcar: None
        when it may now; the month's end when the open part will not hold it this month."""
        wanted = used + cost
        if wanted <= self.cap(open_part, at):
            return None
        start, end = _month_start(at), next_month_start(at)
        if wanted > open_part:
            return end
        total_us = (end - start) // timedelta(microseconds=1)
        # The first instant at which ceil(open_part * elapsed / total) + burst >= wanted.
        needed = wanted - self.burst
        return start + timedelta(microseconds=(needed - 1) * total_us // open_part + 1)


class SpacedReads:
    """Decides whether an interactive read may ask Smartcar now, and remembers refusals."""

    def __init__(self, *, ledger: BudgetLedger, spacing: ReadSpacing) -> None:
        self._ledger = ledger
        self._spacing = spacing
        self._refused: dict[str, tuple[datetime, RequestBudgetReserved]] = {}

    def remembered(self, vehicle_id: str, at: datetime) -> RequestBudgetReserved | None:
        """The refusal remembered for the car at `at`, if any."""
        kept = self._refused.get(vehicle_id)
        if kept is None:
            return None
        until, refusal = kept
        if at >= until:
            del self._refused[vehicle_id]
            return None
        return refusal

    def remember(self, vehicle_id: str, refusal: RequestBudgetReserved, at: datetime) -> None:
        """Keep a refusal until its retry time, at most `recheck`."""
        retry = timedelta(seconds=refusal.retry_after_s or 0.0)
        until = at + min(retry, self._spacing.recheck)
        if until > at:
            self._refused[vehicle_id] = (until, refusal)

    def forget(self, vehicle_id: str) -> None:
        """Drop what is remembered for the car."""
        self._refused.pop(vehicle_id, None)

    async def refusal(
        self, vehicle: Vehicle, cost: int, at: datetime
    ) -> RequestBudgetReserved | None:
        """Spacing's refusal of a read of `cost` requests at `at` (None: it may ask)."""
        if not (self._spacing.enabled and self._ledger.policy.paced):
            return None
        limits = self._ledger.policy.limits(vehicle)
        open_part = limits.allowance - limits.reserve
        used = await self._ledger.used(vehicle.id, at=at)
        release = self._spacing.release_at(open_part, used=used, cost=cost, at=at)
        if release is None:
            return None
        return RequestBudgetReserved(
            f"vehicle {vehicle.id} used {used} of its {limits.allowance} billed requests this "
            f"month; reads may spend the month's share as it is released, evenly over the "
            f"month, so reads are answered from what the gateway holds until "
            f"{release:%Y-%m-%dT%H:%M:%S}Z",
            metadata={
                "limit": SPACING_LIMIT,
                "vehicle_id": vehicle.id,
                "month": month_of(at),
                "requests_this_month": str(used),
                "monthly_request_allowance": str(limits.allowance),
                "request_reserve": str(limits.reserve),
                "resets_at": release.isoformat(),
            },
            retry_after_s=(release - at).total_seconds(),
        )
