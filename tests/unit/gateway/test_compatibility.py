"""CheckCompatibility in the core: the per-permission report, and the rate limits that keep
checks behind commands, over a scripted Compatibility API."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.core import errors
from gateway.core.compatibility import ADMISSION_KEY, CompatibilityService
from gateway.core.model import Capability, EndpointCapability, VehicleCompatibility
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.ratelimit import BucketSpec, CallKind, LocalAdmission, RateLimiter, RateLimits
from gateway.core.upstream import SMARTCAR_APPLICATION_LIMIT
from gateway.edge.clock import ManualClock
from tests.instants import START

VIN = "5YJ3E1EA7KF317000"
OTHER_VINS = ("1HGCM82633A004352", "2HGCM82633A004352", "3HGCM82633A004352")
GENEROUS = RateLimits(
    vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
    application=BucketSpec(capacity=1000, refill_per_s=10.0),
)


@dataclass
class ScriptedCompatibility:
    """A CompatibilityAPI answering one canned answer (or raising one error) each call."""

    answer: VehicleCompatibility = field(
        default_factory=lambda: VehicleCompatibility(compatible=True)
    )
    error: Exception | None = None
    calls: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)

    async def check(
        self, vin: str, *, country: str, permissions: frozenset[str]
    ) -> VehicleCompatibility:
        """Record the question; answer or fail as scripted."""
        self.calls.append((vin, country, permissions))
        if self.error is not None:
            raise self.error
        return self.answer


def service(
    api: ScriptedCompatibility | None,
    *,
    limits: RateLimits = GENEROUS,
    required: frozenset[str] = frozenset({"control_security", "read_fuel"}),
    clock: ManualClock | None = None,
    cache_size: int = 10_000,
) -> tuple[CompatibilityService, LocalAdmission]:
    """A service over `api` with its own limiter, its clock at START (or `clock`)."""
    limiter = LocalAdmission(RateLimiter(limits))
    made = CompatibilityService(
        api=api,
        limiter=limiter,
        clock=clock or ManualClock(START),
        required=required,
        cache_size=cache_size,
    )
    return made, limiter


def endpoint(
    permission: str, path: str, capable: bool, reason: str | None = None
) -> EndpointCapability:
    """One endpoint capability as Smartcar lists it."""
    return EndpointCapability(permission=permission, endpoint=path, capable=capable, reason=reason)


async def test_each_permission_the_fleet_asks_for_is_judged_from_its_endpoints() -> None:
    """Capable of one endpoint is CAPABLE; of none NOT_CAPABLE with that reason; not listed
    UNKNOWN; required ones are flagged and the unsupported ones named."""
    api = ScriptedCompatibility(
        VehicleCompatibility(
            compatible=True,
            capabilities=(
                endpoint("read_battery", "/battery/capacity", False, "SMARTCAR_NOT_CAPABLE"),
                endpoint("read_battery", "/battery", True),
                endpoint("read_fuel", "/fuel", False, "VEHICLE_NOT_CAPABLE"),
                endpoint("control_security", "/security", True),
            ),
        )
    )
    made, _ = service(api)
    report = await made.check(VIN, country="US")
    assert api.calls == [(VIN, "US", REQUESTED_PERMISSIONS)]
    by_name = {p.permission: p for p in report.permissions}
    assert [p.permission for p in report.permissions] == sorted(REQUESTED_PERMISSIONS)
    assert (by_name["read_battery"].capability, by_name["read_battery"].reason) == (
        Capability.CAPABLE,
        None,
    )
    assert [e.endpoint for e in by_name["read_battery"].endpoints] == [
        "/battery",
        "/battery/capacity",
    ]
    assert (by_name["read_fuel"].capability, by_name["read_fuel"].reason) == (
        Capability.NOT_CAPABLE,
        "VEHICLE_NOT_CAPABLE",
    )
    assert by_name["read_tires"].capability is Capability.UNKNOWN
    assert by_name["control_security"].required
    assert not by_name["read_tires"].required
    assert report.unsupported_required == ("read_fuel",)
    assert (report.compatible, report.reason, report.checked_at) == (True, None, START)


async def test_an_incompatible_car_can_serve_no_permission() -> None:
    """A car Smartcar calls incompatible: every permission NOT_CAPABLE with the car's
    reason, every required one unsupported."""
    api = ScriptedCompatibility(
        VehicleCompatibility(compatible=False, reason="MAKE_NOT_COMPATIBLE")
    )
    made, _ = service(api)
    report = await made.check(VIN, country="DE")
    assert (report.compatible, report.reason, report.country) == (
        False,
        "MAKE_NOT_COMPATIBLE",
        "DE",
    )
    assert {(p.capability, p.reason) for p in report.permissions} == {
        (Capability.NOT_CAPABLE, "MAKE_NOT_COMPATIBLE")
    }
    assert report.unsupported_required == ("control_security", "read_fuel")


async def test_a_compatible_car_without_capabilities_is_unknown_per_permission() -> None:
    """Outside the US Smartcar lists no capability: each permission is UNKNOWN, and no
    required one is called unsupported."""
    made, _ = service(ScriptedCompatibility(VehicleCompatibility(compatible=True)))
    report = await made.check(VIN, country="GB")
    assert {p.capability for p in report.permissions} == {Capability.UNKNOWN}
    assert report.unsupported_required == ()


async def test_checks_share_one_bucket_and_a_refusal_asks_nothing() -> None:
    """Past the checks' own bucket a check is RateLimited (compatibility_checks, with a
    retry delay) and Smartcar is not asked; vehicles' buckets are untouched."""
    tight = RateLimits(
        vehicle_reads=BucketSpec(capacity=2, refill_per_s=1 / 15),
        application=BucketSpec(capacity=1000, refill_per_s=10.0),
    )
    api = ScriptedCompatibility()
    made, limiter = service(api, limits=tight)
    await made.check(VIN, country="US")
    await made.check(OTHER_VINS[0], country="US")
    with pytest.raises(errors.RateLimited) as refused:
        await made.check(OTHER_VINS[1], country="US")
    assert refused.value.metadata == {"limit": "compatibility_checks"}
    assert (refused.value.retry_after_s or 0) > 0
    assert len(api.calls) == 2
    await limiter.admit("car-1", CallKind.READ, now_s=START.timestamp())


async def test_checks_leave_the_app_wide_reserve_to_commands() -> None:
    """In the app-wide bucket checks are polls: they stop at the reserve kept for commands
    and reads (limit `application`), and a command still gets through."""
    limits = RateLimits(
        vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
        vehicle_commands=BucketSpec(capacity=100, refill_per_s=1.0),
        application=BucketSpec(capacity=4, refill_per_s=1 / 60),
        poll_reserve=0.5,
    )
    made, limiter = service(ScriptedCompatibility(), limits=limits)
    await made.check(VIN, country="US")
    await made.check(OTHER_VINS[0], country="US")
    with pytest.raises(errors.RateLimited) as refused:
        await made.check(OTHER_VINS[1], country="US")
    assert refused.value.metadata == {"limit": "application"}
    await limiter.admit("car-1", CallKind.COMMAND, now_s=START.timestamp())


async def test_smartcars_app_wide_429_cools_every_call_down() -> None:
    """Smartcar's app-wide 429 on a check is re-raised and cools the application down:
    the next check, and a command, are refused without asking Smartcar."""
    limited = errors.RateLimited(
        "Smartcar: RATE_LIMIT:SMARTCAR_API",
        metadata={"limit": SMARTCAR_APPLICATION_LIMIT},
        retry_after_s=30.0,
    )
    api = ScriptedCompatibility(error=limited)
    made, limiter = service(api)
    with pytest.raises(errors.RateLimited):
        await made.check(VIN, country="US")
    api.error = None
    with pytest.raises(errors.RateLimited) as cooling:
        await made.check(VIN, country="US")
    assert cooling.value.metadata["limit"] == "application_cooldown"
    with pytest.raises(errors.RateLimited):
        await limiter.admit("car-1", CallKind.COMMAND, now_s=START.timestamp())
    assert len(api.calls) == 1


async def test_another_429_cools_only_the_checks_down() -> None:
    """A 429 that is not the application's cools down the checks' key alone."""
    limited = errors.RateLimited("Smartcar: RATE_LIMIT", metadata={"limit": "smartcar_vehicle"})
    made, limiter = service(ScriptedCompatibility(error=limited))
    with pytest.raises(errors.RateLimited):
        await made.check(VIN, country="US")
    with pytest.raises(errors.RateLimited) as cooling:
        await limiter.admit(ADMISSION_KEY, CallKind.POLL, now_s=START.timestamp())
    assert cooling.value.metadata["limit"] == "vehicle_cooldown"
    await limiter.admit("car-1", CallKind.COMMAND, now_s=START.timestamp())


async def test_without_a_compatibility_api_checks_are_unavailable() -> None:
    """A gateway built without the Compatibility API says so: UNAVAILABLE, not a crash."""
    made, _ = service(None)
    with pytest.raises(errors.UpstreamUnavailable):
        await made.check(VIN, country="US")


async def test_an_answer_is_kept_for_a_day_per_vin_and_country() -> None:
    """The same car asked again within a day is answered from the kept report (its
    `checked_at` unchanged) without asking Smartcar or taking a rate-limit token; another
    country is another question; after a day Smartcar is asked again."""
    tight = RateLimits(
        vehicle_reads=BucketSpec(capacity=2, refill_per_s=1 / (30 * 86_400)),
        application=BucketSpec(capacity=1000, refill_per_s=10.0),
    )
    api = ScriptedCompatibility()
    clock = ManualClock(START)
    made, _ = service(api, limits=tight, clock=clock)
    first = await made.check(VIN, country="US")
    clock.advance(3600)
    again = await made.check(VIN, country="US")
    assert again == first
    assert again.checked_at == START
    await made.check(VIN, country="CA")
    assert [(vin, country) for vin, country, _ in api.calls] == [(VIN, "US"), (VIN, "CA")]
    clock.advance(86_400 - 3600)
    with pytest.raises(errors.RateLimited):  # asked again: the two tokens are spent
        await made.check(VIN, country="US")


async def test_the_kept_answers_are_bounded_oldest_dropped_first() -> None:
    """Past `cache_size` reports the oldest checked is dropped and asked again."""
    api = ScriptedCompatibility()
    made, _ = service(api, cache_size=2)
    for vin in (VIN, *OTHER_VINS[:2]):
        await made.check(vin, country="US")
    await made.check(OTHER_VINS[1], country="US")
    await made.check(VIN, country="US")
    assert [vin for vin, _, _ in api.calls] == [VIN, *OTHER_VINS[:2], VIN]
