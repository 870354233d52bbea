"""Request decoding: the bytes of a call become its request message, or a `Malformed` marker.

grpc.aio parses a request with the handler's deserializer before the handler, and so the
call frame of `gateway.edge.grpc.interceptors`, runs: a parse failure there answers UNKNOWN
with protobuf's exception class in the message, before the caller is even authenticated.
The interceptor therefore hands grpc `lenient(deserializer)` for every method, which never
raises on the caller's bytes:

- more than `MAX_REQUEST_BYTES` → `Malformed` without parsing them (no valid request of
  this service comes near: the largest, WatchVehicles or WatchVehicleEvents with every id
  at its maximum length, is about half of it);
- bytes protobuf cannot parse as the method's request (corrupt wire format, a string that
  is not UTF-8, nesting past protobuf's depth limit) → `Malformed`.

The call frame admits the caller first (an unauthenticated caller still gets
UNAUTHENTICATED, a caller not allowed the method PERMISSION_DENIED), then turns the marker
into INVALID_ARGUMENT naming `request`, counted like every other status by the RPC
observer. Beyond `MAX_RECEIVE_MESSAGE_BYTES` grpc itself refuses the message
(RESOURCE_EXHAUSTED) without handing it to Python at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from gateway.core.errors import InvalidArgument

MAX_REQUEST_BYTES = 256 * 1024
"""The largest request message the gateway parses; larger ones are INVALID_ARGUMENT."""

MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024
"""The server's `grpc.max_receive_message_length`: grpc refuses larger messages itself."""

REQUEST_FIELD = "request"
"""The BadRequest field path naming the request as a whole."""

Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Request bytes that are no request message, and what to tell the caller about them."""

    description: str

    def error(self) -> InvalidArgument:
        """Return the INVALID_ARGUMENT that answers this request."""
        return InvalidArgument.of(REQUEST_FIELD, self.description)


TOO_LARGE = Malformed(f"must be at most {MAX_REQUEST_BYTES} bytes")
UNPARSABLE = Malformed("is not a valid request message for this method")


def lenient(deserializer: Deserializer | None) -> Deserializer | None:
    """Wrap a request deserializer so that bad bytes become a `Malformed` marker."""
    if deserializer is None:  # the handler takes raw bytes: nothing to parse
        return None
    parse = deserializer

    def decode(data: bytes) -> Any:
        if len(data) > MAX_REQUEST_BYTES:
            return TOO_LARGE
        try:
            return parse(data)
        except DecodeError:
            return UNPARSABLE

    return decode


def ensure_decoded(request: Any) -> None:
    """Raise the INVALID_ARGUMENT for a `Malformed` request; let a message pass."""
    if isinstance(request, Malformed):
        raise request.error()


async def decoded(requests: AsyncIterable[Any]) -> AsyncIterator[Any]:
    """Yield a request stream's messages, raising at the first `Malformed` one."""
    async for request in requests:
        ensure_decoded(request)
        yield request
