"""Rate limits and the monthly allowance, all on the simulated clock."""

from __future__ import annotations

from datetime import datetime

import httpx

from clients.simulator import BucketLimit
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    Session,
    advance,
    bearer,
    client_for,
    connect,
    refresh,
    stats,
)


async def odometer(client: httpx.AsyncClient, session: Session) -> httpx.Response:
    """Read the session vehicle's odometer."""
    return await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )


async def test_vehicle_rate_limit_then_retry_after() -> None:
    """Past the burst a vehicle gets 429 VEHICLE with retry-after; after it, reads work."""
    limit = BucketLimit(capacity=3, refill_per_s=0.1)
    async with client_for(unlimited_config(vehicle_rate_limit=limit)) as http:
        session = await connect(http)
        for _ in range(3):
            assert (await odometer(http, session)).status_code == 200
        limited = await odometer(http, session)
        assert limited.status_code == 429
        body = limited.json()
        assert (body["type"], body["code"]) == ("RATE_LIMIT", "VEHICLE")
        assert body["resolution"] == {"type": "RETRY_LATER"}
        assert body["description"].startswith(
            "You have reached the throttling rate limit for this vehicle."
        )
        retry_after = int(limited.headers["retry-after"])
        assert retry_after == 10
        await advance(http, retry_after)
        assert (await odometer(http, session)).status_code == 200


async def test_vehicle_rate_limit_is_per_vehicle() -> None:
    """One vehicle's empty bucket does not limit another vehicle."""
    limit = BucketLimit(capacity=1, refill_per_s=0.01)
    async with client_for(unlimited_config(vehicle_rate_limit=limit)) as http:
        first, second = await connect(http), await connect(http)
        assert (await odometer(http, first)).status_code == 200
        assert (await odometer(http, first)).status_code == 429
        assert (await odometer(http, second)).status_code == 200


async def test_app_wide_bucket_is_smartcar_api() -> None:
    """Past the app-wide bucket every call is 429 SMARTCAR_API with retry-after."""
    limit = BucketLimit(capacity=2, refill_per_s=2 / 60)
    async with client_for(unlimited_config(app_rate_limit=limit)) as http:
        session = await connect(http)  # the vehicle list takes one token
        assert (await odometer(http, session)).status_code == 200
        limited = await odometer(http, session)
        assert limited.status_code == 429
        assert limited.json()["code"] == "SMARTCAR_API"
        assert limited.headers["retry-after"] == "30"
        await advance(http, 30)
        assert (await odometer(http, session)).status_code == 200


async def test_default_limits_are_smartcars() -> None:
    """By default the app bucket holds 120 requests, as Smartcar documents."""
    async with client_for() as http:
        config = (await http.get("/sim/config")).json()
        assert config["app_rate_limit"]["capacity"] == 120
        assert abs(config["app_rate_limit"]["refill_per_s"] - 2 / 60) < 1e-9
        assert config["monthly_request_limit"] == 500
        assert config["vehicle_rate_limit"]["capacity"] == 10


async def test_monthly_allowance_then_next_month() -> None:
    """Past the monthly allowance reads are 430 VEHICLE_REQUEST_LIMIT until the next month."""
    async with client_for(unlimited_config(monthly_request_limit=3)) as http:
        session = await connect(http)
        for _ in range(3):
            assert (await odometer(http, session)).status_code == 200
        blocked = await odometer(http, session)
        assert blocked.status_code == 430
        assert (blocked.json()["type"], blocked.json()["code"]) == (
            "BILLING",
            "VEHICLE_REQUEST_LIMIT",
        )
        now = datetime.fromisoformat((await http.get("/sim/clock")).json()["now"][:-1])
        first_of_next = datetime(now.year + now.month // 12, now.month % 12 + 1, 1)
        await advance(http, (first_of_next - now).total_seconds() + 1)
        fresh = (await refresh(http, session.refresh_token)).json()["access_token"]
        again = await http.get(
            f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=bearer(fresh)
        )
        assert again.status_code == 200
        assert (await stats(http))["billed_this_month"][session.vehicle_id] == 1


async def test_rejected_requests_are_not_billed() -> None:
    """Rate-limited, forbidden and incapable requests do not use the allowance."""
    limit = BucketLimit(capacity=1, refill_per_s=0.01)
    async with client_for(unlimited_config(vehicle_rate_limit=limit)) as http:
        session = await connect(http, sim_withhold="read_location")
        url = f"/v2.0/vehicles/{session.vehicle_id}"
        await odometer(http, session)
        await odometer(http, session)
        await http.get(f"{url}/location", headers=session.headers)
        assert (await stats(http))["billed_this_month"] == {session.vehicle_id: 1}


async def test_limits_change_at_runtime(client: httpx.AsyncClient) -> None:
    """`POST /sim/config` installs a vehicle bucket and an allowance on a running simulator."""
    session = await connect(client)
    update = {"vehicle_rate_limit": {"capacity": 1, "refill_per_s": 0.5}}
    response = await client.post("/sim/config", json=update)
    assert response.json()["vehicle_rate_limit"] == {"capacity": 1, "refill_per_s": 0.5}
    assert (await odometer(client, session)).status_code == 200
    limited = await odometer(client, session)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    await client.post("/sim/config", json={"vehicle_rate_limit": None, "monthly_request_limit": 0})
    assert (await odometer(client, session)).status_code == 430
