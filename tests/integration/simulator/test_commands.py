"""Lock and unlock: the lock state follows, and the car's state can refuse them."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import Session, client_for, connect, stats

SUCCESS = {"message": "Successfully sent request to vehicle", "status": "success"}


async def command(client: httpx.AsyncClient, session: Session, action: str) -> httpx.Response:
    """Send LOCK or UNLOCK to the session's vehicle."""
    return await client.post(
        f"/v2.0/vehicles/{session.vehicle_id}/security",
        json={"action": action},
        headers=session.headers,
    )


async def is_locked(client: httpx.AsyncClient, session: Session) -> bool:
    """Read the vehicle's lock status."""
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/security", headers=session.headers
    )
    locked: bool = response.json()["isLocked"]
    return locked


async def set_state(client: httpx.AsyncClient, session: Session, **state: bool) -> None:
    """Change the vehicle's door/motion state through the control API."""
    response = await client.post(f"/sim/vehicles/{session.vehicle_id}/state", json=state)
    assert response.status_code == 200, response.text


async def test_lock_state_follows_commands(client: httpx.AsyncClient) -> None:
    """LOCK then UNLOCK succeed with Smartcar's body and the lock status follows."""
    session = await connect(client)
    lock = await command(client, session, "LOCK")
    assert lock.status_code == 200
    assert lock.json() == SUCCESS
    assert await is_locked(client, session) is True
    assert (await command(client, session, "UNLOCK")).json() == SUCCESS
    assert await is_locked(client, session) is False
    assert (await stats(client))["commands"] == {"LOCK": 1, "UNLOCK": 1}


async def test_lock_with_a_door_open_is_door_open(client: httpx.AsyncClient) -> None:
    """LOCK with the front-left door open is 409 DOOR_OPEN; UNLOCK still works."""
    session = await connect(client)
    await command(client, session, "UNLOCK")
    await set_state(client, session, door_open=True)
    response = await command(client, session, "LOCK")
    assert response.status_code == 409
    body = response.json()
    assert (body["type"], body["code"]) == ("VEHICLE_STATE", "DOOR_OPEN")
    assert await is_locked(client, session) is False
    assert (await command(client, session, "UNLOCK")).status_code == 200


@pytest.mark.parametrize("action", ["LOCK", "UNLOCK"])
async def test_commands_in_motion_are_in_motion(client: httpx.AsyncClient, action: str) -> None:
    """A command while the car drives is 409 IN_MOTION."""
    session = await connect(client)
    await set_state(client, session, in_motion=True)
    response = await command(client, session, action)
    assert response.status_code == 409
    assert response.json()["code"] == "IN_MOTION"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"action": "OPEN"}', "PARAMETER"),
        (b'{"action": null}', "PARAMETER"),
        (b"{not json", None),
        (b"[1, 2]", None),
        (b"", None),
    ],
)
async def test_bad_command_bodies_are_400(
    client: httpx.AsyncClient, content: bytes, code: str | None
) -> None:
    """A missing or unknown action, or a body that is not a JSON object, is 400 VALIDATION."""
    session = await connect(client)
    response = await client.post(
        f"/v2.0/vehicles/{session.vehicle_id}/security",
        content=content,
        headers={**session.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert (response.json()["type"], response.json()["code"]) == ("VALIDATION", code)


async def test_commands_need_control_security(client: httpx.AsyncClient) -> None:
    """Without `control_security` a command is 403 PERMISSION with REAUTHENTICATE."""
    session = await connect(client, sim_withhold="control_security")
    response = await command(client, session, "LOCK")
    assert response.status_code == 403
    assert response.json()["resolution"] == {"type": "REAUTHENTICATE"}


async def test_a_command_wakes_a_sleeping_car(client: httpx.AsyncClient) -> None:
    """Reads of a sleeping car are 409 ASLEEP; a command wakes it and reads work again."""
    session = await connect(client)
    await client.post(f"/sim/vehicles/{session.vehicle_id}/sleep", json={"asleep": True})
    read = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )
    assert read.status_code == 409
    assert (await command(client, session, "LOCK")).status_code == 200
    again = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )
    assert again.status_code == 200


async def test_commands_take_the_configured_latency() -> None:
    """A command answers no sooner than `command_latency_s`."""
    async with client_for(unlimited_config(command_latency_s=0.3)) as http:
        session = await connect(http)
        started = time.monotonic()
        response = await command(http, session, "LOCK")
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
