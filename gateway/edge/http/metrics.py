"""Prometheus metrics: the core's observations (`gateway.core.metrics.Metrics`) and the
edge's (RPCs, upstream HTTP), in a registry of their own, served on their own port.

    vehicle_gateway_rpcs_total{method,code}                     RPCs by method and status
    vehicle_gateway_rpc_duration_seconds{method}                their latency (histogram)
    vehicle_gateway_upstream_requests_total{endpoint,outcome}   Smartcar requests: HTTP status
                                                                or transport_error / timeout
    vehicle_gateway_upstream_request_duration_seconds{endpoint} their latency (histogram)
    vehicle_gateway_telemetry_reads_total{result}               hit (cache) / miss (Smartcar)
    vehicle_gateway_coalesced_waiters_total                     reads answered by another
                                                                caller's fetch
    vehicle_gateway_rate_limited_total{limit}                   refusals by limit (ours, 429s)
    vehicle_gateway_token_refreshes_total{result}               ok / rejected / failed / lost /
                                                                retried (a lost answer)
    vehicle_gateway_application_token_grants_total{result}      API V3 application tokens asked
                                                                for: ok / refused / failed / lost
    vehicle_gateway_vehicles{status}                            vehicles per connection status
                                                                (counted at each scrape)
    vehicle_gateway_scheduler_ticks_total, _polls_total, _paths_total, _lag_seconds
    vehicle_gateway_billed_requests_total                       what Smartcar bills
    vehicle_gateway_budget_used_ratio                           month usage / allowance at
                                                                each spend (histogram)
    vehicle_gateway_budget_projected_ratio                      the month total a car's pace
                                                                projects / allowance, at each
                                                                spend (histogram)
    vehicle_gateway_budget_warnings_total                       cars whose month reached 80 %
                                                                of their allowance (once each)
    vehicle_gateway_budget_refusals_total{purpose}              reads the budget refused:
                                                                interactive / scheduled / ...
    vehicle_gateway_renewals_total{result}                      renewed / failed
    vehicle_gateway_webhook_events_total{outcome}               stored webhook events settled:
                                                                applied / skipped / failed
    vehicle_gateway_webhook_rejected_values_total{field}        webhook values refused (out of
                                                                range, wrong type, unit)
    vehicle_gateway_webhook_backlog_seconds                     age of the oldest stored event
                                                                not yet settled (at each scrape)
    vehicle_gateway_lease_held{lease}                           1 while this replica holds the
                                                                background job's lease, else 0
    vehicle_gateway_gc_collections_total{generation}            Python's garbage collections,
    vehicle_gateway_gc_pause_seconds_total{generation}          the time they stopped the
    vehicle_gateway_gc_longest_pause_seconds{generation}        process, and the longest since
                                                                the previous scrape

Per-car state is never a label: the budget's projection is a histogram over spends (a fixed
set of buckets however many cars), and what is counted at a scrape is counted in storage.

Endpoint labels are path templates (`/v2.0/vehicles/{id}/batch`): ids never become labels.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.core.model import ConnectionStatus

_log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_FINAL_READING_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800)
"""Seconds from a rental's end to its final reading: a minute to two days."""
_ID_AFTER = frozenset({"vehicles", "users", "connections", "webhooks"})
_UUID = re.compile(r"^[0-9a-fA-F-]{16,}$")

_PROJECTION_BUCKETS = (0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0)
"""Projected month total over the allowance: 1.0 is the allowance itself."""

ScrapeHook = Callable[["PrometheusMetrics"], Awaitable[None]]
"""Work done at each scrape before the exposition: sets gauges counted elsewhere (storage)."""


class PrometheusMetrics:
    """Every series the gateway exports, on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"vehicle_gateway_{name}", doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"vehicle_gateway_{name}", doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
            return Histogram(
                f"vehicle_gateway_{name}", doc, labels, registry=registry, buckets=_LATENCY_BUCKETS
            )

        self._rpcs = counter("rpcs", "RPCs handled, by method and status code", ("method", "code"))
        self._rpc_seconds = histogram("rpc_duration_seconds", "RPC latency", ("method",))
        self._rpc_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._refused = counter(
            "refused_calls",
            "Calls refused at admission (UNAUTHENTICATED, PERMISSION_DENIED), by method and reason",
            ("method", "reason"),
        )
        self._upstream = counter(
            "upstream_requests",
            "Smartcar requests by endpoint and outcome",
            ("endpoint", "outcome"),
        )
        self._upstream_seconds = histogram(
            "upstream_request_duration_seconds", "Smartcar request latency", ("endpoint",)
        )
        self._reads = counter("telemetry_reads", "Telemetry reads: cache hit or miss", ("result",))
        self._read_hits = self._reads.labels(result="hit")
        self._read_misses = self._reads.labels(result="miss")
        self._coalesced = counter("coalesced_waiters", "Reads answered by another's fetch")
        self._limited = counter("rate_limited", "Upstream calls refused by a limit", ("limit",))
        self._refreshes = counter("token_refreshes", "Token refreshes by result", ("result",))
        self._application_grants = counter(
            "application_token_grants", "Application token grants by result", ("result",)
        )
        self._vehicles = gauge("vehicles", "Vehicles per connection status", ("status",))
        self._ticks = counter("scheduler_ticks", "Scheduler ticks")
        self._polls = counter("scheduler_polls", "Batches the scheduler sent")
        self._paths = counter("scheduler_paths", "Batch paths the scheduler asked for")
        self._lag = gauge(
            "scheduler_lag_seconds", "How overdue the most overdue field was at the last tick"
        )
        self._final_readings = Histogram(
            "vehicle_gateway_rental_final_reading_seconds",
            "Time from a rental's end until its final reading was settled, by outcome",
            ("outcome",),
            registry=registry,
            buckets=_FINAL_READING_BUCKETS,
        )
        self._billed = counter("billed_requests", "Requests Smartcar bills")
        self._budget = Histogram(
            "vehicle_gateway_budget_used_ratio",
            "A vehicle's month usage over its allowance, at each spend",
            registry=registry,
            buckets=(0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0),
        )
        self._budget_projected = Histogram(
            "vehicle_gateway_budget_projected_ratio",
            "The month total a vehicle's pace so far projects, over its allowance, at each spend",
            registry=registry,
            buckets=_PROJECTION_BUCKETS,
        )
        self._budget_warnings = counter(
            "budget_warnings",
            "Cars whose month reached the warning share of their allowance, once per month",
        )
        self._budget_refusals = counter(
            "budget_refusals", "Reads the request budget refused, by purpose", ("purpose",)
        )
        self._renewals = counter("renewals", "Refresh-token renewals by result", ("result",))
        self._webhooks = counter(
            "webhook_events", "Stored webhook events settled, by outcome", ("outcome",)
        )
        self._webhook_rejections = counter(
            "webhook_rejected_values", "Webhook values refused, by telemetry field", ("field",)
        )
        self._vehicle_events = counter(
            "vehicle_events", "Vehicle events committed (WatchVehicleEvents), by kind", ("kind",)
        )
        self._watch_streams = gauge(
            "watch_streams",
            "Open WatchVehicles and WatchVehicleEvents streams on this replica, by RPC",
            ("rpc",),
        )
        self._gc_collections = counter(
            "gc_collections", "Python garbage collections, by generation", ("generation",)
        )
        self._gc_seconds = counter(
            "gc_pause_seconds",
            "Time Python's garbage collections stopped the process, by generation",
            ("generation",),
        )
        self._gc_longest = gauge(
            "gc_longest_pause_seconds",
            "The longest garbage collection since the previous scrape, by generation",
            ("generation",),
        )
        self._webhook_backlog = gauge(
            "webhook_backlog_seconds",
            "Age of the oldest stored webhook event neither applied nor failed (0: none)",
        )
        self._leases = gauge(
            "lease_held",
            "1 while this replica holds the lease of a background job, by lease name",
            ("lease",),
        )
        for status in ConnectionStatus:
            self._vehicles.labels(status=status.value)

    # --- the core's observations (gateway.core.metrics.Metrics) ---

    def scheduler_tick(self, *, polls: int, paths: int, lag_s: float) -> None:
        """Count a tick, its polls and paths; keep its lag."""
        self._ticks.inc()
        self._polls.inc(polls)
        self._paths.inc(paths)
        self._lag.set(lag_s)

    def rental_final_reading(self, *, outcome: str, after_s: float) -> None:
        """Observe how long after its end a rental's final reading was settled."""
        self._final_readings.labels(outcome=outcome).observe(max(0.0, after_s))

    def budget_spent(
        self, *, requests: int, month_total: int, allowance: int, projected_total: int
    ) -> None:
        """Count billed requests; observe the vehicle's share of its allowance, used and
        projected (histograms: no vehicle id becomes a label)."""
        self._billed.inc(requests)
        if allowance > 0:
            self._budget.observe(month_total / allowance)
            self._budget_projected.observe(projected_total / allowance)

    def budget_warning(self) -> None:
        """Count a car passing the warning share of its allowance."""
        self._budget_warnings.inc()

    def budget_refused(self, *, purpose: str) -> None:
        """Count a read the budget refused, by its purpose (never by vehicle)."""
        self._budget_refusals.labels(purpose=purpose).inc()

    def renewal(self, *, renewed: int, failed: int) -> None:
        """Count a renewal pass's outcomes."""
        self._renewals.labels(result="renewed").inc(renewed)
        self._renewals.labels(result="failed").inc(failed)

    def telemetry_read(self, *, cached: bool, coalesced: bool) -> None:
        """Count a read as a hit or a miss (and a coalesced waiter)."""
        (self._read_hits if cached else self._read_misses).inc()
        if coalesced:
            self._coalesced.inc()

    def rate_limited(self, *, limit: str) -> None:
        """Count a refusal by its limit."""
        self._limited.labels(limit=limit).inc()

    def token_refresh(self, *, result: str) -> None:
        """Count a refresh by its result."""
        self._refreshes.labels(result=result).inc()

    def application_token_grant(self, *, result: str) -> None:
        """Count an application token grant by its result."""
        self._application_grants.labels(result=result).inc()

    def webhook_event(self, *, outcome: str) -> None:
        """Count a settled webhook event by its outcome."""
        self._webhooks.labels(outcome=outcome).inc()

    def webhook_value_rejected(self, *, field: str) -> None:
        """Count a refused webhook value by its field."""
        self._webhook_rejections.labels(field=field).inc()

    def vehicle_event(self, *, kind: str) -> None:
        """Count a committed vehicle event by its kind."""
        self._vehicle_events.labels(kind=kind).inc()

    def watch_streams(self, *, rpc: str, open: int) -> None:
        """Set how many streams of `rpc` are open."""
        self._watch_streams.labels(rpc=rpc).set(open)

    # --- the edge's observations ---

    def rpc(self, *, method: str, code: str, seconds: float) -> None:
        """Count an RPC by method and code; observe its latency.

        The children are looked up once per method and code (a bounded set: only the
        server's registered methods reach here) and kept: `labels` on every call was a
        measurable part of a cached read."""
        bound = self._rpc_children.get((method, code))
        if bound is None:
            bound = (
                self._rpcs.labels(method=method, code=code),
                self._rpc_seconds.labels(method=method),
            )
            self._rpc_children[(method, code)] = bound
        bound[0].inc()
        bound[1].observe(seconds)

    def refused(self, *, method: str, reason: str) -> None:
        """Count a call refused at admission by method and reason (never by token)."""
        self._refused.labels(method=method, reason=reason).inc()

    def upstream_request(self, *, endpoint: str, outcome: str, seconds: float) -> None:
        """Count a Smartcar request by endpoint and outcome; observe its latency."""
        self._upstream.labels(endpoint=endpoint, outcome=outcome).inc()
        self._upstream_seconds.labels(endpoint=endpoint).observe(seconds)

    def vehicles(self, counts: Mapping[ConnectionStatus, int]) -> None:
        """Set the vehicles-per-status gauge (every status, zero when absent)."""
        for status in ConnectionStatus:
            self._vehicles.labels(status=status.value).set(counts.get(status, 0))

    def webhook_backlog(self, *, oldest_received_at: datetime | None, now: datetime) -> None:
        """Set the backlog gauge: how long the oldest unsettled webhook event has waited."""
        age = 0.0 if oldest_received_at is None else (now - oldest_received_at).total_seconds()
        self._webhook_backlog.set(max(0.0, age))

    def lease_held(self, *, lease: str, held: bool) -> None:
        """Set whether this replica holds the named background job's lease."""
        self._leases.labels(lease=lease).set(1 if held else 0)

    def collections(self, pauses: CollectorPauses) -> None:
        """Add the garbage collections `pauses` timed since the last call."""
        for generation, (count, seconds, longest) in enumerate(pauses.drain()):
            label = str(generation)
            self._gc_collections.labels(generation=label).inc(count)
            self._gc_seconds.labels(generation=label).inc(seconds)
            self._gc_longest.labels(generation=label).set(longest)

    def exposition(self) -> bytes:
        """Return the registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))


class CollectorPauses:
    """Times Python's garbage collections while installed (`gc.callbacks`).

    A full collection stops every call in flight for as long as it walks the heap: on a
    gateway holding many objects, that pause is the cached reads' p99 (docs/benchmarks.md,
    issue 15 part 3). The callback only adds to plain numbers, so it takes no lock and
    allocates nothing the collector tracks while the collector runs; a scrape moves the
    sums into the metrics (`PrometheusMetrics.collections`)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = 0.0
        self._counts = [0, 0, 0]
        self._seconds = [0.0, 0.0, 0.0]
        self._longest = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        """The `gc.callbacks` entry: note when a collection starts, add it when it stops."""
        if phase == "start":
            self._started = self._clock()
            return
        generation = info["generation"]
        pause = self._clock() - self._started
        self._counts[generation] += 1
        self._seconds[generation] += pause
        if pause > self._longest[generation]:
            self._longest[generation] = pause

    def install(self) -> None:
        """Start timing collections."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop timing collections."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def drain(self) -> list[tuple[int, float, float]]:
        """Per generation: collections, seconds paused and the longest pause since the last
        drain (which starts them over)."""
        drained = list(zip(self._counts, self._seconds, self._longest, strict=True))
        self._counts = [0, 0, 0]
        self._seconds = [0.0, 0.0, 0.0]
        self._longest = [0.0, 0.0, 0.0]
        return drained


def endpoint_of(url: httpx.URL) -> str:
    """Return the path template of a Smartcar URL: ids after `vehicles/` etc. become `{id}`."""
    parts = url.path.split("/")
    templated = [
        "{id}" if index > 0 and (parts[index - 1] in _ID_AFTER or _UUID.match(part)) else part
        for index, part in enumerate(parts)
    ]
    return "/".join(templated) or "/"


class MeteredTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts and times every request it sends."""

    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: PrometheusMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the inner transport, recording the outcome."""
        started = time.perf_counter()
        outcome = "transport_error"
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            outcome = "timeout"
            raise
        else:
            outcome = str(response.status_code)
            return response
        finally:
            self._metrics.upstream_request(
                endpoint=endpoint_of(request.url),
                outcome=outcome,
                seconds=time.perf_counter() - started,
            )

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


async def serve_metrics(
    metrics: PrometheusMetrics, hooks: Sequence[ScrapeHook], *, host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Serve `GET /metrics` on host:port (0 picks); return the runner and the bound port.
    Each scrape runs `hooks` first, each on its own: one failing (the database down) is
    logged and leaves its gauges as they were, the others and the scrape still answer."""

    async def scrape(_: web.Request) -> web.Response:
        for hook in hooks:
            try:
                await hook(metrics)
            except Exception:  # noqa: BLE001 - a scrape still answers when the database does not
                name = getattr(hook, "__name__", "?")
                _log.exception("a /metrics scrape hook failed", extra={"hook": name})
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
