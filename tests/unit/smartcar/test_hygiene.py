"""No token, client secret or management token ever shows in an error or a log line.

Every error class is raised here from an answer stuffed with the secret that was sent,
and neither ``str``, ``repr`` nor any attribute may contain it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clients.smartcar import (
    AppRateLimited,
    AuthenticationError,
    CommandFailed,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    PermissionDenied,
    Secret,
    SmartcarAuth,
    SmartcarCompatibility,
    SmartcarConnectionError,
    SmartcarError,
    SmartcarManagement,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarTransportError,
    SmartcarVehicles,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tests.unit.smartcar.fakes import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    MANAGEMENT_TOKEN,
    REFRESH_TOKEN,
    VEHICLE_ID,
    FakeSmartcar,
)
from tests.unit.smartcar.test_errors import BY_TYPE_AND_CODE

CODE = Secret("authcode-8e1f2a3b4c5d")


@dataclass(frozen=True)
class Clients:
    """The clients under test."""

    vehicles: SmartcarVehicles
    auth: SmartcarAuth
    management: SmartcarManagement
    compatibility: SmartcarCompatibility


Call = Callable[[Clients], Awaitable[object]]


def _odometer(c: Clients) -> Awaitable[object]:
    return c.vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)


def _batch(c: Clients) -> Awaitable[object]:
    async def first_item_error() -> object:
        result = await c.vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer"])
        return result.reading("/odometer", object)

    return first_item_error()


def _refresh(c: Clients) -> Awaitable[object]:
    return c.auth.refresh(REFRESH_TOKEN)


def _exchange(c: Clients) -> Awaitable[object]:
    return c.auth.exchange_code(CODE.reveal())


def _delete(c: Clients) -> Awaitable[object]:
    return c.management.delete_connections(vehicle_id=VEHICLE_ID)


def _compatibility(c: Clients) -> Awaitable[object]:
    return c.compatibility.by_vin("5YJ3E1EA7KF317000", scopes=["read_vin"], country="US")


def _leaky_api_body(type_: str | None, code: str | None, status: int, leak: str) -> dict[str, Any]:
    return {
        "type": type_,
        "code": code,
        "description": f"token {leak} is bad",
        "docURL": f"https://smartcar.com/docs?t={leak}",
        "statusCode": status,
        "requestId": leak,
        "resolution": {"type": "REAUTHENTICATE", "url": f"https://connect.test/?token={leak}"},
        "suggestedUserMessage": f"Hello {leak}",
    }


def _api_body(type_: str | None, code: str | None, status: int) -> Callable[[str], Any]:
    return lambda leak: _leaky_api_body(type_, code, status, leak)


def _oauth_body(error: str) -> Callable[[str], Any]:
    return lambda leak: {"error": error, "error_description": f"Invalid refresh_token: {leak}"}


@dataclass(frozen=True)
class Scenario:
    """One way of provoking one error class while a secret is on the wire."""

    name: str
    call: Call
    leaked: tuple[Secret, ...]
    expected: type[SmartcarError]
    script: Callable[[FakeSmartcar, str], None]


def _reply_json(status: int, body: Callable[[str], Any]) -> Callable[[FakeSmartcar, str], None]:
    return lambda fake, leak: fake.reply(status, json_body=body(leak), headers={"x-echo": leak})


def _reply_raw(status: int) -> Callable[[FakeSmartcar, str], None]:
    return lambda fake, leak: fake.reply(
        status, content=f"<html>{leak}</html>".encode(), headers={"content-type": f"text/{leak}"}
    )


def _raise(cls: type[httpx.RequestError]) -> Callable[[FakeSmartcar, str], None]:
    return lambda fake, leak: fake.fail_with(lambda request: cls(f"failed {leak}", request=request))


def _scenarios() -> list[Scenario]:
    api = [
        Scenario(
            f"api-{cls.__name__}-{type_}-{code}",
            _odometer,
            (ACCESS_TOKEN,),
            cls,
            _reply_json(status, _api_body(type_, code, status)),
        )
        for type_, code, status, cls in BY_TYPE_AND_CODE
    ]
    batch_item = {
        "path": "/odometer",
        "code": 429,
        "headers": {"retry-after": "5"},
    }
    batch = Scenario(
        "batch-item",
        _batch,
        (ACCESS_TOKEN,),
        AppRateLimited,
        _reply_json(
            200,
            lambda leak: {
                "responses": [
                    {**batch_item, "body": _leaky_api_body("RATE_LIMIT", "SMARTCAR_API", 429, leak)}
                ]
            },
        ),
    )
    oauth_classes: list[type[OAuthError]] = [
        InvalidGrant,
        InvalidClient,
        InvalidRequest,
        InvalidScope,
        UnauthorizedClient,
        UnsupportedGrantType,
        OAuthError,
    ]
    oauth = [
        Scenario(
            f"oauth-{cls.__name__}-{name}",
            call,
            (sent, CLIENT_SECRET),
            cls,
            _reply_json(400, _oauth_body(cls.oauth_error or "server_error")),
        )
        for cls in oauth_classes
        for name, call, sent in (("refresh", _refresh, REFRESH_TOKEN), ("code", _exchange, CODE))
    ]
    transport = [
        Scenario(f"transport-{cls.__name__}", _odometer, (ACCESS_TOKEN,), expected, _raise(cls))
        for cls, expected in (
            (httpx.ConnectTimeout, SmartcarTimeout),
            (httpx.ReadTimeout, SmartcarTimeout),
            (httpx.ConnectError, SmartcarConnectionError),
            (httpx.RemoteProtocolError, SmartcarConnectionError),
            (httpx.DecodingError, SmartcarProtocolError),
        )
    ]
    protocol = [
        Scenario(
            "protocol-html", _odometer, (ACCESS_TOKEN,), SmartcarProtocolError, _reply_raw(502)
        ),
        Scenario(
            "protocol-untyped-json",
            _odometer,
            (ACCESS_TOKEN,),
            SmartcarProtocolError,
            _reply_json(401, lambda leak: {"message": leak}),
        ),
        Scenario(
            "protocol-wrong-shape",
            _odometer,
            (ACCESS_TOKEN,),
            SmartcarProtocolError,
            _reply_json(200, lambda leak: {"distance": leak}),
        ),
        Scenario(
            "management",
            _delete,
            (MANAGEMENT_TOKEN,),
            PermissionDenied,
            _reply_json(403, lambda leak: _leaky_api_body("PERMISSION", None, 403, leak)),
        ),
        Scenario(
            "compatibility-client-secret",
            _compatibility,
            (CLIENT_SECRET,),
            AuthenticationError,
            _reply_json(401, lambda leak: _leaky_api_body("AUTHENTICATION", None, 401, leak)),
        ),
        Scenario(
            "compatibility-transport",
            _compatibility,
            (CLIENT_SECRET,),
            SmartcarConnectionError,
            _raise(httpx.ConnectError),
        ),
    ]
    return [*api, batch, *oauth, *transport, *protocol]


SCENARIOS = _scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_errors_never_show_the_secrets_that_were_sent(
    fake: FakeSmartcar,
    vehicles: SmartcarVehicles,
    auth: SmartcarAuth,
    management: SmartcarManagement,
    compatibility: SmartcarCompatibility,
    caplog: pytest.LogCaptureFixture,
    scenario: Scenario,
) -> None:
    """An answer echoing the sent secret gives an error whose str, repr and fields hide it."""
    leak = " ".join(s.reveal() for s in scenario.leaked)
    scenario.script(fake, leak)
    with caplog.at_level(logging.DEBUG), pytest.raises(SmartcarError) as caught:
        await scenario.call(Clients(vehicles, auth, management, compatibility))
    error = caught.value
    assert type(error) is scenario.expected
    shown = " ".join([str(error), repr(error), repr(vars(error)), repr(error.args), caplog.text])
    for secret in (*scenario.leaked, CLIENT_SECRET, ACCESS_TOKEN, MANAGEMENT_TOKEN):
        assert secret.reveal() not in shown


def _concrete_errors(cls: type[SmartcarError] = SmartcarError) -> set[type[SmartcarError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_concrete_errors(sub)}
    return found - {SmartcarTransportError}


V3_ONLY: set[type[SmartcarError]] = {CommandFailed}
"""Classes only the V3 client raises (tests/unit/smartcar/v3/test_hygiene.py covers them)."""


def test_the_scenarios_raise_every_error_class() -> None:
    """Every class of the tree (bar the never-raised SmartcarTransportError root and the
    V3-only classes) is covered."""
    assert {s.expected for s in SCENARIOS} == _concrete_errors() - V3_ONLY
