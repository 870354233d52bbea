"""SmartcarCompatibilityV2: Smartcar's Compatibility API answers as the core's values, and
each failure as the core's error, with the application's credentials meant, not an owner's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clients import smartcar as sc
from gateway.core import errors
from gateway.core.model import EndpointCapability, VehicleCompatibility
from gateway.edge.smartcar.compatibility import SmartcarCompatibilityV2
from tests.unit.smartcar.fakes import (
    CLIENT_SECRET,
    CREDENTIALS,
    ENDPOINTS,
    FakeSmartcar,
    fixed_clock,
)

VIN = "5YJ3E1EA7KF317000"


@pytest.fixture
def fake() -> FakeSmartcar:
    """A scripted Smartcar."""
    return FakeSmartcar()


@pytest.fixture
async def adapter(fake: FakeSmartcar) -> AsyncIterator[SmartcarCompatibilityV2]:
    """The adapter over the Compatibility API client over the fake."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = sc.SmartcarCompatibility(
            http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock
        )
        yield SmartcarCompatibilityV2(client=client)


async def test_an_answer_becomes_the_cores_values(
    fake: FakeSmartcar, adapter: SmartcarCompatibilityV2
) -> None:
    """Compatible, reason and every capability reach the core; the permissions are asked
    for in a stable (sorted) order."""
    fake.reply(
        200,
        json_body={
            "compatible": True,
            "reason": None,
            "capabilities": [
                {
                    "permission": "read_fuel",
                    "endpoint": "/fuel",
                    "capable": False,
                    "reason": "VEHICLE_NOT_CAPABLE",
                },
            ],
        },
    )
    answer = await adapter.check(
        VIN, country="US", permissions=frozenset({"read_fuel", "control_security"})
    )
    assert answer == VehicleCompatibility(
        compatible=True,
        capabilities=(
            EndpointCapability(
                permission="read_fuel",
                endpoint="/fuel",
                capable=False,
                reason="VEHICLE_NOT_CAPABLE",
            ),
        ),
    )
    assert fake.last.url.params["scope"] == "control_security read_fuel"


@pytest.mark.parametrize(
    ("status", "body", "expected", "extra"),
    [
        (401, {"type": "AUTHENTICATION", "code": None}, errors.ApplicationCredentialsRefused, {}),
        (403, {"type": "PERMISSION", "code": None}, errors.UpstreamRejected, {}),
        (400, {"type": "VALIDATION", "code": "PARAMETER"}, errors.UpstreamRejected, {}),
        (500, {"type": "SERVER", "code": "INTERNAL"}, errors.UpstreamUnavailable, {}),
        (
            429,
            {"type": "RATE_LIMIT", "code": "SMARTCAR_API"},
            errors.RateLimited,
            {"retry-after": "30"},
        ),
    ],
)
async def test_failures_are_the_cores_errors(
    fake: FakeSmartcar,
    adapter: SmartcarCompatibilityV2,
    status: int,
    body: dict[str, Any],
    expected: type[errors.GatewayError],
    extra: dict[str, str],
) -> None:
    """A refused client secret is the application's credentials (never a token to
    refresh), a refused feature is UpstreamRejected (never an owner's missing permission),
    5xx is unavailable and Smartcar's app-wide 429 a rate limit naming it."""
    fake.reply(
        status, json_body={**body, "description": f"nope {CLIENT_SECRET.reveal()}"}, headers=extra
    )
    with pytest.raises(expected) as failed:
        await adapter.check(VIN, country="US", permissions=frozenset({"read_vin"}))
    assert type(failed.value) is expected
    assert CLIENT_SECRET.reveal() not in failed.value.message
    if expected is errors.RateLimited:
        assert failed.value.metadata["limit"] == "smartcar_application"
        assert failed.value.retry_after_s == 30.0


async def test_an_unreadable_answer_is_unavailable(
    fake: FakeSmartcar, adapter: SmartcarCompatibilityV2
) -> None:
    """A body that is not the documented shape is UNAVAILABLE, never a crash."""
    fake.reply(200, json_body={"compatible": "maybe"})
    with pytest.raises(errors.UpstreamUnavailable):
        await adapter.check(VIN, country="US", permissions=frozenset({"read_vin"}))
