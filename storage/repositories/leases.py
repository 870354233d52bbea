"""Named leases in the `scheduler_leases` table: one replica at a time runs a background job.

Taking a lease is one statement, INSERT … ON CONFLICT DO UPDATE … WHERE: it inserts a free
lease, or takes over one that expired or renews one its holder already has, and returns
the row only when it did. Two replicas racing for the same lease cannot both win: SQLite
serialises the writers, and PostgreSQL re-checks the condition on the row the winner wrote.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.repositories._dialects import conflict_insert
from storage.schema import scheduler_leases

_leases = scheduler_leases.c


class SqlLeaseRepository:
    """Leases by name, each with its holder and expiry."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def acquire(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew the lease until `until` if it is free, expired at `now`, or already
        `holder`'s; tell whether `holder` has it now."""
        statement = conflict_insert(self._connection, scheduler_leases).values(
            name=name, holder=holder, expires_at=until
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_leases.name],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=or_(_leases.holder == statement.excluded.holder, _leases.expires_at <= now),
        )
        result = await self._connection.execute(statement.returning(_leases.name))
        return result.one_or_none() is not None

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` has it (someone else's lease is left alone)."""
        await self._connection.execute(
            delete(scheduler_leases).where(_leases.name == name, _leases.holder == holder)
        )
