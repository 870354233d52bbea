"""`Gateway`: the use cases behind the gRPC API, wired from their parts (implements GatewayAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from gateway.core.audit import AuditRetention, AuditRetentionPolicy, AuditTrail
from gateway.core.budget import BudgetLedger, BudgetPolicy
from gateway.core.cache import TelemetryCache
from gateway.core.commands import CommandService
from gateway.core.connections import ConnectionService, ConnectPolicy
from gateway.core.health import HealthPolicy
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import (
    CommandResult,
    ConnectionStatus,
    ConnectUrl,
    LockAction,
    Rental,
    StatusTransition,
    Telemetry,
    TelemetryField,
    VehiclePage,
    VehiclePanel,
)
from gateway.core.paging import PageTokens
from gateway.core.ports import Clock, SharedTelemetry, SmartcarAPI, UnitOfWorkFactory
from gateway.core.ratelimit import Admission, LocalAdmission, RateLimiter, RateLimits
from gateway.core.reconcile import CommandReconciler, ReconcilePolicy
from gateway.core.renewal import RenewalPolicy, TokenRenewal
from gateway.core.rentals import RentalService
from gateway.core.rotation import RotationPolicy, TokenRotator
from gateway.core.scheduler import SchedulerPolicy, TelemetryScheduler
from gateway.core.telemetry import TelemetryPolicy, TelemetryService
from gateway.core.upstream import Upstream
from gateway.core.vehicles import VehicleQueries
from gateway.core.watch import StatusFeed, WatchPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Policies:
    """Every tunable policy of the core, with production defaults."""

    rate_limits: RateLimits = field(default_factory=RateLimits)
    rotation: RotationPolicy = field(default_factory=RotationPolicy)
    telemetry: TelemetryPolicy = field(default_factory=TelemetryPolicy)
    connect: ConnectPolicy = field(default_factory=ConnectPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)
    health: HealthPolicy = field(default_factory=HealthPolicy)
    watch: WatchPolicy = field(default_factory=WatchPolicy)
    scheduler: SchedulerPolicy = field(default_factory=SchedulerPolicy)
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)
    audit: AuditRetentionPolicy = field(default_factory=AuditRetentionPolicy)
    reconcile: ReconcilePolicy = field(default_factory=ReconcilePolicy)


class Gateway:
    """The gateway's use cases over a unit of work, Smartcar and a clock."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: SmartcarAPI,
        clock: Clock,
        policies: Policies = Policies(),
        metrics: Metrics = NO_METRICS,
        admission: Admission | None = None,
        shared_telemetry: SharedTelemetry | None = None,
        page_tokens: PageTokens | None = None,
    ) -> None:
        """`admission` decides rate limits (default: this process's own buckets; the Redis
        adapter shares them between replicas); `shared_telemetry` shares the telemetry
        cache and who is fetching which vehicle (default: each replica on its own);
        `page_tokens` signs ListVehicles tokens (default: a key of this process's own)."""
        self.metrics = metrics
        self.rotator = TokenRotator(
            uow=uow, smartcar=smartcar, clock=clock, policy=policies.rotation, metrics=metrics
        )
        self.limiter = admission or LocalAdmission(RateLimiter(policies.rate_limits))
        self.ledger = BudgetLedger(uow=uow, policy=policies.budget, metrics=metrics)
        upstream = Upstream(
            uow=uow,
            rotator=self.rotator,
            limiter=self.limiter,
            clock=clock,
            ledger=self.ledger,
            health=policies.health,
            metrics=metrics,
        )
        cache = self.cache = TelemetryCache(uow, shared_telemetry)
        self._telemetry = TelemetryService(
            uow=uow,
            smartcar=smartcar,
            upstream=upstream,
            cache=cache,
            clock=clock,
            policy=policies.telemetry,
            metrics=metrics,
        )
        self.reconciler = CommandReconciler(
            uow=uow,
            telemetry=self._telemetry,
            cache=cache,
            ledger=self.ledger,
            clock=clock,
            policy=policies.reconcile,
        )
        self._commands = CommandService(
            uow=uow,
            smartcar=smartcar,
            upstream=upstream,
            cache=cache,
            clock=clock,
            reconciler=self.reconciler,
        )
        self._connections = ConnectionService(
            uow=uow,
            smartcar=smartcar,
            upstream=upstream,
            clock=clock,
            policy=policies.connect,
            budget=policies.budget,
        )
        self._rentals = RentalService(uow=uow, clock=clock)
        self._vehicles = VehicleQueries(
            uow=uow, clock=clock, budget=policies.budget, page_tokens=page_tokens
        )
        self._feed = StatusFeed(uow=uow, clock=clock, policy=policies.watch)
        self.renewal = TokenRenewal(
            uow=uow, rotator=self.rotator, clock=clock, policy=policies.renewal, metrics=metrics
        )
        self.audit = AuditTrail(uow=uow, clock=clock)
        self.audit_retention = AuditRetention(uow=uow, clock=clock, policy=policies.audit)
        self.scheduler = TelemetryScheduler(
            uow=uow,
            telemetry=self._telemetry,
            cache=cache,
            clock=clock,
            budget=policies.budget,
            policy=policies.scheduler,
            metrics=metrics,
        )

    async def get_connect_url(self, vehicle_id: str, *, vin: str | None = None) -> ConnectUrl:
        """Issue a single-use state bound to the vehicle (registering it if new) and the URL."""
        return await self._connections.connect_url(vehicle_id, vin=vin)

    async def connect(self, vehicle_id: str, *, code: str, state: str) -> VehiclePanel:
        """Exchange the code, store the tokens, read info and permissions; status ACTIVE."""
        return await self._connections.connect(vehicle_id, code=code, state=state)

    async def get_telemetry(
        self, vehicle_id: str, *, fields: frozenset[TelemetryField], max_age: timedelta | None
    ) -> Telemetry:
        """Serve `fields` (all when empty) no older than `max_age` (None: the default)."""
        return await self._telemetry.get(vehicle_id, fields=fields, max_age=max_age)

    async def command(
        self, vehicle_id: str, *, action: LockAction, request_id: str
    ) -> CommandResult:
        """Lock or unlock, idempotently per `request_id` (empty: a new id is generated)."""
        return await self._commands.run(vehicle_id, action=action, request_id=request_id)

    async def disconnect(self, vehicle_id: str) -> VehiclePanel:
        """Revoke at Smartcar and erase the tokens unless a rental is active."""
        return await self._connections.disconnect(vehicle_id)

    async def start_rental(self, vehicle_id: str, *, rental_id: str) -> Rental:
        """Hold the vehicle for a rental (idempotent for the same rental id)."""
        return await self._rentals.start(vehicle_id, rental_id=rental_id)

    async def end_rental(self, vehicle_id: str, *, rental_id: str) -> Rental:
        """Release the rental hold (idempotent for an already ended rental)."""
        return await self._rentals.end(vehicle_id, rental_id=rental_id)

    async def get_vehicle(self, vehicle_id: str) -> VehiclePanel:
        """Return the connection panel of one vehicle."""
        return await self._vehicles.get(vehicle_id)

    async def list_vehicles(
        self, *, status: ConnectionStatus | None, page_size: int, page_token: str
    ) -> VehiclePage:
        """Return one page of connection panels ordered by vehicle id."""
        return await self._vehicles.page(status=status, page_size=page_size, page_token=page_token)

    def watch_vehicles(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str
    ) -> AsyncIterator[StatusTransition]:
        """Stream status changes after `after_id` (None: from now on), optionally filtered;
        at most `WatchPolicy.streams_per_caller` open streams per `caller`."""
        return self._feed.changes(vehicle_ids=vehicle_ids, after_id=after_id, caller=caller)
