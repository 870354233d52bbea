"""Typed exceptions for the gateway's errors, built from the rich status it sends.

Every failed call raises a `GatewayCallError` subclass chosen by the ErrorInfo reason
(then by the status code), carrying what the caller can act on:

    GatewayCallError                 code, reason, message, metadata, request_id
    ├── InvalidArgument              violations: {field: description} (BadRequest)
    ├── NotFound
    ├── PreconditionFailed           violations: [(type, subject, description)]
    │   ├── NotConnected             NOT_CONNECTED: run Connect
    │   ├── ConnectionExpired        CONNECTION_EXPIRED: the owner must reconnect
    │   ├── ConnectionDisconnected   CONNECTION_DISCONNECTED
    │   ├── OwnerMustAct             REAUTHENTICATION_REQUIRED, OWNER_ACCOUNT_ISSUE: the owner
    │   │                            must act in their account or reconnect (`resolution_url`)
    │   ├── PermissionMissing        PERMISSION_MISSING: `metadata["permission"]`
    │   ├── RentalActive             RENTAL_ACTIVE: `rental_id`
    │   ├── VehicleNotRentable       VEHICLE_NOT_RENTABLE: `violations` name what is missing
    │   ├── VehicleStateBlocks       VEHICLE_STATE (door open, in motion, …)
    │   └── ConnectFailed            CONNECT_<ERROR>: the owner's Connect ended in Smartcar's
    │                                `connect_error` (access_denied, no_vehicles, …)
    ├── RateLimited                  retry_after_s (RetryInfo)
    ├── Unavailable                  retry_after_s when known
    │   └── CommandOutcomeUnknown    the command may have run: retry with the same
    │                                request_id to learn its outcome, never a new one
    ├── CommandInProgress            the same request_id is still running
    ├── Unauthenticated
    ├── PermissionDenied             the caller's role does not allow it
    └── DeadlineExceeded             the client's deadline passed
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "vehiclegateway"


class GatewayCallError(Exception):
    """A call to the gateway failed; `reason` is the gateway's stable machine code."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        request_id: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.request_id = request_id
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message} (request {self.request_id or '?'})"


class InvalidArgument(GatewayCallError):
    """A request field is wrong; `violations` maps each field to what is wrong with it."""

    violations: dict[str, str]


class NotFound(GatewayCallError):
    """No such vehicle."""


class PreconditionFailed(GatewayCallError):
    """The vehicle's state does not allow the call; `violations` says what stands in the way."""

    violations: list[tuple[str, str, str]]


class NotConnected(PreconditionFailed):
    """The vehicle was never connected."""


class ConnectionExpired(PreconditionFailed):
    """The vehicle's authorization expired: its owner must reconnect it."""


class ConnectionDisconnected(PreconditionFailed):
    """The vehicle was disconnected (by the fleet, or its owner revoked access)."""


class OwnerMustAct(PreconditionFailed):
    """Smartcar says the vehicle's owner must act in their connected-services account or
    reconnect the car (the vehicle is NEEDS_REAUTHENTICATION); `resolution_url` is where,
    when Smartcar gave a link."""

    @property
    def resolution_url(self) -> str:
        """Where the owner resolves it (Smartcar's link); empty when Smartcar gave none."""
        return self.metadata.get("resolution_url", "")


class PermissionMissing(PreconditionFailed):
    """The owner did not grant a permission the call needs."""


class RentalActive(PreconditionFailed):
    """A rental holds the vehicle; `rental_id` names it."""

    @property
    def rental_id(self) -> str:
        """The id of the rental holding the vehicle."""
        return self.metadata.get("rental_id", "")


class VehicleNotRentable(PreconditionFailed):
    """StartRental of a car that is not ACTIVE or lacks `control_security`; `violations`
    name each missing thing (CONNECTION_STATUS, PERMISSION)."""


class VehicleStateBlocks(PreconditionFailed):
    """The car's state blocks the command (a door open, in motion, …)."""


class ConnectFailed(PreconditionFailed):
    """The owner's Connect ended in an error Smartcar put on the redirect."""

    @property
    def connect_error(self) -> str:
        """Smartcar's error code, as the redirect carried it (e.g. `access_denied`)."""
        return self.metadata.get("connect_error", "")


class RateLimited(GatewayCallError):
    """A rate limit refused the call; retry after `retry_after_s`."""


class Unavailable(GatewayCallError):
    """The gateway, Smartcar or the car could not answer now."""


class CommandOutcomeUnknown(Unavailable):
    """The command was sent and no answer came: it may have run."""


class CommandInProgress(GatewayCallError):
    """A command with the same request_id is still running; ask again for its outcome."""


class Unauthenticated(GatewayCallError):
    """The gateway does not know who is calling."""


class PermissionDenied(GatewayCallError):
    """The caller may not make this call."""


class DeadlineExceeded(GatewayCallError):
    """The call's deadline passed before an answer."""


_BY_REASON: Mapping[str, type[GatewayCallError]] = {
    "NOT_CONNECTED": NotConnected,
    "CONNECTION_EXPIRED": ConnectionExpired,
    "CONNECTION_DISCONNECTED": ConnectionDisconnected,
    "REAUTHENTICATION_REQUIRED": OwnerMustAct,
    "OWNER_ACCOUNT_ISSUE": OwnerMustAct,
    "PERMISSION_MISSING": PermissionMissing,
    "RENTAL_ACTIVE": RentalActive,
    "VEHICLE_NOT_RENTABLE": VehicleNotRentable,
    "VEHICLE_STATE": VehicleStateBlocks,
    "COMMAND_OUTCOME_UNKNOWN": CommandOutcomeUnknown,
}
_CONNECT_FAILED_PREFIX = "CONNECT_"
"""The reasons of a failed Connect: CONNECT_ and Smartcar's error in capitals."""
_BY_CODE: Mapping[grpc.StatusCode, type[GatewayCallError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailed,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.ABORTED: CommandInProgress,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error: grpc.RpcError, *, request_id: str = "") -> GatewayCallError:
    """Return the typed exception for a failed call (sync or aio), details unpacked."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(code)
    # grpc.RpcError from a call is also a grpc.Call (sync) or an AioRpcError (aio); both
    # carry the trailing metadata the rich status travels in.
    call = cast(Any, error)
    status = rpc_status.from_call(call) if hasattr(call, "trailing_metadata") else None
    info, retry, bad, precondition, request = _details(status)
    reason = info.reason if info is not None and info.domain == DOMAIN else ""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, GatewayCallError)
    if reason.startswith(_CONNECT_FAILED_PREFIX):
        cls = ConnectFailed
    if cls is PreconditionFailed and code is not grpc.StatusCode.FAILED_PRECONDITION:
        cls = _BY_CODE.get(code, GatewayCallError)
    failure = cls(
        message,
        code=code,
        reason=reason,
        metadata=dict(info.metadata) if info is not None else {},
        request_id=(request.request_id if request is not None else "") or request_id,
        retry_after_s=_seconds(retry),
    )
    if isinstance(failure, InvalidArgument):
        failure.violations = {v.field: v.description for v in (bad.field_violations if bad else ())}
    if isinstance(failure, PreconditionFailed):
        failure.violations = [
            (v.type, v.subject, v.description)
            for v in (precondition.violations if precondition else ())
        ]
    return failure


def _details(
    status: status_pb2.Status | None,
) -> tuple[
    error_details_pb2.ErrorInfo | None,
    error_details_pb2.RetryInfo | None,
    error_details_pb2.BadRequest | None,
    error_details_pb2.PreconditionFailure | None,
    error_details_pb2.RequestInfo | None,
]:
    found: dict[type, object] = {}
    for packed in status.details if status is not None else ():
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.RetryInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.RequestInfo,
        ):
            if packed.Is(kind.DESCRIPTOR):  # type: ignore[arg-type]
                found[kind] = kind.FromString(packed.value)
    return (
        found.get(error_details_pb2.ErrorInfo),  # type: ignore[return-value]
        found.get(error_details_pb2.RetryInfo),
        found.get(error_details_pb2.BadRequest),
        found.get(error_details_pb2.PreconditionFailure),
        found.get(error_details_pb2.RequestInfo),
    )


def _seconds(retry: error_details_pb2.RetryInfo | None) -> float | None:
    if retry is None or not retry.HasField("retry_delay"):
        return None
    return retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
