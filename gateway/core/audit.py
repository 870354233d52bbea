"""The audit trail: every action on a car (Connect, Lock, Unlock, Disconnect, StartRental,
EndRental) with its caller, vehicle, request id, outcome and duration, kept durably.

The gRPC edge records each audited call when it ends, whatever the outcome, before the
answer leaves; `AuditTrail.find` lists entries newest first with filters.
"""

from __future__ import annotations

import dataclasses

from gateway.core.model import AuditEntry, AuditQuery
from gateway.core.ports import Clock, UnitOfWorkFactory

AUDITED_METHODS = frozenset({"Connect", "Lock", "Unlock", "Disconnect", "StartRental", "EndRental"})
"""The RPCs that act on a car (by short name)."""

MAX_PAGE = 1000


class AuditTrail:
    """Appends entries and lists them."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def record(
        self,
        *,
        caller: str,
        method: str,
        vehicle_id: str,
        request_id: str,
        outcome: str,
        duration_ms: float,
        reason: str | None = None,
    ) -> AuditEntry:
        """Store one entry, stamped now, durably; return it with its id."""
        entry = AuditEntry(
            at=self._clock.now(),
            caller=caller,
            method=method,
            vehicle_id=vehicle_id,
            request_id=request_id,
            outcome=outcome,
            duration_ms=duration_ms,
            reason=reason,
        )
        async with self._uow() as uow:
            added = await uow.audit.add(entry)
            await uow.commit()
        return added

    async def find(self, query: AuditQuery) -> list[AuditEntry]:
        """Return the entries matching `query` (at most `MAX_PAGE`), newest first."""
        if query.limit > MAX_PAGE:
            query = dataclasses.replace(query, limit=MAX_PAGE)
        async with self._uow.reader() as uow:
            return await uow.audit.find(query)
