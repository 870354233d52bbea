"""Token rotation: exactly one refresh per token pair, persisted before it is used.

Within a process, one asyncio lock per grant makes concurrent callers share one refresh.
Across processes, the database arbitrates: a worker first *claims* the grant with a
compare-and-swap on its version (`claim_refresh`), and only the claimant calls Smartcar;
the others wait for the version to move and use the pair it stored. The new pair is
written (CAS again) before anyone uses it. A claim expires after `claim_ttl`, well inside
Smartcar's 60 s grace window, so a worker that died mid-refresh leaves a refresh token the
next claimant can still use.

A refresh whose answer is lost (a reset, a timeout, a 5xx: `UpstreamUnavailable`) may
have spent the refresh token at Smartcar all the same. Smartcar invalidates a used refresh
token only one minute after its first use, so the claimant presents the SAME token again,
a bounded number of times with jittered, doubling waits, and starts no retry later than
`retry_window` after the first attempt (inside the claim, and well inside the grace).

`invalid_grant` is read once more before it is believed: another worker may have rotated
the pair in between. If the pair really is dead, every vehicle on it becomes EXPIRED; no
other failure expires a connection. `invalid_grant` is also what a pair whose owner revoked
the application's access gets: given a `ConnectionListing`, the rotator asks whether
Smartcar still lists each car's connection, and a car it no longer lists is DISCONNECTED
instead (`gateway.core.revocation`). A pair past its 60 days is EXPIRED without asking.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import (
    ConnectionDisconnected,
    ConnectionExpired,
    GatewayError,
    UpstreamUnavailable,
)
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ConnectionStatus, Grant, TokenPair
from gateway.core.ports import Clock, RefreshRejected, SmartcarAPI, UnitOfWorkFactory
from gateway.core.revocation import ConnectionListing, retire_refused_pair
from gateway.core.secret import Secret
from gateway.core.status import set_grant_status
from gateway.core.tracing import (
    NO_TRACING,
    TOKEN_REFRESH,
    TOKEN_REFRESH_WAIT,
    UPSTREAM_RETRY,
    Span,
    Tracing,
)

REFRESH_REUSE_GRACE = timedelta(seconds=60)
"""Smartcar: "a refresh token is invalidated 1 minute after use" (smartcar-wire-notes.md,
token facts): within this window a spent refresh token still mints a pair."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationPolicy:
    """When to refresh, how long a refresh claim holds, and how a lost answer is retried."""

    margin: timedelta = timedelta(minutes=5)
    """Refresh an access token this long before it expires."""
    claim_ttl: timedelta = timedelta(seconds=30)
    poll_interval_s: float = 0.05
    """How often a worker waiting on another process's refresh re-reads the grant."""
    refresh_attempts: int = 4
    """How many times one claim presents the same refresh token when answers are lost."""
    retry_backoff_s: float = 1.0
    """The wait before the first retry; each further wait doubles. Jitter scales a wait
    by 0.5-1.0 so replicas that lost answers together do not retry together."""
    retry_window: timedelta = timedelta(seconds=20)
    """No retry starts later than this after the first attempt (nor after the claim
    lapses): a spent token must be presented again well inside Smartcar's grace."""

    def __post_init__(self) -> None:
        if self.refresh_attempts < 1:
            raise ValueError("refresh_attempts must be at least 1")
        if self.retry_backoff_s < 0:
            raise ValueError("retry_backoff_s must not be negative")
        if not timedelta(0) <= self.retry_window < REFRESH_REUSE_GRACE:
            raise ValueError(f"retry_window must be shorter than {REFRESH_REUSE_GRACE}")


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
        jitter: Callable[[], float] = random.random,
        metrics: Metrics = NO_METRICS,
        listing: ConnectionListing | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`sleep` waits (between polls and retries) and `jitter` returns a number in
        [0, 1) that spreads retries: both injected so tests wait for nothing. `listing`
        tells a revoked pair from a merely refused one (without it, every refused pair is
        EXPIRED). `tracing` records each refresh, and each wait for another worker's."""
        self._tracing = tracing
        self._listing = listing
        self._metrics = metrics
        self._jitter = jitter
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
            with self._tracing.span(TOKEN_REFRESH_WAIT, {"vg.grant_id": grant.id}):
                return await self._await_other_worker(grant)
        with self._tracing.span(TOKEN_REFRESH, {"vg.grant_id": grant.id}) as span:
            return await self._refresh_claimed(claimed, span)

    async def _refresh_claimed(self, claimed: Grant, span: Span) -> Secret:
        try:
            pair = await self._refresh_within_grace(claimed)
        except RefreshRejected:
            self._metrics.token_refresh(result="rejected")
            span.set("vg.token.result", "rejected")
            return await self._recheck_rejection(claimed)
        except GatewayError:
            self._metrics.token_refresh(result="failed")
            span.set("vg.token.result", "failed")
            await self._release_claim(claimed)
            raise
        async with self._uow() as uow:
            saved = await uow.grants.replace_tokens(
                claimed.id, expected_version=claimed.version, tokens=pair
            )
            await uow.commit()
        if saved is None:  # our claim lapsed and another worker rotated: use theirs
            self._metrics.token_refresh(result="lost")
            span.set("vg.token.result", "lost")
            return (await self._load(claimed.id)).tokens.access_token
        self._metrics.token_refresh(result="ok")
        span.set("vg.token.result", "ok")
        return saved.tokens.access_token

    async def _refresh_within_grace(self, claimed: Grant) -> TokenPair:
        """Present the claimed refresh token; when the answer is lost, present the same
        token again after a jittered wait, while attempts and the retry window last."""
        deadline = self._clock.now() + self._policy.retry_window
        if claimed.refresh_claimed_until is not None:  # retry only while the claim holds
            deadline = min(deadline, claimed.refresh_claimed_until)
        attempt = 1
        while True:
            try:
                return await self._smartcar.refresh(claimed.tokens.refresh_token)
            except UpstreamUnavailable:
                wait_s = self._retry_wait_s(attempt, deadline=deadline)
                if wait_s is None:
                    raise
            self._metrics.token_refresh(result="retried")
            self._tracing.event(
                UPSTREAM_RETRY, {"vg.retry.reason": "answer_lost", "vg.retry.attempt": attempt + 1}
            )
            await self._sleep(wait_s)
            attempt += 1

    def _retry_wait_s(self, attempt: int, *, deadline: datetime) -> float | None:
        """Return how long to wait before attempt `attempt + 1`, or None: give up (no
        attempts left, or the retry would start after `deadline`)."""
        policy = self._policy
        if attempt >= policy.refresh_attempts:
            return None
        wait_s = policy.retry_backoff_s * 2.0 ** (attempt - 1) * (0.5 + self._jitter() / 2)
        if self._clock.now() + timedelta(seconds=wait_s) > deadline:
            return None
        return wait_s

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
        raise await self._refused(current)

    async def _refused(self, grant: Grant) -> GatewayError:
        """Settle the vehicles of a pair Smartcar refused (`revocation.retire_refused_pair`)
        and return the error to raise: ConnectionDisconnected when every one was revoked."""
        listed = None
        if self._listing is not None:
            listed = await self._listing.listed(grant.smartcar_user_id)
        async with self._uow() as uow:
            all_revoked = await retire_refused_pair(uow, grant, listed, now=self._clock.now())
            await uow.commit()
        if all_revoked:
            return ConnectionDisconnected(
                "the owner revoked the application's access; the owner must reconnect"
            )
        return ConnectionExpired(
            "connection expired: Smartcar rejected the refresh token (invalid_grant); the "
            "owner must reconnect"
        )

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
