"""Batch: the request body, and each path's answer read on its own.

One bad item never spoils the others: an error answer becomes that item's typed error
(with its own ``retry-after``, read case-insensitively), a malformed body that item's
SmartcarProtocolError. Only a malformed envelope fails the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from clients.smartcar._decode import BY_VEHICLE_PATH
from clients.smartcar._wire import api_error, lower_headers, meta_from_headers
from clients.smartcar.errors import SmartcarError, SmartcarProtocolError
from clients.smartcar.models import BatchItem, BatchResult, Meta
from clients.smartcar.secret import Secret, redact
from clients.smartcar.units import UnitSystem

BATCH_PATHS: frozenset[str] = frozenset(BY_VEHICLE_PATH)
"""The vehicle paths a batch may ask for (those this client can decode)."""


def request_body(paths: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """Return the batch request body; ValueError for no, unknown or repeated paths."""
    if isinstance(paths, str):
        raise ValueError("paths must be a collection of paths, not one string")
    chosen = list(paths)
    if not chosen:
        raise ValueError("paths must name at least one path")
    unknown = sorted({p for p in chosen if p not in BATCH_PATHS})
    if unknown:
        raise ValueError(f"paths: unsupported {unknown}; choose from {sorted(BATCH_PATHS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError("paths must not repeat a path")
    return {"requests": [{"path": path} for path in chosen]}


def read_batch(
    body: object,
    headers: Mapping[str, str],
    *,
    requested: UnitSystem,
    now: datetime,
    secrets: tuple[Secret, ...],
) -> BatchResult:
    """Read a batch answer into one BatchItem per path, in Smartcar's order."""
    top = meta_from_headers(headers, default_unit_system=requested)
    responses = body.get("responses") if isinstance(body, Mapping) else None
    if not isinstance(responses, list):
        raise SmartcarProtocolError("batch: 'responses' must be a list")
    items = tuple(_item(raw, top=top, now=now, secrets=secrets) for raw in responses)
    return BatchResult(items=items, meta=top)


def _item(raw: object, *, top: Meta, now: datetime, secrets: tuple[Secret, ...]) -> BatchItem:
    """Read one batch item: its path, its status, and a value or an error."""
    if not isinstance(raw, Mapping):
        raise SmartcarProtocolError("batch: each response must be a JSON object")
    path, code = raw.get("path"), raw.get("code")
    if not isinstance(path, str) or isinstance(code, bool) or not isinstance(code, int):
        raise SmartcarProtocolError("batch: each response needs a string 'path' and integer 'code'")
    path = redact(path, secrets)
    headers = lower_headers(raw.get("headers"))
    meta = meta_from_headers(
        headers, default_unit_system=top.unit_system, default_request_id=top.request_id
    )
    if 200 <= code < 300:
        value, error = _decoded(path, raw.get("body"), meta)
    else:
        if meta.request_id is not None:
            headers.setdefault("sc-request-id", meta.request_id)
        value, error = None, api_error(code, raw.get("body"), headers, now=now, secrets=secrets)
    return BatchItem(path=path, status=code, value=value, error=error, meta=meta)


def _decoded(path: str, body: object, meta: Meta) -> tuple[object | None, SmartcarError | None]:
    """Decode a successful item's body, or return the protocol error that prevents it."""
    decode = BY_VEHICLE_PATH.get(path)
    if decode is None:
        return None, SmartcarProtocolError("batch: an item answers a path that was not asked")
    try:
        return decode(body, meta.unit_system), None
    except SmartcarProtocolError as exc:
        return None, exc
