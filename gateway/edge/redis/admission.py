"""Rate limits shared by every replica, in Redis: the same buckets and cooldowns as
`gateway.core.ratelimit.RateLimiter`, decided by one Lua script run atomically by Redis.

Each decision reads both cooldowns and refills both buckets (the vehicle's read or
command bucket, and the application's) from the caller's clock, then takes a token from
each or from neither, exactly as the local limiter does. Bucket state is a hash
`{tokens, ts}` that expires once it would be full again, so idle vehicles cost nothing.

When Redis cannot be reached, `failure` decides: `open` falls back to this replica's own
buckets (limits then hold per replica, not fleet-wide; logged once per outage), `closed`
refuses the call as UNAVAILABLE.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.core.errors import UpstreamUnavailable
from gateway.core.ratelimit import CallKind, RateLimiter, RateLimits, refused
from gateway.edge.redis.outage import RedisOutage

# KEYS: app cooldown, vehicle cooldown, vehicle bucket, app bucket
# ARGV: now, vehicle capacity, vehicle refill/s, app capacity, app refill/s, app keep,
#       name of the vehicle limit
# Returns {limit name, wait seconds} (as strings: Redis would truncate Lua numbers), or
# {"", "0"} when admitted.
_ADMIT = """
local now = tonumber(ARGV[1])
local function cooling(key)
  local until_s = tonumber(redis.call('GET', key) or '0')
  if now < until_s then return until_s - now end
  return 0
end
local wait = cooling(KEYS[1])
if wait > 0 then return {'application_cooldown', tostring(wait)} end
wait = cooling(KEYS[2])
if wait > 0 then return {'vehicle_cooldown', tostring(wait)} end
local function level(key, capacity, rate)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  return tokens, math.max(ts, now)
end
local v_cap, v_rate = tonumber(ARGV[2]), tonumber(ARGV[3])
local a_cap, a_rate, keep = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local v_tokens, v_ts = level(KEYS[3], v_cap, v_rate)
local a_tokens, a_ts = level(KEYS[4], a_cap, a_rate)
local v_missing = 1 - v_tokens
if v_missing > 1e-9 then return {ARGV[7], tostring(v_missing / v_rate)} end
local a_missing = 1 + keep - a_tokens
if a_missing > 1e-9 then return {'application', tostring(a_missing / a_rate)} end
local function save(key, tokens, ts, capacity, rate)
  redis.call('HSET', key, 'tokens', tostring(tokens - 1), 'ts', tostring(ts))
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens + 1) / rate * 1000) + 1000)
end
save(KEYS[3], v_tokens, v_ts, v_cap, v_rate)
save(KEYS[4], a_tokens, a_ts, a_cap, a_rate)
return {'', '0'}
"""

# KEYS: the cooldown; ARGV: now, until. Keeps the later of the two ends.
_COOL_DOWN = """
local now, until_s = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_s > current and until_s > now then
  redis.call('SET', KEYS[1], tostring(until_s), 'PX', math.ceil((until_s - now) * 1000) + 1000)
end
return 1
"""


class RedisFailure(StrEnum):
    """What to do when Redis cannot be reached."""

    OPEN = "open"
    """Fall back to this replica's own buckets."""
    CLOSED = "closed"
    """Refuse upstream calls (UNAVAILABLE) until Redis is back."""


class RedisAdmission:
    """Admission shared through Redis, with a configured behaviour when Redis is down."""

    def __init__(
        self,
        redis: Redis,
        limits: RateLimits,
        *,
        failure: RedisFailure = RedisFailure.OPEN,
        prefix: str = "vg:",
    ) -> None:
        self._redis = redis
        self._limits = limits
        self._failure = failure
        self._prefix = prefix
        self._fallback = RateLimiter(limits)
        self._admit = redis.register_script(_ADMIT)
        self._cool_down = redis.register_script(_COOL_DOWN)
        self._outage = RedisOutage(
            "rate limits",
            "each replica's own buckets decide"
            if failure is RedisFailure.OPEN
            else "upstream calls are refused until it is back",
        )

    async def admit(self, vehicle_id: str, kind: CallKind, *, now_s: float) -> None:
        """Take one token for an upstream call, or raise RateLimited taking none."""
        limits = self._limits
        command = kind is CallKind.COMMAND
        spec = limits.vehicle_commands if command else limits.vehicle_reads
        keep = limits.app_keep(kind)
        p = self._prefix
        keys = [
            f"{p}cooldown:app",
            f"{p}cooldown:vehicle:{vehicle_id}",
            f"{p}bucket:{'command' if command else 'read'}:{vehicle_id}",
            f"{p}bucket:app",
        ]
        args: list[Any] = [
            repr(now_s),
            spec.capacity,
            repr(spec.refill_per_s),
            limits.application.capacity,
            repr(limits.application.refill_per_s),
            repr(keep),
            "vehicle_commands" if command else "vehicle_reads",
        ]
        try:
            limit, wait = await self._admit(keys=keys, args=args)
        except RedisError as error:
            self._unreachable(error)
            self._fallback.admit(vehicle_id, kind, now_s=now_s)
            return
        self._reachable()
        name = limit.decode() if isinstance(limit, bytes) else str(limit)
        if name:
            raise refused(name, float(wait), vehicle_id)

    async def cool_down(self, vehicle_id: str, *, until_s: float, now_s: float) -> None:
        """Refuse upstream calls for this vehicle, on every replica, until `until_s`."""
        self._fallback.cool_down(vehicle_id, until_s=until_s)
        key = f"{self._prefix}cooldown:vehicle:{vehicle_id}"
        await self._set_cooldown(key, until_s=until_s, now_s=now_s)

    async def cool_down_application(self, *, until_s: float, now_s: float) -> None:
        """Refuse every upstream call, on every replica, until `until_s`."""
        self._fallback.cool_down_application(until_s=until_s)
        await self._set_cooldown(f"{self._prefix}cooldown:app", until_s=until_s, now_s=now_s)

    async def _set_cooldown(self, key: str, *, until_s: float, now_s: float) -> None:
        try:
            await self._cool_down(keys=[key], args=[repr(now_s), repr(until_s)])
        except RedisError as error:
            self._unreachable(error)
            return
        self._reachable()

    def _unreachable(self, error: RedisError) -> None:
        """Log the outage once; refuse the call when configured to fail closed."""
        self._outage.down(error)
        if self._failure is RedisFailure.CLOSED:
            raise UpstreamUnavailable(
                "the shared rate limiter (Redis) is unreachable; try again shortly",
                retry_after_s=1.0,
                metadata={"limit": "redis"},
            )

    def _reachable(self) -> None:
        self._outage.up()
