"""Tracing with OpenTelemetry: the core's spans, the gRPC server's, and Smartcar's requests.

Loaded only when tracing is on (`gateway.app` imports this module then, and only then):
with tracing off the process never imports OpenTelemetry, installs no interceptor and
makes no span object per call.

    tracing = open_tracing(config)             # a TracerProvider of the process's own
    tracing.server_interceptor()               # first of the gRPC server's interceptors
    TracedTransport(inner, tracing)            # around the httpx transport to Smartcar
    build_gateway(..., tracing=tracing)        # the core's spans (`gateway.core.tracing`)
    await tracing.aclose()                     # flush what is left, at shutdown

What it records:

- the server span of every call (opentelemetry-instrumentation-grpc's aio interceptor):
  a caller's W3C `traceparent` (and `baggage`, per OTEL_PROPAGATORS) in the metadata is
  continued, so the gateway's span is a child of the caller's;
- the core's spans and events (cache hit, miss, coalesced wait, token refresh and grant,
  the retry after a 401, one span per storage unit of work), see `gateway.core.tracing`;
- one CLIENT span per HTTP request to Smartcar (`TracedTransport`), named by method and
  route template (`POST /v2.0/vehicles/{id}/batch`: the vehicle id is left out of the
  route, as it is of the metrics' labels), with the status code and Smartcar's request id
  (the `SC-Request-Id` response header; smartcar-v3-notes.md confirms it for v2 and has
  it uncertain for V3: it is recorded when present). Nothing is propagated to Smartcar:
  it is a third party, and our trace ids are none of its business; no request header,
  query string or body is recorded (they carry tokens, secrets and codes).

Exceptions leaving a span mark it failed with their type (`error.type`) only: their
messages may quote what they failed on.

The provider is the process's own, never the global one: the gateway hands it to the
interceptor and the core, so a test can run several gateways, each with its own exporter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import grpc.aio
import httpx
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.tracing import Attributes, AttributeValue
from gateway.edge.http.metrics import endpoint_of

INSTRUMENTATION_NAME = "vehicle-gateway"
"""The tracer's name (the instrumentation scope of every span this module makes)."""

SMARTCAR_REQUEST_ID = "smartcar.request_id"
"""The attribute holding Smartcar's `SC-Request-Id` of a request's answer."""

_log = logging.getLogger(__name__)


class TracingConfig(Protocol):
    """What the OTEL_* variables chose (`gateway.settings.TracingSettings`, validated)."""

    @property
    def exporters(self) -> tuple[str, ...]:
        """`otlp` and/or `console` (OTEL_TRACES_EXPORTER)."""

    @property
    def otlp_endpoint(self) -> str | None:
        """Where OTLP spans go (None: the exporter's default, http://localhost:4317)."""

    @property
    def service_name(self) -> str:
        """The `service.name` resource attribute."""

    @property
    def resource_attributes(self) -> Mapping[str, str]:
        """More resource attributes (OTEL_RESOURCE_ATTRIBUTES)."""

    @property
    def sampler(self) -> str:
        """One of `SAMPLERS`."""

    @property
    def sampler_arg(self) -> float:
        """The ratio of the ratio samplers."""

    @property
    def propagators(self) -> tuple[str, ...]:
        """`tracecontext`, `baggage` (none: read no caller's context)."""


class OpenTelemetryTracing:
    """The core's `Tracing` over an OpenTelemetry tracer provider of the process's own."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    @property
    def enabled(self) -> bool:
        """Always: this object exists only when tracing is on."""
        return True

    @contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[_Recorded]:
        """Start an INTERNAL span, child of the current one, current within the block."""
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield _Recorded(span)
            except BaseException as failure:
                _failed(span, type(failure).__name__)
                raise

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add an event to the current span (a no-op when none is recording)."""
        trace.get_current_span().add_event(name, attributes)

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        """The gRPC server interceptor that makes each call's SERVER span, continuing the
        caller's trace from its metadata (put it first: the rest run inside its span).
        Health checks (a probe every few seconds) and reflection get none."""
        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider,
            filter_=filters.negate(
                filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection"))
            ),
        )
        return interceptor

    def client_span(self, request: httpx.Request) -> trace.Span:
        """Start (not as current) the CLIENT span of one request to Smartcar."""
        route = endpoint_of(request.url)
        attributes: dict[str, AttributeValue] = {
            "http.request.method": request.method,
            "http.route": route,
            "url.scheme": request.url.scheme,
            "server.address": request.url.host,
            "peer.service": "smartcar",
        }
        if request.url.port is not None:
            attributes["server.port"] = request.url.port
        return self._tracer.start_span(
            f"{request.method} {route}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    async def aclose(self) -> None:
        """Export what is left and stop (in a thread: an exporter may wait on the network)."""
        await asyncio.to_thread(self.provider.shutdown)


class _Recorded:
    """The core's view of a span being recorded."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue) -> None:
        """Set one attribute."""
        self._span.set_attribute(key, value)

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add an event, now."""
        self._span.add_event(name, attributes)


def _failed(span: trace.Span, error_type: str) -> None:
    """Mark `span` failed, saying only what kind of failure (never a message)."""
    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR)


class TracedTransport(httpx.AsyncBaseTransport):
    """An httpx transport recording one CLIENT span per request it sends (see the module
    docstring for what it records and what it leaves out); it adds no header."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tracing: OpenTelemetryTracing) -> None:
        self._inner = inner
        self._tracing = tracing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the inner transport inside its span."""
        span = self._tracing.client_span(request)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as failure:
            _failed(span, type(failure).__name__)
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        request_id = response.headers.get("sc-request-id")
        if request_id:
            span.set_attribute(SMARTCAR_REQUEST_ID, request_id[:128])
        if response.status_code >= 400:
            _failed(span, str(response.status_code))
        span.end()
        return response

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


def open_tracing(
    config: TracingConfig, *, span_exporter: SpanExporter | None = None
) -> OpenTelemetryTracing:
    """Make the tracer provider `config` describes, exporting in batches to each of its
    exporters; set the process's propagators (how a caller's trace context is read).

    `span_exporter` is a testing hook: every span goes to it, at once (no batching),
    instead of to the configured exporters.
    """
    set_global_textmap(_propagator(config.propagators))
    resource = Resource.create({**config.resource_attributes, SERVICE_NAME: config.service_name})
    provider = TracerProvider(resource=resource, sampler=_sampler(config))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        return OpenTelemetryTracing(provider)
    for name in config.exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, config)))
    _log.info(
        "tracing on",
        extra={
            "event": "tracing_started",
            "exporters": ",".join(config.exporters),
            "sampler": config.sampler,
        },
    )
    return OpenTelemetryTracing(provider)


def _exporter(name: str, config: TracingConfig) -> SpanExporter:
    """The exporter OTEL_TRACES_EXPORTER names. OTLP's other settings (headers, TLS
    certificate, compression, timeout) are read by the exporter itself from its
    OTEL_EXPORTER_OTLP_* variables."""
    if name == "console":
        return ConsoleSpanExporter()
    # Imported here: the console exporter alone does not need gRPC's OTLP stubs.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.otlp_endpoint)


def _sampler(config: TracingConfig) -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER names, with OTEL_TRACES_SAMPLER_ARG as its ratio."""
    return sampler(config.sampler, config.sampler_arg)


def sampler(name: str, ratio: float) -> Sampler:
    """The sampler called `name` (one of `SAMPLERS`; KeyError otherwise)."""
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    return samplers[name]


def _propagator(names: Sequence[str]) -> TextMapPropagator:
    """The propagators OTEL_PROPAGATORS names (`none`: read no caller's context)."""
    known: dict[str, Any] = {
        "tracecontext": TraceContextTextMapPropagator,
        "baggage": W3CBaggagePropagator,
    }
    return CompositePropagator([known[name]() for name in names if name in known])
