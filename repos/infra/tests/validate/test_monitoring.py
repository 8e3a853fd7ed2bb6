"""Prometheus configuration, alert rules (with their unit tests) and Grafana dashboards,
checked with promtool and against the metric names the API and web app really export."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import INFRA, REPOS, run, tool

pytestmark = pytest.mark.validate

MONITORING = INFRA / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
METRIC_SOURCES = {
    "plantops_api_": REPOS / "inference-api/src/plantops_inference_api/metrics.py",
    "plantops_webapp_": REPOS / "webapp/src/plantops_webapp/metrics.py",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def exported_metrics() -> set[str]:
    """Metric names defined in the components' metrics modules (with the series suffixes)."""
    names: set[str] = set()
    for source in METRIC_SOURCES.values():
        text = source.read_text()
        for kind, name in re.findall(r"(Counter|Histogram|Gauge|Info)\(\s*\"(\w+)\"", text):
            if kind == "Counter":
                names.add(name if name.endswith("_total") else name + "_total")
            elif kind == "Histogram":
                names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
            elif kind == "Info":
                names.add(name + "_info")
            else:
                names.add(name)
    return names


def queried_metrics(expr: str) -> set[str]:
    return {m for m in re.findall(r"\bplantops_\w+", expr)}


def panel_exprs(dashboard: Path) -> list[tuple[str, str]]:
    data = json.loads(dashboard.read_text())
    return [(p["title"], t["expr"]) for p in data["panels"] for t in p["targets"]]


def test_compose_prometheus_config_is_valid():
    result = run([tool("promtool"), "check", "config", PROMETHEUS / "prometheus.yml"])
    assert result.returncode == 0, result.output


def test_kubernetes_scrape_config_keeps_annotated_pods():
    # Debian's promtool is built without Kubernetes discovery: check the structure here.
    config = yaml.safe_load((PROMETHEUS / "kubernetes.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]


def test_rules_are_valid():
    result = run([tool("promtool"), "check", "rules", *PROMETHEUS.glob("rules/*.yml")])
    assert result.returncode == 0, result.output


def test_alert_unit_tests_pass():
    result = run([tool("promtool"), "test", "rules", *PROMETHEUS.glob("tests/*.yml")])
    assert result.returncode == 0, result.output


def test_alert_unit_tests_catch_a_broken_threshold(tmp_path):
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    rules = copy / "rules" / "plantops.yml"
    rules.write_text(
        rules.read_text().replace(
            "plantops:api_error_ratio:rate5m > 0.01", "plantops:api_error_ratio:rate5m > 0.05"
        )
    )
    result = run([tool("promtool"), "test", "rules", copy / "tests" / "plantops_test.yml"])
    assert result.returncode != 0


def test_rules_and_dashboards_query_only_exported_metrics():
    exported = exported_metrics()
    recorded = {
        rule["record"]
        for group in yaml.safe_load((PROMETHEUS / "rules/plantops.yml").read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    exprs = [
        rule["expr"]
        for group in yaml.safe_load((PROMETHEUS / "rules/plantops.yml").read_text())["groups"]
        for rule in group["rules"]
    ] + [expr for d in DASHBOARDS for _, expr in panel_exprs(d)]
    for expr in exprs:
        unknown = queried_metrics(expr) - exported - recorded
        assert not unknown, f"{expr!r} queries {unknown}, which no component exports"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(dashboard: Path):
    data = json.loads(dashboard.read_text())
    assert data["uid"] and data["title"].startswith("PlantOps")
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in data["panels"]:
        assert panel["datasource"]["uid"] == "plantops-prometheus", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"


def test_provisioned_datasource_is_the_one_dashboards_use():
    provisioning = MONITORING / "grafana/provisioning/datasources/prometheus.yml"
    uids = {d["uid"] for d in yaml.safe_load(provisioning.read_text())["datasources"]}
    assert uids == {"plantops-prometheus"}
