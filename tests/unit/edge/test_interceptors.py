"""The call frame around every unary RPC: request id, deadline, error mapping, one log line."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from gateway.core.errors import KeyUnavailable, UpstreamUnavailable, VehicleNotFound
from gateway.edge import context
from gateway.edge.grpc import decoding
from gateway.edge.grpc.interceptors import (
    REQUEST_ID_KEY,
    EdgeHooks,
    call_frame,
    new_request_id,
    serve_call,
)
from storage.transient import is_transient

METHOD = "/vehiclegateway.v1.VehicleGateway/GetVehicle"


class FakeContext:
    """The parts of grpc.aio.ServicerContext the interceptor uses, recording what it did."""

    def __init__(
        self, metadata: tuple[tuple[str, str], ...] = (), time_remaining: float | None = None
    ) -> None:
        self._metadata = metadata
        self._time_remaining = time_remaining
        self.trailing: tuple[tuple[str, Any], ...] = ()
        self.aborted: tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """Return the caller's metadata."""
        return self._metadata

    def time_remaining(self) -> float | None:
        """Return the time left before the caller's deadline."""
        return self._time_remaining

    def set_trailing_metadata(self, metadata: tuple[tuple[str, Any], ...]) -> None:
        """Record the trailing metadata."""
        self.trailing = metadata

    async def abort(
        self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, Any], ...]
    ) -> None:
        """Record the status and end the call as grpc does."""
        self.aborted = (code, details, tuple(trailing))
        raise grpc.aio.AbortError

    def code(self) -> grpc.StatusCode | None:
        """Return the status the call was aborted with."""
        return None if self.aborted is None else self.aborted[0]


async def echo_context(request: object, call: object) -> dict[str, object]:
    """A handler that reports the request context it sees."""
    return {"request_id": context.request_id.get(), "remaining_s": context.remaining_s()}


async def test_generates_a_request_id_and_echoes_it() -> None:
    """Without x-request-id a uuid4 is bound for the call and sent back in trailing metadata."""
    call = FakeContext()
    seen = await serve_call(echo_context, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert uuid.UUID(seen["request_id"]).version == 4
    assert call.trailing == ((REQUEST_ID_KEY, seen["request_id"]),)


async def test_keeps_the_callers_request_id() -> None:
    """A valid x-request-id from the caller is used and echoed."""
    call = FakeContext(metadata=(("x-request-id", "rental-svc:abc-1"),))
    seen = await serve_call(echo_context, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert seen["request_id"] == "rental-svc:abc-1"
    assert call.trailing == ((REQUEST_ID_KEY, "rental-svc:abc-1"),)


async def test_replaces_a_malformed_request_id() -> None:
    """An x-request-id that is not a safe id (spaces, newlines) is replaced, not logged."""
    call = FakeContext(metadata=(("x-request-id", "evil\nline"),))
    seen = await serve_call(echo_context, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert seen["request_id"] != "evil\nline"
    assert uuid.UUID(str(seen["request_id"]))


async def test_binds_the_callers_deadline() -> None:
    """The time the caller has left is visible to the use case through the context."""
    call = FakeContext(time_remaining=2.0)
    seen = await serve_call(echo_context, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert 0 < float(seen["remaining_s"]) <= 2.0  # type: ignore[arg-type]


async def test_no_deadline_binds_none() -> None:
    """A caller without a deadline leaves the remaining time unknown."""
    call = FakeContext(time_remaining=None)
    seen = await serve_call(echo_context, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert seen["remaining_s"] is None


async def test_domain_error_becomes_its_status_with_the_request_id() -> None:
    """A GatewayError aborts with its mapped code, the packed details and the request id."""

    async def missing(request: object, call: object) -> None:
        raise VehicleNotFound("no vehicle car-9")

    call = FakeContext(metadata=(("x-request-id", "rid-1"),))
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(missing, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert call.aborted is not None
    code, details, trailing = call.aborted
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, "no vehicle car-9")
    assert dict(trailing).keys() == {"grpc-status-details-bin", REQUEST_ID_KEY}
    assert dict(trailing)[REQUEST_ID_KEY] == "rid-1"


async def test_a_malformed_request_is_invalid_argument_before_the_handler_runs() -> None:
    """Request bytes that were no message reach the frame as a marker: INVALID_ARGUMENT
    naming `request`, and the handler never runs."""
    ran: list[object] = []

    async def handler(request: object, call: object) -> None:
        ran.append(request)

    call = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(handler, decoding.UNPARSABLE, call, method=METHOD)  # type: ignore[arg-type]
    assert call.aborted is not None
    code, details, _ = call.aborted
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == "invalid request: request: is not a valid request message for this method"
    assert ran == []


class RecordingHealth:
    """A ReplicaHealth that records each NOT_SERVING report."""

    def __init__(self) -> None:
        self.reports: list[str] = []

    async def not_serving(self, reason: str) -> None:
        """Record the report."""
        self.reports.append(reason)


@pytest.mark.parametrize(
    ("error", "reports"),
    [
        (KeyUnavailable("this replica lacks token key 'k2'", metadata={"key_id": "k2"}), 1),
        (UpstreamUnavailable("Smartcar 503"), 0),
    ],
)
async def test_a_missing_key_is_unavailable_and_turns_the_replica_not_serving(
    error: Exception, reports: int
) -> None:
    """KEY_UNAVAILABLE aborts UNAVAILABLE (never INTERNAL) and tells the replica's health to
    drain it; another UNAVAILABLE (Smartcar down) leaves the health alone."""

    async def failing(request: object, call: object) -> None:
        raise error

    health = RecordingHealth()
    call = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(failing, object(), call, method=METHOD, hooks=EdgeHooks(health=health))  # type: ignore[arg-type]
    assert call.code() is grpc.StatusCode.UNAVAILABLE
    assert len(health.reports) == reports


async def test_unexpected_exception_is_internal_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug becomes INTERNAL with a generic message; the traceback goes to the log only."""

    async def broken(request: object, call: object) -> None:
        raise KeyError("secret-internals")

    call = FakeContext(metadata=(("x-request-id", "rid-2"),))
    with caplog.at_level(logging.INFO), pytest.raises(grpc.aio.AbortError):
        await serve_call(broken, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert call.aborted is not None
    code, details, _ = call.aborted
    assert code is grpc.StatusCode.INTERNAL
    assert "rid-2" in details
    assert "secret-internals" not in details
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.exc_info is not None
    assert failure.exc_info[0] is KeyError


async def test_logs_one_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    """Each call logs method, status and duration once, without the request itself."""

    async def not_found(request: object, call: object) -> None:
        raise VehicleNotFound("nope")

    with caplog.at_level(logging.INFO, logger="gateway.edge.grpc.interceptors"):
        await serve_call(echo_context, "REQUEST-BODY", FakeContext(), method=METHOD)  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AbortError):
            await serve_call(not_found, "REQUEST-BODY", FakeContext(), method=METHOD)  # type: ignore[arg-type]
    lines = [r for r in caplog.records if r.name == "gateway.edge.grpc.interceptors"]
    assert [(r.rpc_method, r.status) for r in lines] == [  # type: ignore[attr-defined]
        (METHOD, "OK"),
        (METHOD, "NOT_FOUND"),
    ]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    assert "REQUEST-BODY" not in caplog.text


@pytest.mark.parametrize(("mode", "logged"), [("errors", ["NOT_FOUND"]), ("off", [])])
async def test_the_access_log_may_keep_errors_only_or_nothing(
    caplog: pytest.LogCaptureFixture, mode: str, logged: list[str]
) -> None:
    """VG_ACCESS_LOG=errors logs only calls not ending OK; off logs none; the observer
    (metrics) still sees every call."""
    seen: list[str] = []

    class Observer:
        def rpc(self, *, method: str, code: str, seconds: float) -> None:
            seen.append(code)

    async def not_found(request: object, call: object) -> None:
        raise VehicleNotFound("nope")

    hooks = EdgeHooks(observer=Observer(), access_log=mode)
    with caplog.at_level(logging.INFO, logger="gateway.edge.grpc.interceptors"):
        await serve_call(echo_context, "R", FakeContext(), method=METHOD, hooks=hooks)  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AbortError):
            await serve_call(not_found, "R", FakeContext(), method=METHOD, hooks=hooks)  # type: ignore[arg-type]
    lines = [r for r in caplog.records if r.name == "gateway.edge.grpc.interceptors"]
    assert [r.status for r in lines] == logged  # type: ignore[attr-defined]
    assert seen == ["OK", "NOT_FOUND"]


class _Deadlock(Exception):
    """What a PostgreSQL driver raises for a deadlock it broke (SQLSTATE 40P01)."""

    sqlstate = "40P01"


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("UPDATE vehicles …", {}, Exception("database is locked")),
        DBAPIError("UPDATE telemetry …", {}, _Deadlock("deadlock detected")),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    ],
    ids=["sqlite-busy", "postgres-deadlock", "connection-lost"],
)
async def test_a_briefly_unavailable_database_is_unavailable_with_a_retry_delay(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """With storage's classifier in the hooks (as the composition root wires it), not a bug
    of anyone's: UNAVAILABLE, reason STORAGE_UNAVAILABLE, RetryInfo, the request id; logged
    as a warning without the statement."""

    async def busy(request: object, call: object) -> None:
        raise failure

    call = FakeContext(metadata=(("x-request-id", "rid-3"),))
    hooks = EdgeHooks(transient=is_transient)
    with caplog.at_level(logging.INFO), pytest.raises(grpc.aio.AbortError):
        await serve_call(busy, object(), call, method=METHOD, hooks=hooks)  # type: ignore[arg-type]
    assert call.aborted is not None
    code, details, trailing = call.aborted
    assert code is grpc.StatusCode.UNAVAILABLE
    assert "UPDATE" not in details
    status = status_pb2.Status.FromString(dict(trailing)["grpc-status-details-bin"])
    kinds = {detail.type_url.rsplit(".", 1)[-1] for detail in status.details}
    assert {"ErrorInfo", "RequestInfo", "RetryInfo"} <= kinds
    info = error_details_pb2.ErrorInfo()
    [packed] = [d for d in status.details if d.type_url.endswith("ErrorInfo")]
    packed.Unpack(info)
    assert info.reason == "STORAGE_UNAVAILABLE"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_database_error_that_is_no_outage_is_still_internal() -> None:
    """A constraint the code should have kept (a bug) is not dressed up as UNAVAILABLE."""

    async def broken(request: object, call: object) -> None:
        raise IntegrityError("INSERT …", {}, Exception("NOT NULL constraint failed"))

    call = FakeContext()
    hooks = EdgeHooks(transient=is_transient)
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(broken, object(), call, method=METHOD, hooks=hooks)  # type: ignore[arg-type]
    assert call.aborted is not None
    assert call.aborted[0] is grpc.StatusCode.INTERNAL


async def test_without_a_classifier_no_failure_counts_as_transient() -> None:
    """The edge knows no database: hooks without a `transient` classifier answer even a
    busy database with INTERNAL, so the composition root must hand storage's in."""

    async def busy(request: object, call: object) -> None:
        raise OperationalError("UPDATE vehicles …", {}, Exception("database is locked"))

    call = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(busy, object(), call, method=METHOD)  # type: ignore[arg-type]
    assert call.aborted is not None
    assert call.aborted[0] is grpc.StatusCode.INTERNAL


async def test_the_hooks_classifier_decides_what_is_transient() -> None:
    """Whatever the hooks' classifier calls transient is UNAVAILABLE, whichever exception."""

    class Outage(Exception):
        """A failure a classifier knows as transient."""

    async def down(request: object, call: object) -> None:
        raise Outage

    call = FakeContext()
    hooks = EdgeHooks(transient=lambda exc: isinstance(exc, Outage))
    with pytest.raises(grpc.aio.AbortError):
        await serve_call(down, object(), call, method=METHOD, hooks=hooks)  # type: ignore[arg-type]
    assert call.aborted is not None
    assert call.aborted[0] is grpc.StatusCode.UNAVAILABLE


def test_a_new_request_id_is_a_random_uuid() -> None:
    made = {new_request_id() for _ in range(1_000)}
    assert len(made) == 1_000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


async def test_a_stream_closed_before_its_end_is_counted_once_as_cancelled() -> None:
    """grpc closes a stream's generator when its caller goes: the frame counts that call
    CANCELLED, once; a stream that ran to its end is OK."""
    seen: list[str] = []

    class Observer:
        def rpc(self, *, method: str, code: str, seconds: float) -> None:
            seen.append(code)

    hooks = EdgeHooks(observer=Observer())

    async def stream() -> AsyncGenerator[int, None]:
        async with call_frame(FakeContext(), method=METHOD, hooks=hooks, request=object()):  # type: ignore[arg-type]
            yield 1
            yield 2

    closed = stream()
    assert await anext(closed) == 1
    await closed.aclose()
    assert [item async for item in stream()] == [1, 2]
    assert seen == ["CANCELLED", "OK"]
