"""The one edge between the Smartcar client and httpx.

``Transport.send`` puts a ``Call`` on the injected ``httpx.AsyncClient``, translates
every httpx exception into the SmartcarTransportError family (``raise … from exc``),
parses the JSON body, and turns an error answer into a SmartcarError through the
error reader it is given (API or OAuth flavour). No other module catches httpx errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from clients.smartcar._clock import Clock, utc_now
from clients.smartcar._wire import Headers, api_error, lower_headers
from clients.smartcar.errors import (
    SmartcarConnectionError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarTransportError,
)
from clients.smartcar.secret import Secret, redact

_log = logging.getLogger(__name__)


class ErrorReader(Protocol):
    """Builds the SmartcarError for a non-2xx answer whose body is JSON."""

    def __call__(
        self,
        status: int,
        body: object,
        headers: Headers,
        *,
        now: datetime,
        secrets: Iterable[Secret],
    ) -> SmartcarError: ...


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>`` without the token living in a headers dict."""

    def __init__(self, token: Secret) -> None:
        if not isinstance(token, Secret):
            raise TypeError("access tokens must be passed as Secret")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request


def basic_auth(username: str, password: Secret) -> httpx.Auth:
    """Return HTTP Basic auth for ``username`` and the revealed ``password``."""
    return httpx.BasicAuth(username, password.reveal())


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One request to Smartcar, with what must be scrubbed from anything we keep."""

    method: str
    url: str
    route: str
    """The path template (``/v2.0/vehicles/{id}/odometer``) used in logs and messages."""
    auth: httpx.Auth
    secrets: tuple[Secret, ...]
    # Headers and bodies may carry a revealed secret (a client secret in a token request).
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str | int] | None = None
    json_body: object = field(default=None, repr=False)
    form: Mapping[str, str] | None = field(default=None, repr=False)
    timeout_s: float | None = None
    empty_body_ok: bool = False
    """Read an empty answer (a 204, a bare 202) as the body ``None`` instead of refusing it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A successful (2xx) answer: status, lower-cased headers and the parsed JSON body."""

    status: int
    headers: dict[str, str]
    body: object
    received_at: datetime


def check_timeout(timeout_s: float | None) -> None:
    """Raise ValueError unless ``timeout_s`` is None or a positive number of seconds."""
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError("timeout_s must be a positive number of seconds")


class Transport:
    """Sends calls on an injected AsyncClient; the caller owns the client's lifecycle."""

    def __init__(self, *, http: httpx.AsyncClient, clock: Clock, timeout_s: float | None) -> None:
        check_timeout(timeout_s)
        self._http = http
        self._clock = clock
        self._timeout_s = timeout_s

    async def send(self, call: Call, *, read_error: ErrorReader = api_error) -> Answer:
        """Send ``call``; return its 2xx answer or raise the matching SmartcarError."""
        response = await self._exchange(call)
        now = utc_now(self._clock)
        headers = lower_headers(response.headers)
        request_id = headers.get("sc-request-id")
        _log.debug(
            "smartcar %s %s -> %s (sc-request-id %s)",
            call.method,
            call.route,
            response.status_code,
            redact(request_id, call.secrets) if request_id is not None else None,
        )
        body = _json_body(response, call)
        if response.is_success:
            return Answer(status=response.status_code, headers=headers, body=body, received_at=now)
        raise read_error(response.status_code, body, headers, now=now, secrets=call.secrets)

    async def _exchange(self, call: Call) -> httpx.Response:
        check_timeout(call.timeout_s)
        timeout_s = call.timeout_s if call.timeout_s is not None else self._timeout_s
        request = self._http.build_request(
            call.method,
            call.url,
            params=call.params,
            headers=call.headers,
            json=call.json_body,
            data=call.form,
            timeout=httpx.Timeout(timeout_s) if timeout_s is not None else self._http.timeout,
        )
        try:
            return await self._http.send(request, auth=call.auth)
        except httpx.HTTPError as exc:
            _log.debug("smartcar %s %s failed: %s", call.method, call.route, type(exc).__name__)
            raise translate(exc, call) from exc


def _json_body(response: httpx.Response, call: Call) -> object:
    """Parse the body as JSON, or raise SmartcarProtocolError describing (not echoing) it."""
    if call.empty_body_ok and not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are ValueErrors
        content_type = redact(response.headers.get("content-type", "no content type"), call.secrets)
        raise SmartcarProtocolError(
            f"{call.method} {call.route}: HTTP {response.status_code} answer is not JSON "
            f"({content_type}, {len(response.content)} bytes)",
            status=response.status_code,
        ) from None


# Most specific first. ``request_sent`` is False only when the request surely never left:
# after a read/write failure Smartcar may have acted (a lock may have happened).
_TRANSLATION: tuple[tuple[type[httpx.HTTPError], type[SmartcarTransportError], bool], ...] = (
    (httpx.ConnectTimeout, SmartcarTimeout, False),
    (httpx.PoolTimeout, SmartcarTimeout, False),
    (httpx.TimeoutException, SmartcarTimeout, True),
    (httpx.ConnectError, SmartcarConnectionError, False),
    (httpx.ProxyError, SmartcarConnectionError, False),
    (httpx.UnsupportedProtocol, SmartcarConnectionError, False),
    (httpx.LocalProtocolError, SmartcarConnectionError, False),
    (httpx.DecodingError, SmartcarProtocolError, True),
    (httpx.TooManyRedirects, SmartcarProtocolError, True),
    (httpx.HTTPStatusError, SmartcarProtocolError, True),
)


def translate(exc: httpx.HTTPError, call: Call) -> SmartcarTransportError:
    """Return the SmartcarTransportError for an httpx exception; anything else is a
    connection error that may have reached Smartcar (read/write errors, resets …)."""
    detail = redact(str(exc), call.secrets) or "no detail"
    message = f"{call.method} {call.route}: {type(exc).__name__}: {detail}"
    for httpx_class, smartcar_class, request_sent in _TRANSLATION:
        if isinstance(exc, httpx_class):
            return smartcar_class(message, request_sent=request_sent)
    return SmartcarConnectionError(message, request_sent=True)
