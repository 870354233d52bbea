"""The gateway's domain errors: what went wrong, in the caller's terms, never in gRPC's.

One table at the edge (gateway.edge.errors) turns each class into a gRPC status with rich
details; a test proves every concrete class below is in it. Every error carries a
`reason` (the ErrorInfo reason), a message safe to show (no token ever), optional
`metadata`, and, where Smartcar said why, the `upstream` failure.

    GatewayError
    ├── InvalidArgument                 bad request fields (BadRequest)
    ├── VehicleNotFound
    ├── PreconditionFailed
    │   ├── NotConnected                never connected
    │   ├── ConnectionExpired           refresh token rejected or outlived: reconnect
    │   ├── ConnectionDisconnected      we disconnected, or the owner revoked access
    │   ├── ConnectionFailing           status ERROR
    │   ├── PermissionMissing           the owner did not grant a needed scope
    │   ├── RentalActive                Disconnect during a rental (PreconditionFailure)
    │   ├── RentalConflict              another rental holds the car / no such rental
    │   ├── VehicleStateBlocks          door open, in motion, … (Smartcar VEHICLE_STATE)
    │   ├── VehicleNotCapable           the car cannot do this (Smartcar COMPATIBILITY)
    │   ├── OwnerAccountIssue           the owner's connected-services account needs action
    │   ├── AuthorizationMismatch       the authorization does not identify this vehicle
    │   └── UpstreamRejected            Smartcar refused a request we should not have sent
    ├── RateLimited                     a rate limit: ours or Smartcar's (RetryInfo)
    │   └── RequestAllowanceExhausted   Smartcar's monthly per-vehicle allowance
    ├── Unavailable                     try again later (RetryInfo when known)
    │   ├── VehicleAsleep
    │   ├── VehicleUnreachable
    │   ├── UpstreamUnavailable         Smartcar 5xx, timeouts, broken answers
    │   ├── CommandOutcomeUnknown       sent, no answer: may have succeeded
    │   └── KeyUnavailable              this replica lacks the key stored tokens are under
    ├── CommandInProgress               the same request id is still being executed
    ├── Unauthenticated                 the caller proved no identity the policy knows
    └── AccessDenied                    the caller may not call this (or read these fields)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.core.model import UpstreamFailure


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: its path (`vehicle_id`, `fields[2]`) and what is wrong."""

    field: str
    description: str


class GatewayError(Exception):
    """Root of the gateway's errors; `reason` is the stable machine-readable code."""

    reason = "GATEWAY_ERROR"

    def __init__(
        self,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        upstream: UpstreamFailure | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.upstream = upstream
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidArgument(GatewayError):
    """The request itself is malformed; `violations` names each bad field."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgument:
        """Return the error for a single bad field."""
        return cls([FieldViolation(field, description)])


class VehicleNotFound(GatewayError):
    """No fleet vehicle has this id."""

    reason = "VEHICLE_NOT_FOUND"


class PreconditionFailed(GatewayError):
    """The system is not in a state that allows this request."""

    reason = "FAILED_PRECONDITION"


class NotConnected(PreconditionFailed):
    """The vehicle has never been connected to Smartcar."""

    reason = "NOT_CONNECTED"


class ConnectionExpired(PreconditionFailed):
    """The refresh token was rejected or outlived: the owner must reconnect."""

    reason = "CONNECTION_EXPIRED"


class ConnectionDisconnected(PreconditionFailed):
    """The connection was removed (by us, or revoked by the owner): reconnect to use it."""

    reason = "CONNECTION_DISCONNECTED"


class ConnectionFailing(PreconditionFailed):
    """The connection is in ERROR after repeated upstream failures."""

    reason = "CONNECTION_ERROR"


class PermissionMissing(PreconditionFailed):
    """The owner did not grant a Smartcar permission this request needs."""

    reason = "PERMISSION_MISSING"


class RentalActive(PreconditionFailed):
    """A rental holds the vehicle (Disconnect is refused); `rental_id` names it."""

    reason = "RENTAL_ACTIVE"

    def __init__(self, message: str, *, vehicle_id: str, rental_id: str) -> None:
        super().__init__(message, metadata={"vehicle_id": vehicle_id, "rental_id": rental_id})
        self.vehicle_id = vehicle_id
        self.rental_id = rental_id


class RentalConflict(PreconditionFailed):
    """StartRental while another rental holds the car, or EndRental of a rental not active."""

    reason = "RENTAL_CONFLICT"


class VehicleStateBlocks(PreconditionFailed):
    """The vehicle's state blocks the command (door open, in motion, …)."""

    reason = "VEHICLE_STATE"


class VehicleNotCapable(PreconditionFailed):
    """The vehicle (or Smartcar for this make) cannot do what was asked."""

    reason = "VEHICLE_NOT_CAPABLE"


class OwnerAccountIssue(PreconditionFailed):
    """The owner's connected-services account needs their action (subscription, login…)."""

    reason = "OWNER_ACCOUNT_ISSUE"


class AuthorizationMismatch(PreconditionFailed):
    """The owner's authorization does not identify exactly one car for this fleet vehicle."""

    reason = "AUTHORIZATION_MISMATCH"


class UpstreamRejected(PreconditionFailed):
    """Smartcar refused a request as invalid; retrying it unchanged will not help."""

    reason = "UPSTREAM_REJECTED"


class RateLimited(GatewayError):
    """A rate limit refused the call before any upstream request; retry after `retry_after_s`.

    `metadata["limit"]` names which: `vehicle_reads`, `vehicle_commands`, `vehicle_cooldown`
    (Smartcar said 429 for this car), `application` (the app-wide Smartcar bucket).
    """

    reason = "RATE_LIMITED"


class RequestAllowanceExhausted(RateLimited):
    """Smartcar's monthly request allowance for this vehicle is spent."""

    reason = "REQUEST_ALLOWANCE_EXHAUSTED"


class Unavailable(GatewayError):
    """Smartcar or the vehicle cannot answer now; the same request may work later."""

    reason = "UNAVAILABLE"


class VehicleAsleep(Unavailable):
    """The vehicle is asleep; Smartcar did not wake it to preserve its battery."""

    reason = "VEHICLE_ASLEEP"


class VehicleUnreachable(Unavailable):
    """The vehicle is offline or out of network range."""

    reason = "VEHICLE_UNREACHABLE"


class UpstreamUnavailable(Unavailable):
    """Smartcar failed (5xx), timed out, or answered something unreadable."""

    reason = "UPSTREAM_UNAVAILABLE"


class CommandOutcomeUnknown(Unavailable):
    """The command was sent but no answer came: it may have succeeded."""

    reason = "COMMAND_OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, upstream: UpstreamFailure | None = None) -> None:
        super().__init__(message, metadata={"may_have_succeeded": "true"}, upstream=upstream)


class KeyUnavailable(Unavailable):
    """Stored tokens are encrypted under a key this replica was not given (another replica
    already encrypts with a newly rotated key): another replica can serve the call."""

    reason = "KEY_UNAVAILABLE"


class CommandInProgress(GatewayError):
    """A command with the same request id is still running; retry to get its outcome."""

    reason = "COMMAND_IN_PROGRESS"


class Unauthenticated(GatewayError):
    """The caller presented no certificate or token the access policy knows."""

    reason = "UNAUTHENTICATED"


class AccessDenied(GatewayError):
    """The access policy does not allow this caller this method (or these fields)."""

    reason = "ACCESS_DENIED"
