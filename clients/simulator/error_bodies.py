"""Smartcar's error bodies, as the simulator sends them, and the exceptions that carry them.

Two families, as on the real wire:

    Exception
    ├── ApiError      a v2 Vehicle/Management API error: {type, code, description, docURL,
    │                 statusCode, requestId, resolution: {type}, suggestedUserMessage?}
    └── OAuthError    an OAuth 2.0 error of /oauth/token or /oauth/authorize:
                      {error, error_description}

Descriptions, resolutions and user messages are copied from Smartcar's error pages
(errors/api-errors/*). `<app name>` in their user messages is filled with `APP_NAME`.
`suggestedUserMessage` is sent only for errors whose page shows one (AUTHENTICATION,
PERMISSION and BILLING pages show none). The RESOURCE_NOT_FOUND descriptions are the
overview table's ("Thrown if the requested path does not exist"): no detail page was
available to copy from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

APP_NAME = "the application"
_DOCS = "https://smartcar.com/docs/errors/api-errors/"
_TEMPORARILY = (
    f"Your car is temporarily unable to connect to {APP_NAME}. "
    "Please be patient while we\u2019re working to resolve this issue."
)


@dataclass(frozen=True, kw_only=True)
class ErrorKind:
    """One Smartcar error type/code with its status and documented texts."""

    type: str
    code: str | None
    status: int
    description: str
    doc_url: str
    resolution: str | None = None
    suggested_user_message: str | None = None
    resolution_url: str | None = None
    """`resolution.url`: where the user resolves the error (sent only when there is one)."""

    @property
    def label(self) -> str:
        """Return `TYPE:CODE` (or just `TYPE` when the code is null), for stats."""
        return self.type if self.code is None else f"{self.type}:{self.code}"

    def body(self, request_id: str) -> dict[str, Any]:
        """Return the v2 error body for one response."""
        body: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "description": self.description,
            "docURL": self.doc_url,
            "statusCode": self.status,
            "requestId": request_id,
            "resolution": {"type": self.resolution},
        }
        if self.resolution_url is not None:
            body["resolution"]["url"] = self.resolution_url
        if self.suggested_user_message is not None:
            body["suggestedUserMessage"] = self.suggested_user_message
        return body


AUTHENTICATION = ErrorKind(
    type="AUTHENTICATION",
    code=None,
    status=401,
    description=(
        "The authorization header is missing or malformed, or it contains invalid or expired "
        "authentication credentials. Please check for missing parameters, spelling and casing "
        "mistakes, and other syntax issues."
    ),
    doc_url=_DOCS + "authentication-errors",
)
PERMISSION = ErrorKind(
    type="PERMISSION",
    code=None,
    status=403,
    description=(
        "Your application has insufficient permissions to access the requested resource. "
        "Please prompt the user to re-authenticate using Smartcar Connect."
    ),
    doc_url=_DOCS + "permission-errors#null",
    resolution="REAUTHENTICATE",
)
VALIDATION = ErrorKind(
    type="VALIDATION",
    code=None,
    status=400,
    description=(
        "Request invalid or malformed. Please check for missing parameters, spelling and casing "
        "mistakes, and other syntax issues."
    ),
    doc_url=_DOCS + "validation-errors#null",
    suggested_user_message=_TEMPORARILY,
)
VALIDATION_PARAMETER = ErrorKind(
    type="VALIDATION",
    code="PARAMETER",
    status=400,
    description=(
        "Your request is formatted correctly, but one or more of the provided parameters is "
        "incorrect."
    ),
    doc_url=_DOCS + "validation-errors#parameter",
    suggested_user_message=_TEMPORARILY,
)
RESOURCE_NOT_FOUND_PATH = ErrorKind(
    type="RESOURCE_NOT_FOUND",
    code="PATH",
    status=404,
    description="The requested path does not exist.",
    doc_url="https://smartcar.com/docs/api-reference/api-errors#resource-errors-path",
)
RESOURCE_NOT_FOUND_VERSION = ErrorKind(
    type="RESOURCE_NOT_FOUND",
    code="VERSION",
    status=404,
    description="The requested API version does not exist.",
    doc_url="https://smartcar.com/docs/api-reference/api-errors#resource-errors-version",
)
VEHICLE_NOT_CAPABLE = ErrorKind(
    type="COMPATIBILITY",
    code="VEHICLE_NOT_CAPABLE",
    status=501,
    description="The vehicle is incapable of performing your request.",
    doc_url=_DOCS + "compatibility-errors#vehicle-not-capable",
    suggested_user_message="Your car is unable to perform this request.",
)
RATE_LIMIT_VEHICLE = ErrorKind(
    type="RATE_LIMIT",
    code="VEHICLE",
    status=429,
    description=(
        "You have reached the throttling rate limit for this vehicle. Please see the "
        "retry-after header for when to retry the request."
    ),
    doc_url=_DOCS + "rate-limit-errors#vehicle",
    resolution="RETRY_LATER",
    suggested_user_message=(
        f"Your vehicle is temporarily unable to connect to {APP_NAME}. "
        "Please be patient while we\u2019re working to resolve this issue."
    ),
)
RATE_LIMIT_SMARTCAR_API = ErrorKind(
    type="RATE_LIMIT",
    code="SMARTCAR_API",
    status=429,
    description=(
        "Your application has exceeded its rate limit. Please retry your request in a few minutes."
    ),
    doc_url=_DOCS + "rate-limit-errors#smartcar-api",
    resolution="RETRY_LATER",
    suggested_user_message=(
        f"Your vehicle is temporarily unable to connect to {APP_NAME}. "
        "Please be patient while we\u2019re working to resolve this issue."
    ),
)
BILLING_VEHICLE_REQUEST_LIMIT = ErrorKind(
    type="BILLING",
    code="VEHICLE_REQUEST_LIMIT",
    status=430,
    description=(
        "You have exceeded the number of API requests that are allowed for this vehicle in the "
        "current billing period. Please log into the Smartcar dashboard and visit the Billing tab "
        "to learn more."
    ),
    doc_url=_DOCS + "billing-errors#vehicle-request-limit",
    resolution="CONTACT_SUPPORT",
)
ASLEEP = ErrorKind(
    type="VEHICLE_STATE",
    code="ASLEEP",
    status=409,
    description="The vehicle is in a sleep state and temporarily unable to perform your request.",
    doc_url=_DOCS + "vehicle-state-errors#asleep",
    suggested_user_message=(
        "Your vehicle is in a sleep state. This request was not sent to preserve battery life."
    ),
)
DOOR_OPEN = ErrorKind(
    type="VEHICLE_STATE",
    code="DOOR_OPEN",
    status=409,
    description=(
        "The vehicle could not perform your request because one or more of its doors are open."
    ),
    doc_url=_DOCS + "vehicle-state-errors#door-open",
    suggested_user_message=(
        "Your vehicle was unable to lock. Please ensure that all doors and the trunk are fully "
        "closed."
    ),
)
IN_MOTION = ErrorKind(
    type="VEHICLE_STATE",
    code="IN_MOTION",
    status=409,
    description="The vehicle is currently in motion and unable to perform your request.",
    doc_url=_DOCS + "vehicle-state-errors#in-motion",
    suggested_user_message="Your vehicle is unable to perform the request while in motion.",
)


def _charging(code: str, description: str) -> ErrorKind:
    """Return a 409 VEHICLE_STATE kind a charging command meets."""
    return ErrorKind(
        type="VEHICLE_STATE",
        code=code,
        status=409,
        description=description,
        doc_url=_DOCS + "vehicle-state-errors#" + code.lower().replace("_", "-"),
    )


CHARGING_IN_PROGRESS = _charging("CHARGING_IN_PROGRESS", "The vehicle is already charging.")
CHARGING_PLUG_NOT_CONNECTED = _charging(
    "CHARGING_PLUG_NOT_CONNECTED", "The charging plug is not connected to the vehicle."
)
NOT_CHARGING = _charging("NOT_CHARGING", "The vehicle is not charging.")
SERVER_INTERNAL = ErrorKind(
    type="SERVER",
    code="INTERNAL",
    status=500,
    description=(
        "An internal Smartcar error has occurred. Our team has been notified and is working to "
        "resolve this issue."
    ),
    doc_url=_DOCS + "server-errors#internal",
    resolution="RETRY_LATER",
    suggested_user_message=_TEMPORARILY,
)


def _upstream(code: str, description: str, anchor: str) -> ErrorKind:
    """Return one 502 UPSTREAM error kind (they differ only in code and description)."""
    return ErrorKind(
        type="UPSTREAM",
        code=code,
        status=502,
        description=description,
        doc_url=_DOCS + "upstream-errors#" + anchor,
        resolution="RETRY_LATER",
        suggested_user_message=_TEMPORARILY,
    )


UPSTREAM_NO_RESPONSE = _upstream(
    "NO_RESPONSE",
    "One of Smartcar\u2019s upstream sources failed to respond. Please retry your request at a "
    "later time.",
    "no-response",
)
UPSTREAM_ERRORS: dict[str, ErrorKind] = {
    kind.code or "": kind
    for kind in (
        UPSTREAM_NO_RESPONSE,
        _upstream(
            "INVALID_DATA",
            "Smartcar received invalid data from an upstream source. Please retry your request "
            "at a later time.",
            "invalid-data",
        ),
        _upstream(
            "KNOWN_ISSUE",
            "Smartcar received an error from an upstream source. Please retry your request at a "
            "later time.",
            "known-issue",
        ),
        _upstream(
            "UNKNOWN_ISSUE",
            "Smartcar received an unknown error from an upstream source. Please retry your "
            "request at a later time and contact us if the issue persists.",
            "unknown-issue",
        ),
        # The page's example body for RATE_LIMIT repeats NO_RESPONSE's; its prose is used.
        _upstream(
            "RATE_LIMIT",
            "Your application\u2019s requests have exceeded this vehicle\u2019s rate limit.",
            "rate-limit",
        ),
    )
}


def _account(
    code: str,
    description: str,
    *,
    resolution: str | None = None,
    url: str | None = None,
    message: str | None = None,
) -> ErrorKind:
    """Return one 400 CONNECTED_SERVICES_ACCOUNT kind, as its page shows it."""
    return ErrorKind(
        type="CONNECTED_SERVICES_ACCOUNT",
        code=code,
        status=400,
        description=description,
        doc_url=_DOCS + "connected-services-account-errors#" + code.lower().replace("_", "-"),
        resolution=resolution,
        resolution_url=url,
        suggested_user_message=message,
    )


REAUTHENTICATE_URL = (
    "https://connect.smartcar.com/oauth/reauthenticate?response_type=vehicle_id"
    "&client_id={client_id}&vehicle_id={vehicle_id}"
)
"""The re-authentication link AUTHENTICATION_FAILED carries (the page's example, filled)."""
VIRTUAL_KEY_URL = "https://www.tesla.com/_ak/smartcar.com"
_RECONNECT = (
    f"Your car got disconnected from {APP_NAME}. Please use this link to re-connect your car: "
    "{url}."
)
_SUBSCRIPTION_MESSAGE = (
    "Your car\u2019s connected services subscription has either expired or it doesn\u2019t "
    f"support the necessary features to connect to {APP_NAME}. Please activate your "
    "subscription or contact us to upgrade your subscription."
)
ACCOUNT_ERRORS: dict[str, ErrorKind] = {
    kind.code or "": kind
    for kind in (
        _account(
            "ACCOUNT_ISSUE",
            "Action needed in the user\u2019s connected services account. Please prompt the "
            "user to log into their connected services account and complete any outstanding "
            "tasks.",
            message="Action required in your connected services account. Please log into your "
            "connected services app or web portal and complete any outstanding tasks (e.g. "
            "finish activating your account or accept the Terms of Service).",
        ),
        _account(
            "AUTHENTICATION_FAILED",
            "Smartcar was unable to authenticate with the user\u2019s connected services "
            "account. Please prompt the user to re-authenticate using Smartcar Connect.",
            resolution="REAUTHENTICATE",
            url=REAUTHENTICATE_URL,
            message=_RECONNECT,
        ),
        _account(
            "NO_VEHICLES",
            "No vehicles found in the user\u2019s connected services account. Please prompt the "
            "user to add their vehicle to their connected services account and re-authenticate "
            "using Smartcar Connect.",
            message=_RECONNECT,
        ),
        _account(
            "PERMISSION",
            "The vehicle owner has revoked Smartcar\u2019s access to their OEM account.",
            resolution="REAUTHENTICATE",
        ),
        _account(
            "SUBSCRIPTION",
            "The vehicle\u2019s connected services subscription is inactive or does not support "
            "the requested API endpoint.",
            message=_SUBSCRIPTION_MESSAGE,
        ),
        _account(
            "VEHICLE_MISSING",
            "This vehicle is no longer associated with the user\u2019s connected services "
            "account. Please prompt the user to re-add the vehicle to their account.",
            message="This car is no longer associated with your connected services account. "
            "Please log into your account and re-add this car.",
        ),
        _account(
            "VIRTUAL_KEY_REQUIRED",
            "The vehicle owner needs to grant additional access to Smartcar in order to perform "
            "this request.",
            resolution="ACTION_REQUIRED",
            url=VIRTUAL_KEY_URL,
            message="In order to perform this request you\u2019ll need to add a Third-Party "
            "Virtual key to your vehicle. Please open this link on the phone with your Tesla "
            "App to complete this step.",
        ),
    )
}
"""Smartcar's CONNECTED_SERVICES_ACCOUNT errors (errors/api-errors/connected-services-account-
errors), with the resolution each page shows: REAUTHENTICATE with a re-authentication link
for AUTHENTICATION_FAILED, REAUTHENTICATE for PERMISSION, ACTION_REQUIRED with the virtual-key
page for VIRTUAL_KEY_REQUIRED, none for the rest."""


def account_error(code: str, *, client_id: str, vehicle_id: str | None) -> ErrorKind:
    """Return the CONNECTED_SERVICES_ACCOUNT kind `code`, its links filled for this client
    and vehicle (the `{url}` of its user message is its resolution URL)."""
    kind = ACCOUNT_ERRORS[code]
    url = kind.resolution_url
    if url is not None:
        url = url.format(client_id=client_id, vehicle_id=vehicle_id or "")
    message = kind.suggested_user_message
    if message is not None:
        message = message.format(url=url or "https://connect.smartcar.com")
    return dataclasses.replace(kind, resolution_url=url, suggested_user_message=message)


class ApiError(Exception):
    """A v2 API error response: its kind and any extra headers (such as `retry-after`)."""

    def __init__(self, kind: ErrorKind, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(kind.label)
        self.kind = kind
        self.headers: dict[str, str] = dict(headers or {})


def rate_limited(kind: ErrorKind, retry_after_s: int) -> ApiError:
    """Return a 429 carrying Smartcar's `retry-after` header (whole seconds)."""
    return ApiError(kind, headers={"retry-after": str(retry_after_s)})


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2): `{"error", "error_description"}`.

    Descriptions never contain the code or token that was presented.
    """

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """Return the JSON body of this error."""
        return {"error": self.error, "error_description": self.description}
