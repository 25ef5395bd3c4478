"""PetShop adapter, scorer (through replay, the only path) and floors.

The adapter must never read ``metadata`` (how the fault was injected) nor ``root_cause`` from
``target.json``: a synthetic case with poisoned values proves it. Floors on the real dataset are
pinned slightly below the measured numbers (docs/evaluation.md), so a regression fails CI.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from evaluation import harness, petshop, scoring, suites

POISON = "POISON-7f3a"
NODES = ["front", "api", "db", "lb_remote"]


def _write_metrics(path: Path, rows: list[tuple[float, dict[str, float]]]) -> None:
    cols = [(n, "latency", "Average") for n in NODES] + [(n, "availability", "Average") for n in NODES]
    lines = ["microservice," + ",".join(c[0] for c in cols), "metric," + ",".join(c[1] for c in cols),
             "statistic," + ",".join(c[2] for c in cols), "unix_timestamp" + "," * len(cols)]
    for t, vals in rows:
        lines.append(f"{t}," + ",".join(str(vals.get(c[0], 0.1)) if c[1] == "latency" else "100.0" for c in cols))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def make_dataset(root: Path) -> Path:
    """A tiny scenario: front → api → db and front → lb_remote; the issue slows db (and its callers)."""
    sc = root / "dataset" / "mini"
    sc.mkdir(parents=True)
    header = "," + ",".join(NODES)
    adj = {"front": {"api", "lb_remote"}, "api": {"db"}}
    (sc / "graph.csv").write_text("\n".join([header] + [
        n + "," + ",".join("1.0" if m in adj.get(n, ()) else "0.0" for m in NODES) for n in NODES]) + "\n")
    t0 = 1_700_000_000.0
    normal = {"front": 0.2, "api": 0.1, "db": 0.01, "lb_remote": 0.05}
    wiggle = [1.0, 1.02, 0.98, 1.01, 0.99]
    _write_metrics(sc / "noissue" / "metrics.csv",
                   [(t0 + 300 * i, {n: v * wiggle[i % 5] for n, v in normal.items()}) for i in range(80)])
    slow = {"front": 0.7, "api": 0.6, "db": 0.51, "lb_remote": 0.05}
    ta = t0 + 300 * 200
    _write_metrics(sc / "test" / "issue_0" / "metrics.csv",
                   [(ta - 600, normal), (ta - 300, normal), (ta, slow), (ta + 300, slow), (ta + 600, normal)])
    target = {"target": {"node": "front", "metric": "latency", "agg": "Average", "timestamp": ta + 20},
              "root_cause": {"node": "db", "metric": None, "hint": POISON},
              "metadata": {"reproducibility": {"command": f"inject-delay db  # {POISON}"}, "root": POISON}}
    (sc / "test" / "issue_0" / "target.json").write_text(json.dumps(target))
    return root


def test_alert_target_reader_drops_metadata_and_root_cause(tmp_path: Path) -> None:
    data = make_dataset(tmp_path)
    (case,) = petshop.discover_cases(data)
    target = petshop.read_alert_target(case.path / "target.json")
    assert set(target) == {"node", "metric", "agg", "timestamp"}
    assert POISON not in json.dumps(target)


def test_adapter_never_reads_metadata_or_ground_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_dataset(tmp_path)
    (case,) = petshop.discover_cases(data)

    def trap(*_a: object, **_k: object) -> str:
        raise AssertionError("the adapter read ground truth")

    monkeypatch.setattr(petshop, "read_ground_truth", trap)
    bundle = petshop.case_bundle(case)
    dumped = bundle.model_dump_json()
    assert POISON not in dumped and "inject-delay" not in dumped
    assert bundle.alert.entity == "front" and bundle.alert.metric == "latency"
    assert {(e.caller, e.callee) for e in bundle.topology} == {("front", "api"), ("front", "lb_remote"), ("api", "db")}
    assert any(m.baseline for m in bundle.metrics) and any(not m.baseline for m in bundle.metrics)
    assert {o.name: o.kind for o in bundle.objects}["lb_remote"] == "remote"


def test_scorer_reads_ground_truth_and_ranks_the_synthetic_case(tmp_path: Path) -> None:
    data = make_dataset(tmp_path)
    r = scoring.petshop_case(str(data), "mini/test/issue_0")
    assert r.expected == "db" and r.ranked[0] == "db" and r.hit1 and r.hit3
    assert r.group == "mini/latency"
    # the alert is on the Average: the planner asks the average latency besides its default p99, and
    # only the average is recorded here (p99 answers no data): error rate, average latency, call graph
    assert r.extra["tool_calls_answered"] == 3, r.extra


def test_specificity_windows_see_only_the_past(tmp_path: Path) -> None:
    from actors.tools import promql
    from evaluation import replay_petshop

    data = make_dataset(tmp_path)
    sdir = petshop.scenarios(data)[0]
    idx = petshop.specificity_windows(sdir)
    assert idx and idx[0] >= 40 and all(b - a == petshop.SPEC_STEP for a, b in itertools.pairwise(idx))
    store = replay_petshop.window_replay(sdir, idx[0]).store()
    series = store.answer("prometheus_query_range", {"query": promql.latency(statistic="average")}).evidence.metrics
    window_start = min(t for m in series if not m.baseline for t in m.timestamps)
    assert series and max(t for m in series if m.baseline for t in m.timestamps) < window_start
    targets = tuple(petshop.spec_targets(data, sdir.name))
    assert targets == (("front", "latency", "Average"),)
    assert all(w.clean for i in idx for w in scoring.petshop_windows(str(sdir), i, targets))


def test_cli_contract_on_any_directory_of_the_layout(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d")
    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["eval", "--suite", "petshop", "--data", str(data), "--json", str(out), "--no-ray"])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["cases"] == 1 and doc["top1"] == 1.0 and doc["top3"] == 1.0
    assert {"case", "expected", "ranked", "hit1", "hit3", "tool_calls"} <= set(doc["per_case"][0])
    assert doc["specificity_latency"] == 1.0 and "specificity_availability" in doc
    assert doc["path"] == "replay" and doc["tool_calls"] >= 1


def test_the_direct_path_is_retired_for_petshop(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "--suite", "petshop", "--path", "direct", "--no-ray",
                                   "--data", str(make_dataset(tmp_path))])
    assert res.exit_code == 2   # no such option: PetShop runs through replay only


def test_cli_rejects_a_directory_without_the_layout(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "--suite", "petshop", "--data", str(tmp_path), "--no-ray"])
    assert res.exit_code == 1 and "PetShop data not usable" in res.stderr   # a runtime failure, not usage


def test_bad_metrics_header_is_a_layout_error(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(petshop.PetshopLayoutError):
        petshop.read_metrics(bad)


# --- the real dataset ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def petshop_result(shared_dir: Path) -> dict:
    data = shared_dir / "benchmarks" / "petshop"
    if not data.is_dir():
        pytest.skip("PetShop benchmark data absent")
    plan = suites.plan_petshop(data)
    return {**plan.meta, **plan.finish(harness.run_items(plan.items, use_ray=False))}


@pytest.mark.slow
def test_petshop_floors(petshop_result: dict) -> None:
    """Through replay (the planner asks the alert's statistic). Measured: top-1 1.00, top-3 1.00,
    specificity 0.97 / 0.97 (52 cases, 196 windows)."""
    r = petshop_result
    assert r["cases"] == 52 and r["path"] == "replay" and r["tool_calls"] >= 52
    assert r["top1"] >= 0.95 and r["top3"] >= 0.98
    for group, v in r["per_group"].items():
        assert v["top1"] >= 0.90, group
    assert r["specificity_latency"] >= 0.93
    assert r["specificity_availability"] >= 0.93


@pytest.mark.slow
def test_petshop_beats_the_published_baseline_targets(petshop_result: dict) -> None:
    assert petshop_result["top1"] > 0.65 and petshop_result["top3"] > 0.83
    assert petshop_result["specificity_latency"] > 0.33
