"""deploy/prometheus/alerts.yml and deploy/grafana/shadowlab.json: valid, and about real metrics.

promtool checks and unit-tests the rules where it is installed (Debian's `prometheus`
package; CI installs it); without it the rules get a structural check. Every metric an alert
or a panel names must be one the app exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from deployments.metrics import registry_for_export

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "shadowlab.json"
# Prometheus's own series about its targets.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str] | None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs promtool (.ci/run); it is missing")
        return None
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr
    )  # label lists
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue  # a function or aggregation, or a keyword
        names.add(match.group())
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names(
        'sum by (le, model) (rate(x_bucket{job="a b", le!="1"}[5m])) / on (model) '
        "y_total offset 5m > 0.5 unless z"
    ) == {"x_bucket", "y_total", "z"}


@pytest.fixture
def exported(client) -> set[str]:
    """Return every sample name the web's /metrics can serve (no worker figures missing)."""
    client.get("/healthz")  # django-prometheus registers its metrics with its middleware
    text = generate_latest(registry_for_export()).decode()
    names = set(PROMETHEUS_SERIES)
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _panel_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


# Alerts


def test_the_alerts_cover_lag_backlog_errors_breaker_rollbacks_and_workers():
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts == {
        "ShadowLabScoringLagHigh",
        "ShadowLabScoringBacklog",
        "ShadowLabScoringStalled",
        "ShadowLabPredictionErrorRate",
        "ShadowLabCircuitBreakerOpen",
        "ShadowLabRollback",
        "ShadowLabNoWorkerAnswering",
    }
    for rule in _rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


@pytest.mark.django_db
def test_every_alert_reads_metrics_the_app_exports(exported):
    for rule in _rules():
        unknown = metric_names(str(rule["expr"])) - exported
        assert not unknown, f"{rule['alert']} reads {unknown}, which nothing exports"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = _promtool("check", "rules", str(ALERTS))
    if checked is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); structure checked")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", str(ALERT_TESTS))
    assert tested is not None and tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in _rules()}


# Dashboard


def test_the_dashboard_is_importable_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "shadowlab" and dashboard["title"] == "ShadowLab"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.django_db
def test_every_panel_reads_metrics_the_app_exports(exported):
    for title, expr in _panel_exprs():
        unknown = metric_names(expr) - exported
        assert not unknown, f"panel {title!r} reads {unknown}, which nothing exports"


def test_the_dashboard_shows_every_figure_an_alert_watches():
    panel_metrics = set().union(*(metric_names(expr) for _, expr in _panel_exprs()))
    for rule in _rules():
        assert metric_names(str(rule["expr"])) <= panel_metrics, rule["alert"]


def test_promtool_parses_every_panel_query(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"shadowlab:panel_{n}", "expr": expr}
                    for n, (_, expr) in enumerate(_panel_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", str(path))
    if checked is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    assert checked.returncode == 0, checked.stdout + checked.stderr
