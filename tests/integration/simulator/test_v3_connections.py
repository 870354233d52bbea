"""The Connections API (V3): list with filters and pages, get, delete, and delete a user."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.simulator.flows import advance, connect, stats
from tests.integration.simulator.v3_flows import app_token, connect_v3, error_of, v3_client


async def test_connections_list_newest_first_with_user_and_permissions() -> None:
    """Each connection names its vehicle and user (relationships), its permissions and
    vehicle attributes; the list is newest first, with `orderBy` in its meta."""
    async with v3_client() as (_, client):
        first = await connect_v3(client, user="alice")
        await advance(client, 60)
        second = await connect_v3(client, user="bob", token=first.app_token)
        auth = {"Authorization": f"Bearer {first.app_token}"}
        response = await client.get("/v3/connections", headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        vehicles = [c["relationships"]["vehicle"]["data"]["id"] for c in body["data"]]
        assert vehicles == [second.vehicle_id, first.vehicle_id]
        newest = body["data"][0]
        assert newest["type"] == "connection"
        assert newest["relationships"]["user"]["data"] == {"id": second.user_id, "type": "user"}
        assert "read_odometer" in newest["attributes"]["permissions"]
        assert newest["attributes"]["vehicle"]["mode"] == "live"
        assert newest["links"]["self"] == f"/connections/{newest['id']}"
        assert body["meta"] == {
            "pageNumber": 1,
            "pageSize": 10,
            "totalCount": 2,
            "orderBy": "createdAt",
            "orderDirection": "DESC",
        }
        assert (body["links"]["next"], body["links"]["prev"]) == (None, None)


async def test_filters_and_the_user_header_narrow_the_list() -> None:
    """`filter[userId]`, `filter[vehicleId]` and `sc-user-id` each select connections;
    `filter[vehicle.mode]=simulated` finds none (every simulated car reports live)."""
    async with v3_client() as (_, client):
        alice = await connect_v3(client, user="alice")
        bob = await connect_v3(client, user="bob", token=alice.app_token)
        auth = {"Authorization": f"Bearer {alice.app_token}"}

        async def vehicle_ids(**params: str) -> list[str]:
            headers = {
                **auth,
                **({"sc-user-id": params.pop("header")} if "header" in params else {}),
            }
            response = await client.get("/v3/connections", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return [c["relationships"]["vehicle"]["data"]["id"] for c in response.json()["data"]]

        assert await vehicle_ids(**{"filter[userId]": bob.user_id}) == [bob.vehicle_id]
        assert await vehicle_ids(**{"filter[vehicleId]": alice.vehicle_id}) == [alice.vehicle_id]
        assert await vehicle_ids(header=alice.user_id) == [alice.vehicle_id]
        assert await vehicle_ids(**{"filter[vehicle.mode]": "simulated"}) == []
        assert await vehicle_ids(**{"filter[userId]": bob.user_id, "header": alice.user_id}) == []


async def test_pages_follow_links_until_next_is_null() -> None:
    """Five connections in pages of two: three pages, `next` links to the following page
    (keeping the filters) and is null on the last."""
    async with v3_client() as (_, client):
        car = await connect_v3(client, user="fleet-owner", sim_vehicles="5")
        auth = {"Authorization": f"Bearer {car.app_token}"}
        params: dict[str, str] | None = {"filter[userId]": car.user_id, "page[size]": "2"}
        seen: list[str] = []
        pages = 0
        while params is not None:
            body = (await client.get("/v3/connections", params=params, headers=auth)).json()
            pages += 1
            seen += [c["id"] for c in body["data"]]
            next_link = body["links"]["next"]
            params = None
            if next_link is not None:
                query = parse_qs(urlsplit(next_link).query)
                params = {key: values[0] for key, values in query.items()}
                assert params["filter[userId]"] == car.user_id
        assert pages == 3
        assert len(set(seen)) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"page[number]": "0"},
        {"page[size]": "101"},
        {"page[size]": "ten"},
        {"filter[colour]": "red"},
        {"filter[vehicle.mode]": "test"},
        {"filter[userId]": ""},
    ],
)
async def test_bad_pages_and_filters_are_400(params: dict[str, str]) -> None:
    """A page outside range, an unknown or empty filter, an unknown mode: 400
    VALIDATION:INVALID_INPUT_FORMAT."""
    async with v3_client() as (_, client):
        token = await app_token(client)
        response = await client.get(
            "/v3/connections", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "INVALID_INPUT_FORMAT"


async def test_get_and_delete_a_connection_by_its_id() -> None:
    """A connection is fetched by its id; deleting it (204) ends the owner's access, and
    it is then 404."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        auth = {"Authorization": f"Bearer {car.app_token}"}
        [listed] = (await client.get("/v3/connections", headers=auth)).json()["data"]
        fetched = await client.get(f"/v3/connections/{listed['id']}", headers=auth)
        assert fetched.json() == {"data": listed}
        deleted = await client.delete(f"/v3/connections/{listed['id']}", headers=auth)
        assert deleted.status_code == 204
        assert deleted.content == b""
        gone = await client.get(f"/v3/connections/{listed['id']}", headers=auth)
        assert gone.status_code == 404
        signals = await client.get(f"{car.base}/signals", headers=car.headers)
        assert signals.status_code == 403


async def test_deleting_a_user_purges_every_connection_of_theirs() -> None:
    """`DELETE /v3/users/{id}` answers 204 and removes all of the user's connections (also
    ending their v2 tokens); an unknown user is 404."""
    async with v3_client() as (_, client):
        session = await connect(client, user="leaver", sim_vehicles="2")
        token = await app_token(client)
        auth = {"Authorization": f"Bearer {token}"}
        vehicles = (await client.get("/sim/vehicles")).json()["vehicles"]
        user_id = next(v["owner_user_id"] for v in vehicles if v["id"] == session.vehicle_id)
        deleted = await client.delete(f"/v3/users/{user_id}", headers=auth)
        assert deleted.status_code == 204
        listed = await client.get(
            "/v3/connections", params={"filter[userId]": user_id}, headers=auth
        )
        assert listed.json()["data"] == []
        v2 = await client.get(
            f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
        )
        assert v2.status_code == 401
        again = await client.delete(f"/v3/users/{user_id}", headers=auth)
        assert again.status_code == 404


async def test_connections_take_application_tokens_only_and_are_not_billed() -> None:
    """A v2 access token is 403 on the Connections API, no token 401; listing bills
    nothing and is counted under `v3/connections`."""
    async with v3_client() as (_, client):
        session = await connect(client)
        v2 = await client.get("/v3/connections", headers=session.headers)
        assert (v2.status_code, error_of(v2)["code"]) == (403, "ACCESS_DENIED")
        assert (await client.get("/v3/connections")).status_code == 401
        token = await app_token(client)
        await client.get("/v3/connections", headers={"Authorization": f"Bearer {token}"})
        counters = await stats(client)
        assert counters["billed_this_month"] == {}
        assert counters["requests"]["by_endpoint"]["v3/connections"] == 3
