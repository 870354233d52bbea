"""Hostile requests on a real server (127.0.0.1, port 0): a default client gets a small,
readable INVALID_ARGUMENT for oversized lists, bytes that are no request, and forged page
tokens; the caller is still authenticated first; nothing reaches a use case."""

from __future__ import annotations

import base64
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core import validation
from gateway.core.access import AccessPolicy
from gateway.edge.clock import ManualClock
from gateway.edge.grpc import decoding
from gateway.edge.grpc.access import AccessGuard
from gateway.edge.grpc.interceptors import DEVELOPMENT, EdgeHooks
from gateway.edge.grpc.server import SERVICE_NAME, create_server
from tests.rpc.rig import gateway_against, gateway_settings, simulator
from tests.rpc.secure_rig import BILLING_TOKEN, POLICY, RENTAL_TOKEN
from tests.rpc.test_edge import FakeGateway, details_of
from tests.unit.edge.test_errors import DEFAULT_CLIENT_METADATA_LIMIT
from tests.unit.gateway.test_paging import FORGED_PAGE_TOKENS, b64

pytestmark = pytest.mark.one_database

TIMEOUT_S = 10.0
GET_VEHICLE = f"/{SERVICE_NAME}/GetVehicle"
WATCH = f"/{SERVICE_NAME}/WatchVehicles"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
NOT_A_MESSAGE = b"\xff\xff\xff"
NOT_UTF8 = b"\x0a\x03\xed\xa0\x80"  # vehicle_id: a lone surrogate, which UTF-8 cannot hold
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LEAKS = ("class", "DecodeError", "protobuf", "Error parsing", "Traceback")


def _raw(data: bytes) -> bytes:
    """Serialize nothing: the raw calls send the bytes they are given."""
    return data


@dataclass
class Recorder:
    """The RPC observer (metrics): every finished call's method and status code."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def rpc(self, *, method: str, code: str, seconds: float) -> None:
        """Record one finished call."""
        self.calls.append((method, code))


@dataclass
class Served:
    """A server over a fake gateway, a default client channel to it, and the observer."""

    fake: FakeGateway
    port: int
    channel: grpc.aio.Channel
    stub: pb_grpc.VehicleGatewayStub
    observed: Recorder

    def unary(self, method: str) -> Any:
        """A raw unary callable: sends the bytes it is given as they are."""
        return self.channel.unary_unary(method, request_serializer=_raw, response_deserializer=_raw)

    def stream(self, method: str) -> Any:
        """A raw server-streaming callable: sends the bytes it is given as they are."""
        return self.channel.unary_stream(
            method, request_serializer=_raw, response_deserializer=_raw
        )


@asynccontextmanager
async def serving(access: AccessGuard = DEVELOPMENT) -> AsyncIterator[Served]:
    """Serve the edge over a fresh fake; the client channel has grpc's default limits."""
    fake, observed = FakeGateway(), Recorder()
    server, port = await create_server(
        fake, listen="127.0.0.1:0", hooks=EdgeHooks(access=access, observer=observed)
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.VehicleGatewayStub(channel)
            yield Served(fake, port, channel, stub, observed)
    finally:
        await server.stop(None)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The edge in development mode (no access policy)."""
    async with serving() as running:
        yield running


@pytest.fixture
async def guarded() -> AsyncIterator[Served]:
    """The edge behind the test access policy (bearer tokens on loopback)."""
    policy = AccessPolicy.from_mapping(tomllib.loads(POLICY))
    async with serving(AccessGuard(policy)) as running:
        yield running


async def _first_answer(call: Any) -> Any:
    """Await a unary call's answer, or a stream's first message."""
    return await (call.read() if hasattr(call, "read") else call)


async def failure(call: Any) -> grpc.aio.AioRpcError:
    """Await a unary call, or a stream's first message, expected to fail; return the error."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _first_answer(call)
    return caught.value


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    """Return the field paths a failed call's BadRequest names."""
    bad_request = details_of(error)[error_details_pb2.BadRequest]
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    return [v.field for v in bad_request.field_violations]


def trailer_size(error: grpc.aio.AioRpcError) -> int:
    """Return the size of the trailers the client read (name + value + 32 per entry)."""
    entries = [
        (k, base64.b64encode(v) if isinstance(v, bytes) else v.encode())
        for k, v in (error.trailing_metadata() or ())
    ]
    return sum(len(k) + len(v) + 32 for k, v in entries) + len((error.details() or "").encode())


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata presenting a bearer token."""
    return (("authorization", f"Bearer {token}"),)


# --- oversized lists ------------------------------------------------------------------------


async def test_a_huge_fields_list_is_one_readable_invalid_argument(served: Served) -> None:
    """100,000 unknown telemetry fields: a default client reads INVALID_ARGUMENT naming
    `fields` once (the values were never looked at one by one); no use case ran."""
    request = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[99] * 100_000)
    error = await failure(served.stub.GetTelemetry(request, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["fields"]
    assert f"at most {validation.MAX_TELEMETRY_FIELDS}" in (error.details() or "")
    assert trailer_size(error) < DEFAULT_CLIENT_METADATA_LIMIT // 4
    assert served.fake.calls == []


async def test_many_bad_vehicle_ids_name_a_few_and_count_the_rest(served: Served) -> None:
    """WatchVehicles with 1,000 bad ids: INVALID_ARGUMENT naming 20 of them and counting the
    other 980, small enough for a default client; the feed never started."""
    request = pb.WatchVehiclesRequest(vehicle_ids=["bad id"] * validation.MAX_WATCH_VEHICLE_IDS)
    error = await failure(served.stub.WatchVehicles(request, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    named = violations(error)
    assert named == [f"vehicle_ids[{n}]" for n in range(validation.MAX_NAMED_VIOLATIONS)]
    info = details_of(error)[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["omitted_violations"] == str(
        validation.MAX_WATCH_VEHICLE_IDS - validation.MAX_NAMED_VIOLATIONS
    )
    assert trailer_size(error) < DEFAULT_CLIENT_METADATA_LIMIT * 3 // 4
    assert served.fake.calls == []


async def test_too_many_vehicle_ids_are_refused_as_a_whole(served: Served) -> None:
    """WatchVehicles with 20,000 valid ids: one violation naming `vehicle_ids`; no feed."""
    request = pb.WatchVehiclesRequest(vehicle_ids=[f"car-{n}" for n in range(20_000)])
    error = await failure(served.stub.WatchVehicles(request, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["vehicle_ids"]
    assert served.fake.calls == []


async def test_a_request_over_the_byte_cap_is_refused_unparsed(served: Served) -> None:
    """300,000 telemetry fields (over 256 KiB): INVALID_ARGUMENT naming `request`, counted
    by the metrics observer; no use case ran."""
    request = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[99] * 300_000)
    assert request.ByteSize() > decoding.MAX_REQUEST_BYTES
    error = await failure(served.stub.GetTelemetry(request, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["request"]
    assert served.observed.calls == [(f"/{SERVICE_NAME}/GetTelemetry", "INVALID_ARGUMENT")]
    assert served.fake.calls == []


async def test_grpc_itself_refuses_a_message_over_its_receive_limit(served: Served) -> None:
    """Beyond MAX_RECEIVE_MESSAGE_BYTES grpc answers RESOURCE_EXHAUSTED before any handler."""
    oversized = b"\0" * (decoding.MAX_RECEIVE_MESSAGE_BYTES + 1)
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{served.port}", options=[("grpc.max_send_message_length", -1)]
    )
    async with channel:
        call = channel.unary_unary(GET_VEHICLE, request_serializer=_raw, response_deserializer=_raw)
        error = await failure(call(oversized, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert served.fake.calls == []


# --- bytes that are no request ----------------------------------------------------------------


@pytest.mark.parametrize("wire", [NOT_A_MESSAGE, NOT_UTF8], ids=["corrupt", "not-utf8"])
@pytest.mark.parametrize("method", [GET_VEHICLE, HEALTH_CHECK])
async def test_bytes_that_are_no_request_are_invalid_argument_and_counted(
    served: Served, method: str, wire: bytes
) -> None:
    """Unparsable bytes: INVALID_ARGUMENT naming `request`, no Python or protobuf internals
    in the message, counted by the metrics observer; no use case ran."""
    error = await failure(served.unary(method)(wire, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["request"]
    assert not any(leak in (error.details() or "") for leak in LEAKS)
    assert served.observed.calls == [(method, "INVALID_ARGUMENT")]
    assert served.fake.calls == []


async def test_a_stream_request_that_is_no_message_is_invalid_argument(served: Served) -> None:
    """WatchVehicles with unparsable bytes: INVALID_ARGUMENT naming `request`; no feed."""
    error = await failure(served.stream(WATCH)(NOT_A_MESSAGE, timeout=TIMEOUT_S))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["request"]
    assert served.fake.calls == []


async def test_a_reflection_message_that_is_no_message_is_invalid_argument(
    served: Served,
) -> None:
    """Server reflection (a bidirectional stream) refuses unparsable bytes the same way."""
    call = served.channel.stream_stream(
        REFLECTION, request_serializer=_raw, response_deserializer=_raw
    )(iter([NOT_A_MESSAGE]), timeout=TIMEOUT_S)
    error = await failure(call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not any(leak in (error.details() or "") for leak in LEAKS)


# --- the caller comes first -----------------------------------------------------------------


async def test_an_unauthenticated_caller_sending_garbage_is_unauthenticated(
    guarded: Served,
) -> None:
    """Without credentials, unparsable or oversized requests are UNAUTHENTICATED: nothing
    about the request is answered to a caller the policy does not know."""
    garbage = await failure(guarded.unary(GET_VEHICLE)(NOT_A_MESSAGE, timeout=TIMEOUT_S))
    assert garbage.code() is grpc.StatusCode.UNAUTHENTICATED
    huge = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[99] * 300_000)
    oversized = await failure(guarded.stub.GetTelemetry(huge, timeout=TIMEOUT_S))
    assert oversized.code() is grpc.StatusCode.UNAUTHENTICATED
    assert guarded.fake.calls == []


async def test_garbage_from_a_caller_not_allowed_the_method_is_permission_denied(
    guarded: Served,
) -> None:
    """A known caller sending garbage to a method it may not call is PERMISSION_DENIED;
    to a method it may call, INVALID_ARGUMENT."""
    call = guarded.unary(GET_VEHICLE)
    denied = await failure(call(NOT_A_MESSAGE, metadata=bearer(BILLING_TOKEN), timeout=TIMEOUT_S))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    invalid = await failure(call(NOT_A_MESSAGE, metadata=bearer(RENTAL_TOKEN), timeout=TIMEOUT_S))
    assert invalid.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert guarded.fake.calls == []


async def test_a_billing_caller_with_a_huge_fields_list_is_refused_before_any_work(
    guarded: Served,
) -> None:
    """A caller allowed only the odometer, asking for it 100,000 times, is refused (the
    list as a whole) without the access check or validation walking it."""
    request = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.ODOMETER] * 100_000)
    error = await failure(
        guarded.stub.GetTelemetry(request, metadata=bearer(BILLING_TOKEN), timeout=TIMEOUT_S)
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["fields"]
    assert guarded.fake.calls == []


# --- page tokens on a real gateway ----------------------------------------------------------


async def test_forged_page_tokens_are_invalid_argument_naming_page_token(
    tmp_path: Path,
) -> None:
    """Nested JSON, a lone surrogate, an unsigned or tampered token, oversize, garbage:
    each INVALID_ARGUMENT naming `page_token`, never INTERNAL."""
    clock = ManualClock(START)
    async with simulator() as url, gateway_against(gateway_settings(tmp_path), url, clock) as rig:
        for n in range(3):
            await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=f"car-{n}"))
        page = await rig.stub.ListVehicles(pb.ListVehiclesRequest(page_size=1))
        token = page.next_page_token
        tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        for name, forged in {**FORGED_PAGE_TOKENS, "tampered": tampered}.items():
            request = pb.ListVehiclesRequest(page_size=1, page_token=forged)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await rig.stub.ListVehicles(request, timeout=TIMEOUT_S)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
            assert violations(caught.value) == ["page_token"], name


async def test_a_page_token_survives_a_restart_with_rotated_keys(tmp_path: Path) -> None:
    """A token issued before a restart in which a new token key became active (the old one
    still configured) pages on after it: any replica sharing the keys accepts it."""
    old = "k1:" + b64(b"1" * 32)
    new = "k2:" + b64(b"2" * 32)
    clock = ManualClock(START)
    async with simulator() as url:
        before = gateway_settings(tmp_path, VG_TOKEN_KEYS=old)
        async with gateway_against(before, url, clock) as first:
            for n in range(3):
                await first.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=f"car-{n}"))
            page = await first.stub.ListVehicles(pb.ListVehiclesRequest(page_size=1))
        after = gateway_settings(tmp_path, VG_TOKEN_KEYS=f"{new},{old}")
        async with gateway_against(after, url, clock) as second:
            request = pb.ListVehiclesRequest(page_size=5, page_token=page.next_page_token)
            rest = await second.stub.ListVehicles(request)
    assert [v.vehicle_id for v in rest.vehicles] == ["car-1", "car-2"]
