"""Tracing hooks: the spans and span events the core records for operators.

The core names what happens (a cache miss, a wait for another caller's fetch, a token
grant) and never which tracing system hears it: the composition root hands in an
OpenTelemetry implementation (`gateway.edge.tracing`) when tracing is on, and every
service defaults to `NO_TRACING`, which records nothing and allocates nothing.

    with tracing.span(TELEMETRY_FETCH, {"vg.vehicle_id": vehicle_id}) as span:
        ...
        span.set("vg.telemetry.outcome", "fetched")

On a hot path, build the attributes only when `tracing.enabled`: with tracing off that
is one attribute read per call.

What may go in an attribute or event: names, ids the fleet chose (vehicle ids, rental
ids), counts, outcomes, field *names*. Never a token, secret, authorization header, code,
or a reading's value (a location above all); `tests/rpc/test_tracing.py` runs real flows
and scans every exported span for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]

TELEMETRY_CACHE_HIT = "telemetry.cache_hit"
"""Event on the call's span: a read answered from the readings held (no lock, no Smartcar)."""
TELEMETRY_CACHE_MISS = "telemetry.cache_miss"
"""Span: a read some wanted field of which was too old; it looks again under the vehicle's
lock and asks Smartcar for what is still stale. Attribute `vg.telemetry.outcome`."""
TELEMETRY_COALESCED_WAIT = "telemetry.coalesced_wait"
"""Span: a read waiting for another caller's (or replica's) fetch of the same vehicle."""
TELEMETRY_COALESCED = "telemetry.coalesced"
"""Event on the miss's span: after its wait, the read found another caller's fetch fresh
enough and answered from it (nothing asked of Smartcar)."""
TOKEN_REFRESH = "smartcar.token_refresh"  # noqa: S105 - a span name, no secret
"""Span: a v2 owner token pair refreshed at Smartcar (claimed, refreshed, stored)."""
TOKEN_REFRESH_WAIT = "smartcar.token_refresh_wait"  # noqa: S105 - a span name
"""Span: waiting for another replica's refresh of the same pair."""
APPLICATION_TOKEN_GRANT = "smartcar.application_token_grant"  # noqa: S105 - a span name
"""Span: the API V3 application token granted (client credentials) and stored."""
UPSTREAM_RETRY = "smartcar.retry"
"""Event: Smartcar refused a token with 401; the call is sent once more with another."""
UNIT_OF_WORK = "storage.unit_of_work"
"""Span: one database unit of work (a transaction or several, one connection)."""


class Span(Protocol):
    """A span being recorded: what is learnt while it runs is added to it."""

    def set(self, key: str, value: AttributeValue) -> None:
        """Set one attribute."""

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add an event, now."""


class Tracing(Protocol):
    """Where the core's spans go; every method must be cheap and never raise."""

    @property
    def enabled(self) -> bool:
        """Tell whether anything is recorded (false: skip building attributes)."""

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
        """Start a span, child of the current one, current within the block. It ends with
        the block; an exception leaving it marks it failed with the exception's type only
        (never its message, which may quote what it failed on)."""

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add an event to the current span (nothing when there is none)."""


class _NoSpan:
    """A span that records nothing, its own context manager: one object for every use."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def set(self, key: str, value: AttributeValue) -> None:
        """Record nothing."""

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Record nothing."""


_NO_SPAN = _NoSpan()


class NoTracing:
    """Tracing off: nothing is recorded, and no object is made per span."""

    __slots__ = ()

    @property
    def enabled(self) -> bool:
        """Never."""
        return False

    def span(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        """Return the one span that records nothing."""
        return _NO_SPAN

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Record nothing."""


NO_TRACING: Tracing = NoTracing()
