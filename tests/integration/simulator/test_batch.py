"""`POST /vehicles/{id}/batch`: per-path answers and errors, billing per path, one stat."""

from __future__ import annotations

import httpx

from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    Session,
    client_for,
    connect,
    connect_powertrain,
    stats,
)


async def batch(client: httpx.AsyncClient, session: Session, *paths: str) -> httpx.Response:
    """Send a batch of GET paths for the session's vehicle."""
    return await client.post(
        f"/v2.0/vehicles/{session.vehicle_id}/batch",
        json={"requests": [{"path": path} for path in paths]},
        headers=session.headers,
    )


async def test_batch_answers_each_path_in_order(client: httpx.AsyncClient) -> None:
    """Items come back in order with path, code, body and lowercase sc-* headers."""
    session = await connect_powertrain(client, "BEV")
    response = await batch(client, session, "/odometer", "/battery", "/", "/security")
    assert response.status_code == 200
    items = response.json()["responses"]
    assert [item["path"] for item in items] == ["/odometer", "/battery", "/", "/security"]
    assert all(item["code"] == 200 for item in items)
    odometer = items[0]
    assert set(odometer["body"]) == {"distance"}
    assert set(odometer["headers"]) == {"sc-data-age", "sc-fetched-at", "sc-unit-system"}
    assert items[2]["body"]["id"] == session.vehicle_id
    assert items[2]["headers"] == {"sc-unit-system": "metric"}


async def test_batch_errors_are_per_path(client: httpx.AsyncClient) -> None:
    """Unknown paths, missing capabilities and permissions fail only their own item."""
    session = await connect_powertrain(client, "BEV", sim_withhold="read_location")
    response = await batch(client, session, "/fuel", "/nope", "/location", "/odometer")
    items = response.json()["responses"]
    assert [item["code"] for item in items] == [501, 404, 403, 200]
    assert items[0]["body"]["code"] == "VEHICLE_NOT_CAPABLE"
    assert items[1]["body"]["type"] == "RESOURCE_NOT_FOUND"
    assert items[2]["body"]["type"] == "PERMISSION"
    assert all("headers" not in item for item in items[:3])
    assert items[0]["body"]["requestId"] == response.headers["sc-request-id"]


async def test_batch_counts_once_and_bills_per_path(client: httpx.AsyncClient) -> None:
    """A batch is one request in stats and one bill per path in the allowance."""
    session = await connect(client)
    await batch(client, session, "/odometer", "/location", "/security")
    counters = await stats(client)
    assert counters["requests"]["by_endpoint"]["batch"] == 1
    assert "odometer" not in counters["requests"]["by_endpoint"]
    assert counters["requests"]["batch_paths"] == {"odometer": 1, "location": 1, "security": 1}
    assert counters["requests"]["by_vehicle"][session.vehicle_id] == 1
    assert counters["billed_this_month"][session.vehicle_id] == 3


async def test_batch_over_the_allowance_answers_430_per_path() -> None:
    """Paths beyond the monthly allowance get 430 items; an exhausted allowance 430s it all."""
    async with client_for(unlimited_config(monthly_request_limit=2)) as http:
        session = await connect(http)
        first = await batch(http, session, "/odometer", "/location", "/security")
        codes = [item["code"] for item in first.json()["responses"]]
        assert codes == [200, 200, 430]
        assert first.json()["responses"][2]["body"]["code"] == "VEHICLE_REQUEST_LIMIT"
        second = await batch(http, session, "/odometer")
        assert second.status_code == 430
        assert second.json()["type"] == "BILLING"


async def test_batch_of_a_sleeping_car(client: httpx.AsyncClient) -> None:
    """Car data items are 409 ASLEEP while attributes and VIN still answer."""
    session = await connect(client)
    await client.post(f"/sim/vehicles/{session.vehicle_id}/sleep", json={"asleep": True})
    items = (await batch(client, session, "/odometer", "/vin", "/")).json()["responses"]
    assert [item["code"] for item in items] == [409, 200, 200]
    assert items[0]["body"]["resolution"] == {"type": None}


async def test_batch_item_rate_limit_fault_carries_retry_after(client: httpx.AsyncClient) -> None:
    """A rate_limit fault on one path yields a 429 item with a lowercase retry-after header."""
    session = await connect(client)
    await client.post(
        "/sim/faults", json={"kind": "rate_limit", "path": "/odometer", "retry_after_s": 42}
    )
    items = (await batch(client, session, "/odometer", "/location")).json()["responses"]
    assert items[0]["code"] == 429
    assert items[0]["headers"] == {"retry-after": "42"}
    assert items[0]["body"]["code"] == "VEHICLE"
    assert items[1]["code"] == 200


async def test_malformed_batches_are_400(client: httpx.AsyncClient) -> None:
    """A batch without a non-empty list of paths is 400 VALIDATION."""
    session = await connect(client)
    url = f"/v2.0/vehicles/{session.vehicle_id}/batch"
    for body in ({}, {"requests": []}, {"requests": [{"path": 3}]}, {"requests": "odometer"}):
        response = await client.post(url, json=body, headers=session.headers)
        assert response.status_code == 400, body
        assert response.json()["type"] == "VALIDATION"
