"""V3 commands: paths, bodies, 200 and 202 answers, failures in any answer raised typed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clients.smartcar import (
    CommandFailed,
    CompatibilityError,
    SmartcarConnectionError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
    ValidationError,
    VehicleAsleep,
    VehicleNotCapable,
    VehicleStateError,
)
from clients.smartcar.v3 import CommandExecution, CommandOutcome, SmartcarVehiclesV3
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar
from tests.unit.smartcar.v3.fakes import APP_TOKEN, VEHICLES, v3_error

BASE = f"{VEHICLES}/{VEHICLE_ID}/commands"

# Smartcar's unlock page example.
DOCUMENTED = {
    "data": {
        "id": "exec_9876543210",
        "type": "command-execution",
        "attributes": {
            "commandType": "security-unlock",
            "status": {"value": "SUCCESS"},
            "executionMode": "sync",
        },
        "meta": {
            "executedAt": "2024-01-01T12:00:00Z",
            "completedAt": "2024-01-01T12:00:02Z",
            "durationInSeconds": 2,
        },
    }
}

Send = Callable[[SmartcarVehiclesV3], Awaitable[CommandExecution]]

COMMANDS: list[tuple[str, Send, str, Any]] = [
    ("lock", lambda v: v.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID), "security/lock", None),
    ("unlock", lambda v: v.unlock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID), "security/unlock", None),
    (
        "start",
        lambda v: v.start_charge(APP_TOKEN, VEHICLE_ID, user_id=USER_ID),
        "charge/start",
        None,
    ),
    ("stop", lambda v: v.stop_charge(APP_TOKEN, VEHICLE_ID, user_id=USER_ID), "charge/stop", None),
    (
        "set-limit",
        lambda v: v.set_charge_limit(APP_TOKEN, VEHICLE_ID, 80, user_id=USER_ID),
        "charge/set-limit",
        {"data": {"attributes": {"percent": 80}}},
    ),
]


@pytest.mark.parametrize(("name", "send", "path", "body"), COMMANDS, ids=[c[0] for c in COMMANDS])
async def test_commands_are_paths_with_token_and_user(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    name: str,
    send: Send,
    path: str,
    body: Any,
) -> None:
    """POST …/commands/<group>/<action>, Bearer + sc-user-id; only set-limit has a body."""
    fake.reply(200, json_body=DOCUMENTED)
    await send(vehicles)
    request = fake.last
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/{path}")
    assert request.headers["authorization"] == f"Bearer {APP_TOKEN.reveal()}"
    assert request.headers["sc-user-id"] == USER_ID
    assert (json.loads(request.content) if request.content else None) == body


async def test_documented_success(fake: FakeSmartcar, vehicles: SmartcarVehiclesV3) -> None:
    """The unlock page's 200 answer: SUCCEEDED with id, type, mode and times."""
    fake.reply(200, json_body=DOCUMENTED, headers={"sc-request-id": "rq-c"})
    execution = await vehicles.unlock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert execution == CommandExecution(
        outcome=CommandOutcome.SUCCEEDED,
        http_status=200,
        status="SUCCESS",
        id="exec_9876543210",
        command_type="security-unlock",
        execution_mode="sync",
        executed_at=datetime(2024, 1, 1, 12, tzinfo=UTC),
        completed_at=datetime(2024, 1, 1, 12, 0, 2, tzinfo=UTC),
        duration_s=2.0,
        request_id="rq-c",
    )
    assert not execution.accepted


async def test_set_limit_parameters_are_kept(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """set-limit's answer carries its parameters."""
    answer = json.loads(json.dumps(DOCUMENTED))
    answer["data"]["attributes"] |= {
        "commandType": "charge-set-limit",
        "parameters": {"percent": 80},
    }
    fake.reply(200, json_body=answer)
    execution = await vehicles.set_charge_limit(APP_TOKEN, VEHICLE_ID, 80, user_id=USER_ID)
    assert execution.parameters == {"percent": 80}


@pytest.mark.parametrize(
    ("status", "body", "outcome", "smartcar_status"),
    [
        (200, None, CommandOutcome.SUCCEEDED, None),
        (
            200,
            {"data": {"type": "command-execution", "attributes": {}}},
            CommandOutcome.SUCCEEDED,
            None,
        ),
        (202, None, CommandOutcome.PENDING, None),
        (202, {"meta": {"message": "in progress"}}, CommandOutcome.PENDING, None),
        (202, DOCUMENTED, CommandOutcome.SUCCEEDED, "SUCCESS"),
        (
            202,
            {"data": {"attributes": {"status": {"value": "PENDING"}, "executionMode": "async"}}},
            CommandOutcome.PENDING,
            "PENDING",
        ),
        (200, {"attributes": {"status": "success"}}, CommandOutcome.SUCCEEDED, "SUCCESS"),
        (
            202,
            {"data": {"attributes": {"status": {"value": "QUEUED"}}}},
            CommandOutcome.PENDING,
            "QUEUED",
        ),
    ],
    ids=[
        "200-empty",
        "200-no-status",
        "202-empty",
        "202-message",
        "202-success",
        "202-pending",
        "200-bare-string-status",
        "202-unknown-status",
    ],
)
async def test_200_and_202_answers(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    status: int,
    body: Any,
    outcome: CommandOutcome,
    smartcar_status: str | None,
) -> None:
    """200 is done unless the body says otherwise; a 202 is pending until it says SUCCESS."""
    if body is None:
        fake.reply(status, content=b"")
    else:
        fake.reply(status, json_body=body)
    execution = await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert (execution.outcome, execution.status) == (outcome, smartcar_status)
    assert execution.accepted is (status == 202)


@pytest.mark.parametrize("http_status", [200, 202])
async def test_failure_with_an_error_raises_it_typed(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, http_status: int
) -> None:
    """status FAILURE with status.error → that error's class, whatever the HTTP status."""
    body = {
        "data": {
            "attributes": {
                "status": {
                    "value": "FAILURE",
                    "error": {"type": "VEHICLE_STATE", "code": "DOOR_OPEN", "detail": "door open"},
                }
            }
        }
    }
    fake.reply(http_status, json_body=body, headers={"sc-request-id": "rq-f"})
    with pytest.raises(VehicleStateError) as caught:
        await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert (caught.value.code, caught.value.description) == ("DOOR_OPEN", "door open")
    assert caught.value.request_id == "rq-f"


async def test_failure_with_the_error_beside_the_status(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """An ``error`` next to ``status`` (not inside it) is read too."""
    body = {
        "data": {
            "attributes": {
                "status": {"value": "FAILED"},
                "error": {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"},
            }
        }
    }
    fake.reply(202, json_body=body)
    with pytest.raises(VehicleNotCapable):
        await vehicles.start_charge(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


async def test_failure_without_an_error_is_command_failed(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """FAILURE naming no reason raises CommandFailed with the status it came in."""
    fake.reply(200, json_body={"data": {"attributes": {"status": {"value": "FAILURE"}}}})
    with pytest.raises(CommandFailed) as caught:
        await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert (caught.value.status, caught.value.code, caught.value.type) == (200, "FAILURE", None)
    assert str(caught.value).startswith("FAILURE (HTTP 200)")


@pytest.mark.parametrize("http_status", [200, 202])
async def test_errors_in_a_2xx_body_are_raised(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, http_status: int
) -> None:
    """An errors[] body that arrives with 200/202 is a failure, not a success."""
    fake.reply(http_status, json_body=v3_error(409, "VEHICLE_STATE", "ASLEEP"))
    with pytest.raises(VehicleAsleep):
        await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (409, v3_error(409, "VEHICLE_STATE", "IN_MOTION"), VehicleStateError),
        (501, v3_error(501, "COMPATIBILITY", "SMARTCAR_NOT_CAPABLE"), CompatibilityError),
        (400, v3_error(400, "VALIDATION", "INVALID_INPUT_FORMAT"), ValidationError),
        (504, None, SmartcarProtocolError),
    ],
)
async def test_error_answers_are_typed(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    status: int,
    body: Any,
    expected: type[SmartcarError],
) -> None:
    """Error statuses raise their class; an empty 5xx is a protocol error (may have acted)."""
    if body is None:
        fake.reply(status, content=b"")
    else:
        fake.reply(status, json_body=body)
    with pytest.raises(SmartcarError) as caught:
        await vehicles.unlock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert type(caught.value) is expected
    if isinstance(caught.value, SmartcarProtocolError):
        assert caught.value.request_sent
        assert caught.value.status == status


@pytest.mark.parametrize(
    ("exc", "expected", "sent"),
    [
        (httpx.ReadTimeout, SmartcarTimeout, True),
        (httpx.ConnectTimeout, SmartcarTimeout, False),
        (httpx.RemoteProtocolError, SmartcarConnectionError, True),
    ],
)
async def test_transport_failures_say_whether_the_command_left(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    exc: type[httpx.RequestError],
    expected: type[SmartcarError],
    sent: bool,
) -> None:
    """A read timeout after sending may have locked the car: request_sent says so."""
    fake.fail_with(lambda request: exc("x", request=request))
    with pytest.raises(expected) as caught:
        await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert getattr(caught.value, "request_sent", None) is sent
    assert "/v3/vehicles/{id}/commands/security/lock" in str(caught.value)


async def test_an_unreadable_success_body_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """A 200 whose body is JSON but no object cannot be read."""
    fake.reply(200, json_body=["done"])
    with pytest.raises(SmartcarProtocolError, match="command"):
        await vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


@pytest.mark.parametrize("percent", [-1, 101, 0.8, True, "80"])
async def test_set_limit_takes_an_integer_percentage(
    vehicles: SmartcarVehiclesV3, percent: Any
) -> None:
    """V3 takes percent 0-100 (not v2's fraction): anything else is a ValueError."""
    with pytest.raises(ValueError, match="percent"):
        await vehicles.set_charge_limit(APP_TOKEN, VEHICLE_ID, percent, user_id=USER_ID)
