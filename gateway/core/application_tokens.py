"""The application token of API V3: one token for the whole fleet, granted once per expiry.

Smartcar's API V3 authenticates the application, not each owner: `POST /oauth2/token` with
the client credentials answers a bearer token valid one hour, without a refresh token
("request a new token when the current one expires", smartcar-v3-notes §1.1). Every
vehicle call of every replica uses the same token, so this module owns three rules:

- **When to ask.** A token is renewed before it expires, when less than `renew_before`
  (10 min) ± `renew_jitter` (2 min) of its life is left; the jitter is drawn once per
  token and process, so replicas do not all reach for a new token at the same instant.
  The lead never exceeds half the token's lifetime, so a short-lived token is not renewed
  on every call. A token in its renewal window is still handed out while a renewal runs,
  or when the renewal fails: only a token within `expiry_margin` of its end is never used.
- **Exactly one grant per expiry.** Within a process one asyncio lock makes concurrent
  callers share one grant (the grant itself runs in a task of its own, so a caller
  cancelled by its deadline does not cancel it for the others). Across replicas the
  database arbitrates, as `gateway.core.rotation` does for owners' pairs: a worker first
  *claims* the record with a compare-and-swap on its version, and only the claimant calls
  Smartcar; the others use the token they hold while it is valid, or wait (bounded,
  injected sleeps) for the version to move. A claim expires after `claim_ttl`, so a
  claimant that died delays the others that long at most (and one slower than its claim
  may cost a second grant, counted as `lost`). The token is stored encrypted beside the
  owners' tokens (`ApplicationTokenRepository`).
- **A 401 costs one new token.** `rejected(token)` is compare-and-clear: the token
  Smartcar refused is dropped from the store only if it is still the stored one, so many
  concurrent rejections of one token, in any number of replicas, cause one grant, and
  those that come late get the token that replaced it.

A grant that fails (credentials refused, Smartcar unreachable) is remembered for
`failure_hold`: callers in that time get the same error (or the still-valid token) instead
of each asking Smartcar again.

Smartcar does not say whether an older token stays valid once a newer one is issued
(smartcar-v3-notes §1.1 documents neither). Both are handled: each process keeps using the
token it knows until its own renewal point, and a process whose older token is refused
finds the newer one in the store through `rejected`, at the cost of one 401, not a grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.errors import ApplicationCredentialsRefused, GatewayError, UpstreamUnavailable
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import ApplicationGrant, ApplicationTokenRecord
from gateway.core.ports import ApplicationAuth, Clock, UnitOfWorkFactory
from gateway.core.secret import Secret
from gateway.core.tracing import APPLICATION_TOKEN_GRANT, NO_TRACING, Span, Tracing

CONTENDED_RETRY_AFTER_S = 1.0
"""The RetryInfo when other workers kept the token busy for all of `wait_rounds`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationTokenPolicy:
    """When the application token is renewed, how claims hold, how failures are held."""

    renew_before: timedelta = timedelta(minutes=10)
    """Renew a token when about this much of its life is left (third-party V3 clients
    renew 5-10 min early: smartcar-v3-notes §7)."""
    renew_jitter: timedelta = timedelta(minutes=2)
    """Give or take up to this much, drawn per token and process."""
    expiry_margin: timedelta = timedelta(minutes=1)
    """Never hand out a token with this little life left (a call takes time, clocks
    differ); at most a quarter of a short-lived token's lifetime."""
    claim_ttl: timedelta = timedelta(seconds=30)
    """How long one worker's claim on the grant holds; keep the token request's timeout
    (times the client secrets it may try) below it."""
    poll_interval_s: float = 0.05
    """How often a worker waiting on another's grant re-reads the record."""
    wait_rounds: int = 4
    """How many times a worker reads the record and tries to claim it before giving up
    with UNAVAILABLE (each wait for another worker lasts at most its claim)."""
    failure_hold: timedelta = timedelta(seconds=5)
    """After a failed grant, callers get its error this long without asking again."""

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.renew_jitter < self.renew_before:
            raise ValueError("renew_jitter must be at least 0 and less than renew_before")
        if not timedelta(0) <= self.expiry_margin < self.renew_before - self.renew_jitter:
            raise ValueError("expiry_margin must leave time between renewal and expiry")
        if self.claim_ttl <= timedelta(0) or not self.poll_interval_s > 0:
            raise ValueError("claim_ttl and poll_interval_s must be positive")
        if self.wait_rounds < 1 or self.failure_hold < timedelta(0):
            raise ValueError("wait_rounds must be at least 1 and failure_hold not negative")


# --- the rules ------------------------------------------------------------------------------


def renewal_lead(
    grant: ApplicationGrant, policy: ApplicationTokenPolicy, jitter: float
) -> timedelta:
    """How long before its expiry `grant` is renewed: `renew_before` moved by up to
    `renew_jitter` either way (`jitter` in [0, 1] maps to -1 .. +1), never more than half
    the token's lifetime."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must be in [0, 1]")
    lead = policy.renew_before + policy.renew_jitter * (2.0 * jitter - 1.0)
    return min(lead, (grant.expires_at - grant.issued_at) / 2)


def usable_until(grant: ApplicationGrant, policy: ApplicationTokenPolicy) -> datetime:
    """The last instant `grant` may be handed out for a call."""
    margin = min(policy.expiry_margin, (grant.expires_at - grant.issued_at) / 4)
    return grant.expires_at - margin


@dataclass(frozen=True, slots=True)
class _Known:
    """The token this process last saw, and when it renews and stops using it."""

    grant: ApplicationGrant
    renews_at: datetime
    usable_until: datetime

    def usable(self, now: datetime) -> bool:
        return now < self.usable_until

    def settled(self, now: datetime) -> bool:
        """Usable and not yet due for renewal."""
        return now < self.renews_at and self.usable(now)

    def serves(self, now: datetime, *, renewing: bool) -> bool:
        """Settled, or due but usable while a renewal is under way."""
        return self.settled(now) or (renewing and self.usable(now))


@dataclass(frozen=True, slots=True)
class _Failure:
    """A grant that failed, and when."""

    error: GatewayError
    at: datetime


# --- the use case ---------------------------------------------------------------------------


class ApplicationTokens:
    """Hands out the application token, granting a new one exactly once per expiry."""

    def __init__(
        self,
        *,
        auth: ApplicationAuth,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: ApplicationTokenPolicy = ApplicationTokenPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        metrics: Metrics = NO_METRICS,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`sleep` waits between reads of a record another worker claimed, and `jitter`
        returns a number in [0, 1] placing each token's renewal: both injected, so tests
        wait for nothing and know when a token renews. `tracing` records each grant."""
        self._tracing = tracing
        self._auth = auth
        self._client_id = auth.client_id
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._sleep = sleep
        self._jitter = jitter
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._known: _Known | None = None
        self._failure: _Failure | None = None
        self._granting: asyncio.Task[ApplicationGrant] | None = None

    async def current(self) -> Secret:
        """Return a valid application token, granting one only when none is valid or the
        stored one is due for renewal."""
        known = self._known
        if known is not None and known.serves(self._now(), renewing=self._lock.locked()):
            return known.grant.token
        async with self._lock:
            return await self._obtain(rejected=None)

    async def rejected(self, token: Secret) -> Secret:
        """Drop `token`, which Smartcar answered 401 to, and return another: the one that
        already replaced it, or a newly granted one."""
        if self._known is not None and self._known.grant.token == token:
            self._known = None  # hand it out no more, even while a renewal is under way
        async with self._lock:
            return await self._obtain(rejected=token)

    async def _obtain(self, *, rejected: Secret | None) -> Secret:
        """Under the process's lock: the token from memory or the store, or a new grant."""
        granting = self._granting
        if granting is not None and not granting.done():
            # Started by a caller that has gone since (its deadline): share its outcome.
            with contextlib.suppress(GatewayError):
                await asyncio.shield(granting)
        known = self._known
        if known is not None and known.grant.token != rejected and known.settled(self._now()):
            return known.grant.token  # another caller of this process just renewed it
        for _ in range(self._policy.wait_rounds):
            record = await self._load()
            refused = record.grant is not None and record.grant.token == rejected
            grant = None if refused else record.grant
            if grant is not None:
                self._remember(grant)
            current = self._known if grant is not None else None
            now = self._now()
            if current is not None and current.settled(now):
                return current.grant.token
            fallback = current.grant.token if current is not None and current.usable(now) else None
            if record.claimed_until is not None and record.claimed_until >= now:
                if fallback is not None:
                    return fallback  # another worker is renewing; the token still serves
                await self._await_change(record.version, claimed_until=record.claimed_until)
                continue
            if (failure := self._held_failure(now)) is not None:
                if fallback is not None:
                    return fallback
                raise failure.error.with_traceback(None)
            new = await self._claim_and_grant(record, drop=refused)
            if new is None:
                continue  # another worker moved the record first: look again
            if isinstance(new, GatewayError):
                if fallback is not None:
                    return fallback
                raise new.with_traceback(None)  # shared by every caller of the grant
            return new.token
        raise UpstreamUnavailable(
            "the application token is being obtained by another worker; try again",
            retry_after_s=CONTENDED_RETRY_AFTER_S,
        )

    async def _claim_and_grant(
        self, record: ApplicationTokenRecord, *, drop: bool
    ) -> ApplicationGrant | GatewayError | None:
        """Claim the record (first dropping its token if Smartcar refused it) and grant a
        token: the new grant, the grant's failure, or None when the record moved on."""
        version = record.version
        now = self._now()
        async with self._uow() as uow:
            repository = uow.application_tokens
            if drop:
                dropped = await repository.discard(self._client_id, expected_version=version)
                if dropped is None:
                    return None
                version = dropped.version
            claimed = await repository.claim(
                self._client_id,
                expected_version=version,
                until=now + self._policy.claim_ttl,
                now=now,
            )
            await uow.commit()
        if claimed is None:
            return None
        granting = asyncio.ensure_future(self._grant_and_store(claimed))
        granting.add_done_callback(_retrieve)
        self._granting = granting
        try:
            # Shielded: a caller cancelled by its deadline leaves the grant to finish for
            # the callers queued behind it, and the claim to be settled.
            return await asyncio.shield(granting)
        except GatewayError as error:
            return error

    async def _grant_and_store(self, claimed: ApplicationTokenRecord) -> ApplicationGrant:
        """Ask Smartcar for a token under our claim and store it (one span); on failure
        release the claim, remember the failure, and raise it."""
        with self._tracing.span(APPLICATION_TOKEN_GRANT) as span:
            return await self._granted_and_stored(claimed, span)

    async def _granted_and_stored(
        self, claimed: ApplicationTokenRecord, span: Span
    ) -> ApplicationGrant:
        try:
            grant = await self._auth.grant()
        except GatewayError as error:
            refused = isinstance(error, ApplicationCredentialsRefused)
            result = "refused" if refused else "failed"
            self._metrics.application_token_grant(result=result)
            span.set("vg.token.result", result)
            self._failure = _Failure(error, self._now())
            async with self._uow() as uow:
                await uow.application_tokens.release(
                    self._client_id, expected_version=claimed.version
                )
                await uow.commit()
            raise
        self._failure = None
        self._remember(grant)  # valid whatever the store says: use it even if ours is lost
        async with self._uow() as uow:
            stored = await uow.application_tokens.store(
                self._client_id, expected_version=claimed.version, grant=grant
            )
            await uow.commit()
        result = "ok" if stored is not None else "lost"
        self._metrics.application_token_grant(result=result)
        span.set("vg.token.result", result)
        return grant

    async def _await_change(self, version: int, *, claimed_until: datetime) -> None:
        """Wait, in bounded polls, until the record moves past `version` or its claim (held
        by another worker until `claimed_until`) lapses."""
        remaining_s = (claimed_until - self._now()).total_seconds()
        longest_s = self._policy.claim_ttl.total_seconds()
        polls = math.ceil(min(max(remaining_s, 0.0), longest_s) / self._policy.poll_interval_s)
        for _ in range(max(polls, 1)):
            await self._sleep(self._policy.poll_interval_s)
            if (await self._load()).version != version:
                return

    async def _load(self) -> ApplicationTokenRecord:
        """Read the stored record (version 0 without a token when there is none yet)."""
        async with self._uow.reader() as uow:
            record = await uow.application_tokens.get(self._client_id)
        return record or ApplicationTokenRecord(client_id=self._client_id, grant=None, version=0)

    def _remember(self, grant: ApplicationGrant) -> None:
        """Keep `grant` as the token of this process, drawing its renewal point once."""
        known = self._known
        if known is not None and known.grant == grant:
            return
        lead = renewal_lead(grant, self._policy, self._jitter())
        self._known = _Known(grant, grant.expires_at - lead, usable_until(grant, self._policy))

    def _held_failure(self, now: datetime) -> _Failure | None:
        """The failed grant callers still share at `now`, if any."""
        failure = self._failure
        if failure is None or now - failure.at >= self._policy.failure_hold:
            return None
        return failure

    def _now(self) -> datetime:
        return self._clock.now()


def _retrieve(task: asyncio.Task[ApplicationGrant]) -> None:
    """Mark a grant task's failure as seen: its caller may have been cancelled."""
    if not task.cancelled():
        task.exception()
