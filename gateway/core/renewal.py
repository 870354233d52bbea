"""Refresh-token renewal: pairs are renewed well before their 60 days run out.

A pair is due when its refresh token has less than `window` + its own jitter left; with the
defaults that is between day 40 and day 45 of its 60, spread per pair (the jitter is derived
from the grant id, so it is stable across runs and replicas) so a fleet connected on one
day does not renew in one burst. Renewal goes through the rotator's exactly-once path, so it
never races an on-demand refresh of the same pair.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.errors import GatewayError
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import Grant
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.rotation import TokenRotator

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalPolicy:
    """When a refresh token is renewed: `window` (+ up to `jitter`) before it expires."""

    window: timedelta = timedelta(days=15)
    jitter: timedelta = timedelta(days=5)
    batch_size: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalReport:
    """What one renewal pass did."""

    renewed: int = 0
    failed: int = 0


class TokenRenewal:
    """Finds pairs due for renewal and renews them."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        rotator: TokenRotator,
        clock: Clock,
        policy: RenewalPolicy = RenewalPolicy(),
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._metrics = metrics
        self._uow = uow
        self._rotator = rotator
        self._clock = clock
        self._policy = policy

    def due(self, grant: Grant) -> bool:
        """Tell whether the grant's refresh token is inside its (jittered) renewal window."""
        left = grant.tokens.refresh_expires_at - self._clock.now()
        return left <= self._policy.window + self._jitter(grant.id)

    async def run_once(self) -> RenewalReport:
        """Renew every pair that is due (up to one batch); report how it went."""
        horizon = self._clock.now() + self._policy.window + self._policy.jitter
        async with self._uow() as uow:
            candidates = await uow.grants.due_for_renewal(
                refresh_expires_before=horizon, limit=self._policy.batch_size
            )
        renewed = failed = 0
        for grant in candidates:
            if not self.due(grant):
                continue
            try:
                await self._rotator.renew(grant.id, seen=grant)
            except GatewayError as error:  # EXPIRED is recorded by the rotator itself
                failed += 1
                _log.warning("token renewal failed: %s", error.reason, extra={"grant": grant.id})
            else:
                renewed += 1
        self._metrics.renewal(renewed=renewed, failed=failed)
        return RenewalReport(renewed=renewed, failed=failed)

    def _jitter(self, grant_id: str) -> timedelta:
        digest = hashlib.sha256(grant_id.encode()).digest()
        fraction = int.from_bytes(digest[:4], "big") / 2**32
        return self._policy.jitter * fraction
