"""Whatever a client sends, the simulator answers JSON errors, never a traceback."""

from __future__ import annotations

import httpx
import pytest

from clients.simulator import RunningSimulator
from tests.integration.simulator.flows import connect

AUTH = "AUTHENTICATION"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error_type"),
    [
        ("GET", "/nowhere", {}, 404, "RESOURCE_NOT_FOUND"),
        ("GET", "/v1.0/vehicles", {}, 404, "RESOURCE_NOT_FOUND"),
        ("GET", "/v4/vehicles/abc/signals", {}, 404, "RESOURCE_NOT_FOUND"),
        ("GET", "/v2.0/teleport", {}, 404, "RESOURCE_NOT_FOUND"),
        ("GET", "/v2.0/user", {}, 401, "AUTHENTICATION"),
        ("GET", "/v2.0/user", {"headers": {"Authorization": "Bearer nope"}}, 401, AUTH),
        ("GET", "/v2.0/user", {"headers": {"Authorization": "Basic Zm9vOmJhcg=="}}, 401, AUTH),
        ("GET", "/v2.0/vehicles/abc/odometer", {}, 401, "AUTHENTICATION"),
        ("PUT", "/v2.0/vehicles/abc/odometer", {}, 404, "RESOURCE_NOT_FOUND"),
        ("POST", "/v2.0/vehicles/abc/batch", {"content": b"\xff\xfe"}, 401, "AUTHENTICATION"),
    ],
)
async def test_api_errors_are_smartcar_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    error_type: str,
) -> None:
    """Unknown paths, versions and credentials get v2 error bodies with a request id."""
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == error_type
    assert body["statusCode"] == status
    assert body["requestId"] == response.headers["sc-request-id"]


async def test_versions_and_paths_are_told_apart(client: httpx.AsyncClient) -> None:
    """Another API version is RESOURCE_NOT_FOUND:VERSION, an unknown path :PATH."""
    version = await client.get("/v1.0/vehicles")
    path = await client.get("/v2.0/teleport")
    assert version.json()["code"] == "VERSION"
    assert path.json()["code"] == "PATH"


async def test_bad_query_and_bodies_of_a_connected_vehicle(client: httpx.AsyncClient) -> None:
    """Bad paging and undecodable bodies on a real vehicle are 400 VALIDATION."""
    session = await connect(client)
    base = f"/v2.0/vehicles/{session.vehicle_id}"
    bad_paging = await client.get(
        f"{base}/permissions", params={"limit": "many"}, headers=session.headers
    )
    assert bad_paging.status_code == 400
    assert bad_paging.json()["code"] == "PARAMETER"
    garbage = await client.post(f"{base}/batch", content=b"\xff\xfe", headers=session.headers)
    assert garbage.status_code == 400
    assert garbage.json()["type"] == "VALIDATION"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/sim/clock", {"advance_seconds": -5}, 400, "advance_seconds"),
        ("POST", "/sim/clock", {"advance_seconds": "soon"}, 400, "advance_seconds"),
        ("POST", "/sim/config", {"read_latency_s": -1}, 400, "read_latency_s"),
        ("POST", "/sim/config", {"warp_drive": True}, 400, "warp_drive"),
        (
            "POST",
            "/sim/config",
            {"app_rate_limit": {"capacity": 0}},
            400,
            "app_rate_limit.capacity",
        ),
        ("POST", "/sim/config", {"monthly_request_limit": "lots"}, 400, "monthly_request_limit"),
        ("POST", "/sim/vehicles/nope/sleep", {"asleep": True}, 404, "vehicle_id"),
        ("POST", "/sim/faults", [1, 2], 400, "body"),
    ],
)
async def test_control_errors_name_the_field(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int, field: str
) -> None:
    """Invalid control input is 400 (or 404) JSON naming the offending field."""
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["field"] == field


async def test_control_rejects_non_json(client: httpx.AsyncClient) -> None:
    """A control body that is not JSON is 400 naming the body."""
    response = await client.post("/sim/clock", content=b"advance please")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_unknown_control_and_oauth_paths_are_json_404(client: httpx.AsyncClient) -> None:
    """Unknown `/sim/` and `/oauth/` paths answer JSON 404s in their own formats."""
    control = await client.get("/sim/teleport")
    oauth = await client.get("/oauth/teleport")
    assert control.status_code == oauth.status_code == 404
    assert control.json()["error"] == "not_found"
    assert oauth.json()["error"] == "invalid_request"


async def test_unexpected_failures_are_server_internal(
    sim: RunningSimulator, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a handler is 500 SERVER:INTERNAL JSON, not a traceback page."""
    session = await connect(client)

    def explode(vehicle_id: str) -> None:
        """Stand in for a broken garage."""
        raise RuntimeError("boom")

    monkeypatch.setattr(sim.world.garage, "get", explode)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )
    assert response.status_code == 500
    assert (response.json()["type"], response.json()["code"]) == ("SERVER", "INTERNAL")
    assert "Traceback" not in response.text
    assert "boom" not in response.text


async def test_oversized_bodies_are_json_errors(client: httpx.AsyncClient) -> None:
    """A body over the server's size cap is a JSON 400, not a text/plain 413."""
    session = await connect(client)
    response = await client.post(
        f"/v2.0/vehicles/{session.vehicle_id}/batch",
        content=b"x" * (2 * 1024 * 1024),
        headers=session.headers,
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
