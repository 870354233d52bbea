"""The error mapping: every domain error has a gRPC code and the rich details it promises."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from clients.gateway import errors as client_errors
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import errors, validation
from gateway.core.model import OwnerAction, UpstreamFailure
from gateway.edge.grpc import convert
from gateway.edge.grpc import status as edge_errors

RID = "req-42"


def concrete_errors() -> Iterator[type[errors.GatewayError]]:
    """Yield every subclass of GatewayError, however deep."""
    pending = list(errors.GatewayError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        yield cls


@dataclass
class FakeCall:
    """The parts of a finished grpc.Call that rpc_status.from_call reads."""

    status: grpc.Status

    def code(self) -> grpc.StatusCode:
        """Return the status code."""
        return self.status.code

    def details(self) -> str:
        """Return the status message."""
        return self.status.details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """Return the trailing metadata (the packed google.rpc.Status)."""
        return tuple(self.status.trailing_metadata)


def decode(status: grpc.Status) -> tuple[status_pb2.Status, dict[type[Message], Message]]:
    """Decode a status as a client would, returning it and its details by type."""
    rich = rpc_status.from_call(FakeCall(status))
    assert rich is not None
    found: dict[type[Message], Message] = {}
    for packed in rich.details:
        for detail_type in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.RequestInfo,
            error_details_pb2.RetryInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.LocalizedMessage,
            error_details_pb2.Help,
        ):
            if packed.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                packed.Unpack(detail)
                found[detail_type] = detail
    assert len(found) == len(rich.details), "an unexpected detail type"
    return rich, found


def make(cls: type[errors.GatewayError]) -> errors.GatewayError:
    """Instantiate any error class with representative arguments."""
    if cls is errors.InvalidArgument:
        return errors.InvalidArgument.of("vehicle_id", "is required")
    if cls is errors.RentalActive:
        return errors.RentalActive("rental active", vehicle_id="car-1", rental_id="rental-7")
    if cls is errors.CommandOutcomeUnknown:
        return errors.CommandOutcomeUnknown("no answer")
    if cls is errors.VehicleNotRentable:
        return NOT_RENTABLE
    if cls is errors.ReauthenticationRequired:
        return REAUTHENTICATION
    return cls(f"{cls.__name__} happened")


NOT_RENTABLE = errors.VehicleNotRentable(
    "vehicle car-1 cannot be rented",
    unmet=[
        errors.UnmetCondition("CONNECTION_STATUS", "vehicles/car-1", "the connection is EXPIRED"),
        errors.UnmetCondition(
            "PERMISSION", "permissions/control_security", "control_security was not granted"
        ),
    ],
    metadata={"vehicle_id": "car-1", "status": "EXPIRED"},
)

REAUTH_URL = "https://connect.smartcar.com/oauth/reauthenticate?response_type=vehicle_id"
DOC_URL = "https://smartcar.com/docs/errors/api-errors/connected-services-account-errors"
REAUTHENTICATION = errors.ReauthenticationRequired(
    "vehicle car-1 needs its owner",
    action=OwnerAction(
        error="CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED",
        resolution_type="REAUTHENTICATE",
        resolution_url=REAUTH_URL,
        doc_url=DOC_URL,
        user_message="Please use this link to re-connect your car.",
    ),
    metadata={"vehicle_id": "car-1", "status": "NEEDS_REAUTHENTICATION"},
)


EXPECTED_FAMILY_CODES = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.VehicleNotFound: grpc.StatusCode.NOT_FOUND,
    errors.RentalNotFound: grpc.StatusCode.NOT_FOUND,
    errors.PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.CommandInProgress: grpc.StatusCode.ABORTED,
    errors.WatchFellBehind: grpc.StatusCode.ABORTED,
    errors.EventsPruned: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.AccessDenied: grpc.StatusCode.PERMISSION_DENIED,
}


@pytest.mark.parametrize("cls", sorted(concrete_errors(), key=lambda c: c.__name__))
def test_every_error_class_has_its_own_row(cls: type[errors.GatewayError]) -> None:
    """Every GatewayError subclass is in the table, never mapped to UNKNOWN or INTERNAL."""
    assert cls in edge_errors.STATUS_CODES
    code = edge_errors.code_for(make(cls))
    assert code not in {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.OK}


@pytest.mark.parametrize("cls", sorted(concrete_errors(), key=lambda c: c.__name__))
def test_codes_follow_the_design_table(cls: type[errors.GatewayError]) -> None:
    """Each class gets its family's code from the DESIGN.md errors table."""
    family = next(f for f in cls.__mro__ if f in EXPECTED_FAMILY_CODES)
    assert edge_errors.STATUS_CODES[cls] is EXPECTED_FAMILY_CODES[family]


@pytest.mark.parametrize("cls", sorted(concrete_errors(), key=lambda c: c.__name__))
def test_every_status_carries_error_info_and_request_info(cls: type[errors.GatewayError]) -> None:
    """Every status names its reason in ErrorInfo (domain vehiclegateway) and the request id."""
    error = make(cls)
    rich, details = decode(edge_errors.status_for(error, request_id=RID))
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.domain, info.reason) == ("vehiclegateway", error.reason)
    assert details[error_details_pb2.RequestInfo] == error_details_pb2.RequestInfo(request_id=RID)
    assert rich.message == error.message


def test_class_missing_from_the_table_falls_back_to_its_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error class the table does not list gets its nearest listed ancestor's code."""
    table = {k: v for k, v in edge_errors.STATUS_CODES.items() if k is not errors.VehicleAsleep}
    monkeypatch.setattr(edge_errors, "STATUS_CODES", table)
    assert edge_errors.code_for(errors.VehicleAsleep("zzz")) is grpc.StatusCode.UNAVAILABLE


def test_invalid_argument_lists_every_violation() -> None:
    """INVALID_ARGUMENT carries a BadRequest with each field path and description."""
    error = errors.InvalidArgument(
        [
            errors.FieldViolation("vehicle_id", "is required"),
            errors.FieldViolation("fields[1]", "must be a known telemetry field"),
        ]
    )
    status = edge_errors.status_for(error, request_id=RID)
    _, details = decode(status)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details[error_details_pb2.BadRequest] == error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="vehicle_id", description="is required"
            ),
            error_details_pb2.BadRequest.FieldViolation(
                field="fields[1]", description="must be a known telemetry field"
            ),
        ]
    )


DEFAULT_CLIENT_METADATA_LIMIT = 8 * 1024
"""grpc's default `grpc.max_metadata_size`: a client refuses larger trailers (as
RESOURCE_EXHAUSTED) and never sees the status the server meant."""


def trailer_bytes(status: grpc.Status, request_id: str) -> int:
    """Return an upper bound of the trailers' size as HTTP/2 counts it (name + value + 32
    per entry; binary values base64-encoded, the message at worst fully percent-encoded)."""
    entries = [("grpc-status", "16"), ("grpc-message", "%00" * len(status.details.encode()))]
    for key, value in (*status.trailing_metadata, ("x-request-id", request_id)):
        encoded = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        entries.append((key, encoded))
    return sum(len(key) + len(value) + 32 for key, value in entries)


def test_the_largest_invalid_argument_fits_a_default_clients_metadata_limit() -> None:
    """A WatchVehicles naming 1,000 bad ids (the cap) and a bad cursor, with the longest
    request id, makes a status well under the 8 KiB a default client reads."""
    request = pb.WatchVehiclesRequest(
        vehicle_ids=["-" + "x" * 127] * validation.MAX_WATCH_VEHICLE_IDS, after_id=-1
    )
    with pytest.raises(errors.InvalidArgument) as caught:
        convert.watch_query(request)
    request_id = "r" * validation.MAX_ID_LENGTH
    status = edge_errors.status_for(caught.value, request_id=request_id)
    _, details = decode(status)
    bad_request = details[error_details_pb2.BadRequest]
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert len(bad_request.field_violations) == validation.MAX_NAMED_VIOLATIONS
    assert caught.value.metadata["omitted_violations"] == str(
        validation.MAX_WATCH_VEHICLE_IDS + 1 - validation.MAX_NAMED_VIOLATIONS
    )
    assert trailer_bytes(status, request_id) < DEFAULT_CLIENT_METADATA_LIMIT * 3 // 4


def test_rental_active_names_the_rental() -> None:
    """Disconnect during a rental: FAILED_PRECONDITION with a PreconditionFailure on it."""
    error = errors.RentalActive("vehicle is rented", vehicle_id="car-1", rental_id="rental-7")
    status = edge_errors.status_for(error, request_id=RID)
    _, details = decode(status)
    assert status.code is grpc.StatusCode.FAILED_PRECONDITION
    failure = details[error_details_pb2.PreconditionFailure]
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    [violation] = failure.violations
    assert (violation.type, violation.subject) == ("RENTAL", "rentals/rental-7")
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["rental_id"] == "rental-7"


def test_a_car_that_cannot_be_rented_names_everything_missing() -> None:
    """StartRental of a car that cannot be rented: FAILED_PRECONDITION with one
    PreconditionFailure violation per missing thing, and the metadata naming them."""
    status = edge_errors.status_for(NOT_RENTABLE, request_id=RID)
    _, details = decode(status)
    assert status.code is grpc.StatusCode.FAILED_PRECONDITION
    failure = details[error_details_pb2.PreconditionFailure]
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject) for v in failure.violations] == [
        ("CONNECTION_STATUS", "vehicles/car-1"),
        ("PERMISSION", "permissions/control_security"),
    ]
    assert failure.violations[0].description == "the connection is EXPIRED"
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["status"]) == ("VEHICLE_NOT_RENTABLE", "EXPIRED")


def test_a_car_that_cannot_be_rented_needs_a_reason() -> None:
    """VehicleNotRentable without any unmet condition is a programming error."""
    with pytest.raises(ValueError, match="unmet"):
        errors.VehicleNotRentable("?", unmet=[], metadata={})


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (
            errors.RateLimited("slow down", retry_after_s=2.5),
            Duration(seconds=2, nanos=500_000_000),
        ),
        (
            errors.RequestAllowanceExhausted("monthly cap", retry_after_s=86400),
            Duration(seconds=86400),
        ),
        (errors.RateLimited("slow down"), Duration(seconds=1)),
        (errors.CommandInProgress("still running"), Duration(seconds=1)),
        (
            errors.VehicleAsleep("asleep", upstream=UpstreamFailure(retry_after_s=30)),
            Duration(seconds=30),
        ),
        (errors.UpstreamUnavailable("5xx", retry_after_s=0.0004), Duration(nanos=1_000_000)),
    ],
)
def test_retry_info(error: errors.GatewayError, delay: Duration) -> None:
    """Rate limits and busy commands always carry RetryInfo; others when a delay is known."""
    _, details = decode(edge_errors.status_for(error, request_id=RID))
    assert details[error_details_pb2.RetryInfo] == error_details_pb2.RetryInfo(retry_delay=delay)


def test_unavailable_without_known_delay_has_no_retry_info() -> None:
    """UNAVAILABLE carries RetryInfo only when someone said how long to wait."""
    status = edge_errors.status_for(errors.VehicleUnreachable("offline"), request_id=RID)
    _, details = decode(status)
    assert status.code is grpc.StatusCode.UNAVAILABLE
    assert error_details_pb2.RetryInfo not in details


def test_command_outcome_unknown_may_have_succeeded() -> None:
    """A command that timed out after sending: UNAVAILABLE, may_have_succeeded=true."""
    status = edge_errors.status_for(errors.CommandOutcomeUnknown("no answer"), request_id=RID)
    _, details = decode(status)
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert status.code is grpc.StatusCode.UNAVAILABLE
    assert info.reason == "COMMAND_OUTCOME_UNKNOWN"
    assert info.metadata["may_have_succeeded"] == "true"


def test_upstream_failure_lands_in_metadata_and_localized_message() -> None:
    """Smartcar's type, code and request id go to ErrorInfo; its user message to en-US."""
    upstream = UpstreamFailure(
        type="VEHICLE_STATE",
        code="DOOR_OPEN",
        request_id="sc-req-1",
        description="A door is open.",
        suggested_user_message="Close the doors and try again.",
    )
    error = errors.VehicleStateBlocks(
        "door open", metadata={"vehicle_id": "car-1"}, upstream=upstream
    )
    _, details = decode(edge_errors.status_for(error, request_id=RID))
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {
        "vehicle_id": "car-1",
        "smartcar_type": "VEHICLE_STATE",
        "smartcar_code": "DOOR_OPEN",
        "smartcar_request_id": "sc-req-1",
    }
    assert details[error_details_pb2.LocalizedMessage] == error_details_pb2.LocalizedMessage(
        locale="en-US", message="Close the doors and try again."
    )


def test_no_localized_message_without_a_suggestion() -> None:
    """Without Smartcar's suggested message there is no LocalizedMessage."""
    error = errors.UpstreamUnavailable("5xx", upstream=UpstreamFailure(type="SERVER"))
    _, details = decode(edge_errors.status_for(error, request_id=RID))
    assert error_details_pb2.LocalizedMessage not in details


def test_internal_status_is_generic() -> None:
    """A bug becomes INTERNAL quoting the request id and nothing else."""
    status = edge_errors.internal_status(request_id=RID)
    rich, details = decode(status)
    assert status.code is grpc.StatusCode.INTERNAL
    assert RID in rich.message
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "INTERNAL"


def test_a_car_waiting_for_its_owner_carries_smartcars_resolution() -> None:
    """REAUTHENTICATION_REQUIRED names Smartcar's error and resolution in ErrorInfo, the
    car's status in a PreconditionFailure, links the resolution and Smartcar's page in Help,
    and passes Smartcar's message for the owner on."""
    rich, details = decode(edge_errors.status_for(REAUTHENTICATION, request_id=RID))
    assert rich.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "REAUTHENTICATION_REQUIRED"
    assert info.metadata["smartcar_error"] == "CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED"
    assert (info.metadata["resolution_type"], info.metadata["resolution_url"]) == (
        "REAUTHENTICATE",
        REAUTH_URL,
    )
    failure = details[error_details_pb2.PreconditionFailure]
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject) for v in failure.violations] == [
        ("CONNECTION_STATUS", "vehicles/car-1")
    ]
    help_ = details[error_details_pb2.Help]
    assert isinstance(help_, error_details_pb2.Help)
    assert [link.url for link in help_.links] == [REAUTH_URL, DOC_URL]
    message = details[error_details_pb2.LocalizedMessage]
    assert isinstance(message, error_details_pb2.LocalizedMessage)
    assert message.message == "Please use this link to re-connect your car."


def test_an_owner_account_issue_links_smartcars_resolution_from_its_answer() -> None:
    """A CONNECTED_SERVICES_ACCOUNT answer carries its resolution URL in ErrorInfo and Help;
    an error that concerns no owner and names no resolution gets no Help."""
    upstream = UpstreamFailure(
        type="CONNECTED_SERVICES_ACCOUNT",
        code="VIRTUAL_KEY_REQUIRED",
        resolution_type="ACTION_REQUIRED",
        resolution_url="https://www.tesla.com/_ak/smartcar.com",
        doc_url=DOC_URL + "#virtual-key-required",
    )
    issue = errors.OwnerAccountIssue("Smartcar: virtual key", upstream=upstream)
    _, details = decode(edge_errors.status_for(issue, request_id=RID))
    info = details[error_details_pb2.ErrorInfo]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["resolution_url"] == "https://www.tesla.com/_ak/smartcar.com"
    help_ = details[error_details_pb2.Help]
    assert isinstance(help_, error_details_pb2.Help)
    assert [link.url for link in help_.links] == [
        "https://www.tesla.com/_ak/smartcar.com",
        DOC_URL + "#virtual-key-required",
    ]
    blocked = errors.VehicleStateBlocks(
        "door open",
        upstream=UpstreamFailure(type="VEHICLE_STATE", code="DOOR_OPEN", doc_url=DOC_URL),
    )
    _, plain = decode(edge_errors.status_for(blocked, request_id=RID))
    assert error_details_pb2.Help not in plain


def test_the_client_library_reads_a_car_waiting_for_its_owner() -> None:
    """The gateway's client library raises OwnerMustAct, with Smartcar's resolution URL, for
    REAUTHENTICATION_REQUIRED and OWNER_ACCOUNT_ISSUE alike."""
    issue = errors.OwnerAccountIssue(
        "Smartcar: AUTHENTICATION_FAILED",
        upstream=UpstreamFailure(
            type="CONNECTED_SERVICES_ACCOUNT",
            code="AUTHENTICATION_FAILED",
            resolution_url=REAUTH_URL,
        ),
    )
    for error in (REAUTHENTICATION, issue):
        failure = client_errors.from_rpc_error(
            FakeCall(edge_errors.status_for(error, request_id=RID))  # type: ignore[arg-type]
        )
        assert isinstance(failure, client_errors.OwnerMustAct)
        assert failure.resolution_url == REAUTH_URL
