"""The Prometheus endpoint over real sockets: scraped after real traffic, parsed with
prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import grpc
import grpc.aio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import WebhookEvent
from gateway.edge.clock import ManualClock
from gateway.edge.http.metrics import CollectorPauses
from storage.crypto import TokenCipher, load_keyring
from storage.database import create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.instants import START
from tests.rpc.rig import Rig, fresh_odometer, gateway_against, gateway_settings, simulator

pytestmark = pytest.mark.one_database

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(rig: Rig) -> Samples:
    """GET /metrics and return every sample by (name, sorted labels)."""
    port = rig.running.metrics_port
    assert port is not None
    response = await rig.http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_a_scrape_reports_rpcs_upstream_cache_limits_refreshes_and_states(
    tmp_path: Path,
) -> None:
    """After real traffic the scrape counts RPCs by method and code, Smartcar requests by
    endpoint template and outcome, cache hits and misses, a coalesced waiter, rate-limit
    refusals, token refreshes, vehicles per connection status, and garbage collections
    (timed only while the metrics are served)."""
    settings = gateway_settings(tmp_path, VG_METRICS_LISTEN="127.0.0.1:0")
    async with (
        simulator(read_latency_s=0.2) as url,
        gateway_against(settings, url, ManualClock(START)) as rig,
    ):
        await rig.connect("car-1")
        await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-2"))
        # Two concurrent fresh reads: one fetches, the other waits for its answer.
        await asyncio.gather(
            rig.stub.GetTelemetry(fresh_odometer("car-1")),
            rig.stub.GetTelemetry(fresh_odometer("car-1")),
        )
        cached = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.TelemetryField.ODOMETER])
        await rig.stub.GetTelemetry(cached)
        await rig.advance(3 * 3600)  # the access token expires: the next read refreshes it
        await rig.stub.GetTelemetry(fresh_odometer("car-1"))
        codes = []
        for _ in range(6):  # the per-vehicle read bucket holds 4 (refilling one per 15 s)
            await rig.advance(1)  # max_age 0: a read in the same instant is served from cache
            call = rig.stub.GetTelemetry(fresh_odometer("car-1"))
            codes.append((await asyncio.gather(call, return_exceptions=True))[0])
        refused = sum(
            isinstance(c, grpc.aio.AioRpcError) and c.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            for c in codes
        )
        assert refused > 0
        gc.collect()
        samples = await scrape(rig)
    assert not any(isinstance(c, CollectorPauses) for c in gc.callbacks)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    telemetry = "/vehiclegateway.v1.VehicleGateway/GetTelemetry"
    assert value("vehicle_gateway_rpcs_total", method=telemetry, code="OK") == 10 - refused
    assert value("vehicle_gateway_rpcs_total", method=telemetry, code="RESOURCE_EXHAUSTED") == (
        refused
    )
    assert value("vehicle_gateway_rpc_duration_seconds_count", method=telemetry) == 10
    batch = "/v2.0/vehicles/{id}/batch"
    assert value("vehicle_gateway_upstream_requests_total", endpoint=batch, outcome="200") >= 3
    assert value("vehicle_gateway_upstream_request_duration_seconds_count", endpoint=batch) >= 3
    token = "/oauth/token"
    assert value("vehicle_gateway_upstream_requests_total", endpoint=token, outcome="200") >= 2
    assert value("vehicle_gateway_telemetry_reads_total", result="hit") >= 2
    assert value("vehicle_gateway_telemetry_reads_total", result="miss") >= 2
    assert value("vehicle_gateway_coalesced_waiters_total") == 1
    assert value("vehicle_gateway_rate_limited_total", limit="vehicle_reads") == refused
    assert value("vehicle_gateway_token_refreshes_total", result="ok") == 1
    assert value("vehicle_gateway_vehicles", status="ACTIVE") == 1
    assert value("vehicle_gateway_vehicles", status="NOT_CONNECTED") == 1
    assert value("vehicle_gateway_vehicles", status="EXPIRED") == 0
    assert value("vehicle_gateway_billed_requests_total") > 0
    assert value("vehicle_gateway_gc_collections_total", generation="2") >= 1
    assert value("vehicle_gateway_gc_pause_seconds_total", generation="2") > 0
    assert value("vehicle_gateway_gc_longest_pause_seconds", generation="2") > 0
    assert not any("car-1" in str(labels) for _, labels in samples)


@pytest.mark.parametrize("listen", [None])
async def test_metrics_are_off_unless_asked_for(tmp_path: Path, listen: str | None) -> None:
    """Without VG_METRICS_LISTEN no metrics port is opened."""
    async with (
        simulator() as url,
        gateway_against(gateway_settings(tmp_path), url, ManualClock(START)) as rig,
    ):
        assert rig.running.metrics_port is listen


async def test_a_scrape_reports_the_lease_held_the_webhook_backlog_and_the_projected_budget(
    tmp_path: Path,
) -> None:
    """With the scheduler on, the replica reports holding its lease; an event an earlier run
    left pending 10 minutes ago makes the webhook backlog 600 s; a read's spend is observed
    in the projected-budget histogram."""
    settings = gateway_settings(tmp_path, VG_METRICS_LISTEN="127.0.0.1:0")
    settings = replace(settings, scheduler_interval_s=3600.0)
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    uow = unit_of_work_factory(engine, TokenCipher(load_keyring(None, var_dir=settings.var_dir)))
    left = WebhookEvent(
        event_id="evt-left",
        event_type="VEHICLE_STATE",
        smartcar_vehicle_id="sc-unknown",
        received_at=START - timedelta(minutes=10),
        payload={"eventId": "evt-left", "eventType": "VEHICLE_STATE"},
    )
    try:
        async with uow() as unit:
            assert await unit.webhook_events.add(left)
            await unit.commit()
    finally:
        await engine.dispose()
    async with (
        simulator() as url,
        gateway_against(settings, url, ManualClock(START)) as rig,
    ):
        await rig.connect("car-1")
        await rig.stub.GetTelemetry(fresh_odometer("car-1"))
        scheduler = ("vehicle_gateway_lease_held", (("lease", "telemetry-scheduler"),))
        deadline = asyncio.get_running_loop().time() + 10
        samples = await scrape(rig)
        while samples.get(scheduler) != 1.0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # the job's first tick runs as the gateway starts
            samples = await scrape(rig)

    assert samples[scheduler] == 1.0
    assert samples[("vehicle_gateway_webhook_backlog_seconds", ())] == 600.0
    assert samples[("vehicle_gateway_budget_projected_ratio_count", ())] >= 1
    within = samples[("vehicle_gateway_budget_projected_ratio_bucket", (("le", "1.0"),))]
    assert within == samples[("vehicle_gateway_budget_projected_ratio_count", ())]
