"""deploy/monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`: each alert fired by one series and left quiet by another), and every
alert and dashboard panel names only series the gateway exports.

promtool comes from Debian's prometheus package (`make services` unpacks it into .services/);
like a missing PostgreSQL, a missing promtool fails the suite in CI and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.edge.http.metrics import PrometheusMetrics
from tests.services import program_environment, promtool_binary

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "dashboard.json"

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}
# PromQL words that are not series: functions, aggregations, keywords.
_PROMQL_WORDS = frozenset(
    {
        "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "stddev",
        "rate", "irate", "increase", "delta", "deriv", "predict_linear", "histogram_quantile",
        "max_over_time", "min_over_time", "avg_over_time", "clamp_min", "clamp_max", "abs",
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "bool", "offset", "vector", "scalar", "time", "label_replace", "absent", "inf", "nan",
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def promtool() -> Path:
    """The promtool binary (failing in CI, skipping elsewhere, when it is missing)."""
    found = promtool_binary()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed: `make services` unpacks it")
        pytest.skip("promtool is not installed here (make services unpacks it)")
    return found


@pytest.fixture(scope="module")
def rule_tests(promtool: Path) -> subprocess.CompletedProcess[str]:
    """One `promtool test rules` run over alerts_test.yml, shared by the module's tests."""
    return subprocess.run(
        [str(promtool), "test", "rules", RULE_TESTS.name],
        cwd=MONITORING,
        env=program_environment(promtool),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def exported_series() -> dict[str, str]:
    """Every series name the gateway's metrics registry exposes (its family's name with its
    type's suffixes), with the family it belongs to."""
    registry: CollectorRegistry = PrometheusMetrics().registry
    return {
        family.name + suffix: family.name
        for family in registry.collect()
        for suffix in _SUFFIXES[family.type]
    }


def series_named(expression: str) -> set[str]:
    """The series names a PromQL expression selects (label names, strings, durations,
    functions, keywords and Grafana's `$variables` left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", text))
    return {word for word in words if word.lower() not in _PROMQL_WORDS}


def alert_rules() -> Iterator[dict[str, object]]:
    """Every rule of alerts.yml."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        yield from group["rules"]


def panel_expressions() -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every query in the dashboard, rows' panels included."""
    panels = list(json.loads(DASHBOARD.read_text())["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_the_alert_rules_are_valid(promtool: Path) -> None:
    """`promtool check rules` accepts alerts.yml."""
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)],
        env=program_environment(promtool),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_on_its_series_and_stays_quiet_on_others(
    rule_tests: subprocess.CompletedProcess[str],
) -> None:
    """`promtool test rules alerts_test.yml` passes."""
    assert rule_tests.returncode == 0, rule_tests.stdout + rule_tests.stderr
    assert "SUCCESS" in rule_tests.stdout


def test_every_alert_has_a_firing_test_a_quiet_test_and_a_runbook_section() -> None:
    """Each alert is named by a `fires` and a `stays quiet` test group, expects itself in
    the firing one, and its runbook annotation points at a heading of docs/operations.md."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    runbook = (MONITORING.parents[1] / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        name = str(rule["alert"])
        firing = [t for t in tests if t["name"].startswith(f"{name} fires")]
        quiet = [t for t in tests if t["name"].startswith(f"{name} stays quiet")]
        assert firing, name
        assert quiet, name
        assert any(
            case["alertname"] == name and case["exp_alerts"]
            for test in firing
            for case in test["alert_rule_test"]
        ), name
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in anchors, name


def test_alerts_name_only_series_the_gateway_exports() -> None:
    """Every series an alert's expression selects is in the gateway's registry."""
    exported = exported_series()
    assert "vehicle_gateway_lease_held" in exported
    for rule in alert_rules():
        named = series_named(str(rule["expr"]))
        assert named, rule["alert"]
        assert named <= exported.keys(), (rule["alert"], named - exported.keys())


def test_dashboard_panels_name_only_series_the_gateway_exports() -> None:
    """Every series a dashboard query selects is in the gateway's registry, and the
    dashboard charts every series family the gateway exports."""
    exported = exported_series()
    charted: set[str] = set()
    expressions = list(panel_expressions())
    assert expressions
    for title, expression in expressions:
        named = series_named(expression)
        assert named, title
        assert named <= exported.keys(), (title, named - exported.keys())
        charted |= {exported[name] for name in named}
    assert set(exported.values()) - charted == set()


def test_the_series_parser_sees_through_labels_functions_and_variables() -> None:
    """`series_named` keeps series and drops label names, matchers, functions, keywords."""
    expression = (
        'sum by (method) (rate(vehicle_gateway_rpcs_total{code=~"INTERNAL|x"}[$__rate_interval]))'
        " / ignoring (lease) group_left vehicle_gateway_lease_held == bool 1"
    )
    assert series_named(expression) == {"vehicle_gateway_rpcs_total", "vehicle_gateway_lease_held"}
