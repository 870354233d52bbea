"""Helpers that walk the simulator's OAuth flow the way a client application would."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from clients.simulator import SimulatorConfig, serve_simulator
from tests.instants import START_S

REDIRECT_URI = "http://localhost:8000/callback"
CLIENT = ("fleet-app", "fleet-secret")
ALL_SCOPES = (
    "read_vehicle_info read_vin read_location read_odometer read_battery read_fuel "
    "read_security control_security read_tires read_engine_oil"
)


# The simulator speaks plain HTTP: a bare TLS context spares every client the ~30 ms it
# takes httpx to load the system's CA bundle.
_PLAIN_HTTP_ONLY = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def sim_client(base_url: str, *, timeout_s: float = 5.0) -> httpx.AsyncClient:
    """Return an httpx client for a simulator at `base_url`."""
    return httpx.AsyncClient(base_url=base_url, timeout=timeout_s, verify=_PLAIN_HTTP_ONLY)


@asynccontextmanager
async def client_for(config: SimulatorConfig | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve a simulator with `config` and yield a client for it."""
    config = config or SimulatorConfig(start_at_s=START_S)
    async with serve_simulator(config) as sim, sim_client(sim.base_url) as http:
        yield http


@dataclass(frozen=True, kw_only=True)
class Session:
    """What a client holds after connecting: tokens and the vehicles they reach."""

    access_token: str
    refresh_token: str
    vehicle_ids: list[str]

    @property
    def headers(self) -> dict[str, str]:
        """Return the bearer header of this session."""
        return bearer(self.access_token)

    @property
    def vehicle_id(self) -> str:
        """Return the first (usually only) vehicle."""
        return self.vehicle_ids[0]


def bearer(token: str) -> dict[str, str]:
    """Return an Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def authorize_params(**extra: str) -> dict[str, str]:
    """Return the query of a Connect URL as the SDK builds it, plus `extra`."""
    params = {
        "response_type": "code",
        "client_id": CLIENT[0],
        "redirect_uri": REDIRECT_URI,
        "scope": ALL_SCOPES,
        "mode": "simulated",
        "approval_prompt": "auto",
        "state": "state-123",
    }
    params.update(extra)
    return params


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """Return the query parameters of a 302's Location."""
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


async def authorize(client: httpx.AsyncClient, **extra: str) -> str:
    """Run simulated Connect and return the authorization code."""
    response = await client.get("/oauth/authorize", params=authorize_params(**extra))
    return redirect_query(response)["code"]


async def exchange(client: httpx.AsyncClient, code: str) -> httpx.Response:
    """Exchange a code at the token endpoint with Basic client auth."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    return await client.post("/oauth/token", data=data, auth=CLIENT)


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    """Present a refresh token at the token endpoint."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await client.post("/oauth/token", data=data, auth=CLIENT)


async def connect(client: httpx.AsyncClient, **extra: str) -> Session:
    """Connect vehicle(s) end to end and list the vehicles the token reaches."""
    response = await exchange(client, await authorize(client, **extra))
    assert response.status_code == 200, response.text
    tokens = response.json()
    listed = await client.get("/v2.0/vehicles", headers=bearer(tokens["access_token"]))
    return Session(
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        vehicle_ids=listed.json()["vehicles"],
    )


async def vin_of(client: httpx.AsyncClient, *, powertrain: str) -> str:
    """Return the VIN of the first catalog vehicle with this powertrain."""
    vehicles = (await client.get("/sim/vehicles")).json()["vehicles"]
    return next(v["vin"] for v in vehicles if v["powertrain"] == powertrain)


async def connect_powertrain(client: httpx.AsyncClient, powertrain: str, **extra: str) -> Session:
    """Connect the first catalog vehicle of a powertrain (ICE, BEV or PHEV)."""
    vin = await vin_of(client, powertrain=powertrain)
    return await connect(client, single_select_vin=vin, **extra)


async def advance(client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
    """Move the simulated clock forward."""
    response = await client.post("/sim/clock", json={"advance_seconds": seconds})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    """Return the simulator's stats."""
    result: dict[str, Any] = (await client.get("/sim/stats")).json()
    return result
