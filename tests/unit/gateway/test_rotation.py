"""Token rotation when Smartcar's answer to a refresh is lost: the same refresh token is
presented again inside Smartcar's 60 s reuse grace, a bounded number of times, with
jittered waits that are injected (nothing here really waits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core import errors
from gateway.core.model import Grant
from gateway.core.ports import RefreshRejected
from gateway.core.rotation import RotationPolicy, TokenRotator
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LOST = errors.UpstreamUnavailable("Smartcar unreachable: ReadError: connection reset")


class Rig:
    """A rotator over fakes whose waits advance the manual clock and are recorded."""

    def __init__(self, policy: RotationPolicy | None = None, jitter: float = 0.5) -> None:
        self.clock = ManualClock(START)
        self.smartcar = FakeSmartcar(clock=self.clock)
        self.smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352"))
        self.uow = FakeUnitOfWorkFactory()
        self.waits: list[float] = []
        self.rotator = TokenRotator(
            uow=self.uow,
            smartcar=self.smartcar,
            clock=self.clock,
            policy=policy or RotationPolicy(),
            sleep=self._sleep,
            jitter=lambda: jitter,
        )

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)

    async def expired_grant(self) -> Grant:
        """Store a grant for the car and age it past its access token's expiry."""
        code = self.smartcar.issue_code("owner-1", ["sc-1"])
        pair = await self.smartcar.exchange_code(code)
        grant = Grant(id="g1", smartcar_user_id="owner-1", tokens=pair, version=1)
        async with self.uow() as uow:
            await uow.grants.add(grant)
            await uow.commit()
        self.clock.advance(3 * 3600)
        return grant

    def stored(self) -> Grant:
        """Return the grant as stored now."""
        return self.uow.store.grants["g1"]


async def test_a_lost_refresh_answer_is_retried_with_the_same_refresh_token() -> None:
    """The first refresh spends the token but its answer is lost: the rotator presents the
    same token again (inside the grace), stores the pair it gets, and hands out its token."""
    rig = Rig()
    grant = await rig.expired_grant()
    rig.smartcar.lose("refresh", LOST)
    token = await rig.rotator.access_token("g1")
    spent = grant.tokens.refresh_token.reveal()
    assert rig.smartcar.presented_refresh_tokens == [spent, spent]
    assert rig.waits == [0.75]  # 1 s backoff x (0.5 + jitter 0.5 / 2)
    assert rig.stored().tokens.access_token == token
    assert rig.stored().tokens.refresh_token.reveal() != spent
    assert rig.stored().refresh_claimed_until is None


async def test_retries_are_bounded_and_jittered_then_the_claim_is_released() -> None:
    """Every answer lost: `refresh_attempts` presentations with doubling jittered waits, then
    UNAVAILABLE; the pair is kept (nothing proved it dead) and the claim is released."""
    rig = Rig(RotationPolicy(refresh_attempts=4, retry_backoff_s=1.0), jitter=1.0)
    grant = await rig.expired_grant()
    rig.smartcar.lose("refresh", *[LOST] * 10)
    with pytest.raises(errors.UpstreamUnavailable):
        await rig.rotator.access_token("g1")
    assert rig.smartcar.calls["refresh"] == 4
    assert rig.waits == [1.0, 2.0, 4.0]
    assert rig.stored().tokens == grant.tokens
    assert rig.stored().refresh_claimed_until is None


async def test_no_retry_starts_after_the_retry_window() -> None:
    """With waits that would carry a retry past `retry_window`, the rotator stops early,
    so a spent token is never presented near the end of Smartcar's 60 s grace."""
    policy = RotationPolicy(
        refresh_attempts=10, retry_backoff_s=4.0, retry_window=timedelta(seconds=20)
    )
    rig = Rig(policy, jitter=1.0)
    await rig.expired_grant()
    rig.smartcar.lose("refresh", *[LOST] * 10)
    with pytest.raises(errors.UpstreamUnavailable):
        await rig.rotator.access_token("g1")
    assert rig.waits == [4.0, 8.0]  # a third wait (16 s) would start a retry at 28 s
    assert rig.smartcar.calls["refresh"] == 3


async def test_the_retry_window_never_outlasts_the_claim() -> None:
    """A claim shorter than the retry window bounds the retries: no retry starts once
    another replica may have claimed the pair."""
    policy = RotationPolicy(claim_ttl=timedelta(seconds=2), retry_backoff_s=1.0)
    rig = Rig(policy, jitter=1.0)
    await rig.expired_grant()
    rig.smartcar.lose("refresh", *[LOST] * 10)
    with pytest.raises(errors.UpstreamUnavailable):
        await rig.rotator.access_token("g1")
    assert rig.waits == [1.0]


async def test_a_refused_refresh_is_not_retried_and_only_invalid_grant_expires() -> None:
    """A refusal that is no lost answer (invalid_client) is raised at once and keeps the
    pair; invalid_grant expires it."""
    rig = Rig()
    await rig.expired_grant()
    rig.smartcar.fail("refresh", errors.UpstreamRejected("invalid_client"))
    with pytest.raises(errors.UpstreamRejected):
        await rig.rotator.access_token("g1")
    assert rig.smartcar.calls["refresh"] == 1
    assert rig.waits == []
    assert "g1" in rig.uow.store.grants
    rig.smartcar.fail("refresh", RefreshRejected())
    with pytest.raises(errors.ConnectionExpired):
        await rig.rotator.access_token("g1")
    assert "g1" not in rig.uow.store.grants


def test_a_retry_window_reaching_smartcars_grace_is_refused() -> None:
    """The policy refuses a retry window as long as Smartcar's 60 s reuse grace."""
    with pytest.raises(ValueError, match="retry_window"):
        RotationPolicy(retry_window=timedelta(seconds=60))
