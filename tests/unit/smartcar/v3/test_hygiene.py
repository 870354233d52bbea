"""No application token or client secret ever shows in a V3 error, repr or log line.

Each scenario provokes an error while a secret is on the wire and the answer echoes it
back everywhere it can (body texts, headers, request ids, doc URLs); ``str``, ``repr``, the
attributes of the error and the captured log must not contain it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clients.smartcar import (
    CommandFailed,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    Secret,
    SmartcarConnectionError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarTransportError,
    VehicleAsleep,
    VehicleStateError,
)
from clients.smartcar._transport import Call
from clients.smartcar.v3 import (
    SignalFailure,
    SmartcarConnectionsV3,
    SmartcarIAM,
    SmartcarManagementV3,
    SmartcarVehiclesV3,
    TokenRequestStyle,
)
from tests.unit.smartcar import test_hygiene as v2_hygiene
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar, fixed_clock
from tests.unit.smartcar.v3.fakes import (
    APP_TOKEN,
    CONNECTION_ID,
    CREDENTIALS,
    ENDPOINTS,
    SECRET_NEW,
    SECRET_OLD,
    signal,
)
from tests.unit.smartcar.v3.test_errors import V3_CLASSES

EVERY_SECRET = (APP_TOKEN, SECRET_OLD, SECRET_NEW)
CLIENT_SECRETS = (SECRET_OLD, SECRET_NEW)


@dataclass(frozen=True)
class Clients:
    """The V3 clients under test."""

    iam: SmartcarIAM
    vehicles: SmartcarVehiclesV3
    connections: SmartcarConnectionsV3
    management: SmartcarManagementV3


@pytest.fixture
def clients(
    iam: SmartcarIAM,
    vehicles: SmartcarVehiclesV3,
    connections: SmartcarConnectionsV3,
    management: SmartcarManagementV3,
) -> Clients:
    """Every V3 client on the fake."""
    return Clients(iam, vehicles, connections, management)


Script = Callable[[FakeSmartcar, str], None]


@dataclass(frozen=True)
class Scenario:
    """One way of provoking one error class while secrets are on the wire."""

    name: str
    call: Callable[[Clients], Awaitable[object]]
    expected: type[SmartcarError]
    script: Script
    replies: int = 1
    sent: tuple[Secret, ...] = (APP_TOKEN,)
    """The secrets the call puts on the wire (the answer echoes them back)."""


def _leaky_v3(status: int, type_: str | None, code: str | None, leak: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "status": str(status),
                "type": type_,
                "code": code,
                "title": f"title {leak}",
                "detail": f"token {leak} is bad",
                "links": {"about": f"https://smartcar.com/docs?t={leak}"},
                "resolution": {"type": "REAUTHENTICATE", "url": f"https://x.test/?t={leak}"},
                "suggestedUserMessage": f"Hello {leak}",
                "meta": {"requestId": leak},
            }
        ]
    }


def _json(status: int, body: Callable[[str], Any], times: int = 1) -> Script:
    def script(fake: FakeSmartcar, leak: str) -> None:
        for _ in range(times):
            fake.reply(
                status, json_body=body(leak), headers={"x-echo": leak, "sc-request-id": leak}
            )

    return script


def _raw(status: int) -> Script:
    return lambda fake, leak: fake.reply(
        status, content=f"<html>{leak}</html>".encode(), headers={"content-type": f"text/{leak}"}
    )


def _raise(cls: type[httpx.RequestError]) -> Script:
    return lambda fake, leak: fake.fail_with(lambda request: cls(f"failed {leak}", request=request))


def _signals(c: Clients) -> Awaitable[object]:
    return c.vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


def _lock(c: Clients) -> Awaitable[object]:
    return c.vehicles.lock(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


def _token(c: Clients) -> Awaitable[object]:
    return c.iam.request_token()


def _failed_signal(c: Clients) -> Awaitable[object]:
    async def read() -> object:
        signals = await _signals(c)
        assert isinstance(signals.odometer, SignalFailure)
        assert signals.odometer.error is not None
        raise signals.odometer.error

    return read()


def _scenarios() -> list[Scenario]:
    api = [
        Scenario(
            f"v3-{cls.__name__}-{type_}-{code}",
            _signals,
            cls,
            _json(status, lambda leak, s=status, t=type_, c=code: _leaky_v3(s, t, c, leak)),
        )
        for status, type_, code, cls in V3_CLASSES
    ]
    iam = [
        Scenario(
            "iam-invalid-client-oauth",
            _token,
            InvalidClient,
            _json(401, lambda leak: {"error": "invalid_client", "error_description": leak}, 2),
            replies=2,
            sent=CLIENT_SECRETS,
        ),
        Scenario(
            "iam-invalid-client-v3",
            _token,
            InvalidClient,
            _json(401, lambda leak: _leaky_v3(401, "AUTHENTICATION", "UNAUTHORIZED", leak), 2),
            replies=2,
            sent=CLIENT_SECRETS,
        ),
        Scenario(
            "iam-invalid-request",
            _token,
            InvalidRequest,
            _json(400, lambda leak: {"error": "invalid_request", "error_description": leak}),
            sent=CLIENT_SECRETS,
        ),
        Scenario(
            "iam-server-error",
            _token,
            OAuthError,
            _json(500, lambda leak: {"error": "server_error", "error_description": leak}),
            sent=CLIENT_SECRETS,
        ),
        Scenario("iam-html", _token, SmartcarProtocolError, _raw(502), sent=CLIENT_SECRETS),
        Scenario(
            "iam-token-echo",
            _token,
            SmartcarProtocolError,
            _json(200, lambda leak: {"access_token": leak, "token_type": f"mac {leak}"}),
            sent=CLIENT_SECRETS,
        ),
        Scenario(
            "iam-timeout", _token, SmartcarTimeout, _raise(httpx.ReadTimeout), sent=CLIENT_SECRETS
        ),
    ]
    other = [
        Scenario(
            "signal-error-in-200",
            _failed_signal,
            VehicleAsleep,
            _json(
                200,
                lambda leak: {
                    "data": [
                        signal(
                            "odometer-traveleddistance",
                            None,
                            status="ERROR",
                            error=_leaky_v3(409, "VEHICLE_STATE", "ASLEEP", leak)["errors"][0],
                        )
                    ]
                },
            ),
        ),
        Scenario(
            "command-failed",
            _lock,
            CommandFailed,
            _json(
                200,
                lambda leak: {"data": {"id": leak, "attributes": {"status": {"value": "FAILURE"}}}},
            ),
        ),
        Scenario(
            "command-failure-error",
            _lock,
            VehicleStateError,
            _json(
                202,
                lambda leak: {
                    "data": {
                        "attributes": {
                            "status": {
                                "value": "FAILURE",
                                "error": _leaky_v3(409, "VEHICLE_STATE", "DOOR_OPEN", leak)[
                                    "errors"
                                ][0],
                            }
                        }
                    }
                },
            ),
        ),
        Scenario(
            "command-reset", _lock, SmartcarConnectionError, _raise(httpx.RemoteProtocolError)
        ),
        Scenario(
            "connections-html",
            lambda c: c.connections.delete_connection(APP_TOKEN, CONNECTION_ID),
            SmartcarProtocolError,
            _raw(500),
        ),
        Scenario(
            "management-untyped",
            lambda c: c.management.list_webhooks(APP_TOKEN),
            SmartcarProtocolError,
            _json(403, lambda leak: {"message": leak}),
        ),
    ]
    return [*api, *iam, *other]


SCENARIOS = _scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_v3_errors_never_show_a_secret(
    fake: FakeSmartcar,
    clients: Clients,
    caplog: pytest.LogCaptureFixture,
    scenario: Scenario,
) -> None:
    """An answer echoing the sent secrets gives an error whose str, repr and fields hide them."""
    leak = " ".join(s.reveal() for s in scenario.sent)
    scenario.script(fake, leak)
    with caplog.at_level(logging.DEBUG), pytest.raises(SmartcarError) as caught:
        await scenario.call(clients)
    error = caught.value
    assert type(error) is scenario.expected
    assert len(fake.requests) == scenario.replies
    shown = " ".join([str(error), repr(error), repr(vars(error)), repr(error.args), caplog.text])
    for secret in EVERY_SECRET:
        assert secret.reveal() not in shown


async def test_successful_values_show_no_secret(fake: FakeSmartcar, clients: Clients) -> None:
    """The token, the grant and the credentials print masked."""
    fake.reply(401, json_body={"error": "invalid_client"})
    fake.reply(200, json_body={"access_token": APP_TOKEN.reveal(), "expires_in": 3600})
    grant = await clients.iam.request_token()
    shown = " ".join(repr(v) for v in (grant, grant.token, CREDENTIALS, clients.iam))
    for secret in EVERY_SECRET:
        assert secret.reveal() not in shown


def test_a_call_holding_a_secret_in_its_body_prints_without_it() -> None:
    """Call's repr leaves out headers and bodies (a JSON token request carries the secret)."""
    call = Call(
        method="POST",
        url="https://iam.sc.test/oauth2/token",
        route="/oauth2/token",
        auth=httpx.Auth(),
        secrets=(SECRET_OLD,),
        headers={"x": SECRET_OLD.reveal()},
        json_body={"client_secret": SECRET_OLD.reveal()},
        form={"client_secret": SECRET_OLD.reveal()},
    )
    assert SECRET_OLD.reveal() not in repr(call)


async def test_json_and_basic_styles_log_no_secret(
    fake: FakeSmartcar, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the request style, nothing logged carries a client secret."""
    for style in TokenRequestStyle:
        iam = SmartcarIAM(
            http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock, style=style
        )
        fake.reply(200, json_body={"access_token": "t", "expires_in": 3600})
        with caplog.at_level(logging.DEBUG):
            await iam.request_token()
    for secret in (SECRET_OLD, SECRET_NEW):
        assert secret.reveal() not in caplog.text


def _concrete_errors(cls: type[SmartcarError] = SmartcarError) -> set[type[SmartcarError]]:
    found: set[type[SmartcarError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_concrete_errors(sub)}
    return found - {SmartcarTransportError}


def test_v2_and_v3_scenarios_raise_every_error_class() -> None:
    """Between them, the v2 and V3 hygiene scenarios raise every class of the tree."""
    raised = {s.expected for s in SCENARIOS} | {s.expected for s in v2_hygiene.SCENARIOS}
    assert raised == _concrete_errors()


def test_secrets_are_distinct() -> None:
    """The fixtures' secrets differ, so a leak of one is not hidden by another."""
    assert len({s.reveal() for s in EVERY_SECRET}) == len(EVERY_SECRET)
    assert all(isinstance(s, Secret) for s in EVERY_SECRET)
