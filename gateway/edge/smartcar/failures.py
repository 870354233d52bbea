"""Smartcar client errors → the core's terms: one translation, used by the Smartcar adapter.

Three refusals become the port's signals the core handles itself (`TokenRejected`,
`RefreshRejected`, `CodeRejected`); everything else becomes a `GatewayError` carrying
Smartcar's type, code, request id, suggested user message and `retry-after`. For commands,
anything that may have reached the car (a timeout or reset after sending, Smartcar 5xx,
the manufacturer failing to answer) becomes `CommandOutcomeUnknown`: a lock must never be
reported as failed when it may have happened. An answer that says the command did not
reach the car never does: Smartcar's own refusals (RATE_LIMIT, BILLING, VEHICLE_STATE,
COMPATIBILITY, PERMISSION, …) and the manufacturer's rate limit (UPSTREAM:RATE_LIMIT,
which becomes `RateLimited` like a 429, so the vehicle cools down).

Two errors come from API V3 only:

- `AccessDenied` (403 AUTHENTICATION:ACCESS_DENIED: the Smartcar user named by
  `sc-user-id` has no connection to the car, because another user owns it or the
  connection was removed) is `AuthorizationMismatch`: the authorization the gateway holds
  does not identify this car. It is not `PermissionMissing` (no scope is missing, so
  withdrawing one would be wrong), nor `ConnectionDisconnected` (a 403 cannot tell a
  removed connection from a user id that never owned the car). It refuses before the car
  is reached, so a command's request id is freed, as for any refusal;
- `CommandFailed` (the execution reports FAILURE without naming why) happened at the car:
  it is `VehicleStateBlocks` with vehicle state UNKNOWN, the label Smartcar itself gives a
  state it cannot name (VEHICLE_STATE:UNKNOWN), so the command is kept FAILED and a retry
  with the same request id gets that answer. It never says the command may have succeeded.

A 202 whose execution Smartcar has not confirmed is no error of the client; `v3_commands`
turns it into `CommandOutcomeUnknown`.

CONNECTED_SERVICES_ACCOUNT errors (any code: the seven Smartcar documents, and any it adds)
are `OwnerAccountIssue`, carrying what Smartcar asked of the owner (`owner_action_of`: its
resolution type and URL, documentation page, message for the owner), which the core keeps
on the car while it waits (NEEDS_REAUTHENTICATION). VIRTUAL_KEY_REQUIRED concerns commands
only ("additional steps are needed … to perform this specific request"; reads still work).
"""

from __future__ import annotations

from datetime import UTC, datetime

from clients import smartcar as sc
from gateway.core import errors
from gateway.core.model import Availability, OwnerAction, UpstreamFailure
from gateway.core.ports import CodeRejected, RefreshRejected, TokenRejected
from gateway.core.upstream import (
    SMARTCAR_APPLICATION_LIMIT,
    SMARTCAR_OEM_LIMIT,
    SMARTCAR_VEHICLE_LIMIT,
)


def failure_of(error: sc.SmartcarError) -> UpstreamFailure:
    """Return what Smartcar said about a failure (nothing secret: the client scrubs it)."""
    if isinstance(error, sc.SmartcarAPIError):
        return UpstreamFailure(
            type=error.type,
            code=error.code,
            request_id=error.request_id,
            description=error.description,
            suggested_user_message=error.suggested_user_message,
            retry_after_s=error.retry_after_s,
            resolution_type=error.resolution.type,
            resolution_url=error.resolution.url,
            doc_url=error.doc_url,
        )
    return UpstreamFailure(type=type(error).__name__, description=str(error))


OWNER_ACCOUNT = "CONNECTED_SERVICES_ACCOUNT"
"""Smartcar's error type for what only the owner can fix in their connected-services account."""
COMMANDS_ONLY_CODES = frozenset({"VIRTUAL_KEY_REQUIRED"})
"""CONNECTED_SERVICES_ACCOUNT codes that concern commands alone: "additional steps are needed
on the owner's part in order to perform this specific request" (a Tesla virtual key)."""


def owner_action_of(failure: UpstreamFailure) -> OwnerAction:
    """Return what a CONNECTED_SERVICES_ACCOUNT failure asks of the owner."""
    label = ":".join(part for part in (failure.type, failure.code) if part) or OWNER_ACCOUNT
    return OwnerAction(
        error=label,
        resolution_type=failure.resolution_type,
        resolution_url=failure.resolution_url,
        doc_url=failure.doc_url,
        user_message=failure.suggested_user_message,
        commands_only=failure.code in COMMANDS_ONLY_CODES,
    )


def availability_of(error: sc.SmartcarError) -> Availability:
    """Return what a failed read of one field says about its availability: a car that
    cannot report it (COMPATIBILITY) is NOT_CAPABLE, a missing permission PERMISSION_MISSING,
    anything else (V3's ACCESS_DENIED included: no scope is missing) UNAVAILABLE."""
    if isinstance(error, sc.CompatibilityError):
        return Availability.NOT_CAPABLE
    if isinstance(error, sc.PermissionDenied) and not isinstance(error, sc.AccessDenied):
        return Availability.PERMISSION_MISSING
    return Availability.UNAVAILABLE


TRANSIENT_OAUTH_ERRORS = frozenset({"server_error", "temporarily_unavailable"})
"""RFC 6749's errors for a token endpoint that is down: nothing was refused, retry later."""


def translate(error: sc.SmartcarError, *, command: bool = False) -> Exception:
    """Return the exception the core expects for a Smartcar client error."""
    if isinstance(error, sc.AuthenticationError):
        return TokenRejected()
    failure = failure_of(error)
    if command and _may_have_reached_the_car(error):
        return errors.CommandOutcomeUnknown(
            f"Smartcar did not confirm the command: {_describe(error)}", upstream=failure
        )
    if isinstance(error, sc.SmartcarAPIError):
        return _api_error(error, failure)
    if isinstance(error, sc.OAuthError) and error.error in TRANSIENT_OAUTH_ERRORS:
        return errors.UpstreamUnavailable(
            f"Smartcar's token endpoint is failing ({error.error}); try again", upstream=failure
        )
    if isinstance(error, sc.OAuthError):
        return errors.UpstreamRejected(
            f"Smartcar refused the application's credentials ({error.error})", upstream=failure
        )
    return errors.UpstreamUnavailable(f"Smartcar unreachable: {_describe(error)}", upstream=failure)


def translate_grant(error: sc.SmartcarError, *, refresh: bool) -> Exception:
    """Translate an error of the token endpoint (code exchange or refresh)."""
    if isinstance(error, sc.InvalidGrant):
        return RefreshRejected() if refresh else CodeRejected()
    return translate(error)


OEM_RATE_LIMIT = "RATE_LIMIT"
"""The UPSTREAM code for the manufacturer's rate limit: it refused the request, so nothing
reached the car ("you will receive UPSTREAM:RATE_LIMIT … until the limit is reset")."""


def _may_have_reached_the_car(error: sc.SmartcarError) -> bool:
    if isinstance(error, sc.SmartcarTransportError):
        return error.request_sent
    if _is_oem_rate_limit(error):
        return False
    return isinstance(error, sc.ServerError | sc.UpstreamError)


def _is_oem_rate_limit(error: sc.SmartcarError) -> bool:
    return isinstance(error, sc.UpstreamError) and error.code == OEM_RATE_LIMIT


UNNAMED_VEHICLE_STATE = "UNKNOWN"
"""Smartcar's VEHICLE_STATE code for a state it cannot name: what a V3 execution that
reports FAILURE without an error stands for."""

_BY_CLASS: tuple[tuple[type[sc.SmartcarAPIError], type[errors.GatewayError]], ...] = (
    (sc.AccessDenied, errors.AuthorizationMismatch),  # before PermissionDenied, its base
    (sc.VehicleAsleep, errors.VehicleAsleep),
    (sc.PermissionDenied, errors.PermissionMissing),
    (sc.CompatibilityError, errors.VehicleNotCapable),
    (sc.UpstreamError, errors.UpstreamUnavailable),
    (sc.ServerError, errors.UpstreamUnavailable),
    (sc.ValidationError, errors.UpstreamRejected),
    (sc.ResourceNotFound, errors.UpstreamRejected),
)


def _api_error(error: sc.SmartcarAPIError, failure: UpstreamFailure) -> errors.GatewayError:
    message = f"Smartcar: {_describe(error)}"
    retry = error.retry_after_s
    if isinstance(error, sc.RateLimited) or _is_oem_rate_limit(error):
        limit = SMARTCAR_VEHICLE_LIMIT
        if isinstance(error, sc.AppRateLimited):
            limit = SMARTCAR_APPLICATION_LIMIT
        elif _is_oem_rate_limit(error):
            limit = SMARTCAR_OEM_LIMIT
        return errors.RateLimited(
            message, metadata={"limit": limit}, upstream=failure, retry_after_s=retry or 60.0
        )
    if isinstance(error, sc.VehicleRequestLimitReached):
        return errors.RequestAllowanceExhausted(
            message,
            metadata={"limit": "smartcar_monthly_allowance"},
            upstream=failure,
            retry_after_s=_until_next_month(),
        )
    if isinstance(error, sc.ConnectedServicesAccountError):
        return errors.OwnerAccountIssue(
            message, action=owner_action_of(failure), upstream=failure, retry_after_s=retry
        )
    if isinstance(error, sc.CommandFailed):
        return errors.VehicleStateBlocks(
            f"Smartcar: the command failed at the car ({error.code or 'FAILURE'}) without "
            "naming why",
            metadata={"vehicle_state": UNNAMED_VEHICLE_STATE},
            upstream=failure,
        )
    if isinstance(error, sc.VehicleStateError) and not isinstance(error, sc.VehicleAsleep):
        unreachable = error.code == "UNREACHABLE"
        kind = errors.VehicleUnreachable if unreachable else errors.VehicleStateBlocks
        return kind(message, metadata={"vehicle_state": error.code or ""}, upstream=failure)
    for client_class, gateway_class in _BY_CLASS:
        if isinstance(error, client_class):
            return gateway_class(message, upstream=failure, retry_after_s=retry)
    if error.status >= 500:
        return errors.UpstreamUnavailable(message, upstream=failure, retry_after_s=retry)
    return errors.UpstreamRejected(message, upstream=failure)


def _describe(error: sc.SmartcarError) -> str:
    if isinstance(error, sc.SmartcarAPIError):
        label = ":".join(p for p in (error.type, error.code) if p)
        return f"{label} {error.description or ''}".strip()
    return str(error)


def _until_next_month() -> float:
    """Seconds until Smartcar's monthly allowance resets (the first of next month, UTC)."""
    now = datetime.now(UTC)
    first = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return (first - now).total_seconds()
