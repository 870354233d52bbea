"""Helpers that walk the simulator's API V3 the way a V3 client application would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from clients.simulator import RunningSimulator, serve_simulator
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    CLIENT,
    authorize_params,
    redirect_query,
    sim_client,
    vin_of,
)

CHARGE_SCOPES = (
    "read_vehicle_info read_vin read_location read_odometer read_battery read_fuel "
    "read_security control_security read_tires read_engine_oil read_charge control_charge"
)


@dataclass(frozen=True, kw_only=True)
class V3Car:
    """A vehicle connected through simulated Connect, as a V3 client knows it."""

    user_id: str
    vehicle_id: str
    code: str
    app_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Return the application token and `sc-user-id` of this car's owner."""
        return {"Authorization": f"Bearer {self.app_token}", "sc-user-id": self.user_id}

    @property
    def base(self) -> str:
        """Return the car's V3 path."""
        return f"/v3/vehicles/{self.vehicle_id}"


@asynccontextmanager
async def v3_client(**config: Any) -> AsyncIterator[tuple[RunningSimulator, httpx.AsyncClient]]:
    """Serve a fast, unlimited simulator for the test client (`config` overrides) and
    yield it with an httpx client."""
    settings: dict[str, Any] = {"client_id": CLIENT[0], "client_secret": CLIENT[1], **config}
    async with (
        serve_simulator(unlimited_config(**settings)) as sim,
        sim_client(sim.base_url) as http,
    ):
        yield sim, http


async def app_token(client: httpx.AsyncClient, secret: str = CLIENT[1]) -> str:
    """Return a fresh application token (form body, the documented request)."""
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def connect_v3(client: httpx.AsyncClient, *, token: str | None = None, **extra: str) -> V3Car:
    """Run simulated Connect and keep the redirect's `user_id` (no code exchange)."""
    response = await client.get("/oauth/authorize", params=authorize_params(**extra))
    query = redirect_query(response)
    user_id = query["user_id"]
    vehicles = (await client.get("/sim/vehicles")).json()["vehicles"]
    vin = extra.get("single_select_vin")
    vehicle_id = next(
        v["id"]
        for v in vehicles
        if user_id in v["connected_user_ids"] and (vin is None or v["vin"] == vin)
    )
    return V3Car(
        user_id=user_id,
        vehicle_id=vehicle_id,
        code=query["code"],
        app_token=token or await app_token(client),
    )


async def connect_powertrain_v3(client: httpx.AsyncClient, powertrain: str, **extra: str) -> V3Car:
    """Connect the first catalog vehicle of a powertrain through V3."""
    vin = await vin_of(client, powertrain=powertrain)
    return await connect_v3(client, single_select_vin=vin, **extra)


def signal_of(document: dict[str, Any], code: str) -> dict[str, Any]:
    """Return one signal resource of a signals list."""
    found: dict[str, Any] = next(item for item in document["data"] if item["id"] == code)
    return found


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Return the single V3 error of an error response (checking the envelope)."""
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert len(errors) == 1
    error: dict[str, Any] = errors[0]
    assert error["status"] == str(response.status_code)
    return error
