"""The audit trail: every action on a car (Connect, Lock, Unlock, StartCharge, StopCharge,
SetChargeLimit, Disconnect, StartRental, EndRental, SetRequestAllowance) with its caller,
vehicle, request id, outcome and duration, kept durably.

The gRPC edge records each audited call it admitted when it ends, whatever the outcome,
before the answer leaves (calls refused at admission are counted and logged instead, see
gateway.edge.grpc.refusals); `AuditTrail.find` lists entries newest first with filters.
`AuditRetention` deletes entries older than the retention, in bounded batches (a leased
background job runs it on one replica).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.model import AuditEntry, AuditQuery
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.retention import Retention

AUDITED_METHODS = frozenset(
    {
        "Connect",
        "Lock",
        "Unlock",
        "StartCharge",
        "StopCharge",
        "SetChargeLimit",
        "Disconnect",
        "StartRental",
        "EndRental",
        "SetRequestAllowance",
    }
)
"""The RPCs that act on a car or change how it is served (by short name)."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRetentionPolicy:
    """How long audit entries are kept (None: forever), and how much one pass deletes:
    `batch_size` entries per transaction, at most `max_batches` transactions."""

    retention: timedelta | None = timedelta(days=400)
    batch_size: int = 1000
    max_batches: int = 100


class AuditRetention(Retention):
    """Deletes audit entries recorded longer ago than the retention."""

    what = "audit entries"
    event = "audit_pruned"

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: AuditRetentionPolicy = AuditRetentionPolicy(),
    ) -> None:
        super().__init__(uow=uow, clock=clock, policy=policy)

    async def _prune(self, uow: UnitOfWork, *, before: datetime, limit: int) -> int:
        return await uow.audit.prune(before=before, limit=limit)
