"""How answers leave the simulator: JSON bodies, Smartcar's headers, and broken transports.

`deliver` is the last step of every handler that can carry a transport fault (see
`faults`): it hangs, holds (see `holds`), garbles or resets instead of answering cleanly.
A reset is a real TCP RST: `SO_LINGER` is set to (on, 0 s) on the socket before the
transport is aborted, so the kernel drops the connection instead of closing it in order,
and the client sees "connection reset by peer" rather than a clean end of stream.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import uuid
from collections.abc import Mapping
from contextvars import ContextVar

from aiohttp import web

from clients.simulator.clock import format_iso_ms
from clients.simulator.faults import Fault, FaultKind
from clients.simulator.readings import Units
from clients.simulator.world import World

WORLD = web.AppKey("world", World)
_REQUEST_ID: ContextVar[str] = ContextVar("sc_request_id", default="")


def new_request_id() -> str:
    """Give the current request (its task) a fresh `SC-Request-Id` and return it."""
    request_id = str(uuid.uuid4())
    _REQUEST_ID.set(request_id)
    return request_id


def request_id() -> str:
    """Return the current request's `SC-Request-Id` (set by the app's middleware)."""
    return _REQUEST_ID.get()


_LINGER_RESET = struct.pack("ii", 1, 0)


def json_response(
    body: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Return a JSON response (`Content-Type: application/json`, which the SDK requires)."""
    return web.json_response(body, status=status, headers=headers)


def data_headers(*, recorded_s: float | None, fetched_s: float, units: Units) -> dict[str, str]:
    """Return the lowercase `sc-*` headers of one reading (data age only when there is one)."""
    headers = {"sc-unit-system": str(units)}
    if recorded_s is not None:
        headers["sc-data-age"] = format_iso_ms(recorded_s)
        headers["sc-fetched-at"] = format_iso_ms(fetched_s)
    return headers


async def deliver(
    world: World, request: web.Request, response: web.Response, fault: Fault | None
) -> web.Response:
    """Send `response`, unless a transport fault hangs, garbles or resets it first."""
    if fault is None:
        return response
    if fault.kind is FaultKind.HANG:
        await world.pause(world.config.hang_s)
    elif fault.kind is FaultKind.HOLD:
        await world.holds.hold(world.stopping)
    elif fault.kind is FaultKind.MALFORMED:
        return garbled(response)
    elif fault.kind is FaultKind.RESET:
        reset_connection(request)
    return response


def garbled(response: web.Response) -> web.Response:
    """Return a 200 whose JSON body is cut in half (so it no longer parses)."""
    text = response.text or "{}"
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("sc-")}
    return web.Response(
        status=200,
        text=text[: max(1, len(text) // 2)],
        content_type="application/json",
        headers=headers,
    )


def reset_connection(request: web.Request) -> None:
    """Reset the request's TCP connection (RST), so the client sees a transport error."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()
