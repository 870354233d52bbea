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
