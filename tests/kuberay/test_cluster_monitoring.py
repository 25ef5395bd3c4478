"""Monitoring beside the RayService: the PodMonitor and PrometheusRule validate against the
hand-written Prometheus Operator schemas (cluster/crd_schemas/monitoring.py), the PodMonitor scrapes
ports the Ray pods declare and the NetworkPolicies admit, every alert expression names only
declared metrics, and every alert links its runbook section in docs/operations.md."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from cluster.render import render
from cluster.validate import validate_objects
from incidentfox.metrics import (
    DELIVERIES_UNDISPATCHED,
    DISPATCH_ATTEMPTS_TOTAL,
    REPORT_JOBS_TOTAL,
    RUNS_TOTAL,
    WORKER_GROUP_CHANGES_TOTAL,
    exported_names,
)
from tests.kuberay.manifest_walk import labels_match, pod_templates
from tests.kuberay.test_grafana_dashboard import _metric_names

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
# Not ours: kube-state-metrics' Job series (the report RayJob's submitter Job), named in the docs.
EXTERNAL_METRICS = {"kube_job_status_failed"}
PROMQL_WORDS = {"clamp_min", "and", "or", "unless", "on", "ignoring", "group_left", "group_right",
                "without", "count", "humanizePercentage"}


def find(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def alerts() -> list[dict[str, Any]]:
    rule = find(render(overlay="eks"), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_monitoring_objects_validate_and_typos_fail() -> None:
    objects = render(overlay="eks")
    assert validate_objects(objects) == []
    pm, pr = copy.deepcopy(find(objects, "PodMonitor")), copy.deepcopy(find(objects, "PrometheusRule"))
    pm["spec"]["podMetricEndpoints"] = pm["spec"].pop("podMetricsEndpoints")
    pr["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    pr["spec"]["groups"][0]["rules"][0]["annotation"] = {}
    problems = "\n".join(validate_objects([pm, pr]))
    assert "'podMetricEndpoints' was unexpected" in problems and "'podMetricsEndpoints' is a required" in problems
    assert "'ten minutes' does not match" in problems
    assert "'annotation' was unexpected" in problems


def test_local_kind_has_no_prometheus_operator_objects() -> None:
    assert not [o for o in render(overlay="local-kind") if o["apiVersion"].startswith("monitoring.coreos.com")]


def test_every_alert_names_only_declared_metrics() -> None:
    known = {n for names in exported_names().values() for n in names} | EXTERNAL_METRICS
    used: set[str] = set()
    for rule in alerts():
        names = _metric_names(rule["expr"]) - PROMQL_WORDS
        names = {n for n in names if not re.fullmatch(r"\d+", n)}
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']}: {names - known}"
        used |= names
    # The platform's own failure modes are each covered.
    for metric in (RUNS_TOTAL, DELIVERIES_UNDISPATCHED, DISPATCH_ATTEMPTS_TOTAL, REPORT_JOBS_TOTAL,
                   WORKER_GROUP_CHANGES_TOTAL):
        assert set(metric.exported()) & used, metric.name


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_section() -> None:
    headings = {_slug(h) for h in re.findall(r"^#{2,4} (.+)$", OPERATIONS.read_text(), re.MULTILINE)}
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("/docs/operations.md"), url
        assert anchor == rule["alert"].lower() and anchor in headings, f"{rule['alert']}: no section {anchor}"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("port", ["metrics", "as-metrics", "dash-metrics"])
def test_pod_monitor_ports_are_declared_and_admitted(port: str) -> None:
    objects = render(overlay="eks")
    pm = find(objects, "PodMonitor")
    assert port in [e["port"] for e in pm["spec"]["podMetricsEndpoints"]]
    numbers = {p["containerPort"] for _, t, _ in pod_templates(objects)
               if labels_match(pm["spec"]["selector"], t["metadata"]["labels"])
               for c in t["spec"]["containers"] for p in c.get("ports", []) if p["name"] == port}
    assert len(numbers) == 1, port
    scraped = [w for w, t, _ in pod_templates(objects)
               if labels_match(pm["spec"]["selector"], t["metadata"]["labels"])]
    if port == "metrics":   # every Ray pod, each declaring the port
        assert len(scraped) == 4
        for _, t, _ in pod_templates(objects):
            if labels_match(pm["spec"]["selector"], t["metadata"]["labels"]):
                assert any(p["name"] == "metrics" for p in t["spec"]["containers"][0]["ports"])
    (policy,) = [o for o in objects if o["kind"] == "NetworkPolicy"
                 and o["metadata"]["name"] == "incidentfox-operator-and-metrics"]
    from_monitoring = [r for r in policy["spec"]["ingress"]
                       if r["from"][0].get("namespaceSelector", {}).get("matchLabels", {})
                       .get("kubernetes.io/metadata.name") == "monitoring"]
    assert numbers.pop() in {p["port"] for r in from_monitoring for p in r["ports"]}
