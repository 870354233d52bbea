"""The audit trail: every action on a car (Connect, Lock, Unlock, StartCharge, StopCharge,
SetChargeLimit, Disconnect, StartRental, EndRental, SetRequestAllowance) with its caller,
vehicle, request id, outcome and duration, kept durably.

The gRPC edge records each audited call it admitted when it ends, whatever the outcome,
before the answer leaves (calls refused at admission are counted and logged instead, see
gateway.edge.grpc.refusals). A use case that ends in a transaction of its own (a command's
outcome) writes its call's entry, as succeeded, in that transaction instead (`CallAudit`,
`written_with`): the action and its entry become durable in one commit, and the edge
writes no second entry (an entry tells how the action ended; a caller that cancelled
after the command was sent gets a CANCELLED entry as well, written when it went).
`AuditTrail.find` lists entries newest first with filters.
`AuditRetention` deletes entries older than the retention, in bounded batches (a leased
background job runs it on one replica).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
SUCCEEDED = "OK"
"""The outcome of an entry whose call succeeded (the gRPC status name, as the edge writes)."""


@dataclass(slots=True, kw_only=True)
class CallAudit:
    """The audit entry of the call being served, before its outcome is known. The edge
    opens it (`serving`); a use case may write it with a success outcome inside its last
    transaction (`written_with`), and then the edge does not write it again."""

    caller: str
    method: str
    vehicle_id: str
    request_id: str
    elapsed_ms: Callable[[], float]
    """The call's duration so far, in milliseconds (the edge's own clock)."""
    written: bool = False
    """Its entry is durable (a use case wrote it, and that transaction committed)."""

    def entry(self, *, outcome: str, at: datetime, reason: str | None = None) -> AuditEntry:
        """The entry, stamped `at`, with `outcome` and the duration so far."""
        return AuditEntry(
            at=at,
            caller=self.caller,
            method=self.method,
            vehicle_id=self.vehicle_id,
            request_id=self.request_id,
            outcome=outcome,
            duration_ms=round(self.elapsed_ms(), 3),
            reason=reason,
        )


_serving: ContextVar[CallAudit | None] = ContextVar("audited_call", default=None)


@contextmanager
def serving(call: CallAudit) -> Iterator[CallAudit]:
    """Make `call` the audited call of this task (and of the tasks it starts)."""
    token = _serving.set(call)
    try:
        yield call
    finally:
        _serving.reset(token)


async def written_with(uow: UnitOfWork, *, at: datetime) -> CallAudit | None:
    """Add the entry of the audited call being served, as succeeded, to `uow` (which the
    caller then commits; it marks the entry `written` once the commit succeeded). None when
    no audited call is being served, or its entry is written already. Only the use case
    the call itself runs may write it, in that use case's last transaction (a command's
    outcome): one it merely calls on its way would record the call as succeeded early."""
    call = _serving.get()
    if call is None or call.written:
        return None
    await uow.audit.add(call.entry(outcome=SUCCEEDED, at=at))
    return call


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
        return await self._add(entry)

    async def record_call(
        self, call: CallAudit, *, outcome: str, reason: str | None = None
    ) -> AuditEntry | None:
        """Store the entry of a served call with how it ended, stamped now, unless a use case
        wrote it already (`written_with`); return it with its id (None: written before)."""
        if call.written:
            return None
        added = await self._add(call.entry(outcome=outcome, at=self._clock.now(), reason=reason))
        call.written = True
        return added

    async def _add(self, entry: AuditEntry) -> AuditEntry:
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
