"""Test doubles and constants for the Smartcar client: a scripted fake Smartcar."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from clients.smartcar import ClientCredentials, Secret, SmartcarEndpoints

NOW = datetime(2025, 5, 9, 17, 0, tzinfo=UTC)
ACCESS_TOKEN = Secret("at-5b0e1d6c-9f7a-4e2b-8c11-2f6a7d3e9b40")
OTHER_TOKEN = Secret("at-0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d")
REFRESH_TOKEN = Secret("rt-7c3e5a91-44d2-4f0b-a6e8-d90b1f2c3a57")
CLIENT_SECRET = Secret("cs-e2f4a6c8-1b3d-4f5a-9c7e-0d2b4f6a8c0e")
MANAGEMENT_TOKEN = Secret("amt-3d5f7b9a-0c2e-4a6b-8d1f-5e7a9c1b3d5f")
VEHICLE_ID = "36ab27d0-fd9d-4455-823a-ce30af709ffc"
USER_ID = "e0514ef4-5226-11e8-8c13-8f6e8f02e27e"
ENDPOINTS = SmartcarEndpoints(
    api_origin="https://api.sc.test",
    auth_url="https://auth.sc.test/oauth/token",
    connect_origin="https://connect.sc.test",
    management_origin="https://management.sc.test",
)
CREDENTIALS = ClientCredentials(
    client_id="client-123",
    client_secret=CLIENT_SECRET,
    redirect_uri="https://fleet.test/callback",
)

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeSmartcar:
    """Answers each request with the next scripted reply and keeps every request it saw."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._replies: deque[Reply] = deque()

    def reply(
        self,
        status: int = 200,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue a response; ``json_body`` is serialised unless raw ``content`` is given."""
        body = content if content is not None else json.dumps(json_body).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        self._replies.append(httpx.Response(status, content=body, headers=all_headers))

    def fail_with(self, make_exc: Callable[[httpx.Request], Exception]) -> None:
        """Queue an exception, built from the request, to be raised by the transport."""

        def raise_it(request: httpx.Request) -> httpx.Response:
            raise make_exc(request)

        self._replies.append(raise_it)

    @property
    def last(self) -> httpx.Request:
        """The most recent request."""
        return self.requests[-1]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self._replies.popleft()
        return reply if isinstance(reply, httpx.Response) else reply(request)


def fixed_clock() -> datetime:
    """The unit tests' clock: always NOW."""
    return NOW


def error_body(type_: str | None, code: str | None, status: int, **extra: Any) -> dict[str, Any]:
    """A Smartcar v2 error body."""
    return {
        "type": type_,
        "code": code,
        "description": f"{type_}:{code} happened",
        "docURL": "https://smartcar.com/docs/errors",
        "statusCode": status,
        "requestId": "req-err-1",
        "resolution": {"type": "RETRY_LATER"},
        "suggestedUserMessage": "Please try again later.",
        **extra,
    }
