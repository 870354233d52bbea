"""The SQL unit of work: one database transaction over all thirteen repositories.

A unit of work checks out one connection when entered; its first statement begins the
transaction (on SQLite with BEGIN IMMEDIATE, see storage.database), `commit()` makes its
writes durable, and leaving without committing rolls back. After a commit the unit of work
can go on; its next statement begins a new transaction.

Hold a unit of work only around database work, never across a Smartcar call, and never
open one inside another: on SQLite the inner one would wait for the outer one's lock.

A factory may be given an observer of vehicle events (`on_event`, the metric of events
written): it hears the kind of every event a unit of work added once that unit's commit
succeeded, never one rolled back. An observer of status transitions (`on_transition`)
hears, once per such commit, that a unit of work committed some (the watchers' wakeup).

A factory may be given tracing (`traced`, when tracing is on): each unit of work is then
one span (`storage.unit_of_work`) from its entry to its exit, with its kind (`reader` or
`writer`), the database system and how many commits it made; never one per statement,
and never a parameter or a statement's text.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.core.ports import (
    ApplicationTokenRepository,
    AuditRepository,
    BudgetRepository,
    CommandRepository,
    GrantRepository,
    LeaseRepository,
    OAuthStateRepository,
    RentalRepository,
    TelemetryRepository,
    TransitionRepository,
    VehicleEventRepository,
    VehicleRepository,
    WebhookEventRepository,
)
from gateway.core.tracing import UNIT_OF_WORK, Span, Tracing
from gateway.core.vehicle_events import VehicleEventKind
from storage.crypto import TokenCipher
from storage.database import READ_ONLY_OPTION
from storage.repositories import (
    SqlApplicationTokenRepository,
    SqlAuditRepository,
    SqlBudgetRepository,
    SqlCommandRepository,
    SqlGrantRepository,
    SqlLeaseRepository,
    SqlOAuthStateRepository,
    SqlRentalRepository,
    SqlTelemetryRepository,
    SqlTransitionRepository,
    SqlVehicleEventRepository,
    SqlVehicleRepository,
    SqlWebhookEventRepository,
)

EventObserver = Callable[[VehicleEventKind], None]
"""Hears the kind of each vehicle event committed (it must be cheap and never raise)."""

TransitionObserver = Callable[[], None]
"""Hears that a commit stored status transitions (it must be cheap and never raise)."""


class SqlUnitOfWork:
    """One transaction on `engine`; tokens are encrypted with `cipher`. Use once."""

    vehicles: VehicleRepository
    grants: GrantRepository
    application_tokens: ApplicationTokenRepository
    telemetry: TelemetryRepository
    rentals: RentalRepository
    commands: CommandRepository
    states: OAuthStateRepository
    transitions: TransitionRepository
    budget: BudgetRepository
    leases: LeaseRepository
    webhook_events: WebhookEventRepository
    audit: AuditRepository
    events: VehicleEventRepository

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: TokenCipher,
        *,
        read_only: bool = False,
        on_event: EventObserver | None = None,
        on_transition: TransitionObserver | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._read_only = read_only
        self._on_event = on_event
        self._on_transition = on_transition
        self._tracing = tracing
        self._traced: tuple[AbstractContextManager[Span], Span] | None = None
        self._commits = 0
        self._connection: AsyncConnection | None = None
        self._entered = False
        self._events: SqlVehicleEventRepository | None = None
        self._transitions: SqlTransitionRepository | None = None

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a unit of work is entered once; make a new one")
        self._entered = True
        if self._tracing is not None:
            self._begin_span(self._tracing)
        try:
            connection = await self._engine.connect()
            if self._read_only:
                await connection.execution_options(**{READ_ONLY_OPTION: True})
        except BaseException as failure:
            self._end_span(type(failure), failure, failure.__traceback__)
            raise
        self._connection = connection
        self.vehicles = SqlVehicleRepository(connection)
        self.grants = SqlGrantRepository(connection, self._cipher)
        self.application_tokens = SqlApplicationTokenRepository(connection, self._cipher)
        self.telemetry = SqlTelemetryRepository(connection)
        self.rentals = SqlRentalRepository(connection)
        self.commands = SqlCommandRepository(connection)
        self.states = SqlOAuthStateRepository(connection)
        self.transitions = self._transitions = SqlTransitionRepository(connection)
        self.budget = SqlBudgetRepository(connection)
        self.leases = SqlLeaseRepository(connection)
        self.webhook_events = SqlWebhookEventRepository(connection)
        self.audit = SqlAuditRepository(connection)
        self.events = self._events = SqlVehicleEventRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._require_connection()
        self._connection = None
        try:
            # Closing rolls back what was not committed and returns the connection to
            # the pool, in one step (an explicit rollback first cost a second one).
            await connection.close()
        finally:
            self._end_span(exc_type, exc, tb)

    def _begin_span(self, tracing: Tracing) -> None:
        """Start this unit's span (current until `_end_span`)."""
        attributes = {
            "vg.uow.kind": "reader" if self._read_only else "writer",
            "db.system.name": self._engine.dialect.name,
        }
        manager = tracing.span(UNIT_OF_WORK, attributes)
        self._traced = (manager, manager.__enter__())

    def _end_span(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End this unit's span (when traced), with how many commits it made."""
        if self._traced is None:
            return
        manager, span = self._traced
        self._traced = None
        span.set("vg.uow.commits", self._commits)
        manager.__exit__(exc_type, exc, tb)

    async def commit(self) -> None:
        """Make the unit's writes durable (a reader has none: it refuses)."""
        if self._read_only:
            raise RuntimeError("a reader unit of work cannot commit: open a writing one")
        await self._require_connection().commit()
        self._commits += 1
        if self._events is not None and self._events.written:
            written, self._events.written = self._events.written, []
            if self._on_event is not None:
                for kind in written:
                    self._on_event(kind)
        if self._transitions is not None and self._transitions.written:
            self._transitions.written = 0
            if self._on_transition is not None:
                self._on_transition()

    def _require_connection(self) -> AsyncConnection:
        """Return the open connection, or fail when the unit of work is not entered."""
        if self._connection is None:
            raise RuntimeError("the unit of work is not open: use it in `async with`")
        return self._connection


class SqlUnitOfWorkFactory:
    """Units of work on one engine (a `gateway.core.ports.UnitOfWorkFactory`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: TokenCipher,
        *,
        on_event: EventObserver | None = None,
        on_transition: TransitionObserver | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._on_event = on_event
        self._on_transition = on_transition
        self._tracing = tracing

    def __call__(self) -> SqlUnitOfWork:
        """Return a fresh unit of work that may write."""
        return SqlUnitOfWork(
            self._engine,
            self._cipher,
            on_event=self._on_event,
            on_transition=self._on_transition,
            tracing=self._tracing,
        )

    def observed(
        self, on_event: EventObserver, *, on_transition: TransitionObserver | None = None
    ) -> SqlUnitOfWorkFactory:
        """Return units of work on the same engine whose committed vehicle events
        `on_event` hears, and whose commits of status transitions `on_transition` hears."""
        return SqlUnitOfWorkFactory(
            self._engine,
            self._cipher,
            on_event=on_event,
            on_transition=on_transition,
            tracing=self._tracing,
        )

    def traced(self, tracing: Tracing) -> SqlUnitOfWorkFactory:
        """Return units of work on the same engine, with the same observers, each of
        which is one span of `tracing`."""
        return SqlUnitOfWorkFactory(
            self._engine,
            self._cipher,
            on_event=self._on_event,
            on_transition=self._on_transition,
            tracing=tracing,
        )

    def reader(self) -> SqlUnitOfWork:
        """Return a fresh unit of work that only reads."""
        return SqlUnitOfWork(self._engine, self._cipher, read_only=True, tracing=self._tracing)


def unit_of_work_factory(engine: AsyncEngine, cipher: TokenCipher) -> SqlUnitOfWorkFactory:
    """Return a factory of units of work on `engine`."""
    return SqlUnitOfWorkFactory(engine, cipher)
