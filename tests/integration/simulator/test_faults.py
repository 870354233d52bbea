"""Injected faults: refusals, hangs, held answers, garbled bodies and real TCP resets."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    Session,
    client_for,
    connect,
    refresh,
    stats,
)
from tests.integration.simulator.v3_flows import connect_v3, error_of, v3_client


async def arm(client: httpx.AsyncClient, **fault: object) -> dict[str, object]:
    """Arm a fault and return it as the simulator lists it."""
    response = await client.post("/sim/faults", json=fault)
    assert response.status_code == 201, response.text
    armed: dict[str, object] = response.json()
    return armed


async def odometer(client: httpx.AsyncClient, session: Session) -> httpx.Response:
    """Read the session vehicle's odometer."""
    return await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )


@pytest.mark.parametrize(
    ("kind", "status", "error_type", "code"),
    [
        ("server_error", 500, "SERVER", "INTERNAL"),
        ("upstream", 502, "UPSTREAM", "NO_RESPONSE"),
        ("asleep", 409, "VEHICLE_STATE", "ASLEEP"),
        ("rate_limit", 429, "RATE_LIMIT", "VEHICLE"),
    ],
)
async def test_refusal_faults_answer_smartcar_errors_once(
    client: httpx.AsyncClient, kind: str, status: int, error_type: str, code: str
) -> None:
    """A count-limited refusal fault answers its error once (unbilled), then all is fine."""
    session = await connect(client)
    await arm(client, kind=kind, count=1)
    failed = await odometer(client, session)
    assert failed.status_code == status
    assert (failed.json()["type"], failed.json()["code"]) == (error_type, code)
    assert (await odometer(client, session)).status_code == 200
    counters = await stats(client)
    assert counters["faults_injected"] == {kind: 1}
    assert counters["billed_this_month"] == {session.vehicle_id: 1}


async def test_upstream_fault_can_name_its_code(client: httpx.AsyncClient) -> None:
    """An upstream fault may pick another documented UPSTREAM code."""
    session = await connect(client)
    await arm(client, kind="upstream", code="INVALID_DATA")
    body = (await odometer(client, session)).json()
    assert (body["statusCode"], body["code"]) == (502, "INVALID_DATA")
    assert body["resolution"] == {"type": "RETRY_LATER"}


async def test_account_fault_answers_smartcars_account_error_with_its_resolution(
    client: httpx.AsyncClient,
) -> None:
    """An account fault answers 400 CONNECTED_SERVICES_ACCOUNT: AUTHENTICATION_FAILED by
    default, with REAUTHENTICATE and a re-authentication link naming the client and vehicle
    (also in the message for the owner); VIRTUAL_KEY_REQUIRED with ACTION_REQUIRED and the
    virtual-key page; it stays until disarmed, and nothing is billed meanwhile."""
    session = await connect(client)
    await arm(client, kind="account", vehicle_id=session.vehicle_id)
    body = (await odometer(client, session)).json()
    assert (body["statusCode"], body["type"], body["code"]) == (
        400,
        "CONNECTED_SERVICES_ACCOUNT",
        "AUTHENTICATION_FAILED",
    )
    url = body["resolution"]["url"]
    assert body["resolution"]["type"] == "REAUTHENTICATE"
    assert url.startswith("https://connect.smartcar.com/oauth/reauthenticate?")
    assert f"vehicle_id={session.vehicle_id}" in url
    assert url in body["suggestedUserMessage"]
    assert body["docURL"].endswith("#authentication-failed")
    assert (await odometer(client, session)).status_code == 400
    await client.delete("/sim/faults")
    await arm(client, kind="account", code="VIRTUAL_KEY_REQUIRED", count=1)
    body = (await odometer(client, session)).json()
    assert body["resolution"] == {
        "type": "ACTION_REQUIRED",
        "url": "https://www.tesla.com/_ak/smartcar.com",
    }
    assert (await odometer(client, session)).status_code == 200
    assert (await stats(client))["billed_this_month"] == {session.vehicle_id: 1}


async def test_account_fault_on_v3_carries_the_resolution_in_errors() -> None:
    """On API V3 the account fault is an `errors[]` item with the same resolution and URL."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await arm(client, kind="account", code="AUTHENTICATION_FAILED", count=1)
        response = await client.get(f"{car.base}/signals", headers=car.headers)
        assert response.status_code == 400
        error = error_of(response)
        assert (error["type"], error["code"]) == (
            "CONNECTED_SERVICES_ACCOUNT",
            "AUTHENTICATION_FAILED",
        )
        assert error["resolution"]["type"] == "REAUTHENTICATE"
        assert f"vehicle_id={car.vehicle_id}" in error["resolution"]["url"]
        assert error["links"]["about"].endswith("#authentication-failed")


async def test_asleep_fault_has_smartcars_asleep_body(client: httpx.AsyncClient) -> None:
    """ASLEEP carries a null resolution and the documented user message."""
    session = await connect(client)
    await arm(client, kind="asleep")
    body = (await odometer(client, session)).json()
    assert body["resolution"] == {"type": None}
    assert body["suggestedUserMessage"] == (
        "Your vehicle is in a sleep state. This request was not sent to preserve battery life."
    )


async def test_rate_limit_fault_sends_retry_after(client: httpx.AsyncClient) -> None:
    """The rate_limit fault sends its retry-after in whole seconds."""
    session = await connect(client)
    await arm(client, kind="rate_limit", retry_after_s=17)
    assert (await odometer(client, session)).headers["retry-after"] == "17"


async def test_faults_are_scoped_to_vehicle_and_path(client: httpx.AsyncClient) -> None:
    """A fault naming a vehicle and a path hits nothing else."""
    first, second = await connect(client), await connect(client)
    await arm(client, kind="server_error", vehicle_id=first.vehicle_id, path="odometer")
    assert (await odometer(client, first)).status_code == 500
    assert (await odometer(client, second)).status_code == 200
    location = await client.get(
        f"/v2.0/vehicles/{first.vehicle_id}/location", headers=first.headers
    )
    assert location.status_code == 200
    assert (await client.delete("/sim/faults")).json() == {"cleared": 1}
    assert (await odometer(client, first)).status_code == 200


async def test_malformed_fault_sends_a_body_that_does_not_parse(
    client: httpx.AsyncClient,
) -> None:
    """`malformed` answers 200 application/json whose body is not valid JSON."""
    session = await connect(client)
    await arm(client, kind="malformed", count=1)
    response = await odometer(client, session)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


async def test_reset_fault_is_a_transport_error(client: httpx.AsyncClient) -> None:
    """`reset` kills the TCP connection, which httpx reports as a transport error."""
    session = await connect(client)
    await arm(client, kind="reset", count=1)
    with pytest.raises(httpx.TransportError):
        await odometer(client, session)
    assert (await odometer(client, session)).status_code == 200


async def test_hang_fault_outlasts_a_client_timeout() -> None:
    """`hang` holds the answer past a short client timeout."""
    async with client_for(unlimited_config(hang_s=2.0)) as http:
        session = await connect(http)
        await arm(http, kind="hang", count=1)
        with pytest.raises(httpx.ReadTimeout):
            await http.get(
                f"/v2.0/vehicles/{session.vehicle_id}/odometer",
                headers=session.headers,
                timeout=0.2,
            )


async def test_a_hung_command_was_still_executed() -> None:
    """A command whose answer hangs has locked the car anyway (it may have succeeded)."""
    async with client_for(unlimited_config(hang_s=2.0)) as http:
        session = await connect(http)
        url = f"/v2.0/vehicles/{session.vehicle_id}/security"
        await http.post(url, json={"action": "UNLOCK"}, headers=session.headers)
        await arm(http, kind="hang", path="security", count=1)
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json={"action": "LOCK"}, headers=session.headers, timeout=0.2)
        status = await http.get(url, headers=session.headers)
        assert status.json()["isLocked"] is True


async def test_a_held_command_is_executed_and_answers_only_once_released(
    client: httpx.AsyncClient,
) -> None:
    """`hold` carries the command out and keeps its answer back, without any timer, until
    the test releases it; `GET /sim/holds?total=N` tells when it is held."""
    session = await connect(client)
    url = f"/v2.0/vehicles/{session.vehicle_id}/security"
    await client.post(url, json={"action": "UNLOCK"}, headers=session.headers)
    await arm(client, kind="hold", path="security", count=1)
    sent = asyncio.create_task(client.post(url, json={"action": "LOCK"}, headers=session.headers))
    assert (await client.get("/sim/holds", params={"total": 1})).json() == {"held": 1, "total": 1}
    assert (await client.get(url, headers=session.headers)).json()["isLocked"] is True
    assert not sent.done()
    assert (await client.post("/sim/holds/release")).json() == {"released": 1}
    assert (await sent).status_code == 200
    assert (await client.get("/sim/holds")).json() == {"held": 0, "total": 1}
    bad = await client.get("/sim/holds", params={"total": "many"})
    assert (bad.status_code, bad.json()["field"]) == (400, "total")


async def test_token_endpoint_faults(client: httpx.AsyncClient) -> None:
    """A 5xx at the token endpoint spends nothing; a reset after a refresh spends the token."""
    session = await connect(client)
    await arm(client, kind="server_error", path="token", count=1)
    failed = await refresh(client, session.refresh_token)
    assert failed.status_code == 500
    assert failed.json()["error"] == "server_error"
    await arm(client, kind="reset", path="token", count=1)
    with pytest.raises(httpx.TransportError):
        await refresh(client, session.refresh_token)
    retried = await refresh(client, session.refresh_token)
    assert retried.status_code == 200
    assert (await stats(client))["refresh_token_reuses"] == 1


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "hang", "count": 0}, "count"),
        ({"kind": "hang", "count": "2"}, "count"),
        ({"kind": "asleep", "path": "token"}, "path"),
        ({"kind": "hang", "colour": "red"}, "colour"),
        ({"kind": "hang", "code": "INVALID_DATA"}, "code"),
        ({"kind": "upstream", "code": "GREMLINS"}, "code"),
        ({"kind": "account", "code": "NO_RESPONSE"}, "code"),
        ({"kind": "account", "path": "token"}, "path"),
    ],
)
async def test_invalid_faults_name_the_field(
    client: httpx.AsyncClient, fault: dict[str, object], field: str
) -> None:
    """An invalid fault is 400 JSON naming the offending field."""
    response = await client.post("/sim/faults", json=fault)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_unknown_vehicle_fault_is_404(client: httpx.AsyncClient) -> None:
    """Arming a fault for a vehicle that does not exist is 404 naming vehicle_id."""
    response = await client.post("/sim/faults", json={"kind": "hang", "vehicle_id": "nope"})
    assert response.status_code == 404
    assert response.json()["field"] == "vehicle_id"


async def test_faults_are_listed(client: httpx.AsyncClient) -> None:
    """`GET /sim/faults` lists armed faults with their remaining count."""
    await arm(client, kind="upstream", path="/tires/pressure", count=2)
    faults = (await client.get("/sim/faults")).json()["faults"]
    assert faults == [
        {
            "id": 1,
            "kind": "upstream",
            "vehicle_id": None,
            "path": "tires/pressure",
            "count": 2,
            "retry_after_s": 60,
            "code": None,
        }
    ]
