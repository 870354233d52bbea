"""The composition root: the one place that turns Settings into a running gateway.

    async with running_gateway(Settings.from_env(os.environ)) as running:
        await serve_until_stopped(running.server, running.health, grace_s=…)

It wires, in order: the access guard and TLS credentials of the gRPC port (a bad policy
fails before anything runs); the embedded Smartcar simulator (when no SMARTCAR_API_ORIGIN
is set; its state kept in VG_VAR_DIR/simulator.json so connected cars survive a restart;
it serves API V3 too, so the three V3 origins point at it, and it accepts every
configured client secret);
the metered HTTP client for Smartcar; storage, opened with `gateway.wiring.open_storage`
(migrated to head, with the token keyring; it refuses to start without a key stored tokens
are under); the Smartcar adapter; the watchers' wakeups, rung by this process's commits
of status transitions and vehicle events and, on PostgreSQL, by every replica's through
LISTEN/NOTIFY (`storage.notifications`); Redis for rate limits and the telemetry cache shared
between replicas (with VG_REDIS_URL); the core, built by
`gateway.core.assembly.build_gateway` (with Smartcar's Compatibility API, asked with the
application's client id and secret); the leased background jobs; the webhook receiver;
the gRPC server, whose call frame gets the access guard, the audit trail, metrics, the
refusal log, the replica's health and storage's classifier of transient database failures
(`storage.transient`); and the metrics and health ports. With tracing on (OTEL_*
variables, `gateway.edge.tracing`, imported only then) the Smartcar client's transport,
the units of work, the core and the gRPC server (an interceptor before the call frame)
record spans; with it off none of them is touched. Leaving the block closes them in
reverse. The command line (`gateway.cli`) opens storage through the same `gateway.wiring`,
without migrating. Tests use the same function with a ManualClock and listen on port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from clients import smartcar as sc
from clients.smartcar.v3 import (
    ApplicationCredentials,
    SmartcarConnectionsV3,
    SmartcarIAM,
    SmartcarManagementV3,
    SmartcarVehiclesV3,
    V3Endpoints,
)
from gateway.core.application_tokens import ApplicationTokens
from gateway.core.assembly import build_gateway
from gateway.core.facade import Gateway
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.paging import KEY_PURPOSE as PAGE_TOKEN_PURPOSE
from gateway.core.paging import PageTokens
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.secret import Secret
from gateway.core.tracing import NO_TRACING, Tracing
from gateway.core.vehicle_events import VehicleEventKind
from gateway.core.watch import FeedWakeups
from gateway.core.webhooks import WebhookInbox
from gateway.edge.background import JobSchedule, LeasedJob, LeaseObserver, replica_id
from gateway.edge.clock import SystemClock
from gateway.edge.grpc.access import (
    AccessConfigError,
    AccessGuard,
    is_loopback,
    load_policy,
    server_credentials,
)
from gateway.edge.grpc.answers import encoded_reading
from gateway.edge.grpc.interceptors import EdgeHooks
from gateway.edge.grpc.refusals import RefusalLog
from gateway.edge.grpc.server import (
    HealthServicer,
    ServingStatus,
    create_health_server,
    create_server,
)
from gateway.edge.http.metrics import (
    CollectorPauses,
    MeteredTransport,
    PrometheusMetrics,
    serve_metrics,
)
from gateway.edge.http.webhooks import serve_webhooks
from gateway.edge.smartcar.adapter import SmartcarV2, UpstreamTimeouts
from gateway.edge.smartcar.compatibility import SmartcarCompatibilityV2
from gateway.edge.smartcar.events import SmartcarV2Events
from gateway.edge.smartcar.iam import SmartcarApplicationAuth
from gateway.edge.smartcar.v3_adapter import (
    SmartcarRouter,
    SmartcarSubscriptionsV3,
    SmartcarV3,
)
from gateway.edge.smartcar.v3_events import SmartcarV3Events
from gateway.settings import Settings, SettingsError
from gateway.wiring import configured_by, open_storage, serving_keyring
from storage.crypto import Keyring
from storage.keys import key_usage
from storage.notifications import EVENTS, TRANSITIONS, FeedNotifications, listens_on
from storage.permissions import secure_tree
from storage.transient import is_transient

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from gateway.edge.redis.admission import RedisAdmission
    from gateway.edge.redis.telemetry import RedisTelemetry
    from gateway.edge.tracing import OpenTelemetryTracing

DEFAULT_REDIRECT_URI = "http://localhost:8000/smartcar/callback"
"""Where the embedded simulator sends owners back; nothing needs to listen there, the
`code` is in the redirect's query string (see the README walkthrough)."""

SIMULATOR_STATE_FILE = "simulator.json"
"""The embedded simulator's state, under VG_VAR_DIR (mode 0600: it holds tokens)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunningGateway:
    """A started gateway: its server, health, port, core, the embedded simulator's URL and
    the webhook receiver's port (None when off)."""

    server: grpc.aio.Server
    health: HealthServicer
    port: int
    gateway: Gateway
    simulator_url: str | None
    webhook_port: int | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    tracing: Tracing = NO_TRACING
    """Where the core's spans go (`NO_TRACING` when tracing is off)."""


@dataclass(frozen=True, slots=True)
class _Upstream:
    endpoints: sc.SmartcarEndpoints
    credentials: sc.ClientCredentials
    mode: sc.ConnectMode
    simulator_url: str | None
    management_token: str | None
    v3_endpoints: V3Endpoints
    """API V3's vehicle, IAM and management origins (the embedded simulator serves all)."""
    application_credentials: ApplicationCredentials
    """The client id and every client secret, for the application token."""


@asynccontextmanager
async def running_gateway(
    settings: Settings,
    *,
    clock: Clock | None = None,
    span_exporter: SpanExporter | None = None,
) -> AsyncIterator[RunningGateway]:
    """Start everything the settings describe; stop it all when the block ends.

    `span_exporter` is a testing hook: with tracing on, every span goes to it at once
    instead of to the exporters OTEL_TRACES_EXPORTER names."""
    clock = clock or SystemClock()
    access, credentials = _security(settings)  # first: a bad policy fails before anything runs
    _secure_var_dir(settings)
    async with AsyncExitStack() as stack:
        tracing = _tracing(stack, settings, span_exporter)
        upstream = await _upstream(settings, stack, clock)
        metrics = PrometheusMetrics()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        transport: httpx.AsyncBaseTransport = MeteredTransport(
            httpx.AsyncHTTPTransport(limits=limits), metrics
        )
        if tracing is not None:
            from gateway.edge.tracing import TracedTransport

            transport = TracedTransport(transport, tracing)
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=settings.read_timeout_s, transport=transport)
        )
        storage = await stack.enter_async_context(
            open_storage(settings, migrate=True, keys=serving_keyring)
        )
        await _check_keys_in_use(storage.engine, storage.keyring)
        smartcar = SmartcarV2(
            auth=sc.SmartcarAuth(
                http=http,
                credentials=upstream.credentials,
                endpoints=upstream.endpoints,
                clock=clock.now,
            ),
            vehicles=sc.SmartcarVehicles(http=http, endpoints=upstream.endpoints, clock=clock.now),
            clock=clock,
            mode=upstream.mode,
            timeouts=UpstreamTimeouts(
                read_s=settings.read_timeout_s, command_s=settings.command_timeout_s
            ),
        )
        # Committed vehicle events are counted by kind (the metric of events written); they
        # and committed status transitions wake this replica's watchers at once.
        wakeups = FeedWakeups()

        def event_committed(kind: VehicleEventKind) -> None:
            metrics.vehicle_event(kind=kind.value)
            wakeups.events.ring()

        uow_factory = storage.uow.observed(event_committed, on_transition=wakeups.transitions.ring)
        if tracing is not None:
            uow_factory = uow_factory.traced(tracing)
        core_tracing: Tracing = NO_TRACING if tracing is None else tracing
        await _listen_for_feeds(stack, storage.engine, wakeups)
        application_tokens, v3 = api_v3(
            settings, upstream, http, uow_factory, clock, metrics, tracing=core_tracing
        )
        admission, shared_telemetry = await _shared(stack, settings)
        gateway = build_gateway(
            uow=uow_factory,
            smartcar=SmartcarRouter(v2=smartcar, v3=v3),
            application_tokens=application_tokens,
            subscriptions=webhook_subscriptions(settings, upstream, http),
            clock=clock,
            policies=settings.policies,
            metrics=metrics,
            admission=admission,
            shared_telemetry=shared_telemetry,
            # Every replica shares the keyring, so each accepts the others' page tokens.
            page_tokens=PageTokens(storage.keyring.derive(PAGE_TOKEN_PURPOSE)),
            wakeups=wakeups,
            tracing=core_tracing,
            encode_reading=encoded_reading,
            compatibility=SmartcarCompatibilityV2(
                client=sc.SmartcarCompatibility(
                    http=http,
                    credentials=upstream.credentials,
                    endpoints=upstream.endpoints,
                    clock=clock.now,
                    additional_secrets=upstream.application_credentials.client_secrets[1:],
                ),
                timeouts=UpstreamTimeouts(
                    read_s=settings.read_timeout_s, command_s=settings.command_timeout_s
                ),
            ),
        )
        # Rental readings still in flight at shutdown are cancelled before storage closes
        # (their final readings are pending in the database: the background job goes on).
        stack.push_async_callback(gateway.rentals.aclose)
        await _start_background(stack, settings, gateway, uow_factory, clock, leases=metrics)
        webhook_port = await _start_webhooks(stack, settings, gateway, uow_factory, clock, upstream)
        health = HealthServicer()
        with configured_by("VG_LISTEN (--listen)", f"listen on {settings.listen}"):
            server, port = await create_server(
                gateway,
                listen=settings.listen,
                health_servicer=health,
                hooks=EdgeHooks(
                    access=access,
                    audit=gateway.audit,
                    observer=metrics,
                    refusals=RefusalLog(clock=clock, observer=metrics),
                    health=ServingStatus(health),
                    transient=is_transient,
                    access_log=settings.access_log,
                ),
                credentials=credentials,
                outer=() if tracing is None else (tracing.server_interceptor(),),
            )
        metrics_port = await _start_metrics(stack, settings, metrics, uow_factory, clock)
        health_port = await _start_health(stack, settings, health, metrics)
        await server.start()
        stack.push_async_callback(server.stop, 0)
        yield RunningGateway(
            server=server,
            health=health,
            port=port,
            gateway=gateway,
            simulator_url=upstream.simulator_url,
            webhook_port=webhook_port,
            metrics_port=metrics_port,
            health_port=health_port,
            tracing=core_tracing,
        )


def _tracing(
    stack: AsyncExitStack, settings: Settings, span_exporter: SpanExporter | None
) -> OpenTelemetryTracing | None:
    """Start tracing when the OTEL_* variables turn it on (flushed and stopped last, when
    the block ends); None when they do not, and then OpenTelemetry is not even imported."""
    if not settings.tracing.enabled:
        if settings.tracing.otlp_endpoint is not None:
            _log.warning(
                "an OTLP endpoint is set but OTEL_TRACES_EXPORTER is not: tracing is off "
                "(set OTEL_TRACES_EXPORTER=otlp to turn it on)",
                extra={"event": "tracing_off"},
            )
        return None
    from gateway.edge.tracing import open_tracing

    tracing = open_tracing(settings.tracing, span_exporter=span_exporter)
    stack.push_async_callback(tracing.aclose)
    return tracing


async def _listen_for_feeds(
    stack: AsyncExitStack, engine: AsyncEngine, wakeups: FeedWakeups
) -> None:
    """On PostgreSQL, wake the watchers when any replica commits a status transition or
    vehicle event (LISTEN/NOTIFY); on SQLite, this process is the only writer and its own
    commits wake them."""
    if not listens_on(engine):
        return
    await stack.enter_async_context(
        FeedNotifications(
            engine,
            on_change={TRANSITIONS: wakeups.transitions.ring, EVENTS: wakeups.events.ring},
        )
    )


async def _shared(
    stack: AsyncExitStack, settings: Settings
) -> tuple[RedisAdmission | None, RedisTelemetry | None]:
    """With VG_REDIS_URL, rate limits and the telemetry cache shared through Redis (else
    each replica's own)."""
    if settings.redis_url is None:
        return None, None
    # Imported here: a replica without Redis never loads its client.
    from redis.asyncio import Redis

    from gateway.edge.redis.admission import RedisAdmission, RedisFailure
    from gateway.edge.redis.telemetry import RedisTelemetry

    redis = Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    stack.push_async_callback(redis.aclose)
    admission = RedisAdmission(
        redis, settings.policies.rate_limits, failure=RedisFailure(settings.redis_failure)
    )
    ttl_s = settings.policies.telemetry.capability_ttl.total_seconds()
    return admission, RedisTelemetry(redis, ttl_s=ttl_s)


async def _start_metrics(
    stack: AsyncExitStack,
    settings: Settings,
    metrics: PrometheusMetrics,
    uow: UnitOfWorkFactory,
    clock: Clock,
) -> int | None:
    """Serve Prometheus metrics when VG_METRICS_LISTEN is set; return the bound port. Each
    scrape counts vehicles per connection status and dates the oldest unsettled webhook
    event in storage (two reads, each over an index, at scrape time: nothing per call), and
    adds the garbage collections timed since the previous scrape."""
    if settings.metrics_listen is None:
        return None
    pauses = CollectorPauses()
    pauses.install()
    stack.callback(pauses.remove)

    async def collections(into: PrometheusMetrics) -> None:
        into.collections(pauses)

    async def vehicles_per_status(into: PrometheusMetrics) -> None:
        async with uow.reader() as unit:
            into.vehicles(await unit.vehicles.count_by_status())

    async def webhook_backlog(into: PrometheusMetrics) -> None:
        async with uow.reader() as unit:
            oldest = await unit.webhook_events.pending(limit=1)
        received_at = oldest[0].received_at if oldest else None
        into.webhook_backlog(oldest_received_at=received_at, now=clock.now())

    host, _, port = settings.metrics_listen.rpartition(":")
    with configured_by("VG_METRICS_LISTEN", f"listen on {settings.metrics_listen}"):
        runner, bound = await serve_metrics(
            metrics,
            (vehicles_per_status, webhook_backlog, collections),
            host=host or "127.0.0.1",
            port=int(port or 0),
        )
    stack.push_async_callback(runner.cleanup)
    _log.info("metrics serving", extra={"event": "metrics_started", "metrics_port": bound})
    return bound


async def _start_health(
    stack: AsyncExitStack,
    settings: Settings,
    health: HealthServicer,
    metrics: PrometheusMetrics,
) -> int | None:
    """Serve the health statuses alone on VG_HEALTH_LISTEN (loopback, plaintext), for a
    probe on this host whatever the main port asks of callers; return the bound port."""
    if settings.health_listen is None:
        return None
    server, port = await create_health_server(
        health,
        listen=settings.health_listen,
        hooks=EdgeHooks(observer=metrics, transient=is_transient),
    )
    await server.start()
    stack.push_async_callback(server.stop, 0)
    _log.info("health port serving", extra={"event": "health_started", "health_port": port})
    return port


async def _start_webhooks(
    stack: AsyncExitStack,
    settings: Settings,
    gateway: Gateway,
    uow: UnitOfWorkFactory,
    clock: Clock,
    upstream: _Upstream,
) -> int | None:
    """Start the webhook receiver when VG_WEBHOOK_LISTEN is set; with the embedded
    simulator, also subscribe it there so lock, unlock and wake events flow in."""
    if settings.webhook_listen is None:
        return None
    if not upstream.management_token:
        raise SettingsError("VG_WEBHOOK_LISTEN needs SMARTCAR_MANAGEMENT_TOKEN to verify events")
    host, _, port = settings.webhook_listen.rpartition(":")
    inbox = WebhookInbox(
        uow=uow,
        cache=gateway.cache,
        clock=clock,
        decoder=SmartcarV3Events() if settings.smartcar_api == "v3" else SmartcarV2Events(),
        metrics=gateway.metrics,
        levels=settings.policies.low_levels,
    )
    with configured_by("VG_WEBHOOK_LISTEN", f"listen on {settings.webhook_listen}"):
        receiver = await stack.enter_async_context(
            serve_webhooks(
                inbox,
                management_token=Secret(upstream.management_token),
                clock=clock,
                host=host or "127.0.0.1",
                port=int(port or 0),
            )
        )
    if upstream.simulator_url is not None:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                upstream.simulator_url + "/sim/webhooks", json={"callback_url": receiver.url}
            )
            response.raise_for_status()
    return receiver.port


async def _start_background(
    stack: AsyncExitStack,
    settings: Settings,
    gateway: Gateway,
    uow: UnitOfWorkFactory,
    clock: Clock,
    *,
    leases: LeaseObserver,
) -> None:
    """Start the leased background jobs (token renewal, telemetry scheduler, audit and
    vehicle event retention, and at the scheduler's interval the reconciler of unknown
    command outcomes and the chase of rentals' final readings); cancel on exit."""
    holder = replica_id()
    keeps_forever = settings.policies.audit.retention is None
    keeps_events = settings.policies.event_retention.retention is None
    jobs = (
        ("token-renewal", gateway.renewal.run_once, settings.renewal_interval_s),
        ("telemetry-scheduler", gateway.scheduler.tick, settings.scheduler_interval_s),
        (
            "audit-retention",
            gateway.audit_retention.run_once,
            0 if keeps_forever else settings.audit_retention_interval_s,
        ),
        (
            "event-retention",
            gateway.event_retention.run_once,
            0 if keeps_events else settings.event_retention_interval_s,
        ),
        ("command-reconciler", gateway.reconciler.run_once, settings.scheduler_interval_s),
        ("rental-final-readings", gateway.final_readings.run_once, settings.scheduler_interval_s),
    )
    for name, work, interval_s in jobs:
        if not interval_s:
            continue
        job = LeasedJob(
            name=name,
            holder=holder,
            work=work,
            uow=uow,
            clock=clock,
            schedule=JobSchedule(interval_s=interval_s, lease_ttl_s=3 * interval_s),
            observer=leases,
        )
        task = asyncio.create_task(job.run_forever(), name=name)
        stack.push_async_callback(_cancel, task)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def api_v3(
    settings: Settings,
    upstream: _Upstream,
    http: httpx.AsyncClient,
    uow: UnitOfWorkFactory,
    clock: Clock,
    metrics: Metrics = NO_METRICS,
    *,
    tracing: Tracing = NO_TRACING,
) -> tuple[ApplicationTokens, SmartcarV3]:
    """Return the application token (granted through Smartcar's IAM, kept in storage) and
    the API V3 adapter, for the server and the `migrate-v3` command alike."""
    tokens = ApplicationTokens(
        auth=SmartcarApplicationAuth(
            iam=SmartcarIAM(
                http=http,
                credentials=upstream.application_credentials,
                endpoints=upstream.v3_endpoints,
                clock=clock.now,
            ),
            client_id=upstream.application_credentials.client_id,
        ),
        uow=uow,
        clock=clock,
        metrics=metrics,
        tracing=tracing,
    )
    v3 = SmartcarV3(
        vehicles=SmartcarVehiclesV3(http=http, endpoints=upstream.v3_endpoints, clock=clock.now),
        connections=SmartcarConnectionsV3(
            http=http, endpoints=upstream.v3_endpoints, clock=clock.now
        ),
        clock=clock,
        timeouts=UpstreamTimeouts(
            read_s=settings.read_timeout_s, command_s=settings.command_timeout_s
        ),
        billed_per_signal=settings.v3_read_billing == "signal",
    )
    return tokens, v3


def webhook_subscriptions(
    settings: Settings, upstream: _Upstream, http: httpx.AsyncClient
) -> SmartcarSubscriptionsV3 | None:
    """Return the webhook subscriptions of V3 connections (new or migrated), when a webhook
    is named (VG_SMARTCAR_WEBHOOK_ID)."""
    if settings.smartcar_webhook_id is None:
        return None
    return SmartcarSubscriptionsV3(
        management=SmartcarManagementV3(http=http, endpoints=upstream.v3_endpoints),
        webhook_id=settings.smartcar_webhook_id,
        timeouts=UpstreamTimeouts(
            read_s=settings.read_timeout_s, command_s=settings.command_timeout_s
        ),
    )


def configured_upstream(settings: Settings) -> _Upstream:
    """Return the Smartcar the SMARTCAR_* variables name (for commands other than `serve`,
    which alone may run the embedded simulator); SettingsError when none is named."""
    if settings.embedded_simulator:
        raise SettingsError(
            "SMARTCAR_API_ORIGIN is not set: the embedded simulator runs inside `serve` only; "
            "point the SMARTCAR_* variables at Smartcar (or a standalone simulator)"
        )
    return _configured(settings)


def _configured(settings: Settings) -> _Upstream:
    env = settings.smartcar
    try:
        endpoints = sc.SmartcarEndpoints.from_env(env)
        credentials = sc.ClientCredentials.from_env(env)
        v3_endpoints = V3Endpoints.from_env(env)
    except ValueError as error:  # names the SMARTCAR_* variable(s), never a secret
        raise SettingsError(f"SMARTCAR_API_ORIGIN is set: {error}") from None
    return _Upstream(
        endpoints=endpoints,
        credentials=credentials,
        mode=_mode(settings.smartcar_mode or "live"),
        simulator_url=None,
        management_token=env.get("SMARTCAR_MANAGEMENT_TOKEN"),
        v3_endpoints=v3_endpoints,
        application_credentials=_application_credentials(
            credentials.client_id, credentials.client_secret.reveal(), settings
        ),
    )


async def _upstream(settings: Settings, stack: AsyncExitStack, clock: Clock) -> _Upstream:
    """Return where Smartcar is: the configured one, or a freshly started embedded simulator
    whose time starts at the gateway's (the system clock in service; a test's clock under
    test, so the times the simulated cars report agree with the gateway's)."""
    env = settings.smartcar
    if not settings.embedded_simulator:
        return _configured(settings)
    # Imported here: a gateway pointed at Smartcar never loads the simulator (nor aiohttp).
    from clients.simulator import SimulatorConfig, StateFile, StateFileError, serve_simulator

    # The simulator keeps its state (client, tokens, connections, clock) beside the
    # gateway's: a restart must find the tokens the database holds still valid.
    state_path = settings.var_dir / SIMULATOR_STATE_FILE
    try:
        stored = StateFile(state_path).client()
    except StateFileError as error:
        raise SettingsError(f"VG_VAR_DIR: the embedded simulator's state: {error}") from None
    client_id = (
        env.get("SMARTCAR_CLIENT_ID")
        or (stored and stored.client_id)
        or f"vehicle-gateway-{secrets.token_hex(4)}"
    )
    client_secret = (
        env.get("SMARTCAR_CLIENT_SECRET")
        or (stored and stored.client_secret)
        or secrets.token_urlsafe(24)
    )
    management_token = (
        env.get("SMARTCAR_MANAGEMENT_TOKEN")
        or (stored and stored.management_token)
        or secrets.token_urlsafe(24)
    )
    config = SimulatorConfig(
        client_id=client_id,
        client_secret=client_secret,
        additional_client_secrets=tuple(s.reveal() for s in settings.additional_client_secrets),
        management_token=management_token,
        command_latency_s=settings.simulator_command_latency_s,
        start_at_s=clock.now().timestamp(),
    )
    try:
        with configured_by("VG_SIMULATOR_PORT", f"listen on port {settings.simulator_port}"):
            simulator = await stack.enter_async_context(
                serve_simulator(config, port=settings.simulator_port, state_file=state_path)
            )
    except StateFileError as error:
        raise SettingsError(f"VG_VAR_DIR: the embedded simulator's state: {error}") from None
    return _Upstream(
        endpoints=sc.SmartcarEndpoints.for_base_url(simulator.base_url),
        credentials=sc.ClientCredentials(
            client_id=client_id,
            client_secret=sc.Secret(client_secret),
            redirect_uri=env.get("SMARTCAR_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
        ),
        mode=_mode(settings.smartcar_mode or "simulated"),
        simulator_url=simulator.base_url,
        management_token=management_token,
        v3_endpoints=V3Endpoints.for_base_url(simulator.base_url),
        application_credentials=_application_credentials(client_id, client_secret, settings),
    )


def _application_credentials(
    client_id: str, client_secret: str, settings: Settings
) -> ApplicationCredentials:
    """Return the API V3 client credentials: SMARTCAR_CLIENT_SECRET (or the embedded
    simulator's secret) first, then VG_SMARTCAR_CLIENT_SECRETS, tried in that order."""
    values = (client_secret, *(s.reveal() for s in settings.additional_client_secrets))
    try:
        return ApplicationCredentials(
            client_id=client_id, client_secrets=tuple(sc.Secret(v) for v in values)
        )
    except ValueError as error:  # says what is wrong, never a secret
        raise SettingsError(f"SMARTCAR_CLIENT_ID / client secrets: {error}") from None


async def _check_keys_in_use(engine: AsyncEngine, keyring: Keyring) -> None:
    """Refuse to start without a key that stored tokens are still encrypted under: those
    connections would be lost at their next use (retire a key only once `keys status`
    lists it as retirable)."""
    usage = await key_usage(engine)
    missing = sorted(set(usage) - set(keyring.key_ids))
    if missing:
        pairs = sum(usage[k] for k in missing)
        raise SettingsError(
            f"VG_TOKEN_KEYS lacks key(s) {', '.join(missing)}, still used by {pairs} stored "
            "token(s): add them back, run `vehicle-gateway keys rotate`, then retire them"
        )


def _secure_var_dir(settings: Settings) -> None:
    """Make VG_VAR_DIR owner-only (0700, files 0600) if it exists, warning about each path
    that was open to others; what is created there later is created owner-only."""
    if not settings.var_dir.exists():
        return
    for tightened in secure_tree(settings.var_dir):
        _log.warning(
            "%s was readable by others (mode %o): now %o; if others could reach it, treat "
            "what it holds as exposed",
            tightened.path,
            tightened.before,
            tightened.after,
            extra={"event": "permissions_tightened", "path": str(tightened.path)},
        )


def _mode(value: str) -> sc.ConnectMode:
    if value == "test":
        return "test"
    return "simulated" if value == "simulated" else "live"


def _security(settings: Settings) -> tuple[AccessGuard, grpc.ServerCredentials | None]:
    """Return the access guard and TLS credentials of the gRPC port.

    Without an access policy the gateway runs in development mode, which is allowed only
    on a loopback address, and says so loudly.
    """
    if (
        settings.health_listen is not None
        and not settings.health_expose
        and not is_loopback(settings.health_listen)
    ):
        raise SettingsError(
            f"VG_HEALTH_LISTEN must be a loopback address, got {settings.health_listen}: it "
            "answers health checks without asking who calls (VG_HEALTH_EXPOSE=on allows "
            "another address, for probes over the network)"
        )
    credentials = None
    try:
        if settings.tls_cert is not None and settings.tls_key is not None:
            credentials = server_credentials(
                certificate=settings.tls_cert,
                key=settings.tls_key,
                client_ca=settings.tls_client_ca,
            )
    except AccessConfigError as error:
        raise SettingsError(f"VG_TLS_CERT/VG_TLS_KEY/VG_TLS_CLIENT_CA: {error}") from None
    try:
        if settings.access_policy is not None:
            return AccessGuard(load_policy(settings.access_policy)), credentials
    except AccessConfigError as error:
        raise SettingsError(f"VG_ACCESS_POLICY: {error}") from None
    if not is_loopback(settings.listen):
        raise SettingsError(
            f"VG_ACCESS_POLICY is required to listen on {settings.listen}: without a policy "
            "every caller may unlock any car, which is allowed on loopback only"
        )
    _log.warning(
        "DEVELOPMENT MODE: no access policy (VG_ACCESS_POLICY), every caller may call "
        "everything; serving on loopback only",
        extra={"event": "development_mode", "listen": settings.listen},
    )
    return AccessGuard(None), credentials
