"""API V3 commands: security lock/unlock and charge start/stop/set-limit change the car."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.simulator.flows import connect, stats
from tests.integration.simulator.v3_flows import (
    CHARGE_SCOPES,
    V3Car,
    connect_powertrain_v3,
    connect_v3,
    error_of,
    v3_client,
)


async def _signal_body(client: httpx.AsyncClient, car: V3Car, code: str) -> Any:
    """Read one signal's body back."""
    response = await client.get(f"{car.base}/signals/{code}", headers=car.headers)
    assert response.status_code == 200, response.text
    return response.json()["attributes"]["body"]


async def test_lock_and_unlock_change_the_lock_signal() -> None:
    """`commands/security/lock|unlock` answer a synchronous command-execution and the
    `closure-islocked` signal follows; each is billed and counted."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        for action, locked in (("unlock", False), ("lock", True)):
            response = await client.post(
                f"{car.base}/commands/security/{action}", headers=car.headers
            )
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            assert data["type"] == "command-execution"
            assert data["id"].startswith("exec_")
            attributes = data["attributes"]
            assert attributes["commandType"] == f"security-{action}"
            assert attributes["status"] == {"value": "SUCCESS"}
            assert attributes["executionMode"] == "sync"
            assert set(data["meta"]) == {"executedAt", "completedAt", "durationInSeconds"}
            assert await _signal_body(client, car, "closure-islocked") == {"value": locked}
        counters = await stats(client)
        assert counters["commands"]["LOCK"] == 1
        assert counters["commands"]["UNLOCK"] == 1
        assert counters["requests"]["by_endpoint"]["v3/commands/security/lock"] == 1
        assert counters["billed_this_month"] == {car.vehicle_id: 4}


@pytest.mark.parametrize(
    ("state", "action", "code"),
    [
        ({"door_open": True}, "lock", "DOOR_OPEN"),
        ({"in_motion": True}, "lock", "IN_MOTION"),
        ({"in_motion": True}, "unlock", "IN_MOTION"),
    ],
)
async def test_the_car_refuses_with_409_vehicle_state(
    state: dict[str, bool], action: str, code: str
) -> None:
    """An open door refuses LOCK, motion refuses both: 409 VEHICLE_STATE in the V3 shape."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post(f"/sim/vehicles/{car.vehicle_id}/state", json=state)
        response = await client.post(f"{car.base}/commands/security/{action}", headers=car.headers)
        assert response.status_code == 409
        error = error_of(response)
        assert (error["type"], error["code"]) == ("VEHICLE_STATE", code)


async def test_charging_starts_stops_and_takes_a_limit() -> None:
    """On an EV, charge start/stop flip `charge-ischarging` and set-limit changes
    `charge-chargelimits`, echoing its parameters."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "BEV", scope=CHARGE_SCOPES)
        assert await _signal_body(client, car, "charge-ischarging") == {"value": False}
        started = await client.post(f"{car.base}/commands/charge/start", headers=car.headers)
        assert started.status_code == 200, started.text
        assert started.json()["data"]["attributes"]["commandType"] == "charge-start"
        assert await _signal_body(client, car, "charge-ischarging") == {"value": True}
        status = await _signal_body(client, car, "charge-detailedchargingstatus")
        assert status == {"value": "CHARGING"}
        again = await client.post(f"{car.base}/commands/charge/start", headers=car.headers)
        assert (again.status_code, error_of(again)["code"]) == (409, "CHARGING_IN_PROGRESS")
        limit = await client.post(
            f"{car.base}/commands/charge/set-limit",
            json={"data": {"attributes": {"percent": 90}}},
            headers=car.headers,
        )
        assert limit.status_code == 200, limit.text
        assert limit.json()["data"]["attributes"]["parameters"] == {"percent": 90}
        limits = await _signal_body(client, car, "charge-chargelimits")
        assert limits == {
            "values": [{"type": "GLOBAL", "limit": 90}],
            "activeLimit": 90,
            "unit": "percent",
        }
        stopped = await client.post(f"{car.base}/commands/charge/stop", headers=car.headers)
        assert stopped.status_code == 200
        not_charging = await client.post(f"{car.base}/commands/charge/stop", headers=car.headers)
        assert error_of(not_charging)["code"] == "NOT_CHARGING"


async def test_an_unplugged_car_cannot_start_charging() -> None:
    """With the cable pulled (`/sim/vehicles/{id}/state`), charge start is 409
    CHARGING_PLUG_NOT_CONNECTED and the plug signal says so."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "PHEV", scope=CHARGE_SCOPES)
        pulled = await client.post(
            f"/sim/vehicles/{car.vehicle_id}/state", json={"plugged_in": False}
        )
        assert pulled.json()["plugged_in"] is False
        plug = await _signal_body(client, car, "charge-ischargingcableconnected")
        assert plug == {"value": False}
        response = await client.post(f"{car.base}/commands/charge/start", headers=car.headers)
        assert (response.status_code, error_of(response)["code"]) == (
            409,
            "CHARGING_PLUG_NOT_CONNECTED",
        )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {"attributes": {"percent": 49}}}, id="too-low"),
        pytest.param({"data": {"attributes": {"percent": 101}}}, id="too-high"),
        pytest.param({"data": {"attributes": {"percent": "80"}}}, id="string"),
        pytest.param({"percent": 80}, id="not-wrapped"),
    ],
)
async def test_a_bad_charge_limit_is_400_and_not_billed(body: dict[str, Any]) -> None:
    """A percent outside 50-100, not an integer, or not under `data.attributes` is 400
    VALIDATION:INVALID_INPUT_FORMAT, before anything is billed."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "BEV", scope=CHARGE_SCOPES)
        response = await client.post(
            f"{car.base}/commands/charge/set-limit", json=body, headers=car.headers
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "INVALID_INPUT_FORMAT"
        not_json = await client.post(
            f"{car.base}/commands/charge/set-limit", content=b"{", headers=car.headers
        )
        assert error_of(not_json)["code"] == "BAD_REQUEST"
        assert (await stats(client))["billed_this_month"] == {}


async def test_charge_commands_need_a_battery_and_the_permission() -> None:
    """An ICE car answers charge commands 501 VEHICLE_NOT_CAPABLE; without
    `control_charge` an EV answers 403 PERMISSION."""
    async with v3_client() as (_, client):
        ice = await connect_powertrain_v3(client, "ICE", scope=CHARGE_SCOPES)
        response = await client.post(f"{ice.base}/commands/charge/start", headers=ice.headers)
        assert response.status_code == 501
        assert error_of(response)["code"] == "VEHICLE_NOT_CAPABLE"
        ev = await connect_powertrain_v3(client, "BEV", token=ice.app_token)
        refused = await client.post(f"{ev.base}/commands/charge/start", headers=ev.headers)
        assert refused.status_code == 403
        assert error_of(refused)["type"] == "PERMISSION"


async def test_a_command_wakes_a_sleeping_car() -> None:
    """A command reaches a sleeping car and wakes it, as on v2."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post(f"/sim/vehicles/{car.vehicle_id}/sleep", json={"asleep": True})
        response = await client.post(f"{car.base}/commands/security/unlock", headers=car.headers)
        assert response.status_code == 200
        vehicle = (await client.get(f"/sim/vehicles/{car.vehicle_id}")).json()
        assert vehicle["asleep"] is False


async def test_a_long_running_command_answers_202_then_its_outcome() -> None:
    """A command whose latency reaches `v3_command_sync_limit_s` answers 202 and streams the
    command-execution (`executionMode: async`), or the car's refusal, as its body."""
    async with v3_client(v3_command_sync_limit_s=0.0) as (_, client):
        car = await connect_v3(client)
        response = await client.post(f"{car.base}/commands/security/unlock", headers=car.headers)
        assert response.status_code == 202
        assert response.headers["sc-request-id"]
        attributes = response.json()["data"]["attributes"]
        assert (attributes["status"], attributes["executionMode"]) == (
            {"value": "SUCCESS"},
            "async",
        )
        await client.post(f"/sim/vehicles/{car.vehicle_id}/state", json={"door_open": True})
        refused = await client.post(f"{car.base}/commands/security/lock", headers=car.headers)
        assert refused.status_code == 202
        assert refused.json()["errors"][0]["code"] == "DOOR_OPEN"
        assert (await stats(client))["errors"]["VEHICLE_STATE:DOOR_OPEN"] == 1


async def test_a_v2_token_sends_v3_commands() -> None:
    """A v2 access token without `sc-user-id` may send commands to its car."""
    async with v3_client() as (_, client):
        session = await connect(client)
        response = await client.post(
            f"/v3/vehicles/{session.vehicle_id}/commands/security/lock", headers=session.headers
        )
        assert response.status_code == 200, response.text


async def test_a_reset_command_was_still_carried_out() -> None:
    """A `reset` fault drops the connection after the car locked: the client sees a
    transport error, the signal shows the command happened."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post(f"{car.base}/commands/security/unlock", headers=car.headers)
        fault = {"kind": "reset", "path": "v3/commands/security/lock", "count": 1}
        await client.post("/sim/faults", json=fault)
        with pytest.raises(httpx.TransportError):
            await client.post(f"{car.base}/commands/security/lock", headers=car.headers)
        assert await _signal_body(client, car, "closure-islocked") == {"value": True}


async def test_a_caller_leaving_a_held_202_leaves_the_simulator_sound() -> None:
    """A long-running command held (`hold` fault) and abandoned by its caller is still
    carried out; its late answer to a gone client is no server error."""
    async with v3_client(v3_command_sync_limit_s=0.0) as (_, client):
        car = await connect_v3(client)
        fault = {"kind": "hold", "path": "v3/commands/security/unlock", "count": 1}
        await client.post("/sim/faults", json=fault)
        call = asyncio.ensure_future(
            client.post(f"{car.base}/commands/security/unlock", headers=car.headers)
        )
        assert (await client.get("/sim/holds", params={"total": 1})).json()["held"] == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await client.post("/sim/holds/release")).json() == {"released": 1}
        async with asyncio.timeout(5):  # the answer is written in the step the hold ends
            while True:
                if (await client.get("/sim/holds")).json()["held"] == 0:
                    break
                await asyncio.sleep(0.005)
        assert await _signal_body(client, car, "closure-islocked") == {"value": False}
        assert "SERVER:INTERNAL" not in (await stats(client))["errors"]
