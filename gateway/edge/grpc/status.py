"""The one mapping from domain errors to gRPC status with rich details (google.rpc).

`STATUS_CODES` is the table: every concrete `gateway.core.errors.GatewayError` subclass has
its own row (a test walks the hierarchy and proves it). `status_for` builds the status:

- always `ErrorInfo` (domain `vehiclegateway`, reason = `error.reason`, metadata =
  `error.metadata` plus Smartcar's `smartcar_type`/`smartcar_code`/`smartcar_request_id`)
  and `RequestInfo` (the call's request id);
- `BadRequest` for `InvalidArgument`, one violation per bad field;
- `PreconditionFailure` naming the rental for `RentalActive`, each missing condition
  (connection status, permission) for `VehicleNotRentable`, and the connection status of a
  car waiting for its owner for `ReauthenticationRequired`;
- `RetryInfo` whenever a retry delay is known, and always for RESOURCE_EXHAUSTED and
  ABORTED (one second when nobody said how long);
- `Help` linking to where the owner acts (Smartcar's resolution URL: re-authentication, a
  virtual key) and to Smartcar's page about the error, when the error says the owner must
  act (`OwnerAccountIssue`, `ReauthenticationRequired`, a car not rentable for it) or
  carries a resolution URL; the same URL is in the ErrorInfo metadata `resolution_url`,
  with `resolution_type`;
- `LocalizedMessage` (en-US) when Smartcar suggested a message for the user.

`internal_status` is the answer to a genuine bug: INTERNAL with a generic message.
`storage_unavailable_status` answers a database that is briefly not there or refused a
transaction to break a deadlock: UNAVAILABLE, retry in a second (which failures those are,
storage knows: the interceptor asks the classifier in its `EdgeHooks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status

from gateway.core import errors

DOMAIN = "vehiclegateway"
"""The ErrorInfo domain of every error the gateway reports."""

DEFAULT_RETRY_DELAY_S = 1.0
"""The RetryInfo delay for a rate limit or busy request whose wait nobody told us."""

_C = grpc.StatusCode

STATUS_CODES: Mapping[type[errors.GatewayError], grpc.StatusCode] = {
    errors.InvalidArgument: _C.INVALID_ARGUMENT,
    errors.VehicleNotFound: _C.NOT_FOUND,
    errors.RentalNotFound: _C.NOT_FOUND,
    errors.PreconditionFailed: _C.FAILED_PRECONDITION,
    errors.NotConnected: _C.FAILED_PRECONDITION,
    errors.ConnectionExpired: _C.FAILED_PRECONDITION,
    errors.ConnectionDisconnected: _C.FAILED_PRECONDITION,
    errors.ConnectionFailing: _C.FAILED_PRECONDITION,
    errors.ReauthenticationRequired: _C.FAILED_PRECONDITION,
    errors.PermissionMissing: _C.FAILED_PRECONDITION,
    errors.RentalActive: _C.FAILED_PRECONDITION,
    errors.RentalConflict: _C.FAILED_PRECONDITION,
    errors.VehicleNotRentable: _C.FAILED_PRECONDITION,
    errors.VehicleStateBlocks: _C.FAILED_PRECONDITION,
    errors.VehicleNotCapable: _C.FAILED_PRECONDITION,
    errors.OwnerAccountIssue: _C.FAILED_PRECONDITION,
    errors.AuthorizationMismatch: _C.FAILED_PRECONDITION,
    errors.ConnectFailed: _C.FAILED_PRECONDITION,
    errors.CommandNotApplied: _C.FAILED_PRECONDITION,
    errors.UpstreamRejected: _C.FAILED_PRECONDITION,
    errors.ApplicationCredentialsRefused: _C.FAILED_PRECONDITION,
    errors.RateLimited: _C.RESOURCE_EXHAUSTED,
    errors.RequestAllowanceExhausted: _C.RESOURCE_EXHAUSTED,
    errors.RequestBudgetReserved: _C.RESOURCE_EXHAUSTED,
    errors.TooManyStreams: _C.RESOURCE_EXHAUSTED,
    errors.Unavailable: _C.UNAVAILABLE,
    errors.VehicleAsleep: _C.UNAVAILABLE,
    errors.VehicleUnreachable: _C.UNAVAILABLE,
    errors.UpstreamUnavailable: _C.UNAVAILABLE,
    errors.CommandOutcomeUnknown: _C.UNAVAILABLE,
    errors.KeyUnavailable: _C.UNAVAILABLE,
    errors.CommandInProgress: _C.ABORTED,
    errors.WatchFellBehind: _C.ABORTED,
    errors.EventsPruned: _C.OUT_OF_RANGE,
    errors.Unauthenticated: _C.UNAUTHENTICATED,
    errors.AccessDenied: _C.PERMISSION_DENIED,
}
"""gRPC code per error class, after the DESIGN.md errors table. Subclasses defined elsewhere
fall back to their nearest listed ancestor; the hierarchy test wants each listed anyway."""

_ALWAYS_RETRY = frozenset({_C.RESOURCE_EXHAUSTED, _C.ABORTED})


def code_for(error: errors.GatewayError) -> grpc.StatusCode:
    """Return the gRPC code of an error: its class's row, else its nearest ancestor's."""
    for cls in type(error).__mro__:
        if issubclass(cls, errors.GatewayError) and cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return _C.INTERNAL


def status_for(error: errors.GatewayError, *, request_id: str) -> grpc.Status:
    """Build the gRPC status (code, message, rich details) that reports `error`."""
    code = code_for(error)
    details: list[Message] = [
        _error_info(error),
        error_details_pb2.RequestInfo(request_id=request_id),
    ]
    details.extend(_specific_details(error))
    retry_after_s = _retry_after_s(error)
    if retry_after_s is None and code in _ALWAYS_RETRY:
        retry_after_s = DEFAULT_RETRY_DELAY_S
    if retry_after_s is not None:
        details.append(error_details_pb2.RetryInfo(retry_delay=_duration(retry_after_s)))
    help_links = _help_links(error)
    if help_links:
        details.append(error_details_pb2.Help(links=help_links))
    user_message = _user_message(error)
    if user_message:
        details.append(error_details_pb2.LocalizedMessage(locale="en-US", message=user_message))
    return _status(code, error.message, details)


def internal_status(*, request_id: str) -> grpc.Status:
    """Build the INTERNAL status for an unexpected failure: no detail beyond the request id."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"request_id": request_id}
    )
    message = f"internal error; quote request id {request_id} when reporting it"
    return _status(
        _C.INTERNAL, message, [info, error_details_pb2.RequestInfo(request_id=request_id)]
    )


def storage_unavailable_status(*, request_id: str) -> grpc.Status:
    """Build the UNAVAILABLE status for a transient database failure (retry in 1 s)."""
    info = error_details_pb2.ErrorInfo(
        reason="STORAGE_UNAVAILABLE", domain=DOMAIN, metadata={"request_id": request_id}
    )
    message = "the gateway's database is briefly unavailable; retry shortly"
    return _status(
        _C.UNAVAILABLE,
        message,
        [
            info,
            error_details_pb2.RequestInfo(request_id=request_id),
            error_details_pb2.RetryInfo(retry_delay=_duration(DEFAULT_RETRY_DELAY_S)),
        ],
    )


def _error_info(error: errors.GatewayError) -> error_details_pb2.ErrorInfo:
    """Build the ErrorInfo: reason, domain, and metadata including Smartcar's identifiers."""
    metadata = dict(error.metadata)
    upstream = error.upstream
    if upstream is not None:
        for key, value in (
            ("smartcar_type", upstream.type),
            ("smartcar_code", upstream.code),
            ("smartcar_request_id", upstream.request_id),
            ("resolution_type", upstream.resolution_type),
            ("resolution_url", upstream.resolution_url),
        ):
            if value and key not in metadata:
                metadata[key] = value
    return error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)


def _specific_details(error: errors.GatewayError) -> list[Message]:
    """Build the details only some errors carry: BadRequest, PreconditionFailure."""
    if isinstance(error, errors.InvalidArgument):
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        ]
    if isinstance(error, errors.RentalActive):
        violation = error_details_pb2.PreconditionFailure.Violation(
            type="RENTAL", subject=f"rentals/{error.rental_id}", description=error.message
        )
        return [error_details_pb2.PreconditionFailure(violations=[violation])]
    if isinstance(error, errors.VehicleNotRentable):
        violations = [
            error_details_pb2.PreconditionFailure.Violation(
                type=unmet.type, subject=unmet.subject, description=unmet.description
            )
            for unmet in error.unmet
        ]
        return [error_details_pb2.PreconditionFailure(violations=violations)]
    if isinstance(error, errors.ReauthenticationRequired):
        vehicle_id = error.metadata.get("vehicle_id", "")
        violation = error_details_pb2.PreconditionFailure.Violation(
            type="CONNECTION_STATUS", subject=f"vehicles/{vehicle_id}", description=error.message
        )
        return [error_details_pb2.PreconditionFailure(violations=[violation])]
    return []


_OWNER_ERRORS = (errors.OwnerAccountIssue, errors.ReauthenticationRequired)


def _help_links(error: errors.GatewayError) -> list[error_details_pb2.Help.Link]:
    """Where the owner resolves what stands in the way, and Smartcar's page about it."""
    upstream = error.upstream
    resolution_url = error.metadata.get("resolution_url") or (
        upstream.resolution_url if upstream is not None else None
    )
    owner_error = isinstance(error, _OWNER_ERRORS) or "smartcar_error" in error.metadata
    if not resolution_url and not owner_error:
        return []
    doc_url = error.metadata.get("smartcar_doc_url") or (
        upstream.doc_url if upstream is not None else None
    )
    resolution_type = error.metadata.get("resolution_type") or (
        upstream.resolution_type if upstream is not None else None
    )
    links = []
    if resolution_url:
        what = f" ({resolution_type})" if resolution_type else ""
        links.append(
            error_details_pb2.Help.Link(
                description=f"Smartcar's resolution{what}: where the owner acts",
                url=resolution_url,
            )
        )
    if doc_url:
        links.append(
            error_details_pb2.Help.Link(description="Smartcar's page about the error", url=doc_url)
        )
    return links


def _user_message(error: errors.GatewayError) -> str | None:
    """What Smartcar suggested telling the user, if it did."""
    if error.upstream is not None and error.upstream.suggested_user_message:
        return error.upstream.suggested_user_message
    if isinstance(error, errors.ReauthenticationRequired):
        return error.action.user_message
    return None


def _retry_after_s(error: errors.GatewayError) -> float | None:
    """Return how long to wait before retrying, if the error or Smartcar said so."""
    if error.retry_after_s is not None:
        return error.retry_after_s
    if error.upstream is not None:
        return error.upstream.retry_after_s
    return None


def _duration(seconds: float) -> duration_pb2.Duration:
    """Convert a non-negative delay in seconds to a Duration, rounding up to the millisecond."""
    millis = max(0, math.ceil(seconds * 1000))
    return duration_pb2.Duration(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def _status(code: grpc.StatusCode, message: str, details: list[Message]) -> grpc.Status:
    """Pack a code, message and details into a grpc.Status via grpcio-status."""
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    proto = status_pb2.Status(code=code.value[0], message=message, details=packed)
    status: grpc.Status = rpc_status.to_status(proto)
    return status
