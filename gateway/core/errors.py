"""The gateway's domain errors: what went wrong, in the caller's terms, never in gRPC's.

One table at the edge (gateway.edge.grpc.status) turns each class into a gRPC status with rich
details; a test proves every concrete class below is in it. Every error carries a
`reason` (the ErrorInfo reason), a message safe to show (no token ever), optional
`metadata`, and, where Smartcar said why, the `upstream` failure.

    GatewayError
    ├── InvalidArgument                 bad request fields (BadRequest)
    ├── VehicleNotFound
    ├── RentalNotFound
    ├── PreconditionFailed
    │   ├── NotConnected                never connected
    │   ├── ConnectionExpired           refresh token rejected or outlived: reconnect
    │   ├── ConnectionDisconnected      we disconnected, or the owner revoked access
    │   ├── ConnectionFailing           status ERROR
    │   ├── ReauthenticationRequired    NEEDS_REAUTHENTICATION: the owner must act first
    │   ├── PermissionMissing           the owner did not grant a needed scope
    │   ├── RentalActive                Disconnect during a rental (PreconditionFailure)
    │   ├── RentalConflict              another rental holds the car / no such rental
    │   ├── VehicleNotRentable          StartRental: not ACTIVE, or control_security missing
    │   ├── VehicleStateBlocks          door open, in motion, … (Smartcar VEHICLE_STATE)
    │   ├── VehicleNotCapable           the car cannot do this (Smartcar COMPATIBILITY)
    │   ├── OwnerAccountIssue           the owner's connected-services account needs action
    │   ├── AuthorizationMismatch       the authorization does not identify this vehicle
    │   ├── ConnectFailed               the Connect redirect carried Smartcar's `error`
    │   ├── CommandNotApplied           the car reported the opposite state after the command
    │   └── UpstreamRejected            Smartcar refused a request we should not have sent
    │       └── ApplicationCredentialsRefused   no configured client secret gets a token
    ├── RateLimited                     a rate limit: ours or Smartcar's (RetryInfo)
    │   ├── RequestAllowanceExhausted   the month's allowance is spent (ours, or Smartcar's 430)
    │   ├── RequestBudgetReserved       what is left is kept for commands and rental readings
    │   └── TooManyStreams              the caller holds its most WatchVehicles streams
    ├── Unavailable                     try again later (RetryInfo when known)
    │   ├── VehicleAsleep
    │   ├── VehicleUnreachable
    │   ├── UpstreamUnavailable         Smartcar 5xx, timeouts, broken answers
    │   ├── CommandOutcomeUnknown       sent, no answer: may have succeeded
    │   └── KeyUnavailable              this replica lacks the key stored tokens are under
    ├── CommandInProgress               the same request id is still being executed
    ├── WatchFellBehind                 a stream's caller read too slowly: resume after an id
    ├── EventsPruned                    a resume before the events retention kept
    ├── Unauthenticated                 the caller proved no identity the policy knows
    └── AccessDenied                    the caller may not call this (or read these fields)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway.core.model import OwnerAction, UpstreamFailure


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
    """The request itself is malformed; `violations` names bad fields, `omitted` counts
    the ones left unnamed (metadata `omitted_violations`) to keep the status small."""

    reason = "INVALID_ARGUMENT"
    SUMMARISED = 5
    """How many violations the message spells out; the BadRequest detail holds them all."""

    def __init__(self, violations: Sequence[FieldViolation], *, omitted: int = 0) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations = tuple(violations)
        self.omitted = omitted
        shown = self.violations[: self.SUMMARISED]
        summary = "; ".join(f"{v.field}: {v.description}" for v in shown)
        more = len(self.violations) - len(shown) + omitted
        if more:
            summary += f"; and {more} more"
        metadata = {"omitted_violations": str(omitted)} if omitted else None
        super().__init__(f"invalid request: {summary}", metadata=metadata)

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgument:
        """Return the error for a single bad field."""
        return cls([FieldViolation(field, description)])


class VehicleNotFound(GatewayError):
    """No fleet vehicle has this id."""

    reason = "VEHICLE_NOT_FOUND"


class RentalNotFound(GatewayError):
    """No rental has this id."""

    reason = "RENTAL_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class UnmetCondition:
    """One thing a request needs that is missing (a `google.rpc.PreconditionFailure`
    violation): its `type` (`CONNECTION_STATUS`, `PERMISSION`), the `subject` it concerns
    (`vehicles/car-1`, `permissions/control_security`) and what to do about it."""

    type: str
    subject: str
    description: str


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


class ReauthenticationRequired(PreconditionFailed):
    """The car waits for its owner (NEEDS_REAUTHENTICATION): Smartcar said they must act in
    their connected-services account or reconnect; `action` says what Smartcar asked for.
    Metadata: `vehicle_id`, `status`, `smartcar_error`, and when known `resolution_type`,
    `resolution_url`, `smartcar_doc_url`."""

    reason = "REAUTHENTICATION_REQUIRED"

    def __init__(
        self,
        message: str,
        *,
        action: OwnerAction | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        action = action or OwnerAction(error="CONNECTED_SERVICES_ACCOUNT")
        described = {
            "smartcar_error": action.error,
            "resolution_type": action.resolution_type,
            "resolution_url": action.resolution_url,
            "smartcar_doc_url": action.doc_url,
        }
        merged = {key: value for key, value in described.items() if value}
        merged.update(metadata or {})
        super().__init__(message, metadata=merged)
        self.action = action


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


class VehicleNotRentable(PreconditionFailed):
    """StartRental of a car that cannot be rented: its connection is not ACTIVE, or the
    owner did not grant `control_security` (a car that cannot be unlocked cannot be rented).
    `unmet` names each missing thing; metadata `status` and `missing_permissions` too."""

    reason = "VEHICLE_NOT_RENTABLE"

    def __init__(
        self, message: str, *, unmet: Sequence[UnmetCondition], metadata: Mapping[str, str]
    ) -> None:
        if not unmet:
            raise ValueError("VehicleNotRentable needs at least one unmet condition")
        super().__init__(message, metadata=metadata)
        self.unmet = tuple(unmet)


class VehicleStateBlocks(PreconditionFailed):
    """The vehicle's state blocks the command (door open, in motion, …)."""

    reason = "VEHICLE_STATE"


class VehicleNotCapable(PreconditionFailed):
    """The vehicle (or Smartcar for this make) cannot do what was asked."""

    reason = "VEHICLE_NOT_CAPABLE"


class OwnerAccountIssue(PreconditionFailed):
    """Smartcar answered that the owner's connected-services account needs their action
    (subscription, login, a virtual key…: a CONNECTED_SERVICES_ACCOUNT error); `action`
    says what. The car is then NEEDS_REAUTHENTICATION (`gateway.core.reauthentication`)."""

    reason = "OWNER_ACCOUNT_ISSUE"

    def __init__(
        self,
        message: str,
        *,
        action: OwnerAction | None = None,
        metadata: Mapping[str, str] | None = None,
        upstream: UpstreamFailure | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata, upstream=upstream, retry_after_s=retry_after_s)
        self.action = action or _action_of(upstream)


def _action_of(upstream: UpstreamFailure | None) -> OwnerAction:
    """What Smartcar's failure asks of the owner, as far as it said."""
    if upstream is None:
        return OwnerAction(error="CONNECTED_SERVICES_ACCOUNT")
    return OwnerAction(
        error=":".join(part for part in (upstream.type, upstream.code) if part) or "UNKNOWN",
        resolution_type=upstream.resolution_type,
        resolution_url=upstream.resolution_url,
        doc_url=upstream.doc_url,
        user_message=upstream.suggested_user_message,
    )


class AuthorizationMismatch(PreconditionFailed):
    """The owner's authorization does not identify exactly one car for this fleet vehicle."""

    reason = "AUTHORIZATION_MISMATCH"


class ConnectFailed(PreconditionFailed):
    """The owner's Connect ended in an error Smartcar put on the redirect (`access_denied`,
    `no_vehicles`, …). The reason names it: `CONNECT_<ERROR>` (`gateway.core.connect_failures`),
    metadata `connect_error` holds it as given."""

    reason = "CONNECT_FAILED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        if reason is not None:
            self.reason = reason


class CommandNotApplied(PreconditionFailed):
    """A command whose outcome was unknown did not happen: the car reported the opposite
    state (unlocked after a Lock, not charging after a StartCharge, …) after the command
    could have completed. Send a new command to try again."""

    reason = "COMMAND_NOT_APPLIED"


class UpstreamRejected(PreconditionFailed):
    """Smartcar refused a request as invalid; retrying it unchanged will not help."""

    reason = "UPSTREAM_REJECTED"


class ApplicationCredentialsRefused(UpstreamRejected):
    """Smartcar's token endpoint refused the application's client credentials
    (`invalid_client`) with every configured client secret: an operator must fix the
    configuration (SMARTCAR_CLIENT_ID, the client secrets). The message never holds one."""

    reason = "APPLICATION_CREDENTIALS_REFUSED"


class RateLimited(GatewayError):
    """A rate limit refused the call before any upstream request; retry after `retry_after_s`.

    `metadata["limit"]` names which: `vehicle_reads`, `vehicle_commands`, `vehicle_cooldown`
    (Smartcar said 429 for this car), `application` (the app-wide Smartcar bucket),
    `smartcar_vehicle` / `smartcar_application` (Smartcar's 429 itself), `smartcar_oem`
    (Smartcar's 502 UPSTREAM:RATE_LIMIT: the manufacturer's limit for this car).
    """

    reason = "RATE_LIMITED"


class RequestAllowanceExhausted(RateLimited):
    """The vehicle's monthly request allowance is spent: Smartcar said so (430
    VEHICLE_REQUEST_LIMIT, `limit` smartcar_monthly_allowance), or the gateway's count says
    a read that may spend the reserve would go past it (`limit` request_allowance)."""

    reason = "REQUEST_ALLOWANCE_EXHAUSTED"


class RequestBudgetReserved(RateLimited):
    """An interactive read or a poll would spend the part of the vehicle's monthly allowance
    kept for commands and rental readings (`gateway.core.budget`); retry next month, or
    accept an older value. Metadata: `limit` (request_budget), the month and its figures."""

    reason = "REQUEST_BUDGET_RESERVED"


class TooManyStreams(RateLimited):
    """The caller already holds as many WatchVehicles (or WatchVehicleEvents) streams as it
    may (`max_streams`)."""

    reason = "TOO_MANY_STREAMS"


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


class WatchFellBehind(GatewayError):
    """A WatchVehicles stream buffered as many changes as it may while its caller was not
    reading; it was ended so the others go on. Resume after `resume_after_id`."""

    reason = "WATCH_FELL_BEHIND"


class EventsPruned(GatewayError):
    """A WatchVehicleEvents stream was to resume after an id whose successors retention has
    already deleted: it could not go on without missing events. Metadata: `pruned_through_id`
    (every event up to it is gone) and `resume_after_id` (the oldest events kept follow it)."""

    reason = "EVENTS_PRUNED"


class Refusal(StrEnum):
    """Why a call was refused at admission: the label of the refusal metric and log line
    (never sent as anything but a count; a token is never part of it)."""

    NO_CREDENTIALS = "no_credentials"
    TOKEN_IN_CLEAR = "token_in_clear"  # noqa: S105 - a label, not a token
    TOKEN_UNKNOWN = "token_unknown"  # noqa: S105 - a label, not a token
    CERTIFICATE_UNKNOWN = "certificate_unknown"
    CERTIFICATE_AMBIGUOUS = "certificate_ambiguous"
    METHOD_DENIED = "method_denied"
    FIELDS_DENIED = "fields_denied"


class Unauthenticated(GatewayError):
    """The caller presented no certificate or token the access policy knows (`refusal`
    says which)."""

    reason = "UNAUTHENTICATED"

    def __init__(
        self,
        message: str,
        *,
        refusal: Refusal = Refusal.NO_CREDENTIALS,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.refusal = refusal


class AccessDenied(GatewayError):
    """The access policy does not allow this caller this method (or these fields)."""

    reason = "ACCESS_DENIED"

    def __init__(
        self,
        message: str,
        *,
        refusal: Refusal = Refusal.METHOD_DENIED,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.refusal = refusal
