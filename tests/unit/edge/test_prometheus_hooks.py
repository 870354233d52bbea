"""The Prometheus adapter implements every hook of the core's Metrics port, and counts the
application token grants by result."""

from __future__ import annotations

import inspect

from gateway.core.metrics import Metrics
from gateway.edge.http.metrics import PrometheusMetrics


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
