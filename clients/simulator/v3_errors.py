"""Smartcar API V3 error bodies, and the exception that carries one.

V3 answers errors JSON:API-style (errors/api-errors/v3/*):

    {"errors": [{"status": "401", "type": "AUTHENTICATION", "code": "UNAUTHORIZED",
                 "title": "Unauthorized", "detail": "…",
                 "links": {"about": "…"}?, "resolution": {"type": …}?,
                 "suggestedUserMessage": "…"?}]}

`status` is a string. `links.about` and `resolution` are absent where Smartcar's example
has neither (ACCESS_DENIED). The simulator sends one error per body.

Errors shared with v2 (rate limits, billing, vehicle state, compatibility, upstream,
server; raised as `errors.ApiError` by the checks both versions run) keep their type, code,
status and texts and are rendered in this shape by `from_v2`; the v2 kinds whose V3 code
differs map to the V3 kind (AUTHENTICATION → UNAUTHORIZED, VALIDATION → BAD_REQUEST or
INVALID_INPUT_FORMAT, RESOURCE_NOT_FOUND → PATH).

Choices where Smartcar's pages are silent (UNCERTAIN in the reference notes):

- a missing `sc-user-id` is 400 VALIDATION:MISSING_PARAMETER, detail "missing userId", as
  live users report;
- a vehicle the named user (or a v2 token) has no connection to is 403
  AUTHENTICATION:ACCESS_DENIED, whether or not the vehicle exists;
- an unknown signal code, command, connection, user, webhook or subscription is 404
  RESOURCE_NOT_FOUND:PATH (the v2 table's code; live users saw "INVALID_PATH");
- subscribing a vehicle twice is 409 (Smartcar documents the status only): type
  `CONFLICT`, code `ALREADY_SUBSCRIBED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clients.simulator import error_bodies as v2
from clients.simulator.error_bodies import ErrorKind

_V3_DOCS = "https://smartcar.com/docs/errors/api-errors/v3/"


@dataclass(frozen=True, kw_only=True)
class Resolution:
    """An error's `resolution`: what the client should do (`type` may be null), and where
    the user does it (`url`, sent only when there is one)."""

    type: str | None
    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class V3ErrorKind:
    """One V3 error: its status, type, code and texts."""

    status: int
    type: str
    code: str | None
    title: str
    detail: str
    about: str | None = None
    resolution: Resolution | None = None
    suggested_user_message: str | None = None

    @property
    def label(self) -> str:
        """Return `TYPE:CODE` (or just `TYPE`), as stats count errors."""
        return self.type if self.code is None else f"{self.type}:{self.code}"

    def item(self, *, detail: str | None = None) -> dict[str, Any]:
        """Return one entry of `errors[]` (also the `status.error` of a failed signal)."""
        item: dict[str, Any] = {
            "status": str(self.status),
            "type": self.type,
            "code": self.code,
            "title": self.title,
            "detail": detail or self.detail,
        }
        if self.about is not None:
            item["links"] = {"about": self.about}
        if self.resolution is not None:
            item["resolution"] = {"type": self.resolution.type}
            if self.resolution.url is not None:
                item["resolution"]["url"] = self.resolution.url
        if self.suggested_user_message is not None:
            item["suggestedUserMessage"] = self.suggested_user_message
        return item

    def body(self, *, detail: str | None = None) -> dict[str, Any]:
        """Return the error body of one response."""
        return {"errors": [self.item(detail=detail)]}


class V3Error(Exception):
    """A V3 error response: its kind, a detail replacing the kind's, and extra headers."""

    def __init__(
        self,
        kind: V3ErrorKind,
        *,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(kind.label)
        self.kind = kind
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})


def _validation(code: str, detail: str) -> V3ErrorKind:
    """Return a 400 VALIDATION kind."""
    return V3ErrorKind(
        status=400,
        type="VALIDATION",
        code=code,
        title="Bad Request",
        detail=detail,
        about=_V3_DOCS + "validation-errors",
    )


UNAUTHORIZED = V3ErrorKind(
    status=401,
    type="AUTHENTICATION",
    code="UNAUTHORIZED",
    title="Unauthorized",
    detail="The Authorization token is missing or invalid.",
    about=_V3_DOCS + "authentication-errors",
)
ACCESS_DENIED = V3ErrorKind(
    status=403,
    type="AUTHENTICATION",
    code="ACCESS_DENIED",
    title="Access Denied",
    detail="The given token does not provide access to the requested resource.",
)
MISSING_PARAMETER = _validation("MISSING_PARAMETER", "missing userId")
INVALID_INPUT_FORMAT = _validation(
    "INVALID_INPUT_FORMAT", "One or more of the provided parameters is invalid."
)
BAD_REQUEST = _validation(
    "BAD_REQUEST", "The request could not be understood by the server due to malformed syntax."
)
NOT_FOUND = V3ErrorKind(
    status=404,
    type="RESOURCE_NOT_FOUND",
    code="PATH",
    title="Not Found",
    detail="The requested resource does not exist.",
    about="https://smartcar.com/docs/api-reference/api-errors#resource-errors-path",
)
ALREADY_SUBSCRIBED = V3ErrorKind(
    status=409,
    type="CONFLICT",
    code="ALREADY_SUBSCRIBED",
    title="Conflict",
    detail="The vehicle is already subscribed to this webhook.",
)


_SAME_MEANING: dict[ErrorKind, V3ErrorKind] = {
    v2.AUTHENTICATION: UNAUTHORIZED,
    v2.VALIDATION: BAD_REQUEST,
    v2.VALIDATION_PARAMETER: INVALID_INPUT_FORMAT,
    v2.RESOURCE_NOT_FOUND_PATH: NOT_FOUND,
    v2.RESOURCE_NOT_FOUND_VERSION: NOT_FOUND,
}
_TITLES = {
    "PERMISSION": "Permission Denied",
    "RATE_LIMIT:VEHICLE": "Vehicle Rate Limit",
    "RATE_LIMIT:SMARTCAR_API": "Smartcar API Rate Limit",
    "SERVER:INTERNAL": "Internal Server Error",
    "CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED": "Authentication Failed",
    "CONNECTED_SERVICES_ACCOUNT:VIRTUAL_KEY_REQUIRED": "Virtual Key Required",
}


def from_v2(kind: ErrorKind) -> V3ErrorKind:
    """Return the V3 form of an error both API versions answer."""
    known = _SAME_MEANING.get(kind)
    if known is not None:
        return known
    return V3ErrorKind(
        status=kind.status,
        type=kind.type,
        code=kind.code,
        title=_TITLES.get(kind.label) or (kind.code or kind.type).replace("_", " ").title(),
        detail=kind.description,
        about=kind.doc_url,
        resolution=Resolution(type=kind.resolution, url=kind.resolution_url),
        suggested_user_message=kind.suggested_user_message,
    )
