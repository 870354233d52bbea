"""API V3 failures and command answers in the core's terms: V3 error bodies, ACCESS_DENIED,
a command that fails at the car, and a long-running (202) command not yet confirmed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from clients import smartcar as sc
from clients.smartcar.v3 import CommandExecution, CommandOutcome, SmartcarVehiclesV3
from gateway.core import errors
from gateway.core.model import CommandState, LockAction
from gateway.core.ports import TokenRejected
from gateway.core.secret import Secret
from gateway.edge.smartcar.failures import translate
from gateway.edge.smartcar.v3_commands import ensure_confirmed
from tests.unit.gateway.test_use_cases import build
from tests.unit.smartcar.fakes import fixed_clock
from tests.unit.smartcar.v3.fakes import APP_TOKEN, ENDPOINTS, v3_error

USER = "725146a3-69f4-46c8-965d-54b3b6f81eb7"
VEHICLE = "tst2e255-d3c8-4f90-9fec-e6e68b98e9cb"


@asynccontextmanager
async def v3_answering(status: int, body: Any) -> AsyncIterator[SmartcarVehiclesV3]:
    """Yield the V3 client on a Smartcar that answers every request with `status` and the
    JSON `body` (None: no body)."""

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"sc-request-id": "req-v3-1"}
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        yield SmartcarVehiclesV3(http=http, endpoints=ENDPOINTS, clock=fixed_clock)


async def lock_outcome(status: int, body: Any) -> CommandExecution | sc.SmartcarError:
    """Send a lock through the V3 client to a Smartcar answering `status` and `body`."""
    async with v3_answering(status, body) as vehicles:
        try:
            return await vehicles.lock(APP_TOKEN, VEHICLE, user_id=USER)
        except sc.SmartcarError as error:
            return error


def execution(status: str | None, *, mode: str = "sync") -> dict[str, Any]:
    """A `command-execution` body (S-lock's example) with the given status value."""
    attributes: dict[str, Any] = {"commandType": "security-lock", "executionMode": mode}
    if status is not None:
        attributes["status"] = {"value": status}
    return {
        "data": {"id": "exec_9876543210", "type": "command-execution", "attributes": attributes}
    }


# Every V3 error Smartcar's V3 error pages show (smartcar-v3-notes §4), and its core error.
V3_ERRORS = [
    (401, "AUTHENTICATION", "UNAUTHORIZED", TokenRejected),
    (403, "AUTHENTICATION", "ACCESS_DENIED", errors.AuthorizationMismatch),
    (403, "PERMISSION", None, errors.PermissionMissing),
    (400, "VALIDATION", "INVALID_INPUT_FORMAT", errors.UpstreamRejected),
    (400, "VALIDATION", "BAD_REQUEST", errors.UpstreamRejected),
    (400, "VALIDATION", "MISSING_PARAMETER", errors.UpstreamRejected),
    (404, "RESOURCE_NOT_FOUND", "PATH", errors.UpstreamRejected),
    (409, "VEHICLE_STATE", "ASLEEP", errors.VehicleAsleep),
    (409, "VEHICLE_STATE", "DOOR_OPEN", errors.VehicleStateBlocks),
    (409, "VEHICLE_STATE", "UNREACHABLE", errors.VehicleUnreachable),
    (429, "RATE_LIMIT", "VEHICLE", errors.RateLimited),
    (429, "RATE_LIMIT", "SMARTCAR_API", errors.RateLimited),
    (430, "BILLING", "VEHICLE_REQUEST_LIMIT", errors.RequestAllowanceExhausted),
    (430, "BILLING", "VEHICLE_LIMIT", errors.UpstreamRejected),
    (430, "BILLING", "INVALID_PLAN", errors.UpstreamRejected),
    (501, "COMPATIBILITY", "MAKE_NOT_COMPATIBLE", errors.VehicleNotCapable),
    (501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", errors.VehicleNotCapable),
    (400, "CONNECTED_SERVICES_ACCOUNT", "VIRTUAL_KEY_REQUIRED", errors.OwnerAccountIssue),
    (500, "SERVER", "INTERNAL", errors.UpstreamUnavailable),
    (502, "UPSTREAM", "NO_RESPONSE", errors.UpstreamUnavailable),
]


@pytest.mark.parametrize(("status", "type_", "code", "expected"), V3_ERRORS)
async def test_every_documented_v3_error_body_becomes_its_core_error(
    status: int, type_: str, code: str | None, expected: type[Exception]
) -> None:
    """A V3 `errors[]` body, read by the V3 client, translates as its v2 counterpart does
    (ACCESS_DENIED, V3's own, included): never a crash, never an untyped error."""
    async with v3_answering(status, v3_error(status, type_, code)) as vehicles:
        with pytest.raises(sc.SmartcarAPIError) as raised:
            await vehicles.signals(APP_TOKEN, VEHICLE, user_id=USER)
    assert type(translate(raised.value)) is expected


async def test_another_users_car_is_an_authorization_mismatch_not_a_missing_permission() -> None:
    """403 ACCESS_DENIED names no scope: it is AuthorizationMismatch (FAILED_PRECONDITION)
    carrying Smartcar's type, code and request id, so no permission is withdrawn."""
    body = v3_error(403, "AUTHENTICATION", "ACCESS_DENIED")
    error = await lock_outcome(403, body)
    assert isinstance(error, sc.AccessDenied)
    translated = translate(error, command=True)
    assert isinstance(translated, errors.AuthorizationMismatch)
    assert not isinstance(translated, errors.PermissionMissing)
    assert translated.upstream is not None
    assert (translated.upstream.type, translated.upstream.code) == (
        "AUTHENTICATION",
        "ACCESS_DENIED",
    )
    assert translated.upstream.request_id == "req-v3-1"
    assert "may_have_succeeded" not in translated.metadata
    assert APP_TOKEN.reveal() not in repr(translated) + translated.message


@pytest.mark.parametrize("http_status", [200, 202])
@pytest.mark.parametrize("status", ["FAILURE", "FAILED", "ERROR"])
async def test_an_execution_that_failed_without_a_reason_failed_at_the_car(
    http_status: int, status: str
) -> None:
    """An execution reporting FAILURE and no error is CommandFailed: the command failed
    there (VehicleStateBlocks, vehicle state UNKNOWN), never an unknown outcome."""
    error = await lock_outcome(http_status, execution(status))
    assert isinstance(error, sc.CommandFailed)
    translated = translate(error, command=True)
    assert type(translated) is errors.VehicleStateBlocks
    assert translated.metadata == {"vehicle_state": "UNKNOWN"}
    assert translated.upstream is not None
    assert translated.upstream.code == status
    assert "failed at the car" in translated.message


async def test_an_execution_naming_its_error_is_that_error() -> None:
    """A failed execution whose status names DOOR_OPEN is the same refusal as a 409."""
    body = execution("FAILURE")
    body["data"]["attributes"]["status"]["error"] = {"type": "VEHICLE_STATE", "code": "DOOR_OPEN"}
    error = await lock_outcome(202, body)
    assert isinstance(error, sc.VehicleStateError)
    translated = translate(error, command=True)
    assert type(translated) is errors.VehicleStateBlocks
    assert translated.metadata == {"vehicle_state": "DOOR_OPEN"}


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        pytest.param(200, execution("SUCCESS"), id="200-success"),
        pytest.param(200, None, id="200-empty"),
        pytest.param(202, execution("SUCCESS", mode="async"), id="202-streamed-success"),
    ],
)
async def test_a_confirmed_execution_is_a_success(http_status: int, body: Any) -> None:
    """SUCCESS (or a plain 200) confirms the command: `ensure_confirmed` returns."""
    confirmed = await lock_outcome(http_status, body)
    assert isinstance(confirmed, CommandExecution)
    assert confirmed.outcome is CommandOutcome.SUCCEEDED
    ensure_confirmed(confirmed)


@pytest.mark.parametrize(
    ("http_status", "body", "shown"),
    [
        pytest.param(202, None, "HTTP 202, execution status none", id="202-empty"),
        pytest.param(
            202,
            execution("PENDING", mode="async"),
            "HTTP 202, execution status PENDING, execution exec_9876543210",
            id="202-pending",
        ),
        pytest.param(
            200,
            execution("PENDING"),
            "HTTP 200, execution status PENDING, execution exec_9876543210",
            id="200-pending",
        ),
    ],
)
async def test_an_accepted_but_unconfirmed_command_has_an_unknown_outcome(
    http_status: int, body: Any, shown: str
) -> None:
    """A 202 without a final status, or status PENDING, is CommandOutcomeUnknown: it may
    have happened (`may_have_succeeded`), and the car's lock state will settle it."""
    pending = await lock_outcome(http_status, body)
    assert isinstance(pending, CommandExecution)
    with pytest.raises(errors.CommandOutcomeUnknown) as unknown:
        ensure_confirmed(pending)
    assert unknown.value.metadata == {"may_have_succeeded": "true"}
    assert unknown.value.upstream is not None
    assert unknown.value.upstream.request_id == "req-v3-1"
    assert unknown.value.upstream.description == shown


def v3_command(
    status: int, body: Any
) -> Callable[[Secret, str, LockAction], Coroutine[Any, Any, None]]:
    """Return a SmartcarAPI `command` that sends the lock through the V3 client and
    translates its answer as a V3 adapter will."""

    async def command(access_token: Secret, smartcar_vehicle_id: str, action: LockAction) -> None:
        outcome = await lock_outcome(status, body)
        if isinstance(outcome, sc.SmartcarError):
            raise translate(outcome, command=True)
        ensure_confirmed(outcome)

    return command


@pytest.mark.parametrize(
    ("status", "body", "raised", "kept"),
    [
        pytest.param(
            202,
            execution("PENDING", mode="async"),
            errors.CommandOutcomeUnknown,
            CommandState.OUTCOME_UNKNOWN,
            id="pending-kept-unknown",
        ),
        pytest.param(
            200, execution("FAILURE"), errors.VehicleStateBlocks, CommandState.FAILED, id="failed"
        ),
        pytest.param(
            403,
            v3_error(403, "AUTHENTICATION", "ACCESS_DENIED"),
            errors.AuthorizationMismatch,
            None,
            id="access-denied-dropped",
        ),
    ],
)
async def test_the_command_service_keeps_each_v3_outcome_in_its_class(
    status: int, body: Any, raised: type[Exception], kept: CommandState | None
) -> None:
    """Through the core's command use case: a PENDING execution is kept OUTCOME_UNKNOWN
    (for the reconciler), a failed one FAILED (replayed to a retry), and ACCESS_DENIED,
    refused before the car, frees the request id."""
    world = build()
    await world.connect("car-1", "sc-1")
    world.smartcar.command = v3_command(status, body)  # type: ignore[method-assign,assignment]
    with pytest.raises(raised):
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")
    record = world.uow.store.commands.get("r-1")
    assert (None if record is None else record.state) is kept
    panel = await world.gateway.get_vehicle("car-1")
    assert "control_security" in panel.vehicle.permissions
