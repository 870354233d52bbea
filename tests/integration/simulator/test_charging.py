"""Charging on the simulator's Vehicle API v2.0: `/charge` and `/charge/limit` read the
car, `POST /charge` and `POST /charge/limit` change it, as V3's charge commands do, under
the same permissions, capability checks, billing and faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.simulator.flows import Session, connect_powertrain, stats
from tests.integration.simulator.v3_flows import CHARGE_SCOPES, signal_of

SUCCESS = {"message": "Successfully sent request to vehicle", "status": "success"}
NO_CHARGE_SCOPES = CHARGE_SCOPES.replace(" read_charge control_charge", "")


async def ev(
    client: httpx.AsyncClient, powertrain: str = "BEV", *, scope: str = CHARGE_SCOPES
) -> Session:
    """Connect the first catalog car of `powertrain`, with every charge scope unless told."""
    return await connect_powertrain(client, powertrain, scope=scope)


async def billed(client: httpx.AsyncClient, session: Session) -> int:
    """How many requests the session's car was billed for this month."""
    return int((await stats(client))["billed_this_month"].get(session.vehicle_id, 0))


async def get(client: httpx.AsyncClient, session: Session, path: str) -> httpx.Response:
    """GET a path of the session's car."""
    return await client.get(f"/v2.0/vehicles/{session.vehicle_id}{path}", headers=session.headers)


async def post(
    client: httpx.AsyncClient, session: Session, path: str, body: dict[str, Any]
) -> httpx.Response:
    """POST a command to a path of the session's car."""
    return await client.post(
        f"/v2.0/vehicles/{session.vehicle_id}{path}", json=body, headers=session.headers
    )


async def charge(client: httpx.AsyncClient, session: Session) -> Any:
    """Read the car's charge."""
    response = await get(client, session, "/charge")
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_ev_reports_its_charge_and_limit_as_documented(
    client: httpx.AsyncClient,
) -> None:
    """A BEV starts plugged in, not charging, with an 80 % limit, sent as v2 does it: `{
    "isPluggedIn", "state"}` and the limit as a fraction, each with its data age."""
    session = await ev(client)
    reply = await get(client, session, "/charge")
    assert reply.json() == {"isPluggedIn": True, "state": "NOT_CHARGING"}
    assert reply.headers["sc-data-age"]
    limit = await get(client, session, "/charge/limit")
    assert limit.json() == {"limit": 0.8}


async def test_start_stop_and_limit_change_the_car(client: httpx.AsyncClient) -> None:
    """START and STOP flip the state, the limit follows `POST /charge/limit`; each answers
    Smartcar's success body, is counted and billed; the V3 signals show the same car."""
    session = await ev(client, "PHEV")
    before = await billed(client, session)
    assert (await post(client, session, "/charge", {"action": "START"})).json() == SUCCESS
    assert (await charge(client, session))["state"] == "CHARGING"
    limited = await post(client, session, "/charge/limit", {"limit": 0.9})
    assert limited.json() == SUCCESS
    assert (await get(client, session, "/charge/limit")).json() == {"limit": 0.9}
    assert (await post(client, session, "/charge", {"action": "STOP"})).status_code == 200
    assert (await charge(client, session))["state"] == "NOT_CHARGING"
    counters = await stats(client)
    charge_commands = {"CHARGE_START": 1, "CHARGE_SET_LIMIT": 1, "CHARGE_STOP": 1}
    assert counters["commands"] == {"LOCK": 0, "UNLOCK": 0, **charge_commands}
    assert counters["billed_this_month"][session.vehicle_id] == before + 6  # 3 reads, 3 commands
    signals = await client.get(
        f"/v3/vehicles/{session.vehicle_id}/signals", headers=session.headers
    )
    limits = signal_of(signals.json(), "charge-chargelimits")["attributes"]["body"]
    assert limits["activeLimit"] == 90


@pytest.mark.parametrize(
    ("setup", "path", "body", "code"),
    [
        ([], "/charge", {"action": "STOP"}, "NOT_CHARGING"),
        ([{"action": "START"}], "/charge", {"action": "START"}, "CHARGING_IN_PROGRESS"),
    ],
)
async def test_the_car_refuses_with_409_vehicle_state(
    client: httpx.AsyncClient,
    setup: list[dict[str, str]],
    path: str,
    body: dict[str, str],
    code: str,
) -> None:
    """Stopping a car that does not charge, or starting one that does, is 409
    VEHICLE_STATE in v2's error body."""
    session = await ev(client)
    for earlier in setup:
        await post(client, session, "/charge", earlier)
    refused = await post(client, session, path, body)
    assert refused.status_code == 409
    assert (refused.json()["type"], refused.json()["code"]) == ("VEHICLE_STATE", code)


async def test_an_unplugged_car_cannot_start(client: httpx.AsyncClient) -> None:
    """With the cable pulled, `/charge` says so and START is 409
    CHARGING_PLUG_NOT_CONNECTED."""
    session = await ev(client)
    await client.post(f"/sim/vehicles/{session.vehicle_id}/state", json={"plugged_in": False})
    assert (await charge(client, session))["isPluggedIn"] is False
    refused = await post(client, session, "/charge", {"action": "START"})
    assert (refused.status_code, refused.json()["code"]) == (409, "CHARGING_PLUG_NOT_CONNECTED")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/charge", {"action": "GO"}),
        ("/charge", {}),
        ("/charge/limit", {"limit": 0.49}),
        ("/charge/limit", {"limit": 80}),
        ("/charge/limit", {"limit": "0.8"}),
        ("/charge/limit", {"limit": True}),
    ],
)
async def test_a_bad_command_body_is_400_and_not_billed(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    """An unknown action, or a limit that is no fraction from 0.5 to 1 (80 is a percent),
    is 400 VALIDATION:PARAMETER before anything is billed."""
    session = await ev(client)
    before = await stats(client)
    refused = await post(client, session, path, body)
    assert refused.status_code == 400
    assert (refused.json()["type"], refused.json()["code"]) == ("VALIDATION", "PARAMETER")
    assert (await stats(client))["billed_this_month"] == before["billed_this_month"]


async def test_an_ice_car_has_no_charge(client: httpx.AsyncClient) -> None:
    """An ICE car answers the charge reads and commands 501 VEHICLE_NOT_CAPABLE; a command
    is refused before it is billed."""
    session = await ev(client, "ICE")
    for path in ("/charge", "/charge/limit"):
        reply = await get(client, session, path)
        assert (reply.status_code, reply.json()["code"]) == (501, "VEHICLE_NOT_CAPABLE")
    before = (await stats(client))["billed_this_month"]
    refused = await post(client, session, "/charge", {"action": "START"})
    assert (refused.status_code, refused.json()["code"]) == (501, "VEHICLE_NOT_CAPABLE")
    assert (await stats(client))["billed_this_month"] == before


async def test_charging_needs_its_permissions(client: httpx.AsyncClient) -> None:
    """Without `read_charge` the reads are 403 PERMISSION; without `control_charge` the
    commands are."""
    session = await ev(client, scope=NO_CHARGE_SCOPES)
    assert (await get(client, session, "/charge")).status_code == 403
    refused = await post(client, session, "/charge/limit", {"limit": 0.7})
    assert (refused.status_code, refused.json()["type"]) == (403, "PERMISSION")


async def test_a_batch_reads_charge_and_limit_billed_per_path(client: httpx.AsyncClient) -> None:
    """`/charge` and `/charge/limit` go through a batch like any read, each path billed."""
    session = await ev(client)
    before = await billed(client, session)
    answer = await post(
        client, session, "/batch", {"requests": [{"path": "/charge"}, {"path": "/charge/limit"}]}
    )
    items = {item["path"]: item for item in answer.json()["responses"]}
    assert items["/charge"]["body"] == {"isPluggedIn": True, "state": "NOT_CHARGING"}
    assert items["/charge/limit"]["body"] == {"limit": 0.8}
    assert "sc-data-age" in items["/charge/limit"]["headers"]
    assert (await stats(client))["billed_this_month"][session.vehicle_id] == before + 2


async def test_a_reset_fault_on_a_charge_command_still_carries_it_out(
    client: httpx.AsyncClient,
) -> None:
    """A `reset` fault armed for `charge` drops the answer after the car started: the
    client sees a transport error, the car charges."""
    session = await ev(client)
    await client.post("/sim/faults", json={"kind": "reset", "path": "charge", "count": 1})
    with pytest.raises(httpx.TransportError):
        await post(client, session, "/charge", {"action": "START"})
    assert (await charge(client, session))["state"] == "CHARGING"
