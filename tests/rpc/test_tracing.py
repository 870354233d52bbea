"""Tracing over a real gRPC server and client on loopback, with the simulator over HTTP as
Smartcar, the spans taken by the SDK's in-memory exporter (`running_gateway`'s hook): a
caller's trace continues through the gateway to Smartcar and storage, cache hits, misses
and coalesced waits are recorded, no token or location is ever in a span, and with tracing
off nothing is installed."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
import pytest
from google.protobuf import duration_pb2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clients.simulator import SimulatorConfig, serve_simulator
from clients.simulator.world import World
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import RunningGateway, running_gateway
from gateway.core.tracing import NO_TRACING
from gateway.edge.clock import ManualClock
from gateway.settings import Settings
from tests.instants import START_S
from tests.rpc.rig import CLIENT_ID, CLIENT_SECRET, fresh_odometer, gateway_settings, pointed_at

pytestmark = pytest.mark.one_database

START = datetime.fromtimestamp(START_S, tz=UTC)
TELEMETRY = "/vehiclegateway.v1.VehicleGateway/GetTelemetry"
BATCH = "/v2.0/vehicles/{id}/batch"


@dataclass
class Traced:
    """A traced gateway, a stub, the simulator's world and the spans exported so far."""

    stub: pb_grpc.VehicleGatewayStub
    running: RunningGateway
    http: httpx.AsyncClient
    simulator_url: str
    world: World
    clock: ManualClock
    exported: InMemorySpanExporter

    async def sim(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control surface; return its JSON."""
        response = await self.http.request(method, self.simulator_url + path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def connect(self, vehicle_id: str) -> None:
        """GetConnectUrl → simulated Connect → Connect (code and user id)."""
        issued = await self.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
        redirect = await self.http.get(issued.url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
        await self.stub.Connect(
            pb.ConnectRequest(
                vehicle_id=vehicle_id,
                code=query["code"][0],
                state=issued.state,
                user_id=query["user_id"][0],
            )
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span exported so far."""
        return tuple(self.exported.get_finished_spans())


@asynccontextmanager
async def traced_gateway(
    settings: Settings, *, read_latency_s: float = 0.0
) -> AsyncIterator[Traced]:
    """Run a gateway whose spans go to an in-memory exporter, against a fresh simulator."""
    exported = InMemorySpanExporter()
    clock = ManualClock(START)
    config = SimulatorConfig.fast(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        start_at_s=START_S,
        read_latency_s=read_latency_s,
    )
    async with (
        serve_simulator(config) as simulator,
        running_gateway(
            pointed_at(settings, simulator.base_url), clock=clock, span_exporter=exported
        ) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        httpx.AsyncClient(timeout=10) as http,
    ):
        yield Traced(
            stub=pb_grpc.VehicleGatewayStub(channel),
            running=running,
            http=http,
            simulator_url=simulator.base_url,
            world=simulator.world,
            clock=clock,
            exported=exported,
        )


def traced_settings(tmp_path: Path, **environment: str) -> Settings:
    """Settings with tracing on (the exporter itself is the test's in-memory one)."""
    return gateway_settings(tmp_path, OTEL_TRACES_EXPORTER="otlp", **environment)


def named(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def descends(span: ReadableSpan, ancestor: ReadableSpan, spans: Iterable[ReadableSpan]) -> bool:
    """Tell whether `ancestor` is `span`'s parent, grandparent, …"""
    by_id = {s.context.span_id: s for s in spans}
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


async def test_a_callers_trace_continues_to_smartcar_and_storage(tmp_path: Path) -> None:
    """The gateway's server span is a child of the caller's span (W3C traceparent in the
    metadata); under it a cache miss holds the Smartcar request (route template, status,
    Smartcar's request id, no traceparent sent on) and units of work with their kind; a
    second read is a cache hit, an event on its server span with no miss."""
    caller_spans = InMemorySpanExporter()
    caller = TracerProvider()
    caller.add_span_processor(SimpleSpanProcessor(caller_spans))
    async with traced_gateway(traced_settings(tmp_path)) as gw:
        await gw.connect("car-1")
        gw.exported.clear()
        with caller.get_tracer("rental-service").start_as_current_span("start-rental") as span:
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
            await gw.stub.GetTelemetry(fresh_odometer("car-1"), metadata=tuple(carrier.items()))
            caller_span = span.get_span_context()
        missed = gw.spans()
        gw.exported.clear()
        cached = pb.GetTelemetryRequest(
            vehicle_id="car-1",
            fields=[pb.TelemetryField.ODOMETER],
            max_age=duration_pb2.Duration(seconds=3600),
        )
        await gw.stub.GetTelemetry(cached)
        hit = gw.spans()

    (server,) = named(missed, TELEMETRY)
    assert server.kind is SpanKind.SERVER
    assert server.context.trace_id == caller_span.trace_id
    assert parent_of(server) == caller_span.span_id
    assert {s.context.trace_id for s in missed} == {caller_span.trace_id}
    (miss,) = named(missed, "telemetry.cache_miss")
    assert parent_of(miss) == server.context.span_id
    assert miss.attributes is not None
    assert miss.attributes["vg.vehicle_id"] == "car-1"
    assert miss.attributes["vg.telemetry.fetched_fields"] == "odometer"
    (request,) = [s for s in missed if s.kind is SpanKind.CLIENT]
    assert request.name == f"POST {BATCH}"
    assert descends(request, miss, missed)
    assert request.attributes is not None
    assert request.attributes["http.route"] == BATCH
    assert request.attributes["http.response.status_code"] == 200
    assert str(request.attributes["smartcar.request_id"])
    assert "car-1" not in str(dict(request.attributes))
    units = named(missed, "storage.unit_of_work")
    assert units
    assert all(descends(u, server, missed) for u in units)
    kinds = {u.attributes["vg.uow.kind"] for u in units if u.attributes is not None}
    assert kinds == {"reader", "writer"}
    assert any(
        descends(u, miss, missed) and u.attributes and u.attributes["vg.uow.commits"] for u in units
    )

    (server,) = named(hit, TELEMETRY)
    assert [e.name for e in server.events] == ["telemetry.cache_hit"]
    assert named(hit, "telemetry.cache_miss") == []
    assert [s for s in hit if s.kind is SpanKind.CLIENT] == []


async def test_a_read_waiting_for_another_callers_fetch_is_a_coalesced_wait(
    tmp_path: Path,
) -> None:
    """Two concurrent reads of a stale car: one fetches while the other waits, recorded
    as a coalesced-wait span, and the waiter's miss says it used the other's answer
    (one Smartcar request in all)."""
    async with traced_gateway(traced_settings(tmp_path)) as gw:
        await gw.connect("car-1")
        await gw.sim("POST", "/sim/faults", {"kind": "hold", "path": "batch", "count": 1})
        gw.exported.clear()
        first = asyncio.ensure_future(gw.stub.GetTelemetry(fresh_odometer("car-1")))
        await gw.sim("GET", "/sim/holds?total=1")  # the first read is at Smartcar
        second = asyncio.ensure_future(gw.stub.GetTelemetry(fresh_odometer("car-1")))
        await wait_for_waiter(gw.running, "car-1")
        await gw.sim("POST", "/sim/holds/release")
        await asyncio.gather(first, second)
        spans = gw.spans()

    (wait,) = named(spans, "telemetry.coalesced_wait")
    assert wait.attributes is not None
    assert wait.attributes["vg.vehicle_id"] == "car-1"
    misses = named(spans, "telemetry.cache_miss")
    assert len(misses) == 2
    (waiter,) = [m for m in misses if parent_of(wait) == m.context.span_id]
    assert [e.name for e in waiter.events] == ["telemetry.coalesced"]
    assert waiter.attributes is not None
    assert waiter.attributes["vg.telemetry.fetched_fields"] == ""
    assert len([s for s in spans if s.kind is SpanKind.CLIENT]) == 1


async def wait_for_waiter(running: RunningGateway, vehicle_id: str) -> None:
    """Poll (with a deadline) until a second caller queues on the vehicle's fetch."""
    locks = running.gateway.telemetry._locks
    async with asyncio.timeout(10):
        # Polled: the lock's queue has no event to wait on, and must stay free of test hooks.
        while locks.users(vehicle_id) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("api", ["v2", "v3"])
async def test_no_token_secret_or_location_is_ever_in_a_span(tmp_path: Path, api: str) -> None:
    """A real flow (connect, read the location, a token refresh on v2, the application
    token's grant and renewal on V3) records token spans, and no exported span's name,
    attributes, events, status or resource holds a token, code, client secret, an
    authorization header or the car's coordinates."""
    async with traced_gateway(traced_settings(tmp_path, VG_SMARTCAR_API=api)) as gw:
        await gw.connect("car-1")
        location = pb.GetTelemetryRequest(
            vehicle_id="car-1",
            fields=[pb.TelemetryField.LOCATION],
            max_age=duration_pb2.Duration(seconds=0),
        )
        first = await gw.stub.GetTelemetry(location)
        gw.clock.advance(3 * 3600)  # the access (or application) token expires
        await gw.sim("POST", "/sim/clock", {"advance_seconds": 3 * 3600})
        second = await gw.stub.GetTelemetry(location)
        spans = gw.spans()
        secrets = {*gw.world.issued_secrets(), CLIENT_SECRET}

    token_span = "smartcar.token_refresh" if api == "v2" else "smartcar.application_token_grant"
    assert [s.attributes and s.attributes["vg.token.result"] for s in named(spans, token_span)]
    assert all(
        s.attributes and s.attributes["vg.token.result"] == "ok" for s in named(spans, token_span)
    )
    coordinates = set()
    for answer in (first, second):
        (reading,) = answer.readings
        assert reading.availability == pb.AVAILABLE
        value = reading.location
        coordinates |= {value.latitude, value.longitude}
    assert len(secrets) > 2
    assert coordinates
    texts = [text for span in spans for text in span_texts(span)]
    for secret in secrets:
        assert not [t for t in texts if secret in t]
    for text in texts:
        assert "bearer" not in text.lower()
        assert "authorization" not in text.lower()
        for coordinate in coordinates:
            assert f"{coordinate:.4f}" not in text
            assert repr(coordinate) not in text
    numbers = [v for span in spans for v in span_values(span) if isinstance(v, float)]
    assert not any(abs(n - c) < 1e-6 for n in numbers for c in coordinates)


def span_values(span: ReadableSpan) -> list[Any]:
    """Every attribute value of a span, of its events and of its resource."""
    values: list[Any] = [*(span.attributes or {}).values()]
    values += [v for e in span.events for v in (e.attributes or {}).values()]
    values += list(span.resource.attributes.values())
    return values


def span_texts(span: ReadableSpan) -> list[str]:
    """Every piece of text a span carries: name, attribute keys and values, event names and
    attributes, status description, resource."""
    texts = [span.name, span.status.description or ""]
    texts += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        texts.append(event.name)
        texts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
    texts += [f"{k}={v}" for k, v in span.resource.attributes.items()]
    return texts


async def test_with_tracing_off_nothing_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without OTEL_TRACES_EXPORTER the gateway's tracing is the no-op one, its server is
    built with no interceptor (the call frame is on the handlers), and the test's exporter
    hears nothing."""
    built = servers_built(monkeypatch)
    async with traced_gateway(gateway_settings(tmp_path)) as gw:
        await gw.connect("car-1")
        await gw.stub.GetTelemetry(fresh_odometer("car-1"))
        assert gw.running.tracing is NO_TRACING
        assert gw.spans() == ()
    assert built == [[]]


async def test_with_tracing_on_the_tracing_interceptor_runs_around_the_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With tracing on, OpenTelemetry's server interceptor is the server's one: it runs
    around the call frame (on the handlers), so the frame and everything it calls run
    inside the call's span."""
    built = servers_built(monkeypatch)
    async with traced_gateway(traced_settings(tmp_path)) as gw:
        assert gw.running.tracing is not NO_TRACING
    assert [[type(i).__name__ for i in interceptors] for interceptors in built] == [
        ["OpenTelemetryAioServerInterceptor"]
    ]


def servers_built(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Record the interceptors of each grpc.aio server built from now on (grpc keeps them
    where Python cannot see them)."""
    built: list[list[Any]] = []
    real = grpc.aio.server

    def server(*args: Any, **kwargs: Any) -> grpc.aio.Server:
        built.append(list(kwargs.get("interceptors") or ()))
        return real(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", server)
    return built
