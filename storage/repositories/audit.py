"""The audit trail of actions on cars, in the `audit_log` table (append-only; entries past
the retention are pruned oldest first)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import AuditEntry, AuditQuery
from storage.repositories._direct import Columns, Direct
from storage.schema import audit_log

_audit = audit_log.c
_ADD = Direct(insert(audit_log).returning(audit_log))
"""Built once, run with the entry's columns as parameters."""
_COLUMNS = tuple(column.name for column in audit_log.columns if column.name != "id")
"""The columns an entry is written to, each named as the entry's field."""


class SqlAuditRepository:
    """Audit entries, appended and listed newest first with optional filters."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry (any id it carries is ignored); return it with its id."""
        values = {name: getattr(entry, name) for name in _COLUMNS}
        added = (await _ADD.run(self._connection, values)).one_or_none()
        assert added is not None  # an INSERT … RETURNING returns its row
        return _to_entry(added)

    async def find(self, query: AuditQuery) -> list[AuditEntry]:
        """Return the entries matching `query`, newest first."""
        statement = select(audit_log).order_by(_audit.id.desc()).limit(max(query.limit, 0))
        if query.vehicle_id is not None:
            statement = statement.where(_audit.vehicle_id == query.vehicle_id)
        if query.caller is not None:
            statement = statement.where(_audit.caller == query.caller)
        if query.method is not None:
            statement = statement.where(_audit.method == query.method)
        if query.since is not None:
            statement = statement.where(_audit.at >= query.since)
        if query.before_id is not None:
            statement = statement.where(_audit.id < query.before_id)
        return [_to_entry(row._mapping) for row in await self._connection.execute(statement)]

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete, among the `limit` oldest entries (by id), those recorded before `before`;
        return how many (a walk of the primary key: no index on the time is needed)."""
        oldest = select(_audit.id).order_by(_audit.id).limit(max(limit, 0)).scalar_subquery()
        statement = delete(audit_log).where(_audit.id.in_(oldest), _audit.at < before)
        result = await self._connection.execute(statement)
        return int(result.rowcount or 0)


def _to_entry(columns: Columns) -> AuditEntry:
    """Return the entry a row's columns hold."""
    return AuditEntry(
        id=columns["id"],
        at=columns["at"],
        caller=columns["caller"],
        method=columns["method"],
        vehicle_id=columns["vehicle_id"],
        request_id=columns["request_id"],
        outcome=columns["outcome"],
        duration_ms=columns["duration_ms"],
        reason=columns["reason"],
    )
