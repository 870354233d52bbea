"""The transport edge: every httpx failure and unreadable answer becomes a SmartcarError."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from clients.smartcar import (
    SmartcarConnectionError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarTransportError,
    SmartcarVehicles,
)
from tests.unit.smartcar.fakes import (
    ACCESS_TOKEN,
    ENDPOINTS,
    VEHICLE_ID,
    FakeSmartcar,
    fixed_clock,
)

Translation = tuple[type[httpx.HTTPError], type[SmartcarTransportError], bool]

EXPECTED: list[Translation] = [
    (httpx.ConnectTimeout, SmartcarTimeout, False),
    (httpx.PoolTimeout, SmartcarTimeout, False),
    (httpx.ReadTimeout, SmartcarTimeout, True),
    (httpx.WriteTimeout, SmartcarTimeout, True),
    (httpx.ConnectError, SmartcarConnectionError, False),
    (httpx.ReadError, SmartcarConnectionError, True),
    (httpx.WriteError, SmartcarConnectionError, True),
    (httpx.RemoteProtocolError, SmartcarConnectionError, True),
    (httpx.LocalProtocolError, SmartcarConnectionError, False),
    (httpx.ProxyError, SmartcarConnectionError, False),
    (httpx.UnsupportedProtocol, SmartcarConnectionError, False),
    (httpx.DecodingError, SmartcarProtocolError, True),
]


def _make(cls: type[httpx.HTTPError]) -> Callable[[httpx.Request], Exception]:
    """Build an instance of any httpx exception class for a request."""

    def build(request: httpx.Request) -> Exception:
        if issubclass(cls, httpx.HTTPStatusError):
            return cls("boom", request=request, response=httpx.Response(500, request=request))
        if issubclass(cls, httpx.RequestError):
            return cls("boom", request=request)
        return cls("boom")

    return build


def _every_httpx_error(cls: type[httpx.HTTPError] = httpx.HTTPError) -> list[type[httpx.HTTPError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _every_httpx_error(sub)
    return found


@pytest.mark.parametrize(("httpx_class", "expected", "request_sent"), EXPECTED)
async def test_httpx_failures_translate_with_request_sent(
    fake: FakeSmartcar,
    vehicles: SmartcarVehicles,
    httpx_class: type[httpx.HTTPError],
    expected: type[SmartcarTransportError],
    request_sent: bool,
) -> None:
    """Connect/pool failures surely never left; read/write failures may have reached Smartcar."""
    fake.fail_with(_make(httpx_class))
    with pytest.raises(SmartcarTransportError) as caught:
        await vehicles.lock(ACCESS_TOKEN, VEHICLE_ID)
    assert type(caught.value) is expected
    assert caught.value.request_sent is request_sent
    assert isinstance(caught.value.__cause__, httpx_class)
    assert "/v2.0/vehicles/{id}/security" in str(caught.value)


@pytest.mark.parametrize("httpx_class", _every_httpx_error(), ids=lambda c: c.__name__)
async def test_no_httpx_error_escapes_untranslated(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, httpx_class: type[httpx.HTTPError]
) -> None:
    """Every httpx.HTTPError subclass, found by walking __subclasses__, becomes a SmartcarError."""
    fake.fail_with(_make(httpx_class))
    with pytest.raises(SmartcarError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert isinstance(caught.value, SmartcarTransportError)
    assert caught.value.__cause__ is not None


def test_the_walk_sees_the_whole_httpx_tree() -> None:
    """The walk finds the known leaves, so the test above cannot pass vacuously."""
    walked = set(_every_httpx_error())
    assert {cls for cls, _, _ in EXPECTED} <= walked
    assert {httpx.HTTPStatusError, httpx.TooManyRedirects, httpx.CloseError} <= walked


async def test_non_json_success_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """A 200 that is not JSON cannot be read."""
    fake.reply(200, content=b"<html>ok</html>", headers={"content-type": "text/html"})
    with pytest.raises(SmartcarProtocolError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.status == 200
    assert caught.value.request_sent is True


async def test_html_502_from_a_proxy_is_a_protocol_error_without_the_page(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """A proxy's HTML error page gives a protocol error with its status, not its markup."""
    page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    fake.reply(502, content=page, headers={"content-type": "text/html"})
    with pytest.raises(SmartcarProtocolError) as caught:
        await vehicles.lock(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.status == 502
    assert caught.value.request_sent is True
    assert "text/html" in str(caught.value)
    assert "nginx" not in str(caught.value)


async def test_empty_body_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """An empty 200 answer is not the documented JSON."""
    fake.reply(200, content=b"")
    with pytest.raises(SmartcarProtocolError, match="not JSON"):
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)


@pytest.mark.parametrize(
    "body",
    [{}, {"distance": "far"}, {"distance": True}, [], "37829", None],
    ids=["missing", "string", "bool", "list", "json-string", "null"],
)
async def test_success_body_of_the_wrong_shape_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, body: object
) -> None:
    """A 2xx body missing its documented key, or with the wrong type, is refused."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError, match="odometer"):
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)


async def test_per_call_timeout_overrides_the_client_default(fake: FakeSmartcar) -> None:
    """timeout_s on a call wins over the client's, which wins over the AsyncClient's."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), timeout=99) as http:
        client = SmartcarVehicles(http=http, endpoints=ENDPOINTS, clock=fixed_clock, timeout_s=7)
        for _ in range(2):
            fake.reply(200, json_body={"distance": 1})
        await client.odometer(ACCESS_TOKEN, VEHICLE_ID, timeout_s=1.5)
        await client.odometer(ACCESS_TOKEN, VEHICLE_ID)
    first, second = (r.extensions["timeout"] for r in fake.requests)
    assert first == httpx.Timeout(1.5).as_dict()
    assert second == httpx.Timeout(7).as_dict()


async def test_without_timeouts_the_async_clients_own_applies(fake: FakeSmartcar) -> None:
    """The caller's AsyncClient keeps its configured timeouts when none is given."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake), timeout=42) as http:
        client = SmartcarVehicles(http=http, endpoints=ENDPOINTS, clock=fixed_clock)
        fake.reply(200, json_body={"distance": 1})
        await client.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert fake.last.extensions["timeout"] == httpx.Timeout(42).as_dict()


@pytest.mark.parametrize("timeout_s", [0, -1.0])
async def test_timeouts_must_be_positive(vehicles: SmartcarVehicles, timeout_s: float) -> None:
    """A zero or negative timeout is a ValueError, not an instant failure."""
    with pytest.raises(ValueError, match="timeout_s"):
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID, timeout_s=timeout_s)


async def test_debug_log_names_route_status_and_request_id_only(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, caplog: pytest.LogCaptureFixture
) -> None:
    """One debug line per request: method, path template, status, request id; no token, no id."""
    fake.reply(200, json_body={"distance": 1}, headers={"sc-request-id": "rid-9"})
    with caplog.at_level(logging.DEBUG, logger="clients.smartcar"):
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("clients.smartcar")]
    assert lines == ["smartcar GET /v2.0/vehicles/{id}/odometer -> 200 (sc-request-id rid-9)"]
