"""Smartcar's wire conventions read into our values: headers, meta, error bodies.

Pure functions over already-decoded JSON and header mappings, shared by whole
responses and by the items of a batch (whose headers are a plain JSON object).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from clients.smartcar.errors import (
    Resolution,
    SmartcarError,
    SmartcarProtocolError,
    api_error_class,
    oauth_error_class,
)
from clients.smartcar.models import Meta
from clients.smartcar.secret import Secret, redact
from clients.smartcar.units import UnitSystem

Headers = Mapping[str, str]
"""Response headers with lower-case names."""


def lower_headers(raw: object) -> dict[str, str]:
    """Return headers keyed by lower-case name; tolerate absent or non-string batch headers."""
    if not isinstance(raw, Mapping):
        return {}
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(name, str) and isinstance(value, str | int | float):
            headers[name.lower()] = str(value)
    return headers


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse an ISO-8601 header value into an aware UTC datetime; None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Read ``retry-after`` (seconds or an HTTP date) as seconds from ``now``; None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def meta_from_headers(
    headers: Headers,
    *,
    default_unit_system: UnitSystem,
    default_request_id: str | None = None,
) -> Meta:
    """Build Meta from ``sc-*`` headers, falling back on the given defaults."""
    return Meta(
        data_age=parse_timestamp(headers.get("sc-data-age")),
        fetched_at=parse_timestamp(headers.get("sc-fetched-at")),
        request_id=headers.get("sc-request-id") or default_request_id,
        unit_system=UnitSystem.parse(headers.get("sc-unit-system")) or default_unit_system,
    )


def api_error(
    status: int,
    body: object,
    headers: Headers,
    *,
    now: datetime,
    secrets: Iterable[Secret],
) -> SmartcarError:
    """Turn a v2 error body into its SmartcarAPIError, scrubbing ``secrets`` from every text."""
    secrets = tuple(secrets)
    if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
        return _unreadable_error(status, body)

    def text(key: str) -> str | None:
        value = body.get(key)
        return redact(value, secrets) if isinstance(value, str) else None

    type_, code = text("type"), text("code")
    cls = api_error_class(type_, code, status)
    return cls(
        status=status,
        type=type_,
        code=code,
        description=text("description"),
        doc_url=text("docURL"),
        request_id=text("requestId") or headers.get("sc-request-id"),
        resolution=resolution_of(body.get("resolution"), secrets),
        suggested_user_message=text("suggestedUserMessage"),
        retry_after_s=parse_retry_after(headers.get("retry-after"), now=now),
    )


def oauth_error(
    status: int,
    body: object,
    headers: Headers,
    *,
    now: datetime,
    secrets: Iterable[Secret],
) -> SmartcarError:
    """Turn a token-endpoint error body into its OAuthError (or API error), scrubbed."""
    secrets = tuple(secrets)
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), str):
        return api_error(status, body, headers, now=now, secrets=secrets)
    error = redact(body["error"], secrets)
    description = body.get("error_description")
    return oauth_error_class(error)(
        error=error,
        description=redact(description, secrets) if isinstance(description, str) else None,
        status=status,
    )


def resolution_of(raw: object, secrets: tuple[Secret, ...]) -> Resolution:
    """Read ``resolution`` as Smartcar sends it: an object, a bare string, or null."""
    if isinstance(raw, str):
        return Resolution(type=redact(raw, secrets))
    if isinstance(raw, Mapping):
        type_, url = raw.get("type"), raw.get("url")
        return Resolution(
            type=redact(type_, secrets) if isinstance(type_, str) else None,
            url=redact(url, secrets) if isinstance(url, str) else None,
        )
    return Resolution()


def _unreadable_error(status: int, body: object) -> SmartcarProtocolError:
    """Describe an error answer that is not a Smartcar error body, without echoing it."""
    shape = type(body).__name__ if not isinstance(body, Mapping) else "object without 'type'"
    return SmartcarProtocolError(
        f"HTTP {status} answer is not a Smartcar error body (got JSON {shape})",
        status=status,
    )
