"""API V3 error bodies read into the client's one error tree.

V3 answers ``{"errors": [{status, type, code, title, detail, links: {about}, resolution,
suggestedUserMessage, meta}]}`` (smartcar-v3-notes §4.1); some pages still show v2's
flat ``{type, code, description, docURL, requestId, …}``, and both are read. The class
comes from the first error's type and code (``api_error_class``: ``VEHICLE_STATE`` /
``ASLEEP`` is ``VehicleAsleep`` whichever version sent it); when Smartcar sends several,
every detail goes into the description. ``detail`` (else ``title``) is the description,
``links.about`` the doc URL; the request id is the error's, its ``meta``'s, the body's
``meta``'s or the ``sc-request-id`` header's; ``retry-after`` is read from the headers.

The IAM token endpoint documents its failures only by status and name (``400
invalid_request``, ``401 invalid_client``), not the body's shape: an OAuth body
(``{"error": …}``) is read by name, anything else — a V3 or v2 body, an empty one — by
those two statuses, and other statuses as API errors.

Every text is scrubbed of the secrets that were sent before it goes into an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from clients.smartcar._wire import (
    Headers,
    api_error,
    oauth_error,
    parse_retry_after,
    resolution_of,
)
from clients.smartcar.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    SmartcarAPIError,
    SmartcarError,
    api_error_class,
)
from clients.smartcar.secret import Secret, redact

__all__ = ["error_from_object", "iam_error", "v3_error"]

_DESCRIPTION_KEYS = ("detail", "description", "title")
_IAM_BY_STATUS: Mapping[int, type[OAuthError]] = {400: InvalidRequest, 401: InvalidClient}


def v3_error(
    status: int,
    body: object,
    headers: Headers,
    *,
    now: datetime,
    secrets: Iterable[Secret],
) -> SmartcarError:
    """Turn an error answer (V3 ``errors[]`` or v2 flat) into its SmartcarError."""
    secrets = tuple(secrets)
    items = _readable_items(body)
    if not items:
        return api_error(status, body, headers, now=now, secrets=secrets)
    assert isinstance(body, Mapping)  # _readable_items found items in it
    details = [_text(item, secrets, *_DESCRIPTION_KEYS) for item in items]
    return _error(
        items[0],
        status=status,
        body=body,
        headers=headers,
        now=now,
        secrets=secrets,
        description="; ".join(d for d in details if d) or None,
    )


def error_from_object(
    raw: object,
    *,
    status: int,
    headers: Headers,
    now: datetime,
    secrets: Iterable[Secret],
) -> SmartcarAPIError | None:
    """Read one error object (a signal's or a command's ``status.error``); None when it
    names neither a type nor a code. ``status`` is that of the answer carrying it."""
    if not _is_error_item(raw):
        return None
    assert isinstance(raw, Mapping)
    return _error(raw, status=status, body={}, headers=headers, now=now, secrets=tuple(secrets))


def iam_error(
    status: int,
    body: object,
    headers: Headers,
    *,
    now: datetime,
    secrets: Iterable[Secret],
) -> SmartcarError:
    """Turn an error answer of the IAM token endpoint into its SmartcarError."""
    secrets = tuple(secrets)
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return oauth_error(status, body, headers, now=now, secrets=secrets)
    by_status = _IAM_BY_STATUS.get(status)
    if by_status is None:
        return v3_error(status, body, headers, now=now, secrets=secrets)
    description = _iam_description(body, secrets)
    return by_status(error=by_status.oauth_error or "", description=description, status=status)


def _error(
    item: Mapping[str, object],
    *,
    status: int,
    body: Mapping[str, object],
    headers: Headers,
    now: datetime,
    secrets: tuple[Secret, ...],
    description: str | None = None,
) -> SmartcarAPIError:
    """Build the SmartcarAPIError one V3 (or v2) error object stands for."""
    type_ = _text(item, secrets, "type")
    code = _text(item, secrets, "code")
    links = item.get("links")
    about = _text(links, secrets, "about") if isinstance(links, Mapping) else None
    return api_error_class(type_, code, status)(
        status=status,
        type=type_,
        code=code,
        description=description or _text(item, secrets, *_DESCRIPTION_KEYS),
        doc_url=about or _text(item, secrets, "docURL", "docUrl"),
        request_id=_request_id(item, body, headers, secrets),
        resolution=resolution_of(item.get("resolution"), secrets),
        suggested_user_message=_text(item, secrets, "suggestedUserMessage"),
        retry_after_s=parse_retry_after(headers.get("retry-after"), now=now),
    )


def _readable_items(body: object) -> Sequence[Mapping[str, object]]:
    """Return a body's ``errors`` objects when it has at least one readable error."""
    if not isinstance(body, Mapping):
        return ()
    items = body.get("errors")
    if not isinstance(items, list):
        return ()
    return [item for item in items if _is_error_item(item)]


def _is_error_item(raw: object) -> bool:
    """Tell whether ``raw`` is an error object naming a type or a code."""
    return isinstance(raw, Mapping) and any(
        isinstance(raw.get(key), str) and raw.get(key) for key in ("type", "code")
    )


def _text(raw: Mapping[str, object], secrets: tuple[Secret, ...], *keys: str) -> str | None:
    """Return the first non-empty string among ``keys``, scrubbed; None if there is none."""
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str) and value:
            return redact(value, secrets)
    return None


def _request_id(
    item: Mapping[str, object],
    body: Mapping[str, object],
    headers: Headers,
    secrets: tuple[Secret, ...],
) -> str | None:
    """Return the request id from the error, its meta, the body's meta, or the header."""
    for holder in (item, item.get("meta"), body.get("meta")):
        if isinstance(holder, Mapping):
            found = _text(holder, secrets, "requestId", "request_id")
            if found:
                return found
    header = headers.get("sc-request-id")
    return redact(header, secrets) if header else None


def _iam_description(body: object, secrets: tuple[Secret, ...]) -> str | None:
    """Return what an IAM error body says, whatever its shape."""
    if not isinstance(body, Mapping):
        return None
    items = _readable_items(body)
    holder = items[0] if items else body
    return _text(holder, secrets, "error_description", "detail", "description", "title", "code")
