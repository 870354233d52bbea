"""Rate limits: token buckets per vehicle and for the application, and Smartcar cooldowns.

Pure policy: every decision takes `now` (seconds, from the Clock). A refused call costs no
upstream request and no token from any bucket; the caller gets `RateLimited` with the time
after which a retry can succeed. Buckets only ever admit what Smartcar would: the defaults
keep a vehicle's reads plus commands under Smartcar's per-vehicle limit, and the app bucket
mirrors Smartcar's documented default (120 requests, refilling 2 per minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.core.errors import RateLimited


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketSpec:
    """A bucket of `capacity` requests refilling at `refill_per_s` requests per second."""

    capacity: int
    refill_per_s: float

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not self.refill_per_s > 0:
            raise ValueError("refill_per_s must be positive")


class TokenBucket:
    """One token bucket; `wait_s(now)` and `take(now)` never block and never read a clock."""

    __slots__ = ("_spec", "_tokens", "_updated_s")

    def __init__(self, spec: BucketSpec, *, now_s: float) -> None:
        self._spec = spec
        self._tokens = float(spec.capacity)
        self._updated_s = now_s

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._updated_s)
        self._tokens = min(self._spec.capacity, self._tokens + elapsed * self._spec.refill_per_s)
        self._updated_s = max(self._updated_s, now_s)

    def wait_s(self, now_s: float, *, keep: float = 0.0) -> float:
        """Return 0 if a token is available now (leaving `keep` behind), else the seconds
        until one will be."""
        self._refill(now_s)
        missing = 1.0 + keep - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self._spec.refill_per_s

    def take(self, now_s: float) -> None:
        """Consume one token (the caller checked `wait_s` first)."""
        self._refill(now_s)
        self._tokens -= 1.0


class CallKind(StrEnum):
    """What an upstream call is for; reads and commands have separate per-vehicle buckets.

    In the app-wide bucket commands come first: a READ (a caller's or a rental's) is
    admitted only while the bucket keeps `read_reserve` of its capacity for commands, so a
    caller reading many cars fresh cannot leave Lock without a token; POLL, a scheduler
    read, sharing the read bucket, is the lowest priority, admitted only while the bucket
    keeps `poll_reserve` for commands and reads.
    """

    READ = "read"
    COMMAND = "command"
    POLL = "poll"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """The configured limits."""

    vehicle_reads: BucketSpec = BucketSpec(capacity=4, refill_per_s=1 / 15)
    vehicle_commands: BucketSpec = BucketSpec(capacity=4, refill_per_s=1 / 15)
    application: BucketSpec = BucketSpec(capacity=120, refill_per_s=2 / 60)
    poll_reserve: float = 0.25
    """The share of the app-wide bucket polls may never take (kept for commands and reads)."""
    read_reserve: float = 0.1
    """The share of the app-wide bucket reads leave to commands."""

    def app_keep(self, kind: CallKind) -> float:
        """The app-wide tokens a call of `kind` must leave in the bucket (never so many that
        a full bucket could not admit it)."""
        share = {CallKind.POLL: self.poll_reserve, CallKind.READ: self.read_reserve}.get(kind)
        if share is None:
            return 0.0
        capacity = self.application.capacity
        return min(share * capacity, capacity - 1)


class RateLimiter:
    """Admits or refuses upstream calls: vehicle cooldowns first, then every bucket at once."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self._app: TokenBucket | None = None
        self._buckets: dict[tuple[str, CallKind], TokenBucket] = {}
        self._cooldown_until_s: dict[str, float] = {}
        self._app_cooldown_until_s = 0.0

    def admit(self, vehicle_id: str, kind: CallKind, *, now_s: float) -> None:
        """Take one token for an upstream call, or raise RateLimited taking none."""
        if now_s < self._app_cooldown_until_s:
            raise refused("application_cooldown", self._app_cooldown_until_s - now_s, vehicle_id)
        cooldown = self._cooldown_until_s.get(vehicle_id)
        if cooldown is not None:
            if now_s < cooldown:
                raise refused("vehicle_cooldown", cooldown - now_s, vehicle_id)
            del self._cooldown_until_s[vehicle_id]
        vehicle = self._bucket(vehicle_id, kind, now_s)
        app = self._application(now_s)
        vehicle_wait = vehicle.wait_s(now_s)
        if vehicle_wait > 0:
            bucket = "reads" if kind is CallKind.POLL else f"{kind}s"
            raise refused(f"vehicle_{bucket}", vehicle_wait, vehicle_id)
        app_wait = app.wait_s(now_s, keep=self._limits.app_keep(kind))
        if app_wait > 0:
            raise refused("application", app_wait, vehicle_id)
        vehicle.take(now_s)
        app.take(now_s)

    def cool_down(self, vehicle_id: str, *, until_s: float) -> None:
        """Refuse upstream calls for this vehicle until `until_s` (Smartcar's retry-after)."""
        current = self._cooldown_until_s.get(vehicle_id, 0.0)
        self._cooldown_until_s[vehicle_id] = max(current, until_s)

    def cool_down_application(self, *, until_s: float) -> None:
        """Refuse every upstream call until `until_s` (Smartcar's app-wide 429)."""
        self._app_cooldown_until_s = max(self._app_cooldown_until_s, until_s)

    def _bucket(self, vehicle_id: str, kind: CallKind, now_s: float) -> TokenBucket:
        key = (vehicle_id, CallKind.COMMAND if kind is CallKind.COMMAND else CallKind.READ)
        bucket = self._buckets.get(key)
        if bucket is None:
            limits = self._limits
            spec = limits.vehicle_commands if kind is CallKind.COMMAND else limits.vehicle_reads
            bucket = self._buckets[key] = TokenBucket(spec, now_s=now_s)
        return bucket

    def _application(self, now_s: float) -> TokenBucket:
        if self._app is None:
            self._app = TokenBucket(self._limits.application, now_s=now_s)
        return self._app


class Admission(Protocol):
    """Where rate-limit decisions are made: in this process (`LocalAdmission`), or shared by
    every replica (the Redis adapter). Same semantics either way."""

    async def admit(self, vehicle_id: str, kind: CallKind, *, now_s: float) -> None:
        """Take one token for an upstream call, or raise RateLimited taking none."""
        ...

    async def cool_down(self, vehicle_id: str, *, until_s: float, now_s: float) -> None:
        """Refuse upstream calls for this vehicle until `until_s`."""
        ...

    async def cool_down_application(self, *, until_s: float, now_s: float) -> None:
        """Refuse every upstream call until `until_s`."""
        ...


class LocalAdmission:
    """Admission by this process's own RateLimiter."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def admit(self, vehicle_id: str, kind: CallKind, *, now_s: float) -> None:
        """Take one token, or raise RateLimited."""
        self.limiter.admit(vehicle_id, kind, now_s=now_s)

    async def cool_down(self, vehicle_id: str, *, until_s: float, now_s: float) -> None:
        """Start or extend a vehicle's cooldown."""
        self.limiter.cool_down(vehicle_id, until_s=until_s)

    async def cool_down_application(self, *, until_s: float, now_s: float) -> None:
        """Start or extend the application's cooldown."""
        self.limiter.cool_down_application(until_s=until_s)


def refused(limit: str, wait_s: float, vehicle_id: str) -> RateLimited:
    """Build the refusal for one limit, rounding the wait up to whole milliseconds."""
    wait = max(0.001, round(wait_s + 0.0005, 3))
    return RateLimited(
        f"rate limit '{limit}' reached for vehicle {vehicle_id}; retry in {wait:.3f} s",
        metadata={"limit": limit, "vehicle_id": vehicle_id},
        retry_after_s=wait,
    )
