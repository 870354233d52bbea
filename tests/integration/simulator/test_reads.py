"""Vehicle API reads: shapes, headers, units, capabilities and evolving data."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest

from tests.integration.simulator.flows import (
    advance,
    bearer,
    connect,
    connect_powertrain,
    refresh,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_iso(value: str) -> datetime:
    """Parse Smartcar's ISO-8601 timestamp."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_user_and_vehicle_list(client: httpx.AsyncClient) -> None:
    """`/user` names the user and `/vehicles` pages the connected vehicles."""
    session = await connect(client, sim_vehicles="3")
    user = await client.get("/v2.0/user", headers=session.headers)
    assert set(user.json()) == {"id"}
    page = await client.get(
        "/v2.0/vehicles", params={"limit": 2, "offset": 1}, headers=session.headers
    )
    assert page.json() == {
        "vehicles": session.vehicle_ids[1:3],
        "paging": {"count": 3, "offset": 1},
    }
    assert page.headers["sc-request-id"]


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_attributes_with_and_without_trailing_slash(
    client: httpx.AsyncClient, suffix: str
) -> None:
    """`GET /vehicles/{id}` and `/vehicles/{id}/` both answer the attributes."""
    session = await connect(client)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}{suffix}", headers=session.headers
    )
    body = response.json()
    assert set(body) == {"id", "make", "model", "year"}
    assert body["id"] == session.vehicle_id
    assert isinstance(body["year"], int)


@pytest.mark.parametrize(
    ("powertrain", "path", "keys"),
    [
        ("ICE", "odometer", {"distance"}),
        ("ICE", "location", {"latitude", "longitude"}),
        ("ICE", "fuel", {"amountRemaining", "percentRemaining", "range"}),
        ("ICE", "engine/oil", {"lifeRemaining"}),
        ("ICE", "tires/pressure", {"frontLeft", "frontRight", "backLeft", "backRight"}),
        ("BEV", "battery", {"percentRemaining", "range"}),
        ("PHEV", "fuel", {"amountRemaining", "percentRemaining", "range"}),
        ("PHEV", "battery", {"percentRemaining", "range"}),
        ("BEV", "security", {"isLocked", "doors", "windows", "sunroof", "storage", "chargingPort"}),
    ],
)
async def test_data_reads_have_smartcar_shape_and_headers(
    client: httpx.AsyncClient, powertrain: str, path: str, keys: set[str]
) -> None:
    """Each data read answers its documented keys with data age, fetch time and units."""
    session = await connect_powertrain(client, powertrain)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/{path}", headers=session.headers
    )
    assert response.status_code == 200
    assert set(response.json()) == keys
    headers = response.headers
    assert headers["content-type"].startswith("application/json")
    assert headers["sc-unit-system"] == "metric"
    assert ISO_MS.match(headers["sc-data-age"])
    assert ISO_MS.match(headers["sc-fetched-at"])
    age_s = (parse_iso(headers["sc-fetched-at"]) - parse_iso(headers["sc-data-age"])).seconds
    assert 0 <= age_s <= 3600


async def test_fractions_and_plausible_values(client: httpx.AsyncClient) -> None:
    """Fuel, charge and oil are 0-1 fractions; tyres are 175-237 kPa floats."""
    session = await connect_powertrain(client, "PHEV")
    base = f"/v2.0/vehicles/{session.vehicle_id}"
    fuel = (await client.get(f"{base}/fuel", headers=session.headers)).json()
    battery = (await client.get(f"{base}/battery", headers=session.headers)).json()
    oil = (await client.get(f"{base}/engine/oil", headers=session.headers)).json()
    tires = (await client.get(f"{base}/tires/pressure", headers=session.headers)).json()
    for fraction in (fuel["percentRemaining"], battery["percentRemaining"], oil["lifeRemaining"]):
        assert 0 <= fraction <= 1
    assert all(isinstance(v, float) and 175 <= v <= 237 for v in tires.values())


async def test_imperial_units_convert(client: httpx.AsyncClient) -> None:
    """`sc-unit-system: imperial` answers miles and psi, and says so."""
    session = await connect_powertrain(client, "ICE")
    base = f"/v2.0/vehicles/{session.vehicle_id}"
    metric = (await client.get(f"{base}/odometer", headers=session.headers)).json()
    imperial_headers = {**session.headers, "sc-unit-system": "imperial"}
    response = await client.get(f"{base}/odometer", headers=imperial_headers)
    assert response.headers["sc-unit-system"] == "imperial"
    assert response.json()["distance"] == pytest.approx(metric["distance"] * 0.621371, abs=0.2)
    tires = (await client.get(f"{base}/tires/pressure", headers=imperial_headers)).json()
    assert all(25 <= psi <= 35 for psi in tires.values())


async def test_invalid_unit_system_is_400(client: httpx.AsyncClient) -> None:
    """An unknown `sc-unit-system` is 400 VALIDATION:PARAMETER."""
    session = await connect(client)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer",
        headers={**session.headers, "sc-unit-system": "furlongs"},
    )
    assert response.status_code == 400
    assert (response.json()["type"], response.json()["code"]) == ("VALIDATION", "PARAMETER")


@pytest.mark.parametrize(
    ("powertrain", "path"),
    [("BEV", "fuel"), ("BEV", "engine/oil"), ("ICE", "battery")],
)
async def test_missing_capabilities_are_501(
    client: httpx.AsyncClient, powertrain: str, path: str
) -> None:
    """EVs have no fuel or oil and ICE cars no battery: 501 VEHICLE_NOT_CAPABLE."""
    session = await connect_powertrain(client, powertrain)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/{path}", headers=session.headers
    )
    assert response.status_code == 501
    body = response.json()
    assert (body["type"], body["code"]) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    assert body["description"] == "The vehicle is incapable of performing your request."


async def test_permissions_are_paged(client: httpx.AsyncClient) -> None:
    """`/permissions` pages the granted scopes with the total count."""
    session = await connect(client)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/permissions",
        params={"limit": 3, "offset": 2},
        headers=session.headers,
    )
    body = response.json()
    assert len(body["permissions"]) == 3
    assert body["paging"] == {"count": 10, "offset": 2}


async def test_security_reports_the_documented_shape(client: httpx.AsyncClient) -> None:
    """Lock status lists typed doors and windows with statuses, as in the wire notes."""
    session = await connect_powertrain(client, "ICE")
    body = (
        await client.get(f"/v2.0/vehicles/{session.vehicle_id}/security", headers=session.headers)
    ).json()
    assert isinstance(body["isLocked"], bool)
    assert {d["type"] for d in body["doors"]} == {
        "frontLeft",
        "frontRight",
        "backLeft",
        "backRight",
    }
    assert all(item["status"] in ("OPEN", "CLOSED", "UNKNOWN") for item in body["windows"])
    assert body["chargingPort"] == []


async def test_odometer_grows_with_simulated_time(client: httpx.AsyncClient) -> None:
    """A simulated day later the odometer reads more, and the data age moved too."""
    session = await connect(client)
    url = f"/v2.0/vehicles/{session.vehicle_id}/odometer"
    before = await client.get(url, headers=session.headers)
    await advance(client, 86400)
    fresh = (await refresh(client, session.refresh_token)).json()["access_token"]
    after = await client.get(url, headers=bearer(fresh))
    assert after.json()["distance"] > before.json()["distance"] + 15
    assert parse_iso(after.headers["sc-data-age"]) > parse_iso(before.headers["sc-data-age"])


async def test_reads_of_another_users_vehicle_are_401(client: httpx.AsyncClient) -> None:
    """A token cannot read a vehicle it was not granted: 401 AUTHENTICATION."""
    mine = await connect(client)
    theirs = await connect(client)
    response = await client.get(
        f"/v2.0/vehicles/{theirs.vehicle_id}/odometer", headers=mine.headers
    )
    assert response.status_code == 401
    assert response.json()["type"] == "AUTHENTICATION"
