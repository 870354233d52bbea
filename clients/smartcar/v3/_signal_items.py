"""One signal item (a JSON:API resource, or a webhook's ``data.signals`` entry) → Signal.

Code, name, group, status and body sit in ``attributes`` in REST answers and at the top
of webhook items; ``meta`` sits beside them. The code is ``attributes.code``, else the
resource id (live answers make the id the code). ``status`` is ``{"value": …, "error":
{…}}`` (a bare string is read too); a signal without one counts as SUCCESS when it has a
body, UNAVAILABLE otherwise. Smartcar's error inside ``status`` becomes the client's typed
error, scrubbed of the token that fetched it. Times come from ``meta`` as ms, s or
ISO-8601; ``fetchedAt`` (named once in the webhook docs, never seen) stands in for a
missing ``retrievedAt``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from clients.smartcar._wire import Headers
from clients.smartcar.errors import SmartcarProtocolError
from clients.smartcar.secret import Secret
from clients.smartcar.v3._errors import error_from_object
from clients.smartcar.v3._time import instant
from clients.smartcar.v3.signals import Signal, SignalStatus

__all__ = ["signal_item", "signal_items"]

_log = logging.getLogger(__name__)


def signal_item(
    raw: object,
    *,
    http_status: int,
    headers: Headers,
    now: datetime,
    secrets: tuple[Secret, ...],
) -> Signal | None:
    """Return the Signal ``raw`` describes, or None when it is no object or names no code."""
    if not isinstance(raw, Mapping):
        return None
    fields = raw.get("attributes")
    fields = fields if isinstance(fields, Mapping) else raw
    code = _string(fields.get("code")) or _string(raw.get("id"))
    if code is None:
        return None
    body = fields.get("body")
    body = MappingProxyType(dict(body)) if isinstance(body, Mapping) else MappingProxyType({})
    status, error_raw = _status(fields.get("status"), has_body=bool(body))
    meta = _meta(raw, fields)
    return Signal(
        code=code,
        status=status,
        body=body,
        name=_string(fields.get("name")),
        group=_string(fields.get("group")),
        error=error_from_object(
            error_raw, status=http_status, headers=headers, now=now, secrets=secrets
        ),
        oem_updated_at=instant(meta.get("oemUpdatedAt")),
        retrieved_at=instant(meta.get("retrievedAt")) or instant(meta.get("fetchedAt")),
        ingested_at=instant(meta.get("ingestedAt")),
    )


def _status(raw: object, *, has_body: bool) -> tuple[SignalStatus, object]:
    """Return the status a ``status`` value names, and its error object if any."""
    error: object = None
    if isinstance(raw, Mapping):
        error = raw.get("error")
        raw = raw.get("value")
    if raw is None:
        return (SignalStatus.SUCCESS if has_body else SignalStatus.UNAVAILABLE), error
    value = raw.strip().upper() if isinstance(raw, str) else ""
    try:
        return SignalStatus(value), error
    except ValueError:
        return SignalStatus.UNAVAILABLE, error


def _meta(raw: Mapping[str, object], fields: Mapping[str, object]) -> Mapping[str, object]:
    """Return the item's ``meta`` (beside ``attributes``, or inside them)."""
    for holder in (raw, fields):
        meta = holder.get("meta")
        if isinstance(meta, Mapping):
            return meta
    return {}


def _string(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def signal_items(
    raw_items: object,
    *,
    what: str,
    http_status: int,
    headers: Headers,
    now: datetime,
    secrets: tuple[Secret, ...],
) -> tuple[Signal, ...]:
    """Return the signals of a list of items; items without a code are left out (and
    counted in a warning: such an item cannot belong to any field)."""
    if not isinstance(raw_items, list):
        raise SmartcarProtocolError(f"{what}: expected a list of signals")
    signals = []
    for raw in raw_items:
        signal = signal_item(
            raw, http_status=http_status, headers=headers, now=now, secrets=secrets
        )
        if signal is not None:
            signals.append(signal)
    if len(signals) < len(raw_items):
        _log.warning(
            "%s: %d signal item(s) without a code were left out",
            what,
            len(raw_items) - len(signals),
        )
    return tuple(signals)
