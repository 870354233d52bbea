"""Request limits on the simulated clock: token buckets and the monthly per-vehicle allowance.

The policies are pure: every method takes `now_s` (simulated epoch seconds) and returns a
decision, so advancing `/sim/clock` refills buckets and starts new billing months.

- The app-wide bucket (RATE_LIMIT:SMARTCAR_API) takes one token per Vehicle API request
  that carries a bearer token (`/user`, `/vehicles` and every `/vehicles/{id}/…` call).
- The per-vehicle bucket (RATE_LIMIT:VEHICLE) takes one token per request for a vehicle's
  data or a command: reads (attributes and VIN included), LOCK/UNLOCK, and a batch (one
  token for the whole batch: it is one round trip). `/permissions` and
  `DELETE …/application` concern the connection, not the car, and take none.
- The monthly allowance (BILLING:VEHICLE_REQUEST_LIMIT) counts the same requests as the
  per-vehicle bucket, except that a batch counts once per path ("Each endpoint in the batch
  counts against your request limit for a vehicle"). Months are UTC calendar months.

Replacing a limit at runtime (`/sim/config`) starts fresh, full buckets; the monthly counts
are kept, so lowering the allowance below what was used blocks the vehicle at once.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from clients.simulator.clock import month_of
from clients.simulator.config import BucketLimit


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether a request may proceed and, if not, how many whole seconds until it may."""

    allowed: bool
    retry_after_s: int = 0


ALLOWED = Decision(allowed=True)


class TokenBucket:
    """A bucket of `capacity` tokens refilled continuously at `refill_per_s`."""

    def __init__(self, limit: BucketLimit, *, now_s: float) -> None:
        self._limit = limit
        self._tokens = float(limit.capacity)
        self._updated_s = now_s

    def take(self, *, now_s: float) -> Decision:
        """Take one token if there is one; otherwise say when there will be."""
        self._refill(now_s)
        if self._tokens >= 1:
            self._tokens -= 1
            return ALLOWED
        wait_s = (1 - self._tokens) / self._limit.refill_per_s
        return Decision(allowed=False, retry_after_s=max(1, math.ceil(wait_s)))

    def _refill(self, now_s: float) -> None:
        """Add the tokens earned since the last update, up to capacity."""
        elapsed_s = max(0.0, now_s - self._updated_s)
        capacity = float(self._limit.capacity)
        self._tokens = min(capacity, self._tokens + elapsed_s * self._limit.refill_per_s)
        self._updated_s = now_s


class KeyedBuckets:
    """One token bucket per key (vehicle id), all with the same limit; no limit admits all."""

    def __init__(self, limit: BucketLimit | None) -> None:
        self._limit = limit
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, *, now_s: float) -> Decision:
        """Take one token from `key`'s bucket, creating a full one on first use."""
        if self._limit is None:
            return ALLOWED
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._limit, now_s=now_s)
        return bucket.take(now_s=now_s)


class MonthlyAllowance:
    """Billed requests per vehicle per UTC calendar month, against an optional ceiling."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._used: Counter[tuple[str, str]] = Counter()

    def used(self, vehicle_id: str, *, now_s: float) -> int:
        """Return how many requests `vehicle_id` was billed for this month."""
        return self._used[(vehicle_id, month_of(now_s))]

    def remaining(self, vehicle_id: str, *, now_s: float) -> int | None:
        """Return how many more requests this month allows (None: unlimited)."""
        if self.limit is None:
            return None
        return max(0, self.limit - self.used(vehicle_id, now_s=now_s))

    def charge(self, vehicle_id: str, count: int, *, now_s: float) -> int:
        """Bill up to `count` requests and return how many fitted in the allowance."""
        remaining = self.remaining(vehicle_id, now_s=now_s)
        billed = count if remaining is None else min(count, remaining)
        if billed:
            self._used[(vehicle_id, month_of(now_s))] += billed
        return billed

    def this_month(self, *, now_s: float) -> dict[str, int]:
        """Return the billed count of every vehicle billed this month."""
        month = month_of(now_s)
        return {vid: n for (vid, m), n in self._used.items() if m == month}

    def to_json(self) -> list[list[str | int]]:
        """Return the billed counts as `[vehicle id, month, count]` rows."""
        return [[vid, month, n] for (vid, month), n in self._used.items()]

    def restore(self, rows: list[list[Any]]) -> None:
        """Take back the counts `to_json` returned."""
        for vehicle_id, month, count in rows:
            self._used[(str(vehicle_id), str(month))] = int(count)


class Limits:
    """The three limits of one simulator, rebuilt when their configuration changes."""

    def __init__(
        self,
        *,
        vehicle: BucketLimit | None,
        app: BucketLimit | None,
        monthly: int | None,
    ) -> None:
        self.vehicle = KeyedBuckets(vehicle)
        self.app = KeyedBuckets(app)
        self.allowance = MonthlyAllowance(monthly)
        self._vehicle_limit = vehicle
        self._app_limit = app

    def reconfigure(
        self, *, vehicle: BucketLimit | None, app: BucketLimit | None, monthly: int | None
    ) -> None:
        """Apply new limits: changed buckets restart full, monthly counts are kept."""
        if vehicle != self._vehicle_limit:
            self.vehicle = KeyedBuckets(vehicle)
            self._vehicle_limit = vehicle
        if app != self._app_limit:
            self.app = KeyedBuckets(app)
            self._app_limit = app
        self.allowance.limit = monthly
