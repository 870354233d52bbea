"""The v2 adapter holds batch values to the gateway's bounds, as V3 reads and webhooks are:
a value outside them, or a time too far ahead, is UNAVAILABLE with the reason; an
implausible optional part is left out (gateway.edge.smartcar.adapter, .values)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from clients import smartcar as sc
from gateway.core.model import (
    Availability,
    Fuel,
    Odometer,
    SmartcarAccess,
    TelemetryField,
)
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar.adapter import SmartcarV2
from gateway.edge.smartcar.values import IMPLAUSIBLE
from tests.unit.smartcar.fakes import (
    ACCESS_TOKEN,
    CREDENTIALS,
    ENDPOINTS,
    NOW,
    VEHICLE_ID,
    FakeSmartcar,
    fixed_clock,
)

ACCESS = SmartcarAccess.v2(Secret(ACCESS_TOKEN.reveal()))


@pytest.fixture
def fake() -> FakeSmartcar:
    """A fresh scripted Smartcar."""
    return FakeSmartcar()


@pytest.fixture
async def adapter(fake: FakeSmartcar) -> AsyncIterator[SmartcarV2]:
    """The v2 adapter on the scripted Smartcar, its clock at the fake's NOW."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield SmartcarV2(
            auth=sc.SmartcarAuth(
                http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock
            ),
            vehicles=sc.SmartcarVehicles(http=http, endpoints=ENDPOINTS, clock=fixed_clock),
            clock=ManualClock(NOW),
        )


def item(path: str, body: dict[str, Any], *, recorded: str) -> dict[str, Any]:
    """One successful batch item, recorded at `recorded` (ISO-8601)."""
    return {
        "path": path,
        "body": body,
        "code": 200,
        "headers": {"sc-data-age": recorded, "sc-unit-system": "metric"},
    }


async def read(fake: FakeSmartcar, adapter: SmartcarV2, *items: dict[str, Any]) -> Any:
    fake.reply(200, json_body={"responses": list(items)})
    fields = frozenset({TelemetryField.ODOMETER, TelemetryField.FUEL})
    return (await adapter.read(ACCESS, VEHICLE_ID, fields)).results


async def test_an_odometer_past_the_bounds_is_unavailable_with_the_reason(
    fake: FakeSmartcar, adapter: SmartcarV2
) -> None:
    """An odometer of 20 million km is not recorded: UNAVAILABLE, IMPLAUSIBLE_VALUE, saying
    which path and which bound."""
    results = await read(
        fake, adapter, item("/odometer", {"distance": 2e7}, recorded="2025-05-09T16:00:00Z")
    )
    odometer = results[TelemetryField.ODOMETER]
    assert odometer.availability is Availability.UNAVAILABLE
    assert odometer.failure is not None
    assert odometer.failure.type == IMPLAUSIBLE
    assert (odometer.failure.description or "").startswith("/odometer: distance 2e+07 km")


async def test_a_time_an_hour_ahead_of_the_answer_is_unavailable(
    fake: FakeSmartcar, adapter: SmartcarV2
) -> None:
    """A value dated two hours after the answer arrived would hide every later reading: it
    is refused, naming the header it came from."""
    ahead = (NOW + timedelta(hours=2)).isoformat()
    results = await read(fake, adapter, item("/odometer", {"distance": 100}, recorded=ahead))
    failure = results[TelemetryField.ODOMETER].failure
    assert failure is not None
    assert "sc-data-age" in (failure.description or "")


async def test_an_implausible_fuel_amount_is_left_out_and_the_rest_kept(
    fake: FakeSmartcar, adapter: SmartcarV2
) -> None:
    """A fuel amount of 50,000 l is dropped; the percentage and the range stay, and a
    plausible odometer beside it is recorded with its time."""
    results = await read(
        fake,
        adapter,
        item("/odometer", {"distance": 1234.5}, recorded="2025-05-09T16:00:00Z"),
        item(
            "/fuel",
            {"percentRemaining": 0.5, "amountRemaining": 50000, "range": 400},
            recorded="2025-05-09T16:00:00Z",
        ),
    )
    assert results[TelemetryField.ODOMETER].value == Odometer(distance_km=1234.5)
    assert results[TelemetryField.ODOMETER].recorded_at == NOW - timedelta(hours=1)
    assert results[TelemetryField.FUEL].value == Fuel(
        percent_remaining=50.0, amount_remaining_l=None, range_km=400.0
    )
