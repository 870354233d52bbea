"""Our Smartcar client against the simulator over real HTTP: the edge the gateway will stand on."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clients.simulator import SimulatorConfig, serve_simulator
from clients.simulator.connect import DEFAULT_SCOPES as SCOPES
from clients.smartcar import (
    AppRateLimited,
    AuthenticationError,
    Battery,
    ClientCredentials,
    Fuel,
    InvalidGrant,
    Odometer,
    PermissionDenied,
    Secret,
    ServerError,
    SmartcarAuth,
    SmartcarCompatibility,
    SmartcarConnectionError,
    SmartcarEndpoints,
    SmartcarManagement,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarVehicles,
    TokenPair,
    UpstreamError,
    VehicleAsleep,
    VehicleNotCapable,
    VehicleRateLimited,
    VehicleRequestLimitReached,
    VehicleStateError,
)
from tests.instants import START_S

CREDENTIALS = ClientCredentials(
    client_id="integration-client",
    client_secret=Secret("integration-secret"),
    redirect_uri="https://fleet.example/callback",
)


@dataclass
class Rig:
    """A running simulator and our clients pointed at it."""

    http: httpx.AsyncClient
    base_url: str
    auth: SmartcarAuth
    vehicles: SmartcarVehicles
    management: SmartcarManagement
    compatibility: SmartcarCompatibility

    async def sim(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control surface and return its JSON."""
        response = await self.http.request(method, self.base_url + path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def free_vehicle(self, powertrain: str) -> dict[str, Any]:
        """Return an unconnected catalog vehicle with the given powertrain."""
        for vehicle in (await self.sim("GET", "/sim/vehicles"))["vehicles"]:
            if vehicle["powertrain"] == powertrain and not vehicle["owner_user_id"]:
                return dict(vehicle)
        raise AssertionError(f"no free {powertrain} vehicle in the catalog")

    async def authorize(self, *, scopes: Iterable[str] = SCOPES, **params: str) -> dict[str, str]:
        """Walk simulated Connect and return the redirect's query parameters."""
        vin = params.pop("vin", None)
        url = self.auth.connect_url(
            scopes=scopes,
            state="s-1",
            mode="simulated",
            single_select_vin=vin,
            extra_params=params or None,
        )
        redirect = await self.http.get(url)
        assert redirect.status_code == 302
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
        return {name: values[0] for name, values in query.items()}

    async def connect(self, powertrain: str, **params: str) -> tuple[str, TokenPair]:
        """Connect one free vehicle of that powertrain; return its id and the token pair."""
        vehicle = await self.free_vehicle(powertrain)
        redirect = await self.authorize(vin=vehicle["vin"], **params)
        return vehicle["id"], await self.auth.exchange_code(redirect["code"])


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """Serve a fast simulator without a per-vehicle limit and wire our clients to it."""
    config = SimulatorConfig.fast(
        start_at_s=START_S,
        client_id=CREDENTIALS.client_id,
        client_secret=CREDENTIALS.client_secret.reveal(),
        vehicle_rate_limit=None,
        hang_s=2.0,
    )
    async with serve_simulator(config) as sim, httpx.AsyncClient(timeout=5.0) as http:
        endpoints = SmartcarEndpoints.for_base_url(sim.base_url)
        yield Rig(
            http=http,
            base_url=sim.base_url,
            auth=SmartcarAuth(http=http, credentials=CREDENTIALS, endpoints=endpoints),
            vehicles=SmartcarVehicles(http=http, endpoints=endpoints),
            management=SmartcarManagement(
                http=http,
                endpoints=endpoints,
                management_token=Secret(SimulatorConfig().management_token or ""),
            ),
            compatibility=SmartcarCompatibility(
                http=http, credentials=CREDENTIALS, endpoints=endpoints
            ),
        )


async def test_connect_read_and_command_a_plug_in_hybrid(rig: Rig) -> None:
    """A connected PHEV answers every read normalised to percent and km, and obeys commands."""
    vehicle_id, tokens = await rig.connect("PHEV")
    token = tokens.access_token
    api = rig.vehicles
    assert (await api.list_vehicles(token)).value.vehicle_ids == (vehicle_id,)
    assert (await api.attributes(token, vehicle_id)).value.id == vehicle_id
    assert len((await api.vin(token, vehicle_id)).value) == 17

    odometer = await api.odometer(token, vehicle_id)
    assert odometer.value.distance_km > 0
    assert odometer.meta.data_age is not None
    assert odometer.meta.fetched_at is not None
    assert odometer.meta.data_age <= odometer.meta.fetched_at
    fuel = (await api.fuel(token, vehicle_id)).value
    assert fuel.percent_remaining is not None
    assert 0 <= fuel.percent_remaining <= 100
    battery = (await api.battery(token, vehicle_id)).value
    assert 0 <= battery.percent_remaining <= 100
    oil = (await api.engine_oil(token, vehicle_id)).value
    assert 0 <= oil.life_remaining_percent <= 100
    tires = (await api.tire_pressure(token, vehicle_id)).value
    assert 150 < tires.front_left_kpa < 260
    assert set((await api.permissions(token, vehicle_id)).value.permissions) == set(SCOPES)

    assert (await api.lock(token, vehicle_id)).value.status == "success"
    assert (await api.lock_status(token, vehicle_id)).value.is_locked is True
    await api.unlock(token, vehicle_id)
    assert (await api.lock_status(token, vehicle_id)).value.is_locked is False


async def test_a_batch_returns_each_paths_own_outcome(rig: Rig) -> None:
    """On an EV the fuel item fails as VehicleNotCapable while odometer and battery succeed."""
    vehicle_id, tokens = await rig.connect("BEV")
    result = await rig.vehicles.batch(
        tokens.access_token, vehicle_id, ["/odometer", "/fuel", "/battery"]
    )
    assert result.reading("/odometer", Odometer).value.distance_km > 0
    assert result.reading("/battery", Battery).meta.data_age is not None
    fuel = result.item("/fuel")
    assert not fuel.ok
    assert isinstance(fuel.error, VehicleNotCapable)
    with pytest.raises(VehicleNotCapable):
        result.reading("/fuel", Fuel)
    stats = await rig.sim("GET", "/sim/stats")
    assert stats["requests"]["by_endpoint"]["batch"] == 1


async def test_a_rate_limited_batch_item_keeps_its_retry_after(rig: Rig) -> None:
    """A 429 inside one batch item carries retry-after into that item's typed error."""
    vehicle_id, tokens = await rig.connect("ICE")
    fault = {"kind": "rate_limit", "vehicle_id": vehicle_id, "path": "fuel", "retry_after_s": 42}
    await rig.sim("POST", "/sim/faults", fault)
    result = await rig.vehicles.batch(tokens.access_token, vehicle_id, ["/odometer", "/fuel"])
    assert result.item("/odometer").ok
    error = result.item("/fuel").error
    assert isinstance(error, VehicleRateLimited)
    assert error.retry_after_s == 42


async def test_a_refresh_token_dies_after_its_grace_window(rig: Rig) -> None:
    """The new pair works at once; the old refresh token is refused 61 simulated seconds later."""
    vehicle_id, first = await rig.connect("ICE")
    second = await rig.auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert (await rig.vehicles.odometer(second.access_token, vehicle_id)).value.distance_km > 0
    await rig.sim("POST", "/sim/clock", {"advance_seconds": 61})
    with pytest.raises(InvalidGrant) as refused:
        await rig.auth.refresh(first.refresh_token)
    assert first.refresh_token.reveal() not in repr(refused.value)
    assert first.refresh_token.reveal() not in str(refused.value)


async def test_an_access_token_expires_after_two_simulated_hours(rig: Rig) -> None:
    """Past 7200 simulated seconds the access token is refused; a refresh fixes it."""
    vehicle_id, tokens = await rig.connect("ICE")
    await rig.sim("POST", "/sim/clock", {"advance_seconds": 7201})
    with pytest.raises(AuthenticationError):
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    renewed = await rig.auth.refresh(tokens.refresh_token)
    assert (await rig.vehicles.odometer(renewed.access_token, vehicle_id)).value.distance_km > 0


async def test_the_vehicle_rate_limit_reports_retry_after_and_lifts(rig: Rig) -> None:
    """Past the per-vehicle bucket Smartcar says 429 VEHICLE with retry-after; later it answers."""
    vehicle_id, tokens = await rig.connect("ICE")
    await rig.sim(
        "POST", "/sim/config", {"vehicle_rate_limit": {"capacity": 2, "refill_per_s": 0.1}}
    )
    for _ in range(2):
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    with pytest.raises(VehicleRateLimited) as limited:
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    assert limited.value.retry_after_s is not None
    assert limited.value.retry_after_s > 0
    await rig.sim("POST", "/sim/clock", {"advance_seconds": limited.value.retry_after_s})
    assert (await rig.vehicles.odometer(tokens.access_token, vehicle_id)).value.distance_km > 0


async def test_the_app_wide_bucket_and_the_monthly_allowance_are_typed(rig: Rig) -> None:
    """The application bucket gives AppRateLimited; the monthly allowance gives a billing error."""
    vehicle_id, tokens = await rig.connect("ICE")
    await rig.sim("POST", "/sim/config", {"monthly_request_limit": 1})
    await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    with pytest.raises(VehicleRequestLimitReached):
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    await rig.sim("POST", "/sim/config", {"monthly_request_limit": None})
    await rig.sim("POST", "/sim/config", {"app_rate_limit": {"capacity": 1, "refill_per_s": 0.01}})
    await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    with pytest.raises(AppRateLimited):
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)


async def test_vehicle_state_errors_are_typed(rig: Rig) -> None:
    """A sleeping car answers VehicleAsleep; locking with a door open is VEHICLE_STATE:DOOR_OPEN."""
    vehicle_id, tokens = await rig.connect("BEV")
    await rig.sim("POST", f"/sim/vehicles/{vehicle_id}/sleep", {"asleep": True})
    with pytest.raises(VehicleAsleep) as asleep:
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    assert asleep.value.suggested_user_message
    await rig.sim("POST", f"/sim/vehicles/{vehicle_id}/sleep", {"asleep": False})
    await rig.sim("POST", f"/sim/vehicles/{vehicle_id}/state", {"door_open": True})
    with pytest.raises(VehicleStateError) as door:
        await rig.vehicles.lock(tokens.access_token, vehicle_id)
    assert door.value.code == "DOOR_OPEN"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("server_error", ServerError),
        ("upstream", UpstreamError),
        ("malformed", SmartcarProtocolError),
    ],
)
async def test_injected_upstream_failures_are_typed(
    rig: Rig, kind: str, error: type[Exception]
) -> None:
    """Smartcar 5xx answers and broken bodies become the matching client errors."""
    vehicle_id, tokens = await rig.connect("ICE")
    await rig.sim("POST", "/sim/faults", {"kind": kind, "vehicle_id": vehicle_id, "count": 1})
    with pytest.raises(error):
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    assert (await rig.vehicles.odometer(tokens.access_token, vehicle_id)).value.distance_km > 0


async def test_a_command_that_hangs_times_out_as_possibly_sent(rig: Rig) -> None:
    """A command whose answer never comes in time is a timeout with request_sent=True."""
    vehicle_id, tokens = await rig.connect("ICE")
    fault = {"kind": "hang", "vehicle_id": vehicle_id, "path": "security", "count": 1}
    await rig.sim("POST", "/sim/faults", fault)
    with pytest.raises(SmartcarTimeout) as timed_out:
        await rig.vehicles.lock(tokens.access_token, vehicle_id, timeout_s=0.2)
    assert timed_out.value.request_sent is True


async def test_a_reset_connection_is_a_connection_error(rig: Rig) -> None:
    """A TCP reset from Smartcar's side becomes SmartcarConnectionError, not an httpx error."""
    vehicle_id, tokens = await rig.connect("ICE")
    await rig.sim("POST", "/sim/faults", {"kind": "reset", "vehicle_id": vehicle_id, "count": 1})
    with pytest.raises(SmartcarConnectionError):
        await rig.vehicles.unlock(tokens.access_token, vehicle_id)


async def test_an_owner_with_several_vehicles_shares_one_user(rig: Rig) -> None:
    """One Connect of a multi-vehicle owner yields one token pair covering all their cars."""
    redirect = await rig.authorize(sim_vehicles="3")
    tokens = await rig.auth.exchange_code(redirect["code"])
    page = (await rig.vehicles.list_vehicles(tokens.access_token)).value
    assert page.count == 3
    assert len(page.vehicle_ids) == 3
    user_id = (await rig.vehicles.user(tokens.access_token)).value
    for vehicle_id in page.vehicle_ids:
        await rig.vehicles.odometer(tokens.access_token, vehicle_id)
    listed = (await rig.sim("GET", "/sim/vehicles"))["vehicles"]
    owners = {v["owner_user_id"] for v in listed if v["id"] in page.vehicle_ids}
    assert owners == {user_id}


async def test_withheld_scopes_are_missing_and_refused(rig: Rig) -> None:
    """Scopes an owner withholds are missing from permissions and their command is refused."""
    vehicle = await rig.free_vehicle("ICE")
    redirect = await rig.authorize(vin=vehicle["vin"], sim_withhold="control_security")
    tokens = await rig.auth.exchange_code(redirect["code"])
    granted = (await rig.vehicles.permissions(tokens.access_token, vehicle["id"])).value
    assert "control_security" not in granted.permissions
    with pytest.raises(PermissionDenied):
        await rig.vehicles.lock(tokens.access_token, vehicle["id"])


async def test_a_required_scope_is_granted_whatever_the_owner_unticks(rig: Rig) -> None:
    """A Connect URL marking control_security `required:` gets it granted even from an owner
    who would withhold it; the lock then works."""
    vehicle = await rig.free_vehicle("ICE")
    url = rig.auth.connect_url(
        scopes=SCOPES,
        required=["control_security"],
        state="s-1",
        mode="simulated",
        single_select_vin=vehicle["vin"],
        extra_params={"sim_withhold": "control_security read_tires"},
    )
    redirect = await rig.http.get(url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    tokens = await rig.auth.exchange_code(query["code"][0])
    granted = (await rig.vehicles.permissions(tokens.access_token, vehicle["id"])).value
    assert "control_security" in granted.permissions
    assert "read_tires" not in granted.permissions
    await rig.vehicles.lock(tokens.access_token, vehicle["id"])


async def test_compatibility_by_vin_reads_the_simulators_answers(rig: Rig) -> None:
    """The Compatibility API client reads a catalog EV (battery capable, fuel not) and an
    unknown make (not compatible); a wrong client secret is AuthenticationError."""
    ev = await rig.free_vehicle("BEV")
    answer = await rig.compatibility.by_vin(
        ev["vin"], scopes=["read_battery", "read_fuel"], country="US"
    )
    assert answer.value.compatible
    assert {(c.permission, c.capable, c.reason) for c in answer.value.capabilities} == {
        ("read_battery", True, None),
        ("read_fuel", False, "VEHICLE_NOT_CAPABLE"),
    }
    assert answer.meta.request_id
    unknown = await rig.compatibility.by_vin("SALGS2SE1LA000001", scopes=["read_vin"], country="US")
    assert (unknown.value.compatible, unknown.value.reason) == (False, "MAKE_NOT_COMPATIBLE")
    stranger = SmartcarCompatibility(
        http=rig.http,
        credentials=ClientCredentials(
            client_id=CREDENTIALS.client_id,
            client_secret=Secret("not-the-secret"),
            redirect_uri=CREDENTIALS.redirect_uri,
        ),
        endpoints=SmartcarEndpoints.for_base_url(rig.base_url),
    )
    with pytest.raises(AuthenticationError):
        await stranger.by_vin(ev["vin"], scopes=["read_vin"], country="US")


async def test_a_denied_connect_redirects_with_access_denied(rig: Rig) -> None:
    """An owner who denies access comes back with error=access_denied and the state, no code."""
    redirect = await rig.authorize(sim_deny="1")
    assert redirect["error"] == "access_denied"
    assert redirect["state"] == "s-1"
    assert "code" not in redirect


async def test_disconnect_and_management_delete_revoke_access(rig: Rig) -> None:
    """After DELETE /application, and after a management delete, the old token gets 401."""
    first_id, first = await rig.connect("ICE")
    assert (await rig.vehicles.disconnect(first.access_token, first_id)).value == "success"
    with pytest.raises(AuthenticationError):
        await rig.vehicles.odometer(first.access_token, first_id)

    second_id, second = await rig.connect("BEV")
    deleted = (await rig.management.delete_connections(vehicle_id=second_id)).value
    assert [c.vehicle_id for c in deleted] == [second_id]
    with pytest.raises(AuthenticationError):
        await rig.vehicles.battery(second.access_token, second_id)
