"""The Compatibility API by VIN: answers from the catalog, validation, authentication,
the app-wide bucket, faults, and never a billed request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clients.simulator import BucketLimit, serve_simulator
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import client_for, sim_client, stats, vin_of

CLIENT = ("fleet-app", "fleet-secret")
UNKNOWN_MAKE_VIN = "SALGS2SE1LA000001"  # a WMI no catalog make uses
FORD_VIN_OUTSIDE_THE_CATALOG = "1FTFW1E50NFA00001"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A simulator that knows the application's client id and secret."""
    config = unlimited_config(client_id=CLIENT[0], client_secret=CLIENT[1])
    async with serve_simulator(config) as sim, sim_client(sim.base_url) as http:
        yield http


async def check(
    client: httpx.AsyncClient,
    vin: str,
    scope: str = "read_fuel read_battery control_security",
    country: str | None = "US",
    auth: tuple[str, str] | None = CLIENT,
) -> httpx.Response:
    """Ask the Compatibility API about a VIN, as the official SDK does."""
    params = {"vin": vin, "scope": scope}
    if country is not None:
        params["country"] = country
    return await client.get("/v2.0/compatibility", params=params, auth=auth)


def capable(body: dict[str, Any]) -> dict[tuple[str, str], tuple[bool, str | None]]:
    """Index the capabilities by permission and endpoint."""
    return {
        (item["permission"], item["endpoint"]): (item["capable"], item["reason"])
        for item in body["capabilities"]
    }


async def test_a_catalog_car_is_compatible_with_what_its_powertrain_has(
    client: httpx.AsyncClient,
) -> None:
    """An ICE car of the catalog is compatible: capable of fuel and locks, not of a
    battery (VEHICLE_NOT_CAPABLE); a BEV the other way round."""
    ice = await check(client, await vin_of(client, powertrain="ICE"))
    bev = await check(client, await vin_of(client, powertrain="BEV"))
    assert ice.status_code == 200, ice.text
    assert (ice.json()["compatible"], ice.json()["reason"]) == (True, None)
    assert capable(ice.json()) == {
        ("read_fuel", "/fuel"): (True, None),
        ("read_battery", "/battery"): (False, "VEHICLE_NOT_CAPABLE"),
        ("control_security", "/security"): (True, None),
    }
    assert capable(bev.json())[("read_fuel", "/fuel")] == (False, "VEHICLE_NOT_CAPABLE")
    assert capable(bev.json())[("read_battery", "/battery")] == (True, None)


async def test_a_vin_of_an_unknown_make_is_not_compatible(client: httpx.AsyncClient) -> None:
    """A VIN whose manufacturer no catalog make has: compatible false, MAKE_NOT_COMPATIBLE,
    and no capabilities."""
    response = await check(client, UNKNOWN_MAKE_VIN)
    assert response.json() == {
        "compatible": False,
        "reason": "MAKE_NOT_COMPATIBLE",
        "capabilities": [],
    }


async def test_a_vin_of_a_catalog_make_is_answered_without_creating_the_car(
    client: httpx.AsyncClient,
) -> None:
    """A VIN outside the catalog whose make the catalog has (the car Connect would make for
    it) is compatible; checking it adds no vehicle to the simulator."""
    before = len((await client.get("/sim/vehicles")).json()["vehicles"])
    response = await check(client, FORD_VIN_OUTSIDE_THE_CATALOG.lower())
    after = len((await client.get("/sim/vehicles")).json()["vehicles"])
    assert response.json()["compatible"] is True
    assert capable(response.json())[("control_security", "/security")] == (True, None)
    assert before == after


async def test_capabilities_are_checked_in_the_united_states_only(
    client: httpx.AsyncClient,
) -> None:
    """Outside the US a known car is compatible but comes without capabilities; without
    a country, US is meant (the SDK's default)."""
    vin = await vin_of(client, powertrain="PHEV")
    abroad = await check(client, vin, country="DE")
    default = await check(client, vin, country=None)
    assert abroad.json() == {"compatible": True, "reason": None, "capabilities": []}
    assert default.json()["capabilities"]


@pytest.mark.parametrize(
    ("vin", "scope", "country"),
    [
        ("TOO-SHORT", "read_vin", "US"),
        ("1FTFW1E50NFA0000O", "read_vin", "US"),
        (FORD_VIN_OUTSIDE_THE_CATALOG, "", "US"),
        (FORD_VIN_OUTSIDE_THE_CATALOG, "drop_tables", "US"),
        (FORD_VIN_OUTSIDE_THE_CATALOG, "required:read_vin", "US"),
        (FORD_VIN_OUTSIDE_THE_CATALOG, "read_vin", "USA"),
        (FORD_VIN_OUTSIDE_THE_CATALOG, "read_vin", "U1"),
    ],
)
async def test_bad_parameters_are_400_validation(
    client: httpx.AsyncClient, vin: str, scope: str, country: str
) -> None:
    """A malformed VIN, scope or country is 400 VALIDATION:PARAMETER in a v2 body."""
    response = await check(client, vin, scope=scope, country=country)
    assert response.status_code == 400
    assert (response.json()["type"], response.json()["code"]) == ("VALIDATION", "PARAMETER")


@pytest.mark.parametrize(
    "auth", [None, ("fleet-app", "wrong-secret"), ("someone-else", "fleet-secret")]
)
async def test_the_application_must_authenticate(
    client: httpx.AsyncClient, auth: tuple[str, str] | None
) -> None:
    """Without the application's client id and secret (Basic), 401 AUTHENTICATION."""
    response = await check(client, FORD_VIN_OUTSIDE_THE_CATALOG, auth=auth)
    assert response.status_code == 401
    assert response.json()["type"] == "AUTHENTICATION"


async def test_checks_are_counted_but_never_billed(client: httpx.AsyncClient) -> None:
    """Every check counts under `compatibility` in the stats; no vehicle is billed."""
    await check(client, FORD_VIN_OUTSIDE_THE_CATALOG)
    await check(client, UNKNOWN_MAKE_VIN)
    counted = await stats(client)
    assert counted["requests"]["by_endpoint"]["compatibility"] == 2
    assert counted["billed_this_month"] == {}


async def test_checks_take_from_the_app_wide_bucket() -> None:
    """Checks share the application's bucket: past it, 429 RATE_LIMIT:SMARTCAR_API."""
    config = unlimited_config(app_rate_limit=BucketLimit(capacity=1, refill_per_s=0.01))
    async with client_for(config) as http:
        assert (await check(http, FORD_VIN_OUTSIDE_THE_CATALOG)).status_code == 200
        limited = await check(http, FORD_VIN_OUTSIDE_THE_CATALOG)
    assert limited.status_code == 429
    assert (limited.json()["type"], limited.json()["code"]) == ("RATE_LIMIT", "SMARTCAR_API")
    assert int(limited.headers["retry-after"]) > 0


async def test_a_fault_naming_compatibility_hits_it(client: httpx.AsyncClient) -> None:
    """A server_error armed for `compatibility` answers 500 once; one without a path
    (a Vehicle API fault) does not touch checks."""
    armed = await client.post("/sim/faults", json={"kind": "server_error", "count": 1})
    assert armed.status_code < 300
    assert (await check(client, FORD_VIN_OUTSIDE_THE_CATALOG)).status_code == 200
    await client.delete("/sim/faults")
    fault = {"kind": "server_error", "path": "compatibility", "count": 1}
    assert (await client.post("/sim/faults", json=fault)).status_code < 300
    failed = await check(client, FORD_VIN_OUTSIDE_THE_CATALOG)
    assert failed.status_code == 500
    assert (await check(client, FORD_VIN_OUTSIDE_THE_CATALOG)).status_code == 200
