"""Async and sync clients for the gateway: deadlines by default, caller credentials and a
request id on every call, typed exceptions, retries only where they are safe.

    async with AsyncGatewayClient("gateway.internal:50051", credentials=creds) as gateway:
        result = await gateway.call(calls.unlock("car-1"))

Each call's attempts share one `x-request-id` and one overall deadline (the call's
default, or `timeout_s`): each attempt is sent with what is left of it. A safe call (see
`clients.gateway.calls`) is repeated after UNAVAILABLE, waiting the server's RetryInfo
delay or an exponential backoff (both capped at `max_backoff_s`), at most `attempts` times
in all and only while the wait ends before the deadline; anything else raises at once.

The sync client takes a channel the caller made instead of an address (its own options or
interceptors; in tests, grpc_testing's channel answering as the gateway), and the sleep
and monotonic clock its retries use (a test's fake clock: no real waits).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
import grpc.aio

from clients.gateway.calls import Call
from clients.gateway.errors import GatewayCallError, from_rpc_error

R = TypeVar("R")
REQUEST_ID_KEY = "x-request-id"
_SERVICE = "/vehiclegateway.v1.VehicleGateway/"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerCredentials:
    """How the caller proves who it is: a bearer token, a client certificate (mTLS), or
    both; `root_certificates` to trust the gateway's TLS certificate. Never printed."""

    bearer_token: str | None = field(default=None, repr=False)
    root_certificates: bytes | None = field(default=None, repr=False)
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    tls: bool = True
    """False only for a plaintext loopback gateway (development, tests)."""

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The TLS credentials of the channel."""
        return grpc.ssl_channel_credentials(
            self.root_certificates, self.private_key, self.certificate_chain
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The per-call metadata carrying the bearer token, if any."""
        if self.bearer_token is None:
            return ()
        return (("authorization", f"Bearer {self.bearer_token}"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientPolicy:
    """Default deadlines and how often, and how patiently, safe calls are repeated."""

    read_timeout_s: float = 10.0
    command_timeout_s: float = 75.0
    """A command can take the gateway's 60 s upstream limit and then some."""
    attempts: int = 3
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0


def retry_delay_s(
    policy: ClientPolicy, call: Call[Any], error: GatewayCallError, *, attempt: int, left_s: float
) -> float | None:
    """Return how long to wait before attempt `attempt + 1`, or None to give up."""
    if not call.safe or attempt >= policy.attempts or error.code is not grpc.StatusCode.UNAVAILABLE:
        return None
    backoff = policy.initial_backoff_s * 2 ** (attempt - 1)
    delay = min(
        error.retry_after_s if error.retry_after_s is not None else backoff, policy.max_backoff_s
    )
    return delay if delay < left_s else None


class _Base:
    def __init__(
        self,
        credentials: CallerCredentials | None,
        policy: ClientPolicy | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials or CallerCredentials(tls=False)
        self._policy = policy or ClientPolicy()
        self._monotonic = monotonic

    def _budget_s(self, call: Call[Any], timeout_s: float | None) -> float:
        if timeout_s is not None:
            return timeout_s
        policy = self._policy
        return policy.command_timeout_s if call.command else policy.read_timeout_s

    def _metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        return ((REQUEST_ID_KEY, request_id), *self._credentials.metadata())

    def _retry_or_raise(
        self, call: Call[Any], failure: grpc.RpcError, rid: str, attempt: int, deadline: float
    ) -> float:
        """Return how long to wait before the next attempt, or raise the typed error."""
        error = from_rpc_error(failure, request_id=rid)
        delay = retry_delay_s(
            self._policy, call, error, attempt=attempt, left_s=deadline - self._monotonic()
        )
        if delay is None:
            raise error from None
        return delay


def _codec(call: Call[Any]) -> dict[str, Any]:
    """The serializers of a call's request and response messages."""
    return {
        "request_serializer": type(call.request).SerializeToString,  # type: ignore[attr-defined]
        "response_deserializer": call.response.FromString,
    }


class AsyncGatewayClient(_Base):
    """The gateway over one grpc.aio channel."""

    def __init__(
        self,
        target: str,
        *,
        credentials: CallerCredentials | None = None,
        policy: ClientPolicy | None = None,
    ) -> None:
        super().__init__(credentials, policy)
        creds = self._credentials
        self._channel = (
            grpc.aio.secure_channel(target, creds.channel_credentials())
            if creds.tls
            else grpc.aio.insecure_channel(target)
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def call(
        self, call: Call[R], *, timeout_s: float | None = None, request_id: str | None = None
    ) -> R:
        """Make `call`, repeating it when safe; raise the typed error otherwise."""
        rid = request_id or str(uuid.uuid4())
        deadline = self._monotonic() + self._budget_s(call, timeout_s)
        method = self._channel.unary_unary(_SERVICE + call.method, **_codec(call))
        for attempt in itertools.count(1):
            try:
                answer: R = await method(
                    call.request, timeout=deadline - self._monotonic(), metadata=self._metadata(rid)
                )
                return answer
            except grpc.aio.AioRpcError as failure:
                delay = self._retry_or_raise(call, failure, rid, attempt, deadline)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


class GatewayClient(_Base):
    """The gateway over one synchronous grpc channel."""

    def __init__(
        self,
        target: str | grpc.Channel,
        *,
        credentials: CallerCredentials | None = None,
        policy: ClientPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`target`: the gateway's address, or a channel the caller made and closes itself
        (used as it is: `credentials` then only add the bearer token). `sleep` waits
        between attempts and `monotonic` times the deadline."""
        super().__init__(credentials, policy, monotonic)
        self._sleep = sleep
        creds = self._credentials
        self._owns_channel = isinstance(target, str)
        if not isinstance(target, str):
            self._channel = target
        elif creds.tls:
            self._channel = grpc.secure_channel(target, creds.channel_credentials())
        else:
            self._channel = grpc.insecure_channel(target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel, if the client made it."""
        if self._owns_channel:
            self._channel.close()

    def call(
        self, call: Call[R], *, timeout_s: float | None = None, request_id: str | None = None
    ) -> R:
        """Make `call`, repeating it when safe; raise the typed error otherwise."""
        rid = request_id or str(uuid.uuid4())
        deadline = self._monotonic() + self._budget_s(call, timeout_s)
        method = self._channel.unary_unary(_SERVICE + call.method, **_codec(call))
        for attempt in itertools.count(1):
            try:
                answer: R = method(
                    call.request, timeout=deadline - self._monotonic(), metadata=self._metadata(rid)
                )
                return answer
            except grpc.RpcError as failure:
                delay = self._retry_or_raise(call, failure, rid, attempt, deadline)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
