"""The API V3 application token: renewal window and jitter, one grant per expiry across
coroutines and replicas (on the fake store), 401 compare-and-clear, claims of dead
workers, failures held. Clocks are manual and every wait is injected."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.application_tokens import (
    ApplicationTokenPolicy,
    ApplicationTokens,
    renewal_lead,
    usable_until,
)
from gateway.core.metrics import RecordingMetrics
from gateway.core.model import ApplicationGrant, ApplicationTokenRecord
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START

CLIENT_ID = "fleet-app"
HOUR = timedelta(hours=1)


class FakeAuth:
    """Smartcar's token endpoint: hour-long tokens, counted grants, scripted failures and a
    gate that holds grants in flight."""

    def __init__(self, clock: ManualClock, *, prefix: str = "app-token") -> None:
        self.client_id = CLIENT_ID
        self.clock = clock
        self.grants = 0
        self.failures: list[errors.GatewayError] = []
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()
        self._numbers = itertools.count(1)
        self._prefix = prefix

    async def grant(self) -> ApplicationGrant:
        """Return a new token (or the next scripted failure), after the gate opens."""
        self.grants += 1
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)  # let every other caller run into the single flight
        if self.failures:
            raise self.failures.pop(0)
        now = self.clock.now()
        token = Secret(f"{self._prefix}-{next(self._numbers)}")
        return ApplicationGrant(token=token, issued_at=now, expires_at=now + HOUR)


class Replica:
    """One process's ApplicationTokens on a shared fake store; its waits advance the clock."""

    def __init__(
        self,
        uow: FakeUnitOfWorkFactory,
        clock: ManualClock,
        auth: FakeAuth,
        *,
        policy: ApplicationTokenPolicy | None = None,
        jitter: float = 0.5,
        waits_advance_clock: bool = True,
    ) -> None:
        self.clock = clock
        self.auth = auth
        self.waits: list[float] = []
        self.on_wait: Callable[[], object] = lambda: None
        self.metrics = RecordingMetrics()
        self._advance = waits_advance_clock
        self.tokens = ApplicationTokens(
            auth=auth,
            uow=uow,
            clock=clock,
            policy=policy or ApplicationTokenPolicy(),
            sleep=self._sleep,
            jitter=lambda: jitter,
            metrics=self.metrics,
        )

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.on_wait()
        if self._advance:
            self.clock.advance(seconds)
        await asyncio.sleep(0)


def one_replica(**options: object) -> tuple[Replica, FakeUnitOfWorkFactory]:
    """A replica on a fresh store, its clock at START."""
    clock = ManualClock(START)
    uow = FakeUnitOfWorkFactory()
    return Replica(uow, clock, FakeAuth(clock), **options), uow  # type: ignore[arg-type]


def stored(uow: FakeUnitOfWorkFactory) -> ApplicationTokenRecord:
    """The record as the store holds it now."""
    return uow.store.application_tokens[CLIENT_ID]


# --- the rules ------------------------------------------------------------------------------


def hour_token() -> ApplicationGrant:
    return ApplicationGrant(token=Secret("t"), issued_at=START, expires_at=START + HOUR)


@pytest.mark.parametrize(
    ("jitter", "minutes"), [(0.0, 8), (0.25, 9), (0.5, 10), (0.75, 11), (1.0, 12)]
)
def test_an_hour_token_renews_ten_minutes_before_expiry_give_or_take_two(
    jitter: float, minutes: int
) -> None:
    """The lead is 10 min moved by up to 2 min either way, linearly in the jitter."""
    assert renewal_lead(hour_token(), ApplicationTokenPolicy(), jitter) == timedelta(
        minutes=minutes
    )


def test_random_jitter_stays_within_its_bounds() -> None:
    """Over a thousand seeded draws the lead never leaves 8-12 min, and it does spread."""
    draws = random.Random(13)
    leads = {
        renewal_lead(hour_token(), ApplicationTokenPolicy(), draws.random()) for _ in range(1000)
    }
    assert min(leads) >= timedelta(minutes=8)
    assert max(leads) <= timedelta(minutes=12)
    assert max(leads) - min(leads) > timedelta(minutes=3)


def test_a_short_lived_token_is_renewed_at_half_its_life_and_used_to_its_last_quarter() -> None:
    """A 10 min token renews after 5 min, not at once; it is handed out until 1 min is left
    (its margin is capped at a quarter of its life: 2.5 min would be more)."""
    short = ApplicationGrant(
        token=Secret("t"), issued_at=START, expires_at=START + timedelta(minutes=10)
    )
    policy = ApplicationTokenPolicy()
    assert renewal_lead(short, policy, 1.0) == timedelta(minutes=5)
    assert usable_until(short, policy) == START + timedelta(minutes=9)
    tiny = ApplicationGrant(
        token=Secret("t"), issued_at=START, expires_at=START + timedelta(minutes=2)
    )
    assert usable_until(tiny, policy) == START + timedelta(seconds=90)


@pytest.mark.parametrize("jitter", [-0.1, 1.1, float("nan")])
def test_a_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    """The jitter source must return a number in [0, 1]."""
    with pytest.raises(ValueError, match="jitter"):
        renewal_lead(hour_token(), ApplicationTokenPolicy(), jitter)


@pytest.mark.parametrize(
    "changes",
    [
        {"renew_jitter": timedelta(minutes=10)},
        {"expiry_margin": timedelta(minutes=8)},
        {"claim_ttl": timedelta(0)},
        {"poll_interval_s": 0.0},
        {"wait_rounds": 0},
        {"failure_hold": timedelta(seconds=-1)},
    ],
)
def test_an_unworkable_policy_is_refused(changes: dict[str, object]) -> None:
    """A jitter as long as the lead, a margin reaching the renewal, no claim, no polls, no
    rounds or a negative hold is a ValueError naming what is wrong."""
    name = next(iter(changes))
    with pytest.raises(ValueError, match=name):
        ApplicationTokenPolicy(**changes)  # type: ignore[arg-type]


def test_a_token_never_shows_itself() -> None:
    """Neither a grant nor a stored record shows its token in a repr."""
    grant = ApplicationGrant(token=Secret("tok-visible"), issued_at=START, expires_at=START + HOUR)
    record = ApplicationTokenRecord(client_id=CLIENT_ID, grant=grant, version=3)
    assert "tok-visible" not in repr(grant) + repr(record) + str(record)


def test_a_token_must_expire_after_it_was_issued() -> None:
    """An expiry at or before the issue time is a ValueError."""
    with pytest.raises(ValueError, match="expire"):
        ApplicationGrant(token=Secret("t"), issued_at=START, expires_at=START)


# --- one process ----------------------------------------------------------------------------


async def test_the_first_call_grants_and_later_calls_use_memory() -> None:
    """One grant, stored; later calls within the token's settled time read nothing."""
    replica, uow = one_replica()
    token = await replica.tokens.current()
    assert stored(uow).grant is not None
    assert stored(uow).grant.token == token
    assert stored(uow).claimed_until is None
    opened = uow.opened
    replica.clock.advance(30 * 60)
    assert await replica.tokens.current() == token
    assert uow.opened == opened
    assert replica.auth.grants == 1
    assert replica.metrics.application_grants == ["ok"]


async def test_a_token_renews_once_its_jittered_window_opens() -> None:
    """With jitter 0.5 an hour token renews when 10 min are left: not a second earlier."""
    replica, uow = one_replica()
    first = await replica.tokens.current()
    replica.clock.advance((HOUR - timedelta(minutes=10)).total_seconds() - 1)
    assert await replica.tokens.current() == first
    replica.clock.advance(1)
    second = await replica.tokens.current()
    assert second != first
    assert replica.auth.grants == 2
    assert stored(uow).grant is not None
    assert stored(uow).grant.token == second


async def test_two_hundred_concurrent_calls_cost_one_grant() -> None:
    """200 callers at once with no token: one grant, and each of them gets its token; they
    queue on the process's lock, so none polls the store for another's claim."""
    replica, _ = one_replica()
    tokens = await asyncio.gather(*(replica.tokens.current() for _ in range(200)))
    assert replica.auth.grants == 1
    assert len(set(tokens)) == 1
    assert replica.waits == []


async def test_a_due_token_still_serves_while_its_renewal_is_in_flight() -> None:
    """Callers arriving while the renewal waits on Smartcar get the due token at once."""
    replica, _ = one_replica()
    first = await replica.tokens.current()
    replica.clock.advance((HOUR - timedelta(minutes=5)).total_seconds())
    replica.auth.gate = asyncio.Event()
    replica.auth.arrived.clear()
    renewing = asyncio.create_task(replica.tokens.current())
    await replica.auth.arrived.wait()
    assert await replica.tokens.current() == first
    replica.auth.gate.set()
    assert await renewing != first


async def test_a_failed_renewal_keeps_serving_the_token_still_valid() -> None:
    """Smartcar unreachable at renewal: the due token is returned, the claim released, the
    failure counted, and for the hold nobody asks again."""
    replica, uow = one_replica()
    first = await replica.tokens.current()
    replica.clock.advance((HOUR - timedelta(minutes=9)).total_seconds())
    replica.auth.failures = [errors.UpstreamUnavailable("Smartcar unreachable")]
    assert await replica.tokens.current() == first
    assert await replica.tokens.current() == first
    assert replica.auth.grants == 2
    assert stored(uow).claimed_until is None
    assert replica.metrics.application_grants == ["ok", "failed"]
    replica.clock.advance(5)
    assert await replica.tokens.current() != first
    assert replica.auth.grants == 3


async def test_refused_credentials_are_a_clear_error_held_for_a_while() -> None:
    """invalid_client with no token: ApplicationCredentialsRefused; callers within the hold
    get it again without a request to Smartcar; after the hold, Smartcar is asked again."""
    replica, uow = one_replica()
    refused = errors.ApplicationCredentialsRefused("client credentials refused")
    replica.auth.failures = [refused, refused]
    with pytest.raises(errors.ApplicationCredentialsRefused):
        await replica.tokens.current()
    replica.clock.advance(4)
    with pytest.raises(errors.ApplicationCredentialsRefused):
        await replica.tokens.current()
    assert replica.auth.grants == 1
    replica.clock.advance(1)
    with pytest.raises(errors.ApplicationCredentialsRefused):
        await replica.tokens.current()
    assert replica.auth.grants == 2
    assert replica.metrics.application_grants == ["refused", "refused"]
    assert stored(uow).claimed_until is None
    replica.clock.advance(5)
    assert await replica.tokens.current() is not None  # the failures ran out
    assert replica.auth.grants == 3


async def test_waiters_behind_a_failed_grant_share_its_failure() -> None:
    """Fifty callers queued behind a grant that fails: one request to Smartcar, fifty errors."""
    replica, _ = one_replica()
    replica.auth.failures = [errors.UpstreamUnavailable("Smartcar unreachable")]
    results = await asyncio.gather(
        *(replica.tokens.current() for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, errors.UpstreamUnavailable) for r in results)
    assert replica.auth.grants == 1


# --- 401: compare-and-clear -----------------------------------------------------------------


async def test_many_rejections_of_one_token_cost_one_grant() -> None:
    """200 concurrent 401s for the same token: one new grant, and every caller gets it."""
    replica, uow = one_replica()
    rejected = await replica.tokens.current()
    tokens = await asyncio.gather(*(replica.tokens.rejected(rejected) for _ in range(200)))
    assert replica.auth.grants == 2
    assert replica.waits == []
    assert set(tokens) == {tokens[0]}
    assert tokens[0] != rejected
    assert stored(uow).grant is not None
    assert stored(uow).grant.token == tokens[0]


async def test_a_rejection_of_a_replaced_token_costs_nothing() -> None:
    """A late 401 for a token already replaced returns the replacement without a grant."""
    replica, _ = one_replica()
    old = await replica.tokens.current()
    new = await replica.tokens.rejected(old)
    assert await replica.tokens.rejected(old) == new
    assert replica.auth.grants == 2


async def test_a_rejected_token_is_dropped_even_when_the_new_grant_fails() -> None:
    """A 401, then Smartcar unreachable: the refused token is gone from the store and never
    handed out again; the error is raised."""
    replica, uow = one_replica()
    rejected = await replica.tokens.current()
    replica.auth.failures = [errors.UpstreamUnavailable("Smartcar unreachable")]
    with pytest.raises(errors.UpstreamUnavailable):
        await replica.tokens.rejected(rejected)
    assert stored(uow).grant is None
    with pytest.raises(errors.UpstreamUnavailable):  # held: no token to fall back on
        await replica.tokens.current()
    replica.clock.advance(5)
    assert await replica.tokens.current() != rejected


async def test_a_cancelled_caller_does_not_cancel_the_grant_for_the_others() -> None:
    """The caller whose grant is in flight is cancelled (its deadline): the grant finishes,
    is stored, and the callers queued behind it get its token; one grant in all."""
    replica, uow = one_replica()
    replica.auth.gate = asyncio.Event()
    first = asyncio.create_task(replica.tokens.current())
    await replica.auth.arrived.wait()
    others = [asyncio.create_task(replica.tokens.current()) for _ in range(10)]
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    replica.auth.gate.set()
    tokens = await asyncio.gather(*others)
    assert len(set(tokens)) == 1
    assert replica.auth.grants == 1
    assert stored(uow).claimed_until is None


# --- several replicas on one store ----------------------------------------------------------


async def test_two_replicas_at_expiry_grant_once() -> None:
    """Two processes with their own locks and clients, 100 calls each at once on an expired
    token: one grant between them, one token for all."""
    clock = ManualClock(START)
    uow = FakeUnitOfWorkFactory()
    auth_a, auth_b = FakeAuth(clock, prefix="a"), FakeAuth(clock, prefix="b")
    a, b = Replica(uow, clock, auth_a), Replica(uow, clock, auth_b)
    await a.tokens.current()
    clock.advance(HOUR.total_seconds())
    calls = [r.tokens.current() for _ in range(100) for r in (a, b)]
    tokens = await asyncio.gather(*calls)
    assert auth_a.grants + auth_b.grants == 2
    assert len(set(tokens)) == 1


async def test_a_replica_serves_its_valid_token_while_another_renews() -> None:
    """The record is claimed by another replica's renewal: a caller whose token is due but
    valid uses it at once and waits for nothing."""
    replica, uow = one_replica()
    token = await replica.tokens.current()
    replica.clock.advance((HOUR - timedelta(minutes=9)).total_seconds())
    await claim_elsewhere(uow, replica.clock, ttl_s=30)
    assert await replica.tokens.current() == token
    assert replica.waits == []
    assert replica.auth.grants == 1


async def test_a_dead_claimants_claim_lapses_and_the_next_worker_grants() -> None:
    """Another worker claimed the first grant and died: this one waits (injected polls)
    until the 30 s claim lapses, then claims and grants; one grant, no wait past the claim."""
    replica, uow = one_replica()
    await claim_elsewhere(uow, replica.clock, ttl_s=30)
    token = await replica.tokens.current()
    assert replica.auth.grants == 1
    assert sum(replica.waits) == pytest.approx(30, abs=0.06)
    assert stored(uow).grant is not None
    assert stored(uow).grant.token == token
    assert stored(uow).claimed_until is None


async def test_a_worker_waiting_on_another_uses_the_token_it_stores() -> None:
    """Another worker claims, then stores its token while this one polls: no grant here."""
    replica, uow = one_replica()
    claimed = await claim_elsewhere(uow, replica.clock, ttl_s=30)
    theirs = Secret("their-token")
    polled = asyncio.Event()
    replica.on_wait = lambda: len(replica.waits) == 3 and polled.set()

    async def store_later() -> None:
        await polled.wait()
        now = replica.clock.now()
        grant = ApplicationGrant(token=theirs, issued_at=now, expires_at=now + HOUR)
        async with uow() as unit:
            await unit.application_tokens.store(
                CLIENT_ID, expected_version=claimed.version, grant=grant
            )
            await unit.commit()

    token, _ = await asyncio.gather(replica.tokens.current(), store_later())
    assert token == theirs
    assert replica.auth.grants == 0


async def test_a_claim_that_never_moves_ends_in_unavailable_not_a_loop() -> None:
    """Waits that do not advance the clock and a claim that never lapses: after its rounds
    the caller gets UNAVAILABLE with a retry delay, and no grant was made."""
    policy = ApplicationTokenPolicy(wait_rounds=3, poll_interval_s=1.0)
    replica, uow = one_replica(policy=policy, waits_advance_clock=False)
    await claim_elsewhere(uow, replica.clock, ttl_s=30)
    with pytest.raises(errors.UpstreamUnavailable) as failure:
        await replica.tokens.current()
    assert failure.value.retry_after_s == 1.0
    assert replica.auth.grants == 0
    assert len(replica.waits) == 3 * 30


async def claim_elsewhere(
    uow: FakeUnitOfWorkFactory, clock: ManualClock, *, ttl_s: float
) -> ApplicationTokenRecord:
    """Claim the record as another worker would (and never finish)."""
    async with uow() as unit:
        current = await unit.application_tokens.get(CLIENT_ID)
        claimed = await unit.application_tokens.claim(
            CLIENT_ID,
            expected_version=0 if current is None else current.version,
            until=clock.now() + timedelta(seconds=ttl_s),
            now=clock.now(),
        )
        await unit.commit()
    assert claimed is not None
    return claimed
