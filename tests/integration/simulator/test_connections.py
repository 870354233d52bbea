"""Connections ending: owner revocation, the app disconnecting, the Management API."""

from __future__ import annotations

import base64

import httpx

from tests.integration.simulator.flows import Session, connect, refresh, stats

MANAGEMENT_TOKEN = "sim-management-token"


def management_auth(token: str = MANAGEMENT_TOKEN) -> dict[str, str]:
    """Return Smartcar's management header: Basic base64(default:<token>)."""
    encoded = base64.b64encode(f"default:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def odometer(client: httpx.AsyncClient, session: Session, vehicle_id: str) -> int:
    """Read one vehicle's odometer and return the status code."""
    response = await client.get(f"/v2.0/vehicles/{vehicle_id}/odometer", headers=session.headers)
    return response.status_code


async def test_revocation_is_401_and_unrefreshable(client: httpx.AsyncClient) -> None:
    """A revoked vehicle answers 401, and a refresh of that owner's tokens is invalid_grant."""
    session = await connect(client)
    response = await client.post(f"/sim/vehicles/{session.vehicle_id}/revoke")
    assert len(response.json()["revoked"]) == 1
    assert await odometer(client, session, session.vehicle_id) == 401
    refreshed = await refresh(client, session.refresh_token)
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert (await client.get("/v2.0/user", headers=session.headers)).status_code == 401


async def test_revoking_one_of_several_vehicles(client: httpx.AsyncClient) -> None:
    """With another vehicle left the refresh works, but the revoked one stays 401."""
    session = await connect(client, sim_vehicles="2")
    revoked, kept = session.vehicle_ids
    await client.post(f"/sim/vehicles/{revoked}/revoke")
    response = await refresh(client, session.refresh_token)
    assert response.status_code == 200
    fresh = Session(
        access_token=response.json()["access_token"],
        refresh_token=response.json()["refresh_token"],
        vehicle_ids=session.vehicle_ids,
    )
    assert await odometer(client, fresh, revoked) == 401
    assert await odometer(client, fresh, kept) == 200
    listed = await client.get("/v2.0/vehicles", headers=fresh.headers)
    assert listed.json()["vehicles"] == [kept]


async def test_disconnect_removes_the_connection(client: httpx.AsyncClient) -> None:
    """`DELETE …/application` succeeds and later calls on that vehicle are 401."""
    session = await connect(client)
    response = await client.delete(
        f"/v2.0/vehicles/{session.vehicle_id}/application", headers=session.headers
    )
    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert await odometer(client, session, session.vehicle_id) == 401
    vehicles = (await client.get("/sim/vehicles")).json()["vehicles"]
    entry = next(v for v in vehicles if v["id"] == session.vehicle_id)
    assert entry["connected_user_ids"] == []
    assert (await stats(client))["requests"]["by_endpoint"]["application"] == 1


async def test_management_deletes_connections_by_vehicle(client: httpx.AsyncClient) -> None:
    """The Management API deletes a vehicle's connections and lists what it deleted."""
    session = await connect(client)
    user_id = (await client.get("/v2.0/user", headers=session.headers)).json()["id"]
    response = await client.delete(
        "/v2.0/management/connections/",
        params={"vehicle_id": session.vehicle_id},
        headers=management_auth(),
    )
    assert response.status_code == 200
    assert response.json() == {
        "connections": [{"userId": user_id, "vehicleId": session.vehicle_id}]
    }
    assert await odometer(client, session, session.vehicle_id) == 401


async def test_management_deletes_by_user_without_trailing_slash(
    client: httpx.AsyncClient,
) -> None:
    """Deleting by user id removes all of that user's vehicles; the slash is optional."""
    session = await connect(client, sim_vehicles="2")
    user_id = (await client.get("/v2.0/user", headers=session.headers)).json()["id"]
    response = await client.delete(
        "/v2.0/management/connections", params={"user_id": user_id}, headers=management_auth()
    )
    assert len(response.json()["connections"]) == 2


async def test_management_lists_connections(client: httpx.AsyncClient) -> None:
    """`GET` on the management path lists connections as the SDK reads them."""
    session = await connect(client)
    response = await client.get("/v2.0/management/connections/", headers=management_auth())
    connections = response.json()["connections"]
    assert [c["vehicleId"] for c in connections] == [session.vehicle_id]
    assert response.json()["paging"] == {"cursor": None}


async def test_management_rejects_bad_credentials(client: httpx.AsyncClient) -> None:
    """A wrong management token, or none, is 401 AUTHENTICATION."""
    for headers in (management_auth("wrong"), {}, {"Authorization": "Basic !!!"}):
        response = await client.delete(
            "/v2.0/management/connections/", params={"vehicle_id": "x"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["type"] == "AUTHENTICATION"


async def test_management_delete_needs_a_filter(client: httpx.AsyncClient) -> None:
    """Deleting without vehicle_id or user_id is 400 VALIDATION:PARAMETER."""
    response = await client.delete("/v2.0/management/connections/", headers=management_auth())
    assert response.status_code == 400
    assert response.json()["code"] == "PARAMETER"


async def test_reconnecting_does_not_revive_revoked_tokens(client: httpx.AsyncClient) -> None:
    """After a revocation, connecting the vehicle again works only with the new tokens."""
    old = await connect(client, user="owner-9")
    await client.post(f"/sim/vehicles/{old.vehicle_id}/revoke")
    new = await connect(client, user="owner-9")
    assert new.vehicle_ids == old.vehicle_ids
    assert await odometer(client, new, new.vehicle_id) == 200
    assert await odometer(client, old, old.vehicle_id) == 401
    assert (await refresh(client, old.refresh_token)).status_code == 400
