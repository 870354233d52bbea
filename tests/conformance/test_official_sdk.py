"""The official `smartcar` SDK, unmodified, driven through a whole session against our simulator.

The SDK reads its origins from SMARTCAR_*_ORIGIN when `smartcar.config` is imported, so the
fixture sets those variables and re-executes that module; nothing of the SDK is patched.
The SDK is synchronous (requests), so the simulator runs on its own thread. Its API V3 reads
(`Vehicle.get_signals`, `Vehicle.get_signal`, SMARTCAR_VEHICLE_API_V3_ORIGIN) send the v2
access token and no `sc-user-id`, which the simulator accepts as Smartcar did for them.
"""

from __future__ import annotations

import importlib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from clients.simulator import SimulatorConfig, SimulatorThread
from clients.simulator.connect import DEFAULT_SCOPES as SCOPES
from tests.instants import START_S

pytestmark = pytest.mark.conformance

CLIENT_ID = "conformance-client"
CLIENT_SECRET = "conformance-secret"
REDIRECT_URI = "https://fleet.example/smartcar/callback"


@dataclass(frozen=True)
class Sdk:
    """The SDK modules, loaded with their origins pointed at the simulator."""

    smartcar: Any
    base_url: str

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the simulator's control surface and return its JSON."""
        response = requests.request(method, self.base_url + path, timeout=5, **kwargs)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sdk]:
    """Run a simulator and hand out the official SDK configured to reach only it."""
    config = SimulatorConfig.fast(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        vehicle_rate_limit=None,
        start_at_s=START_S,
    )
    with SimulatorThread(config) as sim:
        base = sim.base_url
        monkeypatch.setenv("SMARTCAR_API_ORIGIN", base)
        monkeypatch.setenv("SMARTCAR_AUTH_ORIGIN", base + "/oauth/token")
        monkeypatch.setenv("SMARTCAR_CONNECT_ORIGIN", base)
        monkeypatch.setenv("SMARTCAR_MANAGEMENT_API_ORIGIN", base)
        monkeypatch.setenv("SMARTCAR_VEHICLE_API_V3_ORIGIN", base)
        import smartcar.config

        importlib.reload(smartcar.config)
        import smartcar

        try:
            yield Sdk(smartcar=smartcar, base_url=base)
        finally:
            monkeypatch.undo()
            importlib.reload(smartcar.config)


def _vehicle_with(sdk: Sdk, powertrain: str) -> dict[str, Any]:
    """Pick an unconnected catalog vehicle with the given powertrain."""
    catalog = sdk.sim("GET", "/sim/vehicles")["vehicles"]
    for vehicle in catalog:
        if vehicle["powertrain"] == powertrain and not vehicle.get("owner_user_id"):
            return dict(vehicle)
    raise AssertionError(f"the simulator catalog has no free {powertrain} vehicle")


def _connect(sdk: Sdk, auth: Any, vin: str, state: str) -> Any:
    """Walk simulated Connect for one VIN and exchange the code through the SDK."""
    url = auth.get_auth_url(list(SCOPES), {"state": state, "single_select": {"vin": vin}})
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    location = urllib.parse.urlsplit(redirect.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.netloc == "fleet.example"
    assert query["state"] == [state]
    return auth.exchange_code(query["code"][0])


def test_a_whole_sdk_session_works_against_the_simulator(sdk: Sdk) -> None:
    """Connect, read everything, batch, command, rotate, get limited and disconnect via the SDK."""
    smartcar = sdk.smartcar
    exception = smartcar.SmartcarException
    auth = smartcar.AuthClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        mode="simulated",
    )
    phev = _vehicle_with(sdk, "PHEV")
    access = _connect(sdk, auth, phev["vin"], state="state-phev")
    assert access.expires_in == 7200
    assert access.access_token
    assert access.refresh_token

    vehicles = smartcar.get_vehicles(access.access_token)
    assert vehicles.vehicles == [phev["id"]]
    car = smartcar.Vehicle(phev["id"], access.access_token)

    attributes = car.attributes()
    assert (attributes.id, attributes.make, attributes.model, attributes.year) == (
        phev["id"],
        phev["make"],
        phev["model"],
        phev["year"],
    )
    assert car.vin().vin == phev["vin"]
    location = car.location()
    assert -90 <= location.latitude <= 90
    assert -180 <= location.longitude <= 180
    odometer = car.odometer()
    assert odometer.distance > 0
    assert odometer.meta.unit_system == "metric"
    assert odometer.meta.data_age
    assert odometer.meta.request_id
    assert 0 <= car.fuel().percent_remaining <= 1
    assert 0 <= car.battery().percent_remaining <= 1
    assert isinstance(car.lock_status().is_locked, bool)
    tires = car.tire_pressure()
    assert all(isinstance(p, float) for p in (tires.front_left, tires.back_right))
    assert 0 <= car.engine_oil().life_remaining <= 1
    assert set(car.permissions().permissions) == set(SCOPES)

    # A batch on an EV: the fuel path fails inside the batch, the others still answer.
    bev = _vehicle_with(sdk, "BEV")
    ev_access = _connect(sdk, auth, bev["vin"], state="state-bev")
    ev = smartcar.Vehicle(bev["id"], ev_access.access_token)
    batch = ev.batch(["/odometer", "/fuel", "/battery"])
    assert batch.odometer().distance > 0
    assert 0 <= batch.battery().percent_remaining <= 1
    with pytest.raises(exception) as not_capable:
        batch.fuel()
    assert (not_capable.value.type, not_capable.value.code) == (
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
    )

    # Commands: the lock state follows.
    assert car.lock().status == "success"
    assert car.lock_status().is_locked is True
    assert car.unlock().status == "success"
    assert car.lock_status().is_locked is False

    # Rotation: the new pair works; the old refresh token dies after the grace window.
    rotated = auth.exchange_refresh_token(access.refresh_token)
    assert rotated.refresh_token != access.refresh_token
    assert smartcar.Vehicle(phev["id"], rotated.access_token).odometer().distance > 0
    sdk.sim("POST", "/sim/clock", json={"advance_seconds": 61})
    with pytest.raises(exception) as reused:
        auth.exchange_refresh_token(access.refresh_token)
    assert reused.value.type == "invalid_grant"
    assert access.refresh_token not in str(reused.value)

    # A per-vehicle rate limit surfaces with retry_after set.
    tight = {"capacity": 3, "refill_per_s": 0.1}
    sdk.sim("POST", "/sim/config", json={"vehicle_rate_limit": tight})
    car = smartcar.Vehicle(phev["id"], rotated.access_token)
    for _ in range(tight["capacity"]):
        car.odometer()
    with pytest.raises(exception) as limited:
        car.odometer()
    assert limited.value.status_code == 429
    assert (limited.value.type, limited.value.code) == ("RATE_LIMIT", "VEHICLE")
    assert int(limited.value.retry_after) > 0

    # Disconnect: afterwards the old access token is refused.
    sdk.sim("POST", "/sim/clock", json={"advance_seconds": 3600})
    assert car.disconnect().status == "success"
    with pytest.raises(exception) as refused:
        car.odometer()
    assert refused.value.status_code == 401
    assert refused.value.type == "AUTHENTICATION"

    stats = sdk.sim("GET", "/sim/stats")
    assert stats["token_grants"] == {
        "authorization_code": 2,
        "refresh_token": 1,
        "client_credentials": 0,
    }
    assert stats["token_rejections"]["invalid_grant"] == 1
    assert stats["requests"]["by_endpoint"]["batch"] == 1


def test_the_sdk_reads_and_commands_an_evs_charging(sdk: Sdk) -> None:
    """The SDK's charge calls work unmodified: status and limit (a fraction), start, set
    the limit, stop, and both reads in one batch."""
    smartcar = sdk.smartcar
    auth = smartcar.AuthClient(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI
    )
    bev = _vehicle_with(sdk, "BEV")
    access = _connect(sdk, auth, bev["vin"], state="state-bev")
    car = smartcar.Vehicle(bev["id"], access.access_token)
    status = car.charge()
    assert (status.is_plugged_in, status.state) == (True, "NOT_CHARGING")
    assert car.get_charge_limit().limit == 0.8
    assert car.start_charge().status == "success"
    assert car.charge().state == "CHARGING"
    assert car.set_charge_limit(0.9).status == "success"
    assert car.stop_charge().message == "Successfully sent request to vehicle"
    batch = car.batch(["/charge", "/charge/limit"])
    assert batch.charge().state == "NOT_CHARGING"
    assert batch.get_charge_limit().limit == 0.9
    commands = sdk.sim("GET", "/sim/stats")["commands"]
    assert (commands["CHARGE_START"], commands["CHARGE_SET_LIMIT"]) == (1, 1)


def test_the_sdk_deletes_connections_through_the_management_api(sdk: Sdk) -> None:
    """delete_connections with the application management token removes a vehicle's link."""
    smartcar = sdk.smartcar
    auth = smartcar.AuthClient(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI
    )
    ice = _vehicle_with(sdk, "ICE")
    access = _connect(sdk, auth, ice["vin"], state="state-ice")
    deleted = smartcar.delete_connections(
        SimulatorConfig().management_token, {"vehicle_id": ice["id"]}
    )
    assert [c.vehicle_id for c in deleted.connections] == [ice["id"]]
    with pytest.raises(smartcar.SmartcarException) as refused:
        smartcar.Vehicle(ice["id"], access.access_token).odometer()
    assert refused.value.status_code == 401


def test_the_sdk_reads_v3_signals_with_its_access_token(sdk: Sdk) -> None:
    """`get_signals` and `get_signal` (SDK 6.19, v2 token, no `sc-user-id`) read JSON:API
    signals whose values match the SDK's v2 reads of the same car."""
    smartcar = sdk.smartcar
    auth = smartcar.AuthClient(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI
    )
    ice = _vehicle_with(sdk, "ICE")
    access = _connect(sdk, auth, ice["vin"], state="state-v3")
    car = smartcar.Vehicle(ice["id"], access.access_token)

    signals = car.get_signals()
    assert signals["headers"]["SC-Request-Id"]
    by_code = {item["id"]: item for item in signals["body"]["data"]}
    odometer = by_code["odometer-traveleddistance"]["attributes"]
    assert odometer["status"] == {"value": "SUCCESS"}
    assert odometer["body"] == {"unit": "kilometers", "value": car.odometer().distance}
    assert by_code["vehicleidentification-vin"]["attributes"]["body"] == {"value": ice["vin"]}
    battery = by_code["tractionbattery-stateofcharge"]["attributes"]["status"]
    assert battery["value"] == "ERROR"

    locked = car.get_signal("closure-islocked")
    assert locked["body"]["attributes"]["status"]["value"] == "SUCCESS"
    assert locked["body"]["attributes"]["body"] == {"value": car.lock_status().is_locked}
    fuel = car.get_signal("internalcombustionengine-fuellevel")["body"]["attributes"]["body"]
    assert fuel == {"unit": "percent", "value": round(car.fuel().percent_remaining * 100, 1)}

    with pytest.raises(smartcar.SmartcarException) as unknown:
        car.get_signal("odometer")
    assert unknown.value.status_code == 404
    assert "RESOURCE_NOT_FOUND" in str(unknown.value)
    stats = sdk.sim("GET", "/sim/stats")["requests"]["by_endpoint"]
    assert (stats["v3/signals"], stats["v3/signal"]) == (1, 3)


def test_an_application_token_needs_the_user_header_the_sdk_cannot_send(sdk: Sdk) -> None:
    """With an application token the SDK's `get_signals` fails 400 (no `sc-user-id`); the V3
    error body reaches the caller in the exception's message."""
    smartcar = sdk.smartcar
    token = sdk.sim(
        "POST",
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert token["expires_in"] == 3600
    bev = _vehicle_with(sdk, "BEV")
    auth = smartcar.AuthClient(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI
    )
    _connect(sdk, auth, bev["vin"], state="state-app")
    with pytest.raises(smartcar.SmartcarException) as refused:
        smartcar.Vehicle(bev["id"], token["access_token"]).get_signals()
    assert refused.value.status_code == 400
    assert "MISSING_PARAMETER" in str(refused.value)


def test_the_sdks_compatibility_check_reads_the_simulators_answers(sdk: Sdk) -> None:
    """`smartcar.get_compatibility` (v2.0, Basic client credentials) reads a catalog car
    as compatible with its capabilities, an unknown make as MAKE_NOT_COMPATIBLE, and a
    bad VIN as the SDK's VALIDATION exception."""
    smartcar = sdk.smartcar
    options = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    bev = _vehicle_with(sdk, "BEV")
    answer = smartcar.get_compatibility(bev["vin"], ["read_battery", "read_fuel"], "US", options)
    assert (answer.compatible, answer.reason) == (True, None)
    by_permission = {c.permission: (c.capable, c.reason) for c in answer.capabilities}
    assert by_permission == {
        "read_battery": (True, None),
        "read_fuel": (False, "VEHICLE_NOT_CAPABLE"),
    }
    unknown = smartcar.get_compatibility("SALGS2SE1LA000001", ["read_vin"], "US", options)
    assert (unknown.compatible, unknown.reason, unknown.capabilities) == (
        False,
        "MAKE_NOT_COMPATIBLE",
        [],
    )
    with pytest.raises(smartcar.SmartcarException) as refused:
        smartcar.get_compatibility("NOT-A-VIN", ["read_vin"], "US", options)
    assert refused.value.type == "VALIDATION"
