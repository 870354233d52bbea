"""Everything the Smartcar client raises, as one tree.

Callers catch these and nothing else: every httpx exception, every unexpected body and
every error answer from Smartcar is turned into one of them at the transport edge.
No message, attribute or ``repr`` ever contains a token, the client secret or the
management token: the edge scrubs whatever it sent before building an error.

    SmartcarError
    ├── SmartcarAPIError                      an error body (v2 flat or V3 errors[]): type, code …
    │   ├── AuthenticationError               401 AUTHENTICATION
    │   ├── PermissionDenied                  403 PERMISSION
    │   │   └── AccessDenied                      403 AUTHENTICATION ACCESS_DENIED (V3)
    │   ├── ValidationError                   400 VALIDATION
    │   ├── ResourceNotFound                  404 RESOURCE_NOT_FOUND
    │   ├── VehicleStateError                 409 VEHICLE_STATE
    │   │   └── VehicleAsleep                     code ASLEEP
    │   ├── RateLimited                       429 RATE_LIMIT
    │   │   ├── VehicleRateLimited                code VEHICLE
    │   │   └── AppRateLimited                    code SMARTCAR_API
    │   ├── BillingError                      430 BILLING
    │   │   └── VehicleRequestLimitReached        code VEHICLE_REQUEST_LIMIT
    │   ├── CompatibilityError                501 COMPATIBILITY
    │   │   └── VehicleNotCapable                 code VEHICLE_NOT_CAPABLE
    │   ├── ConnectedServicesAccountError     400 CONNECTED_SERVICES_ACCOUNT
    │   ├── UpstreamError                     502 UPSTREAM
    │   ├── ServerError                       500 SERVER
    │   └── CommandFailed                     a V3 command execution says FAILURE, not why
    ├── OAuthError                            a token-endpoint body: error, description, status
    │   ├── InvalidGrant                          invalid_grant (expired, used or revoked grant)
    │   ├── InvalidClient                         invalid_client
    │   ├── InvalidRequest                        invalid_request
    │   ├── InvalidScope                          invalid_scope
    │   ├── UnauthorizedClient                    unauthorized_client
    │   └── UnsupportedGrantType                  unsupported_grant_type
    └── SmartcarTransportError                no usable answer; request_sent says if it left
        ├── SmartcarTimeout                       connect/pool: not sent; read/write: maybe sent
        ├── SmartcarConnectionError               refused, reset, broken protocol
        └── SmartcarProtocolError                 an answer we cannot read (not JSON, wrong shape)

An API error whose ``type`` is unknown falls back on its HTTP status (``api_error_class``),
and on ``SmartcarAPIError`` when the status says nothing either. V3 bodies
(``{"errors": [{status, type, code, title, detail, …}]}``) are read into the same classes
(``clients.smartcar.v3``), so callers handle both API versions alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "AppRateLimited",
    "AuthenticationError",
    "BillingError",
    "CommandFailed",
    "CompatibilityError",
    "ConnectedServicesAccountError",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "OAuthError",
    "PermissionDenied",
    "RateLimited",
    "Resolution",
    "ResourceNotFound",
    "ServerError",
    "SmartcarAPIError",
    "SmartcarConnectionError",
    "SmartcarError",
    "SmartcarProtocolError",
    "SmartcarTimeout",
    "SmartcarTransportError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UpstreamError",
    "ValidationError",
    "VehicleAsleep",
    "VehicleNotCapable",
    "VehicleRateLimited",
    "VehicleRequestLimitReached",
    "VehicleStateError",
    "api_error_class",
    "oauth_error_class",
]


class SmartcarError(Exception):
    """Root of everything the Smartcar client raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling and copying.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[SmartcarError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Rebuild a pickled or copied SmartcarError without calling its constructor."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass(frozen=True, slots=True)
class Resolution:
    """What Smartcar says would resolve an error: ``RETRY_LATER``, ``REAUTHENTICATE`` …"""

    type: str | None = None
    url: str | None = None


class SmartcarAPIError(SmartcarError):
    """Smartcar answered with a v2 error body (``{type, code, description, …}``)."""

    api_type: ClassVar[str | None] = None
    """The body ``type`` this class stands for (``None`` on the root)."""

    def __init__(
        self,
        *,
        status: int,
        type: str | None,
        code: str | None,
        description: str | None = None,
        doc_url: str | None = None,
        request_id: str | None = None,
        resolution: Resolution | None = None,
        suggested_user_message: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.code = code
        self.description = description
        self.doc_url = doc_url
        self.request_id = request_id
        self.resolution = resolution if resolution is not None else Resolution()
        self.suggested_user_message = suggested_user_message
        self.retry_after_s = retry_after_s
        super().__init__(self._summary())

    def _summary(self) -> str:
        kind = ":".join(part for part in (self.type, self.code) if part) or "error"
        text = f"{kind} (HTTP {self.status})"
        if self.description:
            text += f" - {self.description}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text


class AuthenticationError(SmartcarAPIError):
    """The bearer token is missing, malformed, expired or revoked (401)."""

    api_type = "AUTHENTICATION"


class PermissionDenied(SmartcarAPIError):
    """The token lacks the permission this endpoint needs (403)."""

    api_type = "PERMISSION"


class AccessDenied(PermissionDenied):
    """The token gives no access to this resource: another user's vehicle, or a removed
    connection (V3 403 AUTHENTICATION ACCESS_DENIED). A new token would not help, so it is
    no AuthenticationError."""


class ValidationError(SmartcarAPIError):
    """Smartcar rejected the format of the request (400)."""

    api_type = "VALIDATION"


class ResourceNotFound(SmartcarAPIError):
    """The path or API version does not exist (404)."""

    api_type = "RESOURCE_NOT_FOUND"


class VehicleStateError(SmartcarAPIError):
    """The vehicle's state prevents the request: door open, in motion, unreachable (409)."""

    api_type = "VEHICLE_STATE"


class VehicleAsleep(VehicleStateError):
    """The vehicle sleeps; Smartcar did not wake it to save its battery (409 ASLEEP)."""


class RateLimited(SmartcarAPIError):
    """Too many requests; ``retry_after_s`` says when to try again if Smartcar said (429)."""

    api_type = "RATE_LIMIT"


class VehicleRateLimited(RateLimited):
    """This vehicle's throttling limit is reached (429 VEHICLE)."""


class AppRateLimited(RateLimited):
    """The application's request bucket is empty (429 SMARTCAR_API)."""


class BillingError(SmartcarAPIError):
    """The plan's limits forbid the request (430)."""

    api_type = "BILLING"


class VehicleRequestLimitReached(BillingError):
    """This vehicle's monthly request allowance is spent (430 VEHICLE_REQUEST_LIMIT)."""


class CompatibilityError(SmartcarAPIError):
    """Smartcar or the vehicle does not support this request (501)."""

    api_type = "COMPATIBILITY"


class VehicleNotCapable(CompatibilityError):
    """The vehicle physically cannot do this, e.g. fuel on an EV (501 VEHICLE_NOT_CAPABLE)."""


class ConnectedServicesAccountError(SmartcarAPIError):
    """The owner's connected-services account needs attention (400)."""

    api_type = "CONNECTED_SERVICES_ACCOUNT"


class UpstreamError(SmartcarAPIError):
    """The manufacturer or the vehicle failed to answer Smartcar (502)."""

    api_type = "UPSTREAM"


class ServerError(SmartcarAPIError):
    """Smartcar itself failed (500)."""

    api_type = "SERVER"


class CommandFailed(SmartcarAPIError):
    """A V3 command execution reports FAILURE without an error naming the reason."""


_BY_TYPE: dict[str, type[SmartcarAPIError]] = {
    cls.api_type: cls
    for cls in (
        AuthenticationError,
        PermissionDenied,
        ValidationError,
        ResourceNotFound,
        VehicleStateError,
        RateLimited,
        BillingError,
        CompatibilityError,
        ConnectedServicesAccountError,
        UpstreamError,
        ServerError,
    )
    if cls.api_type is not None
}

_BY_TYPE_AND_CODE: dict[tuple[str, str], type[SmartcarAPIError]] = {
    ("AUTHENTICATION", "ACCESS_DENIED"): AccessDenied,
    ("VEHICLE_STATE", "ASLEEP"): VehicleAsleep,
    ("RATE_LIMIT", "VEHICLE"): VehicleRateLimited,
    ("RATE_LIMIT", "SMARTCAR_API"): AppRateLimited,
    ("BILLING", "VEHICLE_REQUEST_LIMIT"): VehicleRequestLimitReached,
    ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE"): VehicleNotCapable,
}

# 400 is left out on purpose: it is shared by VALIDATION and CONNECTED_SERVICES_ACCOUNT.
_BY_STATUS: dict[int, type[SmartcarAPIError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: ResourceNotFound,
    409: VehicleStateError,
    429: RateLimited,
    430: BillingError,
    500: ServerError,
    501: CompatibilityError,
    502: UpstreamError,
}


def api_error_class(type_: str | None, code: str | None, status: int) -> type[SmartcarAPIError]:
    """Return the class for an error body: by type and code, by type, by status, or the root."""
    if type_ is not None:
        if code is not None and (type_, code) in _BY_TYPE_AND_CODE:
            return _BY_TYPE_AND_CODE[type_, code]
        if type_ in _BY_TYPE:
            return _BY_TYPE[type_]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else SmartcarAPIError


class OAuthError(SmartcarError):
    """The token endpoint refused a grant (``{error, error_description}``)."""

    oauth_error: ClassVar[str | None] = None
    """The ``error`` value this class stands for (``None`` on the root)."""

    def __init__(self, *, error: str, description: str | None, status: int) -> None:
        self.error = error
        self.description = description
        self.status = status
        text = f"{error} (HTTP {status})"
        super().__init__(f"{text} - {description}" if description else text)


class InvalidGrant(OAuthError):
    """The code or refresh token is invalid, expired, already used or revoked."""

    oauth_error = "invalid_grant"


class InvalidClient(OAuthError):
    """The client id or secret was not accepted."""

    oauth_error = "invalid_client"


class InvalidRequest(OAuthError):
    """The token request was malformed (missing parameter, wrong redirect_uri …)."""

    oauth_error = "invalid_request"


class InvalidScope(OAuthError):
    """The requested scope is invalid or exceeds what was granted."""

    oauth_error = "invalid_scope"


class UnauthorizedClient(OAuthError):
    """This client may not use this grant type."""

    oauth_error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """The token endpoint does not support this grant type."""

    oauth_error = "unsupported_grant_type"


_OAUTH_BY_ERROR: dict[str, type[OAuthError]] = {
    cls.oauth_error: cls
    for cls in (
        InvalidGrant,
        InvalidClient,
        InvalidRequest,
        InvalidScope,
        UnauthorizedClient,
        UnsupportedGrantType,
    )
    if cls.oauth_error is not None
}


def oauth_error_class(error: str) -> type[OAuthError]:
    """Return the class for an OAuth ``error`` value, or ``OAuthError`` if unknown."""
    return _OAUTH_BY_ERROR.get(error, OAuthError)


class SmartcarTransportError(SmartcarError):
    """No usable answer came back; ``request_sent`` says whether Smartcar may have acted."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        self.request_sent = request_sent
        super().__init__(message)


class SmartcarTimeout(SmartcarTransportError):
    """The call ran out of time; after a read/write timeout the request may have succeeded."""


class SmartcarConnectionError(SmartcarTransportError):
    """The connection was refused, reset or broke the HTTP protocol."""


class SmartcarProtocolError(SmartcarTransportError):
    """An answer arrived that cannot be read: not JSON, or not the documented shape."""

    def __init__(self, message: str, *, request_sent: bool = True, status: int | None = None):
        self.status = status
        super().__init__(message, request_sent=request_sent)
