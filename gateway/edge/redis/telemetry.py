"""Telemetry shared by every replica, in Redis: the latest readings per vehicle, and the
claim that lets one replica ask Smartcar while the others wait for its answer.

A vehicle's readings are one hash `telemetry:{vehicle}`: per field its JSON form and,
under `field@`, when it was fetched (epoch seconds). A Lua script writes a field only
when it is at least as new as the one there, so two replicas finishing out of order keep
the newer reading. The hash expires a day (`ttl_s`) after its last write; storage still
holds everything, so an expired or lost hash costs one storage read, never an answer.

A fetch claim is `fetch:{vehicle}` = a random token, set only if absent, for as long as a
read may take; it is deleted by its holder only (compare-and-delete), so a claim that
expired and was taken over is not released by the late first holder.

When Redis cannot be reached, every replica works on its own: no shared readings,
every claim granted, writes dropped, logged once per outage. Limits are a separate
choice (`VG_REDIS_FAILURE`); for the cache there is nothing to protect by refusing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.core.plain import telemetry_from_json, telemetry_to_json
from gateway.edge.redis.outage import RedisOutage

# KEYS: the vehicle's hash. ARGV: expiry in ms, then (field, fetched epoch s, json) triples.
_PUT = """
for i = 2, #ARGV, 3 do
  local at = tonumber(ARGV[i + 1])
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[i] .. '@') or '-1')
  if at >= held then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2], ARGV[i] .. '@', ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the claim; ARGV: the holder's token. Deletes it only for its holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

WAIT_POLL_S = 0.02


class RedisTelemetry:
    """`SharedTelemetry` on Redis; degrades to per-replica work when Redis is down."""

    def __init__(self, redis: Redis, *, ttl_s: float = 86_400.0, prefix: str = "vg:") -> None:
        self._redis = redis
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._prefix = prefix
        self._put = redis.register_script(_PUT)
        self._release = redis.register_script(_RELEASE)
        self._outage = RedisOutage(
            "shared telemetry", "each replica reads and fetches for itself until it is back"
        )

    async def readings(self, vehicle_id: str) -> dict[TelemetryField, FieldReading] | None:
        """The shared readings of a vehicle, or None (none shared, or Redis down)."""
        try:
            stored = await self._redis.hgetall(self._key("telemetry", vehicle_id))
        except RedisError as error:
            self._outage.down(error)
            return None
        self._outage.up()
        found = {}
        for name, value in stored.items():
            reading = _decode(name, value)
            if reading is not None:
                found[reading.field] = reading
        return found or None

    async def put(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Share readings, each unless a newer one of its field is there already."""
        args: list[Any] = [self._ttl_ms]
        for reading in readings:
            at = reading.fetched_at.timestamp() if reading.fetched_at is not None else 0.0
            args += [reading.field.value, repr(at), json.dumps(_encode(reading))]
        try:
            await self._put(keys=[self._key("telemetry", vehicle_id)], args=args)
        except RedisError as error:
            self._outage.down(error)
            return
        self._outage.up()

    async def claim(self, vehicle_id: str, *, ttl_s: float) -> str | None:
        """A token when this replica may fetch the vehicle now; None when another may."""
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(
                self._key("fetch", vehicle_id), token, nx=True, px=max(1, round(ttl_s * 1000))
            )
        except RedisError as error:
            self._outage.down(error)
            return token
        self._outage.up()
        return token if taken else None

    async def release(self, vehicle_id: str, token: str) -> None:
        """Give up this replica's claim (only if it still holds it)."""
        try:
            await self._release(keys=[self._key("fetch", vehicle_id)], args=[token])
        except RedisError as error:
            self._outage.down(error)

    async def wait(self, vehicle_id: str, *, timeout_s: float) -> None:
        """Poll until the vehicle's claim is gone (released or expired), or `timeout_s`."""
        key = self._key("fetch", vehicle_id)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            try:
                if not await self._redis.exists(key):
                    return
            except RedisError as error:
                self._outage.down(error)
                return
            await asyncio.sleep(WAIT_POLL_S)

    def _key(self, kind: str, vehicle_id: str) -> str:
        return f"{self._prefix}{kind}:{vehicle_id}"


def _encode(reading: FieldReading) -> dict[str, Any]:
    return {
        "availability": reading.availability.value,
        "value": None if reading.value is None else telemetry_to_json(reading.value),
        "recorded_at": _instant(reading.recorded_at),
        "fetched_at": _instant(reading.fetched_at),
        "reason": reading.reason,
    }


def _decode(name: bytes | str, value: bytes | str) -> FieldReading | None:
    """A reading from its hash entry; None for the `field@` entries and for anything this
    version cannot read (a newer replica's format): storage answers for those."""
    name = name.decode() if isinstance(name, bytes) else name
    if name.endswith("@"):
        return None
    try:
        data = json.loads(value)
        return FieldReading(
            field=TelemetryField(name),
            availability=Availability(data["availability"]),
            value=None if data["value"] is None else telemetry_from_json(data["value"]),
            recorded_at=_parse(data["recorded_at"]),
            fetched_at=_parse(data["fetched_at"]),
            reason=data["reason"],
        )
    except (ValueError, KeyError, TypeError):
        return None


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
