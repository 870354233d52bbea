"""Which database failures are transient: the database briefly unavailable, not a bug.

A lost or refused connection, SQLite busy past its timeout, a pool that had no connection
in time, and on PostgreSQL a deadlock or serialization failure it broke, a lock not
available, or the server shutting down or starting up: each is worth a retry and is no
caller's fault. Anything else (a constraint the code should have kept, bad SQL) is not.
The composition root hands `is_transient` to the gRPC edge, which answers those failures
with UNAVAILABLE and a retry delay instead of INTERNAL, without itself knowing SQLAlchemy.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P03"})
"""PostgreSQL: serialization failure, deadlock detected, lock not available, the server
shutting down or starting up: worth a retry, never a bug of the caller."""


def is_transient(exc: BaseException) -> bool:
    """Tell whether a failure is the database being briefly unavailable (connection lost
    or refused, SQLite busy past its timeout, PostgreSQL deadlock or serialization)."""
    if isinstance(exc, OperationalError | InterfaceError | SATimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        return state in TRANSIENT_SQLSTATES
    return False
