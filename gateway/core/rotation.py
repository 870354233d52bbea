"""Token rotation: exactly one refresh per token pair, persisted before it is used.

Within a process, one asyncio lock per grant makes concurrent callers share one refresh.
Across processes, the database arbitrates: a worker first *claims* the grant with a
compare-and-swap on its version (`claim_refresh`), and only the claimant calls Smartcar;
the others wait for the version to move and use the pair it stored. The new pair is
written (CAS again) before anyone uses it. A claim expires after `claim_ttl`, well inside
Smartcar's 60 s grace window, so a worker that died mid-refresh leaves a refresh token the
next claimant can still use.

`invalid_grant` is read once more before it is believed: another worker may have rotated
the pair in between. If the pair really is dead, every vehicle on it becomes EXPIRED.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.errors import ConnectionDisconnected, ConnectionExpired, GatewayError
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, Grant
from gateway.core.ports import Clock, RefreshRejected, SmartcarAPI, UnitOfWorkFactory
from gateway.core.secret import Secret
from gateway.core.status import set_grant_status


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationPolicy:
    """When to refresh, and how long a refresh claim holds."""

    margin: timedelta = timedelta(minutes=5)
    """Refresh an access token this long before it expires."""
    claim_ttl: timedelta = timedelta(seconds=30)
    poll_interval_s: float = 0.05
    """How often a worker waiting on another process's refresh re-reads the grant."""


class TokenRotator:
    """Hands out valid access tokens per grant, refreshing them exactly once when due."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: SmartcarAPI,
        clock: Clock,
        policy: RotationPolicy = RotationPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._metrics = metrics
        self._uow = uow
        self._smartcar = smartcar
        self._clock = clock
        self._policy = policy
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}

    async def access_token(self, grant_id: str) -> Secret:
        """Return an access token valid for at least the margin, refreshing if it is not."""
        grant = await self._load(grant_id)
        if self._fresh(grant):
            return grant.tokens.access_token
        return await self._refresh(grant_id, rejected=None)

    async def after_rejection(self, grant_id: str, rejected: Secret) -> Secret:
        """Return a token other than `rejected` (which Smartcar refused with 401): the one
        another caller already rotated to, or a newly refreshed one."""
        return await self._refresh(grant_id, rejected=rejected)

    async def renew(self, grant_id: str, *, seen: Grant) -> None:
        """Renew the pair ahead of its refresh token's expiry, unless someone already did."""
        lock = self._locks.setdefault(grant_id, asyncio.Lock())
        async with lock:
            grant = await self._load(grant_id)
            if grant.tokens.refresh_expires_at != seen.tokens.refresh_expires_at:
                return
            await self._rotate(grant)

    async def _refresh(self, grant_id: str, *, rejected: Secret | None) -> Secret:
        lock = self._locks.setdefault(grant_id, asyncio.Lock())
        async with lock:
            grant = await self._load(grant_id)
            if rejected is None and self._fresh(grant):
                return grant.tokens.access_token
            if rejected is not None and grant.tokens.access_token != rejected:
                return grant.tokens.access_token
            return await self._rotate(grant)

    async def _rotate(self, grant: Grant) -> Secret:
        now = self._clock.now()
        if grant.tokens.refresh_expires_at <= now:
            raise await self._expire(grant.id, "the refresh token outlived its 60 days")
        async with self._uow() as uow:
            claimed = await uow.grants.claim_refresh(
                grant.id,
                expected_version=grant.version,
                until=now + self._policy.claim_ttl,
                now=now,
            )
            await uow.commit()
        if claimed is None:
            return await self._await_other_worker(grant)
        return await self._refresh_claimed(claimed)

    async def _refresh_claimed(self, claimed: Grant) -> Secret:
        try:
            pair = await self._smartcar.refresh(claimed.tokens.refresh_token)
        except RefreshRejected:
            self._metrics.token_refresh(result="rejected")
            return await self._recheck_rejection(claimed)
        except GatewayError:
            self._metrics.token_refresh(result="failed")
            await self._release_claim(claimed)
            raise
        async with self._uow() as uow:
            saved = await uow.grants.replace_tokens(
                claimed.id, expected_version=claimed.version, tokens=pair
            )
            await uow.commit()
        if saved is None:  # our claim lapsed and another worker rotated: use theirs
            self._metrics.token_refresh(result="lost")
            return (await self._load(claimed.id)).tokens.access_token
        self._metrics.token_refresh(result="ok")
        return saved.tokens.access_token

    async def _release_claim(self, claimed: Grant) -> None:
        """Give up a claim without changing the tokens (the refresh failed transiently)."""
        async with self._uow() as uow:
            await uow.grants.replace_tokens(
                claimed.id, expected_version=claimed.version, tokens=claimed.tokens
            )
            await uow.commit()

    async def _recheck_rejection(self, claimed: Grant) -> Secret:
        current = await self._load(claimed.id)
        if current.version != claimed.version and current.tokens != claimed.tokens:
            return current.tokens.access_token
        raise await self._expire(claimed.id, "Smartcar rejected the refresh token (invalid_grant)")

    async def _await_other_worker(self, seen: Grant) -> Secret:
        polls = math.ceil(self._policy.claim_ttl.total_seconds() / self._policy.poll_interval_s)
        for _ in range(polls):
            await self._sleep(self._policy.poll_interval_s)
            current = await self._load(seen.id)
            if current.version != seen.version and current.refresh_claimed_until is None:
                return current.tokens.access_token
        current = await self._load(seen.id)
        return await self._rotate(current)

    async def _expire(self, grant_id: str, reason: str) -> ConnectionExpired:
        """Mark every vehicle on the grant EXPIRED, drop the grant, return the error to raise."""
        async with self._uow() as uow:
            await set_grant_status(
                uow, grant_id, ConnectionStatus.EXPIRED, reason=reason, now=self._clock.now()
            )
            await uow.commit()
        return ConnectionExpired(f"connection expired: {reason}; the owner must reconnect")

    async def _load(self, grant_id: str) -> Grant:
        async with self._uow.reader() as uow:
            grant = await uow.grants.get(grant_id)
        if grant is None:
            raise ConnectionDisconnected("the vehicle's Smartcar authorization no longer exists")
        return grant

    def _fresh(self, grant: Grant) -> bool:
        return grant.tokens.access_expires_at - self._policy.margin > self._clock.now()
