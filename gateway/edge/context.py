"""Per-request context carried in contextvars: the request id for logs, and the deadline.

The gRPC interceptor sets both when a call starts; log records and the Smartcar adapter read
them, so an upstream call never outlives the caller's deadline.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the gRPC call being served (from `x-request-id` metadata, or generated)."""

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)
"""The caller's deadline as a `time.monotonic()` instant, or None when it set none."""


def set_deadline(*, remaining_s: float | None) -> None:
    """Record the caller's deadline, given the time it has left (None: no deadline)."""
    _deadline.set(None if remaining_s is None else time.monotonic() + remaining_s)


def remaining_s() -> float | None:
    """Return the seconds left before the caller's deadline (never negative), or None."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


ANSWER_RESERVE_S = 0.05
ANSWER_RESERVE_SHARE = 0.05


def bounded_timeout_s(configured_s: float) -> float:
    """Return min(configured timeout, time left to the caller's deadline less a reserve).

    The reserve (50 ms plus 5 % of what is left) is the time needed to answer: an upstream
    call cut at exactly the caller's deadline would leave the caller a bare
    DEADLINE_EXCEEDED instead of the precise error (e.g. "the command may have succeeded").
    """
    left = remaining_s()
    if left is None:
        return configured_s
    usable = left - ANSWER_RESERVE_S - ANSWER_RESERVE_SHARE * left
    return max(min(configured_s, usable), 0.001)
