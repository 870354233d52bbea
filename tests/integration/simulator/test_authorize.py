"""Simulated Connect: `GET /oauth/authorize` redirects at once with a code or an error."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    ALL_SCOPES,
    REDIRECT_URI,
    authorize_params,
    bearer,
    client_for,
    connect,
    exchange,
    redirect_query,
    vin_of,
)


async def test_redirects_to_redirect_uri_with_code_and_state(client: httpx.AsyncClient) -> None:
    """Connect answers 302 to the redirect URI with a code and the state echoed."""
    response = await client.get("/oauth/authorize", params=authorize_params(state="abc"))
    assert response.status_code == 302
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    query = redirect_query(response)
    assert query["state"] == "abc"
    assert len(query["code"]) >= 32


async def test_keeps_the_redirect_uris_own_query(client: httpx.AsyncClient) -> None:
    """A redirect URI that has a query keeps it and gets the code appended."""
    params = authorize_params(redirect_uri="https://app.example/cb?tenant=7")
    response = await client.get("/oauth/authorize", params=params)
    query = redirect_query(response)
    assert response.headers["location"].startswith("https://app.example/cb?tenant=7&")
    assert query["tenant"] == "7"
    assert "code" in query


async def test_single_select_vin_connects_that_vehicle(client: httpx.AsyncClient) -> None:
    """`single_select_vin` connects exactly the catalog vehicle with that VIN."""
    vin = await vin_of(client, powertrain="ICE")
    session = await connect(client, single_select_vin=vin)
    assert len(session.vehicle_ids) == 1
    response = await client.get(f"/v2.0/vehicles/{session.vehicle_id}/vin", headers=session.headers)
    assert response.json() == {"vin": vin}


async def test_unknown_vin_becomes_a_deterministic_vehicle() -> None:
    """A well-formed VIN outside the catalog gets the same new vehicle in every simulator."""
    vin = "1FTFW1E50NFA00001"
    ids = []
    for _ in range(2):
        async with client_for(unlimited_config()) as http:
            session = await connect(http, single_select_vin=vin)
            attributes = await http.get(
                f"/v2.0/vehicles/{session.vehicle_id}", headers=session.headers
            )
            ids.append(session.vehicle_id)
            assert attributes.json()["make"] == "FORD"
            assert attributes.json()["year"] == 2022
    assert ids[0] == ids[1]


async def test_sim_vehicles_gives_an_owner_several_vehicles(client: httpx.AsyncClient) -> None:
    """`sim_vehicles=3` connects three vehicles under one token."""
    session = await connect(client, sim_vehicles="3")
    assert len(set(session.vehicle_ids)) == 3


async def test_sim_deny_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    """`sim_deny=1` redirects with Smartcar's access_denied error and the state."""
    response = await client.get("/oauth/authorize", params=authorize_params(sim_deny="1"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert "error=access_denied&error_description=User+denied+access+to+application" in location
    query = redirect_query(response)
    assert query["state"] == "state-123"
    assert "code" not in query


async def test_sim_withhold_grants_fewer_scopes(client: httpx.AsyncClient) -> None:
    """`sim_withhold` removes permissions from the grant, and their reads become 403."""
    session = await connect(client, sim_withhold="read_location control_security")
    vehicle = f"/v2.0/vehicles/{session.vehicle_id}"
    permissions = (await client.get(f"{vehicle}/permissions", headers=session.headers)).json()
    assert "read_location" not in permissions["permissions"]
    assert "control_security" not in permissions["permissions"]
    assert "read_odometer" in permissions["permissions"]
    denied = await client.get(f"{vehicle}/location", headers=session.headers)
    assert denied.status_code == 403
    assert denied.json()["type"] == "PERMISSION"


async def test_a_required_scope_cannot_be_withheld(client: httpx.AsyncClient) -> None:
    """A scope the URL marks `required:` is granted even when the owner would untick it
    (its checkbox is locked); an unmarked one is withheld as asked, and the grant names
    permissions without the prefix."""
    scope = ALL_SCOPES.replace("control_security", "required:control_security")
    session = await connect(client, scope=scope, sim_withhold="control_security read_location")
    vehicle = f"/v2.0/vehicles/{session.vehicle_id}"
    granted = (await client.get(f"{vehicle}/permissions", headers=session.headers)).json()
    assert "control_security" in granted["permissions"]
    assert "read_location" not in granted["permissions"]
    assert not any(p.startswith("required:") for p in granted["permissions"])
    locked = await client.post(
        f"{vehicle}/security", json={"action": "LOCK"}, headers=session.headers
    )
    assert locked.status_code == 200, locked.text


async def test_a_required_prefix_on_an_unknown_permission_is_invalid_scope(
    client: httpx.AsyncClient,
) -> None:
    """`required:` names a permission like any scope: one that is none is invalid_scope."""
    response = await client.get(
        "/oauth/authorize", params=authorize_params(scope="required:drop_tables read_vin")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_same_user_key_is_the_same_smartcar_user(client: httpx.AsyncClient) -> None:
    """Two connects with one `user` key share a user id; another key is another user."""
    first = await connect(client, user="owner-1")
    second = await connect(client, user="owner-1")
    other = await connect(client, user="owner-2")
    ids = [
        (await client.get("/v2.0/user", headers=s.headers)).json()["id"]
        for s in (first, second, other)
    ]
    assert ids[0] == ids[1] != ids[2]
    assert second.vehicle_ids == first.vehicle_ids


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"redirect_uri": ""}, "invalid_request"),
        ({"redirect_uri": "not a uri"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"client_id": ""}, "invalid_request"),
        ({"mode": "production"}, "invalid_request"),
        ({"single_select_vin": "TOO-SHORT"}, "invalid_request"),
        ({"sim_vehicles": "0"}, "invalid_request"),
        ({"scope": "read_odometer drop_tables"}, "invalid_scope"),
    ],
)
async def test_invalid_requests_get_400_json_not_a_redirect(
    client: httpx.AsyncClient, override: dict[str, str], error: str
) -> None:
    """A bad authorize request is a 400 JSON error, never a redirect."""
    response = await client.get("/oauth/authorize", params=authorize_params(**override))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error


async def test_codes_are_single_use(client: httpx.AsyncClient) -> None:
    """A code exchanged once is `invalid_grant` the second time."""
    code = redirect_query(await client.get("/oauth/authorize", params=authorize_params()))["code"]
    assert (await exchange(client, code)).status_code == 200
    again = await exchange(client, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert code not in again.text


async def test_codes_expire_after_ten_simulated_minutes(client: httpx.AsyncClient) -> None:
    """A code older than 10 minutes of simulated time is `invalid_grant`."""
    code = redirect_query(await client.get("/oauth/authorize", params=authorize_params()))["code"]
    await client.post("/sim/clock", json={"advance_seconds": 601})
    response = await exchange(client, code)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid code: it has expired.",
    }


async def test_redirect_uri_must_match_connects(client: httpx.AsyncClient) -> None:
    """The token endpoint rejects a redirect_uri other than the one sent to Connect."""
    code = redirect_query(await client.get("/oauth/authorize", params=authorize_params()))["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://evil/cb"}
    response = await client.post("/oauth/token", data=data, auth=("fleet-app", "x"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_scope_defaults_to_every_gateway_permission(client: httpx.AsyncClient) -> None:
    """Without `scope`, the grant includes every permission the gateway needs."""
    params = authorize_params()
    del params["scope"]
    code = redirect_query(await client.get("/oauth/authorize", params=params))["code"]
    tokens = (await exchange(client, code)).json()
    vehicles = (await client.get("/v2.0/vehicles", headers=bearer(tokens["access_token"]))).json()
    permissions = await client.get(
        f"/v2.0/vehicles/{vehicles['vehicles'][0]}/permissions",
        headers=bearer(tokens["access_token"]),
    )
    assert {"read_odometer", "control_security", "read_tires"} <= set(
        permissions.json()["permissions"]
    )
