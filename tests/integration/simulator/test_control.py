"""The `/sim/` control API: stats, clock, vehicles, config, and a deterministic catalog."""

from __future__ import annotations

from typing import Any

import httpx

from clients.simulator import SimulatorConfig
from clients.simulator.fleet import VIN_ALPHABET, vin_check_digit
from tests.instants import START_S
from tests.integration.simulator.flows import client_for, connect, stats


async def catalog(config: SimulatorConfig) -> list[dict[str, Any]]:
    """Start a simulator with `config` and return its vehicle list."""
    async with client_for(config) as http:
        vehicles: list[dict[str, Any]] = (await http.get("/sim/vehicles")).json()["vehicles"]
        return vehicles


async def test_stats_have_the_contract_shape(client: httpx.AsyncClient) -> None:
    """`/sim/stats` has the fixed keys, with endpoints named like v2 paths."""
    session = await connect(client)
    base = f"/v2.0/vehicles/{session.vehicle_id}"
    await client.get(f"{base}/odometer", headers=session.headers)
    await client.get(f"{base}/security", headers=session.headers)
    await client.post(f"{base}/security", json={"action": "LOCK"}, headers=session.headers)
    await client.get(f"{base}/tires/pressure", headers=session.headers)
    counters = await stats(client)
    assert set(counters) >= {"requests", "token_grants", "token_rejections"}
    by_endpoint = counters["requests"]["by_endpoint"]
    assert by_endpoint == {"vehicles": 1, "odometer": 1, "security": 2, "tires/pressure": 1}
    assert counters["requests"]["by_vehicle"] == {session.vehicle_id: 4}
    assert counters["requests"]["by_method"]["POST security"] == 1
    assert counters["token_grants"] == {
        "authorization_code": 1,
        "refresh_token": 0,
        "client_credentials": 0,
    }
    assert counters["token_rejections"]["invalid_grant"] == 0


async def test_reset_stats_zeroes_counters(client: httpx.AsyncClient) -> None:
    """`POST /sim/reset-stats` starts the counters again."""
    await connect(client)
    assert (await client.post("/sim/reset-stats")).json() == {"status": "reset"}
    counters = await stats(client)
    assert counters["requests"]["by_endpoint"] == {}
    assert counters["token_grants"]["authorization_code"] == 0


async def test_clock_moves_forward_on_request(client: httpx.AsyncClient) -> None:
    """`POST /sim/clock` advances simulated time and reports it."""
    before = (await client.get("/sim/clock")).json()
    after = (await client.post("/sim/clock", json={"advance_seconds": 3600})).json()
    assert after["offset_s"] == before["offset_s"] + 3600
    assert after["now"] > before["now"]


async def test_vehicles_list_catalog_and_owners(client: httpx.AsyncClient) -> None:
    """`/sim/vehicles` lists the catalog; a connected vehicle shows its owner."""
    vehicles = (await client.get("/sim/vehicles")).json()["vehicles"]
    assert len(vehicles) == 50
    assert set(vehicles[0]) >= {"id", "vin", "make", "model", "year", "powertrain", "asleep"}
    session = await connect(client)
    user_id = (await client.get("/v2.0/user", headers=session.headers)).json()["id"]
    one = (await client.get(f"/sim/vehicles/{session.vehicle_id}")).json()
    assert one["owner_user_id"] == user_id
    assert one["connected_user_ids"] == [user_id]


async def test_same_seed_same_catalog_other_seed_other_catalog() -> None:
    """Two simulators with one seed list identical vehicles; another seed differs."""
    first = await catalog(SimulatorConfig.fast(seed=11, vehicles=20, start_at_s=START_S))
    second = await catalog(SimulatorConfig.fast(seed=11, vehicles=20, start_at_s=START_S))
    other = await catalog(SimulatorConfig.fast(seed=12, vehicles=20, start_at_s=START_S))
    assert first == second
    assert {v["id"] for v in first}.isdisjoint({v["id"] for v in other})


async def test_catalog_vins_and_ids_are_well_formed() -> None:
    """Catalog VINs are 17 VIN-alphabet characters with a valid check digit; ids are UUID v4."""
    vehicles = await catalog(SimulatorConfig.fast(vehicles=50, start_at_s=START_S))
    assert len({v["vin"] for v in vehicles}) == 50
    for vehicle in vehicles:
        vin = vehicle["vin"]
        assert len(vin) == 17
        assert set(vin) <= set(VIN_ALPHABET)
        assert vin[8] == vin_check_digit(vin)
        assert vehicle["id"][14] == "4"
    assert {v["powertrain"] for v in vehicles} == {"ICE", "BEV", "PHEV"}


async def test_config_hides_secrets_and_updates(client: httpx.AsyncClient) -> None:
    """`/sim/config` never shows the secret or management token and applies updates."""
    config = (await client.get("/sim/config")).json()
    assert "client_secret" not in config
    assert "management_token" not in config
    updated = await client.post("/sim/config", json={"read_latency_s": 0.01, "hang_s": 1})
    assert updated.json()["read_latency_s"] == 0.01
    assert updated.json()["hang_s"] == 1.0
