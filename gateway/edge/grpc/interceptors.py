"""The frame around every call: caller, request id, deadline, log, errors.

For each call (the gateway's RPCs, health and reflection) it

0. authenticates the caller and applies the access policy (`gateway.edge.grpc.access`), before
   anything else looks at the request; a call refused there is counted and logged
   rate-limited (`gateway.edge.grpc.refusals`), not audited, and its own log line is DEBUG;
   then refuses, as INVALID_ARGUMENT, request bytes that are no request message
   (`gateway.edge.grpc.decoding`: every handler gets a lenient deserializer, so bad bytes reach
   the frame as a marker instead of failing in grpc);
1. binds the request id (`x-request-id` metadata when it is a valid id, else a new random UUID) to
   `gateway.edge.context.request_id` and echoes it in the trailing metadata;
2. records the caller's deadline with `context.set_deadline`, so upstream calls are bounded
   by it;
3. maps a `GatewayError` to its status through `gateway.edge.grpc.status` (a KEY_UNAVAILABLE
   also tells the replica's health to turn NOT_SERVING), a database briefly
   unavailable (connection lost, deadlock broken, SQLite busy: what the hooks' `transient`
   classifier, storage's, says is one) to UNAVAILABLE with a retry delay, and anything
   else to INTERNAL, logging that one with its traceback;
4. logs one line per call: method, status, duration, request id (never the messages),
   at INFO, or DEBUG for health checks; `EdgeHooks.access_log` (VG_ACCESS_LOG) may keep
   only the calls that did not end OK (`errors`), or none (`off`): the metrics and the
   audit see every call either way.

Streaming calls (WatchVehicles, health `Watch`, reflection) get the same frame around the
whole stream.

Put on the handlers as services are registered (`FramedServer`) rather than as a decorator
on servicer methods: it wraps every method of every service registered on the server, so a
new RPC cannot forget it, and the servicer holds nothing but conversion and the use-case
call; and rather than as a grpc.aio interceptor, which grpc would run on every call to find
the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import grpc
import grpc.aio

from gateway.core import validation
from gateway.core.audit import AUDITED_METHODS, AuditTrail, CallAudit, serving
from gateway.core.errors import AccessDenied, GatewayError, KeyUnavailable, Unauthenticated
from gateway.edge import context
from gateway.edge.grpc import decoding
from gateway.edge.grpc import status as errors
from gateway.edge.grpc.access import AccessGuard, caller, describe_peer
from gateway.edge.grpc.refusals import RefusalLog
from gateway.edge.logs import AccessLog

REQUEST_ID_KEY = "x-request-id"
"""The metadata key carrying the request id, in and out."""

_QUIET_PREFIX = "/grpc.health.v1.Health/"
"""Calls logged at DEBUG: health probes every few seconds would drown the INFO log."""

_log = logging.getLogger(__name__)

DEVELOPMENT = AccessGuard(None)
"""No access policy: every caller is anonymous and allowed."""

Context = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]


class RpcObserver(Protocol):
    """Where each call's method, status code and duration go (the metrics endpoint)."""

    def rpc(self, *, method: str, code: str, seconds: float) -> None:
        """Observe one finished call."""


class ReplicaHealth(Protocol):
    """Where the frame reports that this replica cannot serve (the health service)."""

    async def not_serving(self, reason: str) -> None:
        """Report NOT_SERVING from now on, so load balancers drain this replica."""


def _nothing_is_transient(exc: BaseException) -> bool:
    """Tell that no failure is transient: without a classifier, each one is a bug."""
    return False


@dataclass(frozen=True, slots=True)
class EdgeHooks:
    """What the frame consults: the access guard (default: development mode, everyone
    allowed), the audit trail (actions on cars), the RPC observer (metrics), where calls
    refused at admission are counted and logged, the replica's health (told when this
    replica lacks a token key), and which unexpected failures are the database briefly
    unavailable (the composition root hands in `storage.transient.is_transient`)."""

    access: AccessGuard = DEVELOPMENT
    audit: AuditTrail | None = None
    observer: RpcObserver | None = None
    refusals: RefusalLog | None = None
    health: ReplicaHealth | None = None
    transient: Callable[[BaseException], bool] = _nothing_is_transient
    access_log: str = "all"
    """Which calls get their log line: `all`, `errors` (not OK) or `off`."""


class CallFraming:
    """Admit the caller, bind request id and deadline, map errors to status, audit actions
    on cars, and log and measure every call: puts each method's handler in the call frame,
    once per handler (`FramedServer` asks as services are registered)."""

    def __init__(self, hooks: EdgeHooks | None = None) -> None:
        self._hooks = hooks or EdgeHooks()
        self._framed: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], Any]] = {}
        """Per method, the handler last framed and its framed handler: generic handlers
        hand out the same handler object for a method on every lookup, so it is framed once."""

    def framed(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`handler` of `method` in the call frame (built once per handler)."""
        kept = self._framed.get(method)
        if kept is not None and kept[0] is handler:
            return cast("grpc.RpcMethodHandler[Any, Any]", kept[1])
        framed = self._frame(handler, method)
        if kept is not None or len(self._framed) < _MAX_FRAMED:
            self._framed[method] = (handler, framed)
        return framed

    def _frame(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap one method's handler in the call frame."""
        hooks = self._hooks
        if handler.request_streaming:
            return _framed_bidirectional(handler, method, hooks)
        if handler.response_streaming:
            return _framed_stream(handler, method, hooks)
        behavior = cast(UnaryBehavior | None, handler.unary_unary)
        if behavior is None:
            return handler

        async def framed(request: Any, servicer_context: Context) -> Any:
            return await serve_call(behavior, request, servicer_context, method=method, hooks=hooks)

        return grpc.unary_unary_rpc_method_handler(
            framed,
            request_deserializer=decoding.lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


_MAX_FRAMED = 1024
"""Methods whose framed handler is kept, at most: a server registers a bounded set, and
unknown methods get no handler, so this bounds only what should never grow."""


class FramedServer:
    """What a service's `add_…_to_server` function registers on: the server, with every
    method handler put in the edge's call frame as it is registered.

    Every service the gateway serves (its own, health, reflection) is registered through
    one, so a new RPC cannot miss the frame, and grpc runs no interceptor pipeline per
    call for it (interceptors given to the server, such as tracing's, still run, outside
    the frame)."""

    def __init__(self, server: grpc.aio.Server, frame: CallFraming) -> None:
        self._server = server
        self._frame = frame

    def registrar(self) -> grpc.aio.Server:
        """This, typed as the server the generated `add_…_to_server` functions take: they
        call only the two registration methods below."""
        return cast(grpc.aio.Server, self)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Register `service_name`'s handlers, each in the frame."""
        self._server.add_registered_method_handlers(
            service_name,
            {
                name: self._frame.framed(handler, f"/{service_name}/{name}")
                for name, handler in method_handlers.items()
            },
        )

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        """Register generic handlers whose handlers are framed when looked up."""
        self._server.add_generic_rpc_handlers(
            tuple(_FramedGeneric(handler, self._frame) for handler in generic_rpc_handlers)
        )


class _FramedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come framed."""

    def __init__(self, inner: grpc.GenericRpcHandler, frame: CallFraming) -> None:
        self._inner = inner
        self._frame = frame

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The inner handler's method handler for the call, framed; None when it has none."""
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        return self._frame.framed(handler, handler_call_details.method)


def _framed_bidirectional(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, hooks: EdgeHooks
) -> grpc.RpcMethodHandler[Any, Any]:
    """Wrap a request-streaming handler (reflection) in the call frame; the caller is
    admitted on the method alone, once its first request has arrived (not looked at
    before: a refusal sent while the client is still writing makes the client's grpc
    report its own INTERNAL "Internal error from Core" instead of our status)."""
    behavior = handler.stream_stream
    if behavior is None:  # no client-streaming unary methods are served
        return handler
    streaming = cast(Callable[[Any, Context], AsyncIterator[Any]], behavior)

    async def framed(requests: Any, servicer_context: Context) -> AsyncIterator[Any]:
        stream = aiter(requests)
        first = await anext(stream, _NO_REQUEST)
        async with call_frame(servicer_context, method=method, hooks=hooks, request=None):
            incoming = decoding.decoded(_prepended(first, stream))
            async for item in streaming(incoming, servicer_context):
                yield item

    return grpc.stream_stream_rpc_method_handler(
        framed,
        request_deserializer=decoding.lenient(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


_NO_REQUEST = object()
"""The client closed its side of a stream without sending anything."""


async def _prepended(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The requests of a stream whose first one was already read."""
    if first is not _NO_REQUEST:
        yield first
    async for request in rest:
        yield request


def _framed_stream(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, hooks: EdgeHooks
) -> grpc.RpcMethodHandler[Any, Any]:
    """Wrap a server-streaming handler so the whole stream runs inside the call frame.

    The wrapper keeps the handler's shape: an async generator yields the responses, a
    coroutine (like health `Watch`) writes them with `context.write`.
    """
    behavior = handler.unary_stream
    assert behavior is not None
    if inspect.isasyncgenfunction(behavior):
        streaming = cast(StreamBehavior, behavior)

        async def framed_generator(request: Any, servicer_context: Context) -> AsyncIterator[Any]:
            async with call_frame(servicer_context, method=method, hooks=hooks, request=request):
                async for item in streaming(request, servicer_context):
                    yield item

        wrapped: Any = framed_generator
    else:
        writing = cast(UnaryBehavior, behavior)

        async def framed_writer(request: Any, servicer_context: Context) -> None:
            async with call_frame(servicer_context, method=method, hooks=hooks, request=request):
                await writing(request, servicer_context)

        wrapped = framed_writer
    return grpc.unary_stream_rpc_method_handler(
        wrapped,
        request_deserializer=decoding.lenient(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


async def serve_call(
    behavior: UnaryBehavior,
    request: Any,
    call: Context,
    *,
    method: str,
    hooks: EdgeHooks | None = None,
) -> Any:
    """Run one unary call inside its frame; map, log, measure and audit how it ended.

    The frame of a unary call is this coroutine itself, not `call_frame`'s context manager:
    every cached read goes through it, and a generator-based context manager costs two
    more coroutines and a generator per call."""
    frame = _Frame(call, method, hooks or _DEVELOPMENT_HOOKS, request)
    try:
        frame.admit()
        if frame.pending is None:
            answer = await behavior(request, call)
        else:
            with serving(frame.pending):
                answer = await behavior(request, call)
    except BaseException as exc:
        await frame.failed(exc)
        raise
    await frame.ended(grpc.StatusCode.OK, None)
    return answer


@contextlib.asynccontextmanager
async def call_frame(
    call: Context,
    *,
    method: str,
    hooks: EdgeHooks,
    request: Any,
) -> AsyncIterator[None]:
    """The frame of a streaming call, around the whole stream: as `serve_call`'s."""
    frame = _Frame(call, method, hooks, request)
    try:
        frame.admit()
        if frame.pending is None:
            yield
        else:
            with serving(frame.pending):
                yield
    except BaseException as exc:
        await frame.failed(exc)
        raise
    await frame.ended(grpc.StatusCode.OK, None)


class _Frame:
    """One call's frame: admit the caller and bind the request context when made; map,
    log, measure and audit how the call ended (`failed` or `ended`), once. An action on a
    car is audited before its answer (or error) leaves."""

    __slots__ = (
        "_audit",
        "_call",
        "_hooks",
        "_method",
        "_observed",
        "_quiet",
        "_request",
        "_started",
        "admitted",
        "pending",
        "rid",
    )

    def __init__(self, call: Context, method: str, hooks: EdgeHooks, request: Any) -> None:
        self._call = call
        self._method = method
        self._hooks = hooks
        self._request = request
        self.rid = rid = _request_id(call)
        # Each call runs in its own asyncio task, so these context variables end with it.
        context.request_id.set(rid)
        context.set_deadline(remaining_s=call.time_remaining())
        call.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        self._started = time.perf_counter()
        self._observed = False
        self.admitted = False
        kind = _kind(method)
        self._audit = hooks.audit if kind.audited else None
        self._quiet = kind.quiet
        self.pending: CallAudit | None = None
        """The audit entry to write when the call ends (audited methods, once admitted)."""

    def admit(self) -> None:
        """Apply the access policy, then refuse request bytes that are no request."""
        hooks = self._hooks
        try:
            hooks.access.admit(self._call, self._method, self._request)
        except (Unauthenticated, AccessDenied) as refused:
            if hooks.refusals is not None:
                who = caller.get() or describe_peer(self._call)
                hooks.refusals.refused(method=self._method, refusal=refused.refusal, who=who)
            raise
        self.admitted = True
        decoding.ensure_decoded(self._request)
        if self._audit is not None:
            self.pending = _call_audit(self._method, self._request, self.rid, self._started)

    async def ended(self, outcome: grpc.StatusCode, reason: str | None) -> None:
        """Audit, measure and log how the call ended, before the caller can see it."""
        try:
            if self._audit is not None and self.pending is not None:
                await _record(self._audit, self.pending, self._method, outcome, reason)
        finally:
            self._observe(outcome)

    async def failed(self, exc: BaseException) -> None:
        """End the call that raised `exc`: abort it with the status `exc` maps to (raising
        grpc's AbortError), or return for the caller to raise `exc` on (cancellation, an
        abort already made, an exception that is no error)."""
        call, rid = self._call, self.rid
        if isinstance(exc, GatewayError):
            mapped = errors.status_for(exc, request_id=rid)
            try:
                if isinstance(exc, KeyUnavailable) and self._hooks.health is not None:
                    await self._hooks.health.not_serving(exc.message)
            finally:
                await self.ended(mapped.code, exc.reason)
            await _abort(call, mapped, rid)
        elif isinstance(exc, grpc.aio.AbortError):
            self._observe(call.code())
        elif isinstance(exc, asyncio.CancelledError):
            await self.ended(grpc.StatusCode.CANCELLED, None)
        elif isinstance(exc, GeneratorExit):  # a stream closed before its end by grpc
            self._observe(grpc.StatusCode.CANCELLED)
        elif not isinstance(exc, Exception):
            self._observe(grpc.StatusCode.UNKNOWN)
        elif self._hooks.transient(exc):
            _log.warning(
                "database briefly unavailable serving %s: %s",
                self._method,
                type(exc).__name__,
                extra={"event": "storage_unavailable"},
            )
            await self.ended(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
            await _abort(call, errors.storage_unavailable_status(request_id=rid), rid)
        else:  # a bug
            _log.error("unexpected failure serving %s", self._method, exc_info=exc)
            await self.ended(grpc.StatusCode.INTERNAL, "INTERNAL")
            await _abort(call, errors.internal_status(request_id=rid), rid)

    def _observe(self, status: grpc.StatusCode) -> None:
        """Count the call and write its log line (DEBUG for health checks and refusals,
        which RefusalLog reports), once."""
        if self._observed:
            return
        self._observed = True
        hooks, method = self._hooks, self._method
        elapsed_s = time.perf_counter() - self._started
        if hooks.observer is not None:
            hooks.observer.rpc(method=method, code=status.name, seconds=elapsed_s)
        if hooks.access_log != "all" and (
            hooks.access_log == "off" or status is grpc.StatusCode.OK
        ):
            return
        _access.write(
            level=logging.DEBUG if not self.admitted or self._quiet else logging.INFO,
            method=method,
            status=status.name,
            caller=caller.get(),
            elapsed_s=elapsed_s,
            request_id=self.rid,
        )


@dataclass(frozen=True, slots=True)
class _MethodKind:
    """What the frame needs to know of a method: whether calls are audited (actions on
    cars) and whether their log line is DEBUG (health checks)."""

    audited: bool
    quiet: bool


@functools.lru_cache(maxsize=_MAX_FRAMED)
def _kind(method: str) -> _MethodKind:
    """The kind of `method` (worked out once per method)."""
    return _MethodKind(
        audited=_short_name(method) in AUDITED_METHODS, quiet=method.startswith(_QUIET_PREFIX)
    )


_access = AccessLog(_log)
"""The per-call lines (JSON, pre-encoded per method and status; see `AccessLog`)."""

_DEVELOPMENT_HOOKS = EdgeHooks()
"""The hooks of a frame given none: development mode, nothing observed."""


def _call_audit(method: str, request: Any, rid: str, started: float) -> CallAudit:
    """The audit entry of an admitted call, to be written when it ends (or by its use case,
    `gateway.core.audit.written_with`)."""
    return CallAudit(
        caller=caller.get() or "unauthenticated",
        method=_short_name(method),
        # As sent, cut to the column's width: a refused request may carry anything.
        vehicle_id=str(getattr(request, "vehicle_id", ""))[:AUDIT_ID_LENGTH],
        request_id=rid,
        elapsed_ms=lambda: (time.perf_counter() - started) * 1000,
    )


async def _record(
    audit: AuditTrail,
    pending: CallAudit,
    method: str,
    outcome: grpc.StatusCode,
    reason: str | None,
) -> None:
    """Store the audit entry of a call (unless its use case did); a failure to store is
    logged, never the caller's."""
    try:
        await audit.record_call(pending, outcome=outcome.name, reason=reason)
    except Exception:  # noqa: BLE001 - the action happened; losing its entry must be loud
        _log.exception("could not store the audit entry of %s", method)


AUDIT_ID_LENGTH = 128
"""The audit log's vehicle id width (storage.schema.ID)."""


def _short_name(method: str) -> str:
    """Return `Unlock` for `/vehiclegateway.v1.VehicleGateway/Unlock`."""
    return method.rsplit("/", 1)[-1]


def _request_id(call: Context) -> str:
    """Return the caller's `x-request-id` when it is a valid id, else a fresh random UUID."""
    for key, value in call.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            if validation.identifier(REQUEST_ID_KEY, value) is None:
                return value
            break
    return new_request_id()


def new_request_id() -> str:
    """A fresh request id: a random (version 4) UUID in its usual text form, made without
    `uuid.UUID`'s object (a third of the cost: it is made for every call without one)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def _abort(call: Context, status: grpc.Status, rid: str) -> None:
    """End the call with `status`, keeping the request id beside its details."""
    trailing = (*status.trailing_metadata, (REQUEST_ID_KEY, rid))
    await call.abort(status.code, status.details, trailing)
