"""Building the core: `Policies`, everything it is tuned by, and `build_gateway`.

`build_gateway` makes each service from the policies over the outbound ports and returns
the `Gateway` facade (gateway.core.facade) over them. The composition root (gateway.app)
calls it once; unit tests call it over fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.allowances import RequestAllowances
from gateway.core.application_access import ApplicationTokenSource
from gateway.core.audit import AuditRetention, AuditRetentionPolicy, AuditTrail
from gateway.core.budget import BudgetLedger, BudgetPolicy
from gateway.core.cache import TelemetryCache
from gateway.core.commands import CommandService
from gateway.core.compatibility import CompatibilityService
from gateway.core.connections import ConnectionService, ConnectPolicy
from gateway.core.event_feed import EventFeed
from gateway.core.event_retention import EventRetention, EventRetentionPolicy
from gateway.core.facade import Gateway
from gateway.core.final_readings import FinalReadings
from gateway.core.health import HealthPolicy
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.paging import PageTokens
from gateway.core.ports import (
    Clock,
    CompatibilityAPI,
    ReadingEncoder,
    SharedTelemetry,
    SmartcarAPI,
    UnitOfWorkFactory,
    WebhookSubscriptions,
)
from gateway.core.ratelimit import Admission, LocalAdmission, RateLimiter, RateLimits
from gateway.core.reading_events import LowLevelPolicy
from gateway.core.reconcile import CommandReconciler, ReconcilePolicy
from gateway.core.renewal import RenewalPolicy, TokenRenewal
from gateway.core.rental_queries import RentalQueries
from gateway.core.rental_reader import RentalReader
from gateway.core.rental_readings import RentalReadingPolicy
from gateway.core.rentals import RentalService
from gateway.core.revocation import SmartcarListing
from gateway.core.rotation import RotationPolicy, TokenRotator
from gateway.core.scheduler import SchedulerPolicy, TelemetryScheduler
from gateway.core.telemetry import TelemetryPolicy, TelemetryService
from gateway.core.tracing import NO_TRACING, Tracing
from gateway.core.upstream import Upstream
from gateway.core.vehicles import VehicleQueries
from gateway.core.watch import FeedWakeups, StatusFeed, WatchPolicy


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
    rentals: RentalReadingPolicy = field(default_factory=RentalReadingPolicy)
    low_levels: LowLevelPolicy = field(default_factory=LowLevelPolicy)
    event_retention: EventRetentionPolicy = field(default_factory=EventRetentionPolicy)


def build_gateway(
    *,
    uow: UnitOfWorkFactory,
    smartcar: SmartcarAPI,
    clock: Clock,
    policies: Policies = Policies(),
    metrics: Metrics = NO_METRICS,
    admission: Admission | None = None,
    shared_telemetry: SharedTelemetry | None = None,
    page_tokens: PageTokens | None = None,
    application_tokens: ApplicationTokenSource | None = None,
    subscriptions: WebhookSubscriptions | None = None,
    compatibility: CompatibilityAPI | None = None,
    wakeups: FeedWakeups | None = None,
    tracing: Tracing = NO_TRACING,
    encode_reading: ReadingEncoder | None = None,
) -> Gateway:
    """Make every core service over a unit of work, Smartcar and a clock, tuned by
    `policies`, and return the `Gateway` facade over them.

    `admission` decides rate limits (default: this process's own buckets; the Redis
    adapter shares them between replicas); `shared_telemetry` shares the telemetry cache
    and who is fetching which vehicle (default: each replica on its own); `page_tokens`
    signs ListVehicles and ListRentals tokens (default: a key of this process's own);
    `application_tokens` is the application's Smartcar API V3 token (default: none, so
    V3 connections cannot be served); `subscriptions` subscribes each new V3 connection
    to the application's webhook (default: none); `compatibility` is Smartcar's
    Compatibility API (default: none, so CheckCompatibility answers UNAVAILABLE);
    `wakeups` are rung when a status transition or vehicle event is committed, so the
    feeds read at once instead of at their next poll (default: never rung); `tracing`
    records cache hits and misses, coalesced waits, token refreshes and 401 retries
    (default: nothing recorded); `encode_reading` encodes readings as the callers receive
    them, once, when the telemetry cache takes them in, so cached reads join them instead of
    converting (default: none, cached answers are converted on each read).
    """
    wakeups = wakeups or FeedWakeups()
    # Which connections Smartcar still lists tells revocation from expiry (`revocation`).
    listing = (
        None
        if application_tokens is None
        else SmartcarListing(smartcar=smartcar, application=application_tokens)
    )
    rotator = TokenRotator(
        uow=uow,
        smartcar=smartcar,
        clock=clock,
        policy=policies.rotation,
        metrics=metrics,
        listing=listing,
        tracing=tracing,
    )
    limiter = admission or LocalAdmission(RateLimiter(policies.rate_limits))
    ledger = BudgetLedger(uow=uow, policy=policies.budget, metrics=metrics)
    upstream = Upstream(
        uow=uow,
        rotator=rotator,
        limiter=limiter,
        clock=clock,
        ledger=ledger,
        health=policies.health,
        metrics=metrics,
        application=application_tokens,
        listing=listing,
        tracing=tracing,
    )
    cache = TelemetryCache(
        uow,
        shared_telemetry,
        hot=policies.telemetry.cache_hot_vehicles,
        size=policies.telemetry.cache_vehicles,
        encode=encode_reading,
    )
    telemetry = TelemetryService(
        uow=uow,
        smartcar=smartcar,
        upstream=upstream,
        cache=cache,
        clock=clock,
        policy=policies.telemetry,
        metrics=metrics,
        levels=policies.low_levels,
        ledger=ledger,
        tracing=tracing,
    )
    reconciler = CommandReconciler(
        uow=uow,
        telemetry=telemetry,
        cache=cache,
        clock=clock,
        policy=policies.reconcile,
    )
    commands = CommandService(
        uow=uow,
        smartcar=smartcar,
        upstream=upstream,
        cache=cache,
        clock=clock,
        reconciler=reconciler,
    )
    connections = ConnectionService(
        uow=uow,
        smartcar=smartcar,
        upstream=upstream,
        clock=clock,
        policy=policies.connect,
        ledger=ledger,
        application=application_tokens,
        subscriptions=subscriptions,
    )
    reader = RentalReader(telemetry=telemetry, cache=cache, clock=clock)
    return Gateway(
        connections=connections,
        telemetry=telemetry,
        commands=commands,
        rentals=RentalService(
            uow=uow, reader=reader, clock=clock, policy=policies.rentals, metrics=metrics
        ),
        rental_queries=RentalQueries(uow=uow, page_tokens=page_tokens),
        final_readings=FinalReadings(
            uow=uow, reader=reader, clock=clock, policy=policies.rentals, metrics=metrics
        ),
        vehicles=VehicleQueries(
            uow=uow, clock=clock, budget=policies.budget, page_tokens=page_tokens
        ),
        allowances=RequestAllowances(uow=uow, clock=clock, budget=policies.budget),
        feed=StatusFeed(
            uow=uow,
            clock=clock,
            policy=policies.watch,
            metrics=metrics,
            wakeup=wakeups.transitions,
        ),
        event_feed=EventFeed(
            uow=uow, clock=clock, policy=policies.watch, metrics=metrics, wakeup=wakeups.events
        ),
        metrics=metrics,
        cache=cache,
        rotator=rotator,
        limiter=limiter,
        ledger=ledger,
        reconciler=reconciler,
        renewal=TokenRenewal(
            uow=uow, rotator=rotator, clock=clock, policy=policies.renewal, metrics=metrics
        ),
        scheduler=TelemetryScheduler(
            uow=uow,
            telemetry=telemetry,
            cache=cache,
            clock=clock,
            budget=policies.budget,
            policy=policies.scheduler,
            metrics=metrics,
        ),
        audit=AuditTrail(uow=uow, clock=clock),
        audit_retention=AuditRetention(uow=uow, clock=clock, policy=policies.audit),
        event_retention=EventRetention(uow=uow, clock=clock, policy=policies.event_retention),
        compatibility=CompatibilityService(
            api=compatibility,
            limiter=limiter,
            clock=clock,
            required=policies.connect.required_permissions,
            metrics=metrics,
        ),
    )
