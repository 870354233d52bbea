"""The Prometheus adapter implements every hook of the core's Metrics port, counts the
application token grants by result, and keeps the gauges operators alert on: the webhook
backlog, the leases held, the budget's projection, the garbage collector's pauses."""

from __future__ import annotations

import gc
import inspect
from datetime import timedelta

import pytest

from gateway.core.metrics import Metrics
from gateway.edge.http.metrics import CollectorPauses, PrometheusMetrics
from tests.instants import START


def test_every_core_hook_has_its_prometheus_implementation() -> None:
    """Each method the core may call on Metrics exists on PrometheusMetrics, same keywords."""
    hooks = [
        name
        for name, _ in inspect.getmembers(Metrics, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert "application_token_grant" in hooks
    for name in hooks:
        ours = inspect.signature(getattr(PrometheusMetrics, name))
        theirs = inspect.signature(getattr(Metrics, name))
        assert list(ours.parameters) == list(theirs.parameters), name


def test_application_token_grants_are_counted_by_result() -> None:
    """Two ok and one refused grant show as two series of the grants counter."""
    metrics = PrometheusMetrics()
    for result in ("ok", "ok", "refused"):
        metrics.application_token_grant(result=result)
    text = metrics.exposition().decode()
    assert 'vehicle_gateway_application_token_grants_total{result="ok"} 2.0' in text
    assert 'vehicle_gateway_application_token_grants_total{result="refused"} 1.0' in text


def test_final_readings_are_observed_by_outcome_and_delay() -> None:
    """A final reading recorded 20 min after its rental's end and one given up after a day
    land in the histogram's buckets by outcome."""
    metrics = PrometheusMetrics()
    metrics.rental_final_reading(outcome="recorded", after_s=1200)
    metrics.rental_final_reading(outcome="given_up", after_s=86_400)
    text = metrics.exposition().decode()
    name = "vehicle_gateway_rental_final_reading_seconds"
    assert f'{name}_bucket{{le="900.0",outcome="recorded"}} 0.0' in text
    assert f'{name}_bucket{{le="1800.0",outcome="recorded"}} 1.0' in text
    assert f'{name}_count{{outcome="given_up"}} 1.0' in text
    assert f'{name}_sum{{outcome="given_up"}} 86400.0' in text


def test_the_webhook_backlog_is_the_oldest_pending_events_age_and_never_negative() -> None:
    """An event waiting 90 s sets 90; none pending sets 0; an event stamped ahead of the
    clock (another replica's clock runs fast) sets 0, not a negative age."""
    metrics = PrometheusMetrics()
    gauge = "vehicle_gateway_webhook_backlog_seconds"
    metrics.webhook_backlog(oldest_received_at=START - timedelta(seconds=90), now=START)
    assert f"{gauge} 90.0" in metrics.exposition().decode()
    metrics.webhook_backlog(oldest_received_at=None, now=START)
    assert f"{gauge} 0.0" in metrics.exposition().decode()
    metrics.webhook_backlog(oldest_received_at=START + timedelta(seconds=5), now=START)
    assert f"{gauge} 0.0" in metrics.exposition().decode()


def test_a_lease_is_one_while_held_and_zero_once_lost() -> None:
    """The lease gauge follows the last observation of each lease, by name."""
    metrics = PrometheusMetrics()
    metrics.lease_held(lease="telemetry-scheduler", held=True)
    metrics.lease_held(lease="token-renewal", held=True)
    metrics.lease_held(lease="token-renewal", held=False)
    text = metrics.exposition().decode()
    assert 'vehicle_gateway_lease_held{lease="telemetry-scheduler"} 1.0' in text
    assert 'vehicle_gateway_lease_held{lease="token-renewal"} 0.0' in text


def test_a_spend_projected_past_the_allowance_lands_above_the_1_bucket() -> None:
    """Projected 620 of 500 (1.24) counts above le=1.0 and within le=1.25; 400 within 1.0."""
    metrics = PrometheusMetrics()
    metrics.budget_spent(requests=1, month_total=200, allowance=500, projected_total=620)
    metrics.budget_spent(requests=1, month_total=100, allowance=500, projected_total=400)
    text = metrics.exposition().decode()
    assert 'vehicle_gateway_budget_projected_ratio_bucket{le="1.0"} 1.0' in text
    assert 'vehicle_gateway_budget_projected_ratio_bucket{le="1.25"} 2.0' in text
    assert "vehicle_gateway_budget_projected_ratio_count 2.0" in text


def test_collections_are_counted_timed_and_their_longest_pause_kept_per_scrape() -> None:
    """Collections timed by `CollectorPauses` (a scripted clock) add to the counters by
    generation at each scrape; the longest pause is the longest since the previous scrape,
    and the callback is in `gc.callbacks` only while installed."""
    ticks = iter([0.0, 0.002, 1.0, 1.5, 2.0, 2.001, 3.0, 3.004])
    pauses = CollectorPauses(clock=lambda: next(ticks))
    metrics = PrometheusMetrics()
    for generation in (0, 2, 0):
        pauses("start", {"generation": generation})
        pauses("stop", {"generation": generation, "collected": 0, "uncollectable": 0})
    metrics.collections(pauses)

    def value(name: str, generation: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"generation": generation})

    assert value("vehicle_gateway_gc_collections_total", "0") == 2
    assert value("vehicle_gateway_gc_collections_total", "2") == 1
    assert value("vehicle_gateway_gc_pause_seconds_total", "0") == pytest.approx(0.003)
    assert value("vehicle_gateway_gc_pause_seconds_total", "2") == pytest.approx(0.5)
    assert value("vehicle_gateway_gc_longest_pause_seconds", "2") == pytest.approx(0.5)
    pauses("start", {"generation": 0})
    pauses("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    metrics.collections(pauses)
    assert value("vehicle_gateway_gc_collections_total", "0") == 3
    assert value("vehicle_gateway_gc_longest_pause_seconds", "0") == pytest.approx(0.004)
    assert value("vehicle_gateway_gc_longest_pause_seconds", "2") == 0
    assert pauses not in gc.callbacks
    pauses.install()
    try:
        assert pauses in gc.callbacks
    finally:
        pauses.remove()
    assert pauses not in gc.callbacks
