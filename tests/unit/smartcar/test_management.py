"""SmartcarManagement: deleting connections with the application management token."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from clients.smartcar import (
    AuthenticationError,
    Connection,
    SmartcarEndpoints,
    SmartcarManagement,
)
from tests.unit.smartcar.fakes import (
    MANAGEMENT_TOKEN,
    USER_ID,
    VEHICLE_ID,
    FakeSmartcar,
    error_body,
)


async def test_delete_connections_request_and_answer(
    fake: FakeSmartcar, management: SmartcarManagement
) -> None:
    """DELETE …/management/connections/ with the ids in the query and Basic default:<token>."""
    fake.reply(
        200,
        json_body={"connections": [{"userId": USER_ID, "vehicleId": VEHICLE_ID}]},
        headers={"sc-request-id": "m-1"},
    )
    reading = await management.delete_connections(vehicle_id=VEHICLE_ID, user_id=USER_ID)
    request = fake.last
    assert request.method == "DELETE"
    assert (
        request.url.copy_with(query=None)
        == "https://management.sc.test/v2.0/management/connections/"
    )
    assert parse_qs(request.url.query.decode()) == {
        "vehicle_id": [VEHICLE_ID],
        "user_id": [USER_ID],
    }
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == (
        "Basic",
        f"default:{MANAGEMENT_TOKEN.reveal()}",
    )
    assert reading.value == (Connection(user_id=USER_ID, vehicle_id=VEHICLE_ID),)
    assert reading.meta.request_id == "m-1"


async def test_delete_connections_by_user_only(
    fake: FakeSmartcar, management: SmartcarManagement
) -> None:
    """A user id alone deletes all of that user's connections."""
    fake.reply(200, json_body={"connections": []})
    assert (await management.delete_connections(user_id=USER_ID)).value == ()
    assert parse_qs(fake.last.url.query.decode()) == {"user_id": [USER_ID]}


async def test_delete_connections_needs_an_id(
    fake: FakeSmartcar, management: SmartcarManagement
) -> None:
    """Without vehicle_id or user_id nothing is deleted and nothing is sent."""
    with pytest.raises(ValueError, match="vehicle_id, user_id"):
        await management.delete_connections()
    assert fake.requests == []


@pytest.mark.parametrize(("name", "value"), [("vehicle_id", "../x"), ("user_id", "a&b=c")])
async def test_delete_connections_validates_ids(
    fake: FakeSmartcar, management: SmartcarManagement, name: str, value: str
) -> None:
    """Ids are validated like everywhere else."""
    ids: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        await management.delete_connections(**ids)
    assert fake.requests == []


async def test_delete_connections_errors_are_typed(
    fake: FakeSmartcar, management: SmartcarManagement
) -> None:
    """A rejected management token is an AuthenticationError."""
    fake.reply(401, json_body=error_body("AUTHENTICATION", None, 401))
    with pytest.raises(AuthenticationError):
        await management.delete_connections(vehicle_id=VEHICLE_ID)


async def test_management_token_must_be_a_secret() -> None:
    """A plain-string management token is refused at construction."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(TypeError, match="Secret"):
            SmartcarManagement(
                http=http,
                endpoints=SmartcarEndpoints(),
                management_token="plain",  # type: ignore[arg-type]
            )
