"""API V3 vehicle reads: `GET /v3/vehicles/{id}`, its signals list and single signals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from clients.simulator.signals import SIGNALS
from tests.instants import START_S
from tests.integration.simulator.flows import (
    advance,
    authorize_params,
    bearer,
    connect,
    redirect_query,
    stats,
)
from tests.integration.simulator.v3_flows import (
    CHARGE_SCOPES,
    V3Car,
    app_token,
    connect_powertrain_v3,
    connect_v3,
    error_of,
    signal_of,
    v3_client,
)

START_MS = round(START_S * 1000)


async def test_the_connect_redirect_carries_the_user_id_and_still_a_code() -> None:
    """Simulated Connect redirects with `code`, `user_id` and `state`; the user id is the
    vehicle's owner."""
    async with v3_client() as (_, client):
        query = redirect_query(await client.get("/oauth/authorize", params=authorize_params()))
        assert set(query) == {"code", "user_id", "state"}
        owners = {
            v["owner_user_id"] for v in (await client.get("/sim/vehicles")).json()["vehicles"]
        }
        assert query["user_id"] in owners


async def test_the_signals_list_is_a_json_api_page_of_every_signal() -> None:
    """Every catalogue signal comes in one page: id = code, SUCCESS with body and
    millisecond `oemUpdatedAt` (not after `retrievedAt`), links, the included vehicle."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "PHEV", scope=CHARGE_SCOPES)
        response = await client.get(f"{car.base}/signals", headers=car.headers)
        assert response.status_code == 200, response.text
        assert response.headers["sc-request-id"]
        document = response.json()
        assert [item["id"] for item in document["data"]] == [spec.code for spec in SIGNALS]
        count = len(SIGNALS)
        assert document["meta"] == {"page": 1, "pageSize": count, "totalCount": count}
        assert (document["links"]["next"], document["links"]["previous"]) == (None, None)
        assert document["included"]["vehicle"]["id"] == car.vehicle_id
        odometer = signal_of(document, "odometer-traveleddistance")
        attributes = odometer["attributes"]
        assert attributes["status"] == {"value": "SUCCESS"}
        assert attributes["body"]["unit"] == "kilometers"
        assert attributes["body"]["value"] > 0
        assert (attributes["name"], attributes["group"]) == ("TraveledDistance", "Odometer")
        meta = odometer["meta"]
        assert START_MS - 3_600_000 <= meta["oemUpdatedAt"] <= meta["retrievedAt"]
        assert odometer["links"]["self"] == f"/vehicles/{car.vehicle_id}/signals/{odometer['id']}"
        for code in ("tractionbattery-stateofcharge", "internalcombustionengine-fuellevel"):
            percent = signal_of(document, code)["attributes"]["body"]
            assert percent["unit"] == "percent"
            assert 0 <= percent["value"] <= 100
        assert signal_of(document, "vehicleidentification-vin")["meta"]["oemUpdatedAt"] == 0


async def test_what_a_car_cannot_report_is_an_error_item_inside_the_200() -> None:
    """An EV's fuel signals are ERROR items (COMPATIBILITY:VEHICLE_NOT_CAPABLE, no body);
    signals outside the granted scopes are ERROR items of type PERMISSION."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "BEV")
        document = (await client.get(f"{car.base}/signals", headers=car.headers)).json()
        fuel = signal_of(document, "internalcombustionengine-fuellevel")
        status = fuel["attributes"]["status"]
        assert status["value"] == "ERROR"
        assert (status["error"]["type"], status["error"]["code"]) == (
            "COMPATIBILITY",
            "VEHICLE_NOT_CAPABLE",
        )
        assert "body" not in fuel["attributes"]
        assert set(fuel["meta"]) == {"retrievedAt"}
        charging = signal_of(document, "charge-ischarging")["attributes"]["status"]
        assert charging["error"]["type"] == "PERMISSION"
        soc = signal_of(document, "tractionbattery-stateofcharge")
        assert soc["attributes"]["status"] == {"value": "SUCCESS"}


async def test_an_ice_car_reports_fuel_oil_tires_and_doors() -> None:
    """An ICE car's fuel level, range, oil life, tyre pressures (kPa, row/column) and doors
    are SUCCESS; its battery and charge signals are not capable."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "ICE", scope=CHARGE_SCOPES)
        document = (await client.get(f"{car.base}/signals", headers=car.headers)).json()
        body = {item["id"]: item["attributes"].get("body") for item in document["data"]}
        assert body["internalcombustionengine-range"]["unit"] == "kilometers"
        assert 0 <= body["internalcombustionengine-oillife"]["value"] <= 100
        tires = body["wheel-tires"]
        assert (tires["unit"], tires["rowCount"], tires["columnCount"]) == ("kPa", 2, 2)
        assert all(175 <= t["tirePressure"] <= 237 for t in tires["values"])
        assert {(d["row"], d["column"]) for d in body["closure-doors"]["values"]} == {
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
        }
        assert body["connectivitystatus-isonline"] == {"value": True}
        for code in ("tractionbattery-stateofcharge", "charge-ischarging"):
            assert signal_of(document, code)["attributes"]["status"]["value"] == "ERROR"


async def test_a_single_signal_is_the_unwrapped_resource_and_an_unknown_code_is_404() -> None:
    """`/signals/{code}` answers the resource itself (as Smartcar's example does); a code
    outside the catalogue is 404 RESOURCE_NOT_FOUND and not billed."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        response = await client.get(f"{car.base}/signals/closure-islocked", headers=car.headers)
        assert response.status_code == 200, response.text
        resource = response.json()
        assert (resource["id"], resource["type"]) == ("closure-islocked", "signal")
        assert isinstance(resource["attributes"]["body"]["value"], bool)
        unknown = await client.get(f"{car.base}/signals/vin", headers=car.headers)
        assert unknown.status_code == 404
        assert error_of(unknown)["type"] == "RESOURCE_NOT_FOUND"
        assert (await stats(client))["billed_this_month"] == {car.vehicle_id: 1}


async def test_get_vehicle_is_wrapped_and_not_billed() -> None:
    """`GET /v3/vehicles/{id}` answers `{data: {id, type: vehicle, attributes}}` without
    `sc-user-id`, and is neither billed nor limited per vehicle."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "BEV")
        response = await client.get(
            car.base, headers={"Authorization": car.headers["Authorization"]}
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert (data["id"], data["type"]) == (car.vehicle_id, "vehicle")
        assert data["attributes"]["powertrainType"] == "BEV"
        assert data["attributes"]["mode"] == "live"
        assert set(data["attributes"]) == {"make", "model", "year", "powertrainType", "mode"}
        counters = await stats(client)
        assert counters["billed_this_month"] == {}
        assert counters["requests"]["by_endpoint"]["v3/vehicle"] == 1


def _without_user(car: V3Car) -> dict[str, str]:
    return {"Authorization": car.headers["Authorization"]}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        pytest.param(lambda car: {}, 401, "UNAUTHORIZED", id="no-token"),
        pytest.param(
            lambda car: {**car.headers, "Authorization": "Bearer nope"},
            401,
            "UNAUTHORIZED",
            id="unknown-token",
        ),
        pytest.param(
            lambda car: {**car.headers, "Authorization": "Basic Zm9vOmJhcg=="},
            401,
            "UNAUTHORIZED",
            id="basic",
        ),
        pytest.param(_without_user, 400, "MISSING_PARAMETER", id="no-user"),
        pytest.param(
            lambda car: {**car.headers, "sc-user-id": ""}, 400, "MISSING_PARAMETER", id="empty"
        ),
        pytest.param(
            lambda car: {**car.headers, "sc-user-id": "someone-else"},
            403,
            "ACCESS_DENIED",
            id="other-user",
        ),
    ],
)
async def test_credentials_and_the_user_header_are_checked(
    headers: Callable[[V3Car], dict[str, str]], status: int, code: str
) -> None:
    """No or a bad token is 401 UNAUTHORIZED, an application token without `sc-user-id` 400
    MISSING_PARAMETER, with another user's id 403 ACCESS_DENIED; none is billed."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        for path in ("/signals", "/signals/closure-islocked", "/commands/security/lock"):
            method = "POST" if "commands" in path else "GET"
            response = await client.request(method, car.base + path, headers=headers(car))
            assert response.status_code == status
            assert error_of(response)["code"] == code
        assert (await stats(client))["billed_this_month"] == {}


async def test_another_users_car_and_a_made_up_vehicle_are_403() -> None:
    """An application token naming a real user gets 403 on a car that user has no
    connection to, and on a vehicle id that does not exist."""
    async with v3_client() as (_, client):
        mine = await connect_v3(client, user="alice")
        theirs = await connect_v3(client, user="bob")
        other = await client.get(f"{theirs.base}/signals", headers=mine.headers)
        assert other.status_code == 403
        assert error_of(other)["code"] == "ACCESS_DENIED"
        invented = await client.get("/v3/vehicles/not-a-car/signals", headers=mine.headers)
        assert invented.status_code == 403


async def test_a_v2_access_token_reads_v3_without_the_user_header() -> None:
    """A v2 access token (as the official SDK 6.19 sends it) reads signals with no
    `sc-user-id`; naming another user with it is 403."""
    async with v3_client() as (_, client):
        session = await connect(client)
        base = f"/v3/vehicles/{session.vehicle_id}"
        response = await client.get(f"{base}/signals", headers=session.headers)
        assert response.status_code == 200, response.text
        single = await client.get(
            f"{base}/signals/odometer-traveleddistance", headers=session.headers
        )
        assert single.status_code == 200
        mismatch = await client.get(
            f"{base}/signals", headers={**session.headers, "sc-user-id": "someone-else"}
        )
        assert mismatch.status_code == 403


async def test_imperial_units_are_miles_gallons_and_psi() -> None:
    """`sc-unit-system: imperial` turns distances into miles, fuel into gallons and tyre
    pressures into psi; an unknown unit system is 400 in the V3 shape."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "ICE")
        metric = (await client.get(f"{car.base}/signals", headers=car.headers)).json()
        imperial_headers = {**car.headers, "sc-unit-system": "imperial"}
        imperial = (await client.get(f"{car.base}/signals", headers=imperial_headers)).json()
        km = signal_of(metric, "odometer-traveleddistance")["attributes"]["body"]["value"]
        miles = signal_of(imperial, "odometer-traveleddistance")["attributes"]["body"]
        assert miles["unit"] == "miles"
        assert miles["value"] == pytest.approx(km * 0.621371, abs=0.2)
        units = {
            code: signal_of(imperial, code)["attributes"]["body"]["unit"]
            for code in ("internalcombustionengine-amountremaining", "wheel-tires")
        }
        assert units == {
            "internalcombustionengine-amountremaining": "gallons",
            "wheel-tires": "psi",
        }
        bad = await client.get(
            f"{car.base}/signals", headers={**car.headers, "sc-unit-system": "furlongs"}
        )
        assert bad.status_code == 400
        assert error_of(bad)["type"] == "VALIDATION"


async def test_a_sleeping_car_answers_what_it_last_reported() -> None:
    """A car asleep for a day still answers 200: its odometer is the value of its last report
    before it slept (`oemUpdatedAt` that old), and it says it is asleep and offline."""
    async with v3_client() as (_, client):
        car = await connect_powertrain_v3(client, "ICE")
        url = f"{car.base}/signals"
        await client.post(f"/sim/vehicles/{car.vehicle_id}/sleep", json={"asleep": True})
        before = (await client.get(url, headers=car.headers)).json()
        await advance(client, 86_400)
        fresh = {**car.headers, "Authorization": f"Bearer {await app_token(client)}"}
        asleep = await client.get(url, headers=fresh)
        assert asleep.status_code == 200, asleep.text
        document = asleep.json()
        odometer = signal_of(document, "odometer-traveleddistance")
        reported = signal_of(before, "odometer-traveleddistance")
        assert odometer["attributes"] == reported["attributes"]
        assert odometer["meta"]["oemUpdatedAt"] == reported["meta"]["oemUpdatedAt"]
        stale_ms = odometer["meta"]["retrievedAt"] - odometer["meta"]["oemUpdatedAt"]
        assert stale_ms >= 86_400_000
        bodies = {item["id"]: item["attributes"].get("body") for item in document["data"]}
        assert bodies["connectivitystatus-isasleep"] == {"value": True}
        assert bodies["connectivitystatus-isonline"] == {"value": False}


async def test_each_signals_call_is_one_billed_request_against_the_allowance() -> None:
    """A list and a single signal bill one request each; past the allowance both are 430
    BILLING:VEHICLE_REQUEST_LIMIT in the V3 shape."""
    async with v3_client(monthly_request_limit=2) as (_, client):
        car = await connect_v3(client)
        assert (await client.get(f"{car.base}/signals", headers=car.headers)).status_code == 200
        single = await client.get(f"{car.base}/signals/closure-doors", headers=car.headers)
        assert single.status_code == 200
        assert (await stats(client))["billed_this_month"] == {car.vehicle_id: 2}
        over = await client.get(f"{car.base}/signals", headers=car.headers)
        assert over.status_code == 430
        error = error_of(over)
        assert (error["type"], error["code"]) == ("BILLING", "VEHICLE_REQUEST_LIMIT")
        assert error["resolution"] == {"type": "CONTACT_SUPPORT"}


async def test_the_per_vehicle_rate_limit_answers_429_with_retry_after() -> None:
    """The per-vehicle bucket limits V3 reads as v2 reads: 429 RATE_LIMIT:VEHICLE with a
    `retry-after` header."""
    limit = {"capacity": 2, "refill_per_s": 0.1}
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post("/sim/config", json={"vehicle_rate_limit": limit})
        for _ in range(2):
            assert (await client.get(f"{car.base}/signals", headers=car.headers)).status_code == 200
        limited = await client.get(f"{car.base}/signals", headers=car.headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert (error_of(limited)["type"], error_of(limited)["code"]) == ("RATE_LIMIT", "VEHICLE")


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        ({"kind": "asleep"}, 409, "VEHICLE_STATE"),
        ({"kind": "server_error"}, 500, "SERVER"),
        ({"kind": "upstream", "code": "KNOWN_ISSUE"}, 502, "UPSTREAM"),
        ({"kind": "rate_limit", "retry_after_s": 9}, 429, "RATE_LIMIT"),
    ],
)
async def test_refusal_faults_answer_v3_errors(
    fault: dict[str, Any], status: int, error_type: str
) -> None:
    """Faults armed for `v3/signals` refuse with the V3 body of the matching error."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post("/sim/faults", json={**fault, "path": "v3/signals", "count": 1})
        refused = await client.get(f"{car.base}/signals", headers=car.headers)
        assert refused.status_code == status
        assert error_of(refused)["type"] == error_type
        assert (await client.get(f"{car.base}/signals", headers=car.headers)).status_code == 200


async def test_a_malformed_answer_and_a_held_answer_break_the_read() -> None:
    """A `malformed` fault cuts the body; a `hold` keeps it until released."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post(
            "/sim/faults", json={"kind": "malformed", "path": "v3/signals", "count": 1}
        )
        garbled = await client.get(f"{car.base}/signals", headers=car.headers)
        assert garbled.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            garbled.json()
        await client.post("/sim/faults", json={"kind": "hold", "path": "v3/signal", "count": 1})
        held = asyncio.ensure_future(
            client.get(f"{car.base}/signals/closure-islocked", headers=car.headers)
        )
        assert (await client.get("/sim/holds", params={"total": 1})).json()["total"] == 1
        assert not held.done()
        await client.post("/sim/holds/release")
        assert (await held).status_code == 200


async def test_a_revoked_owner_loses_v3_access() -> None:
    """After the owner revokes access, the application token gets 403 on the car."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.post(f"/sim/vehicles/{car.vehicle_id}/revoke", json={})
        response = await client.get(f"{car.base}/signals", headers=car.headers)
        assert response.status_code == 403


async def test_with_the_subscription_option_signals_fill_only_for_subscribed_cars() -> None:
    """With `v3_signals_need_subscription`, an unsubscribed car's list is empty (200,
    totalCount 0) and its single signals 404."""
    async with v3_client(v3_signals_need_subscription=True) as (_, client):
        car = await connect_v3(client)
        document = (await client.get(f"{car.base}/signals", headers=car.headers)).json()
        assert (document["data"], document["meta"]["totalCount"]) == ([], 0)
        single = await client.get(f"{car.base}/signals/closure-islocked", headers=car.headers)
        assert single.status_code == 404


async def test_v3_requests_are_counted_under_v3_keys() -> None:
    """Stats count V3 reads under `v3/…` endpoint keys and per vehicle."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await client.get(f"{car.base}/signals", headers=car.headers)
        await client.get(f"{car.base}/signals/closure-islocked", headers=car.headers)
        await client.get(car.base, headers=car.headers)
        counters = (await stats(client))["requests"]
        assert counters["by_endpoint"] == {"v3/signals": 1, "v3/signal": 1, "v3/vehicle": 1}
        assert counters["by_vehicle"] == {car.vehicle_id: 3}


async def test_unknown_v3_paths_are_404_in_the_v3_shape() -> None:
    """A path under `/v3/` that no route serves (the v2 per-resource endpoints included)
    is 404 RESOURCE_NOT_FOUND with an `errors[]` body."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        for path in (f"{car.base}/odometer", "/v3/teleport", f"{car.base}/commands/fly"):
            response = await client.post(path, headers=car.headers)
            assert response.status_code == 404
            assert error_of(response)["type"] == "RESOURCE_NOT_FOUND"
        unknown_token = await client.get(f"{car.base}/signals", headers=bearer("x"))
        assert unknown_token.status_code == 401
