"""CheckCompatibility: whether a car can be connected, asked of Smartcar before an owner is
sent to Connect.

The gateway asks Smartcar's Compatibility API (`ports.CompatibilityAPI`) about every
permission it asks owners for, and answers per permission (`report`):

- CAPABLE when Smartcar says the car is likely capable of at least one endpoint the
  permission authorises (an EV capable of `/battery` but not of `/battery/capacity` can
  serve `read_battery`);
- NOT_CAPABLE when it is capable of none of them (with the first such endpoint's reason),
  or when the car is not compatible at all (with the car's reason: Smartcar then lists no
  capability);
- UNKNOWN when Smartcar listed no endpoint for it: it checks capabilities only "for
  vehicles sold in the United States".

Permissions Connect marks `required:` are flagged; the report lists those the car cannot
serve, the cars that would connect and still be of no use to the fleet.

Cost and limits. A check reaches no vehicle, so nothing of any car's monthly allowance is
spent (Smartcar bills "successful API requests that perform actions on or pull data from
vehicles"); it still counts against Smartcar's app-wide limit. So checks are admitted like
the scheduler's polls, behind commands and reads: all checks share one bucket the size of a
vehicle's read bucket (`ADMISSION_KEY`), and in the app-wide bucket they only take what
leaves the reserve kept for commands and interactive reads. A refused check is
RateLimited (limit `compatibility_checks` or `application`) and asks Smartcar nothing;
Smartcar's own app-wide 429 cools every call down, as for any request.

Answers are kept for `cache_ttl` (a day) per VIN and country, at most `cache_size` of them
(the oldest checked dropped first): what a model can do does not change within a day, and
an operator checking the same car again, or a script checking a list twice, should not
spend the app-wide limit on it. A kept report says when Smartcar was asked (`checked_at`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta

from gateway.core.errors import RateLimited, UpstreamUnavailable
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import (
    Capability,
    CompatibilityReport,
    EndpointCapability,
    PermissionCompatibility,
    VehicleCompatibility,
)
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.ports import Clock, CompatibilityAPI
from gateway.core.ratelimit import Admission, CallKind
from gateway.core.upstream import DEFAULT_COOLDOWN_S, SMARTCAR_APPLICATION_LIMIT

ADMISSION_KEY = "#compatibility"
"""The rate limiter's key for every check (a fleet vehicle id never starts with `#`)."""
LIMIT = "compatibility_checks"
"""The `limit` a RateLimited names when the checks' own bucket refused one."""


class CompatibilityService:
    """CheckCompatibility over Smartcar's Compatibility API, within the rate limits."""

    def __init__(
        self,
        *,
        api: CompatibilityAPI | None,
        limiter: Admission,
        clock: Clock,
        required: frozenset[str],
        permissions: frozenset[str] = REQUESTED_PERMISSIONS,
        metrics: Metrics = NO_METRICS,
        cache_ttl: timedelta = timedelta(days=1),
        cache_size: int = 10_000,
    ) -> None:
        self._api = api
        self._limiter = limiter
        self._clock = clock
        self._required = required
        self._permissions = permissions
        self._metrics = metrics
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._answers: OrderedDict[tuple[str, str], CompatibilityReport] = OrderedDict()
        """Reports by (VIN, country), oldest checked first."""

    async def check(self, vin: str, *, country: str) -> CompatibilityReport:
        """Ask Smartcar about the car with `vin` registered in `country` (both validated,
        upper case) and report per permission."""
        if self._api is None:
            raise UpstreamUnavailable("this gateway has no Smartcar Compatibility API configured")
        kept = self._kept(vin, country)
        if kept is not None:
            return kept
        await self._admit()
        try:
            answer = await self._api.check(vin, country=country, permissions=self._permissions)
        except RateLimited as limited:
            await self._cool_down(limited)
            raise
        checked = report(
            vin=vin,
            country=country,
            answer=answer,
            permissions=self._permissions,
            required=self._required,
            at=self._clock.now(),
        )
        self._keep(checked)
        return checked

    def _kept(self, vin: str, country: str) -> CompatibilityReport | None:
        """The report kept for this car, unless it is older than the cache's time to live."""
        kept = self._answers.get((vin, country))
        if kept is not None and self._clock.now() - kept.checked_at < self._cache_ttl:
            return kept
        return None

    def _keep(self, checked: CompatibilityReport) -> None:
        """Keep a fresh report, dropping the oldest past `cache_size`."""
        key = (checked.vin, checked.country)
        self._answers.pop(key, None)
        self._answers[key] = checked
        while len(self._answers) > self._cache_size:
            self._answers.popitem(last=False)

    async def _admit(self) -> None:
        """Take a token for one check, or raise RateLimited naming the checks' limit."""
        try:
            await self._limiter.admit(
                ADMISSION_KEY, CallKind.POLL, now_s=self._clock.now().timestamp()
            )
        except RateLimited as refused:
            limit = str(refused.metadata.get("limit", ""))
            if not limit.startswith("application"):
                limit = LIMIT
            self._metrics.rate_limited(limit=limit)
            wait = refused.retry_after_s or 0.0
            raise RateLimited(
                f"rate limit '{limit}' reached for compatibility checks; retry in {wait:.3f} s",
                metadata={"limit": limit},
                retry_after_s=refused.retry_after_s,
            ) from None

    async def _cool_down(self, limited: RateLimited) -> None:
        """Honour Smartcar's 429: the whole application's when it said so, else the checks'."""
        now_s = self._clock.now().timestamp()
        until_s = now_s + (limited.retry_after_s or DEFAULT_COOLDOWN_S)
        self._metrics.rate_limited(limit=str(limited.metadata.get("limit", "smartcar")))
        if limited.metadata.get("limit") == SMARTCAR_APPLICATION_LIMIT:
            await self._limiter.cool_down_application(until_s=until_s, now_s=now_s)
        else:
            await self._limiter.cool_down(ADMISSION_KEY, until_s=until_s, now_s=now_s)


def report(
    *,
    vin: str,
    country: str,
    answer: VehicleCompatibility,
    permissions: Iterable[str],
    required: frozenset[str],
    at: datetime,
) -> CompatibilityReport:
    """Turn Smartcar's answer into the per-permission report (see the module docstring)."""
    return CompatibilityReport(
        vin=vin,
        country=country,
        compatible=answer.compatible,
        reason=None if answer.compatible else answer.reason,
        permissions=tuple(
            _permission(name, answer, required=name in required) for name in sorted(permissions)
        ),
        checked_at=at,
    )


def _permission(
    name: str, answer: VehicleCompatibility, *, required: bool
) -> PermissionCompatibility:
    """Judge one permission from the endpoints Smartcar listed for it."""
    endpoints = tuple(
        sorted(
            (c for c in answer.capabilities if c.permission == name),
            key=lambda c: c.endpoint,
        )
    )
    capability, reason = _verdict(answer, endpoints)
    return PermissionCompatibility(
        permission=name,
        capability=capability,
        reason=reason,
        required=required,
        endpoints=endpoints,
    )


def _verdict(
    answer: VehicleCompatibility, endpoints: tuple[EndpointCapability, ...]
) -> tuple[Capability, str | None]:
    """Return the permission's capability and why not."""
    if not answer.compatible:
        return Capability.NOT_CAPABLE, answer.reason
    if not endpoints:
        return Capability.UNKNOWN, None
    if any(e.capable for e in endpoints):
        return Capability.CAPABLE, None
    return Capability.NOT_CAPABLE, next((e.reason for e in endpoints if e.reason), None)
