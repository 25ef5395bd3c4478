"""PetShop through replay: recordings filed by metric kind and latency statistic, matched on the
playbook's exact PromQL; a call nothing recorded answers no data; the planner asks the statistic
the alert is on; a real case; the JSON keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.tools import promql
from cli.main import app
from evaluation import petshop, replay_petshop, replay_run, scoring, suites
from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries, ObjectState, TopologyEdge
from tests.eval.test_eval_petshop import make_dataset

T0 = 1_700_000_000.0
NORMAL = {"front": 0.2, "api": 0.1, "db": 0.01}
SLOW = {"front": 0.7, "api": 0.6, "db": 0.51}


def _series(node: str, metric: str, stat: str, values: list[float], *, baseline: bool, start: float) -> MetricSeries:
    return MetricSeries(entity=node, metric=metric, statistic=stat, unit="s" if metric == "latency" else "%",
                        timestamps=[start + 300 * i for i in range(len(values))], values=values, baseline=baseline)


def tiny_window() -> EvidenceBundle:
    """front → api → db; db slows at the alert's point and its callers follow."""
    wiggle = [1.0, 1.02, 0.98, 1.01, 0.99]
    start = T0 + 300 * 100
    metrics = []
    for node, v in NORMAL.items():
        for stat, k in (("Average", 1.0), ("p99", 1.5)):     # the p99 sits above the average
            metrics.append(_series(node, "latency", stat, [k * v * wiggle[i % 5] for i in range(60)], baseline=True,
                                   start=T0))
            metrics.append(_series(node, "latency", stat, [k * x for x in (v, v, SLOW[node], SLOW[node], v)],
                                   baseline=False, start=start))
        metrics.append(_series(node, "availability", "Average", [100.0] * 5, baseline=False, start=start))
        metrics.append(_series(node, "requests", "Sum", [10.0] * 5, baseline=False, start=start))
    return EvidenceBundle(topology=[TopologyEdge(caller="front", callee="api"), TopologyEdge(caller="api", callee="db")],
                          objects=[ObjectState(name=n, kind="service") for n in NORMAL], metrics=metrics)



def test_adapter_files_each_latency_statistic_under_its_own_query() -> None:
    replay = replay_petshop.bundle_replay(tiny_window())
    store = replay.store()
    p99 = store.answer("prometheus_query_range", {"query": promql.latency_p99(), "since_minutes": 60})
    assert p99.ok and {s.metric for s in p99.evidence.metrics} == {"latency_p99"}
    assert len(p99.evidence.metrics) == 6            # p99 only: three nodes, window and baseline
    average = store.answer("prometheus_query_range", {"query": promql.latency(statistic="average")})
    assert {s.metric for s in average.evidence.metrics} == {"latency_average"}
    # the p99 query is never answered with the Average series, nor the other way round
    assert [s.values for s in p99.evidence.metrics] != [s.values for s in average.evidence.metrics]
    assert store.answer("prometheus_query_range", {"query": promql.latency(statistic="p95")}).summary.startswith(
        "no data")
    errors = store.answer("prometheus_query_range", {"query": promql.error_rate()})
    assert {s.metric for s in errors.evidence.metrics} == {"availability"}
    graph = store.answer("prometheus_service_graph", {"metric": "anything"})
    assert {(e.caller, e.callee) for e in graph.evidence.topology} == {("front", "api"), ("api", "db")}
    assert replay.integrations == {"prometheus": {"enabled": True}}
    assert any("requests" in u for u in replay.unserved)


def test_a_query_with_no_recording_answers_no_data() -> None:
    store = replay_petshop.bundle_replay(tiny_window()).store()
    res = store.answer("prometheus_query_range", {"query": promql.memory()})
    assert res.ok and res.summary.startswith("no data") and not res.evidence.metrics


def test_recordings_follow_the_teams_metric_names() -> None:
    from config_service import MetricsSection

    istio = MetricsSection(requests="istio").schema()
    store = replay_petshop.bundle_replay(tiny_window(), istio).store()
    assert store.answer("prometheus_query_range", {"query": promql.latency_p99(istio)}).evidence.metrics
    assert store.answer("prometheus_query_range", {"query": promql.latency_p99()}).summary.startswith("no data")


def test_planner_asks_the_alerts_statistic_and_ranks_the_tiny_window() -> None:
    replay = replay_petshop.bundle_replay(tiny_window())
    alert = Alert(title="front latency (Average) breached its SLO", entity="front", metric="latency",
                  labels={"statistic": "Average"}, started_at=datetime.fromtimestamp(T0 + 300 * 102 + 20, UTC))
    run = replay_run.investigate(replay.store(), integrations=replay.integrations, alert=alert)
    asked = [a.get("metric") for t, a, _ in run.calls if t == "prometheus_query_range"]
    assert "latency_p99" in asked and "latency_average" in asked
    assert "prometheus_service_graph" in [t for t, _, _ in run.calls]
    assert run.ranking.top(1) == ["db"], run.ranking.top(3)
    # the ranker compares the family of the alert's statistic
    assert {s.metric for s in run.bundle.metrics} >= {"latency_p99", "latency_average"}


def test_an_alert_naming_no_statistic_gets_the_teams_default_only() -> None:
    replay = replay_petshop.bundle_replay(tiny_window())
    alert = Alert(title="front latency breached its SLO", entity="front", metric="latency",
                  started_at=datetime.fromtimestamp(T0 + 300 * 102 + 20, UTC))
    run = replay_run.investigate(replay.store(), integrations=replay.integrations, alert=alert)
    assert [a.get("metric") for t, a, _ in run.calls if t == "prometheus_query_range"
            and str(a.get("metric")).startswith("latency")] == ["latency_p99"]


def test_plan_and_json_keys_on_a_synthetic_dataset(tmp_path: Path) -> None:
    data = make_dataset(tmp_path)
    plan = suites.plan("petshop", data=data)
    assert plan.meta["path"] == "replay"
    assert {fn for fn, _ in plan.items} == {scoring.petshop_case, scoring.petshop_windows}
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--suite", "petshop", "--no-ray", "--data", str(data), "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["path"] == "replay" and {"cases", "top1", "top3", "per_case", "tool_calls",
                                        "specificity_latency"} <= set(doc)
    for case in doc["per_case"]:
        assert {"tool_calls", "tool_calls_answered", "calls", "ranked", "hit1"} <= set(case)
        assert case["tool_calls"] >= 1
    assert suites.plan("petshop", data=data).meta["path"] == "replay"


def test_one_real_case_through_replay(shared_dir: Path) -> None:
    data = shared_dir / "benchmarks" / "petshop"
    if not data.is_dir():
        pytest.skip("PetShop benchmark data absent")
    case = next(c for c in petshop.discover_cases(data)
                if petshop.read_alert_target(c.path / "target.json").get("metric") == "availability")
    res = scoring.petshop_case(str(data), case.name)
    assert res.extra["tool_calls"] >= 1 and res.extra["tool_calls_answered"] >= 1
    assert res.ranked, "the planner ranked no service"
