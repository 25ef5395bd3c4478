"""HolmesGPT adapter (investigate shape): recording parsers on small texts, labels, independence
from names, floors through replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from evaluation import harness, holmesgpt, scoring, suites
from evaluation.recordings import kubectl
from evaluation.recordings.findings import parse_finding
from evaluation.recordings.prometheus import parse_prometheus
from evaluation.recordings.traces import parse_trace_tree
from tests.eval.holmes_kit import DESCRIBE, LABELS


def test_describe_pod_becomes_state_and_events() -> None:
    (obj,), events = kubectl.parse_describe(DESCRIBE, kind="pod")
    assert (obj.namespace, obj.kind, obj.name) == ("shop", "pod", "web-5d98ffcfd-tz4nc")
    assert obj.reasons == ["CrashLoopBackOff", "OOMKilled"] and obj.restarts == 4 and obj.ready == "0/1"
    assert obj.owner == "deployment/web"
    assert obj.extra["containers"][0]["limits"] == {"memory": "64Mi"}
    (ev,) = events
    assert (ev.type, ev.reason, ev.count) == ("Warning", "BackOff", 9)


def test_get_table_rows_carry_status_restarts_and_owner() -> None:
    text = ("NAME                    READY   STATUS             RESTARTS      AGE   LABELS\n"
            "job-a-2lhkn             0/1     Error              0             5m    job-name=job-a\n"
            "api-6f5cbdf85-c5fsf     0/1     CrashLoopBackOff   12 (1m ago)   1h    app=api,pod-template-hash=6f5cbdf85\n")
    rows = {o.name: o for o in kubectl.parse_get_table(text, kind="pod", namespace="ns")}
    assert rows["job-a-2lhkn"].owner == "job/job-a" and rows["job-a-2lhkn"].reasons == ["Error"]
    assert rows["api-6f5cbdf85-c5fsf"].restarts == 12 and rows["api-6f5cbdf85-c5fsf"].owner == "deployment/api"
    assert all(o.extra["source"] == "listing" for o in rows.values())


def test_recording_is_split_and_json_logs_keep_level_and_time(tmp_path: Path) -> None:
    rec = tmp_path / "logs.txt"
    rec.write_text(json.dumps({"tool_name": "fetch_pod_logs", "match_params": {"pod_name": "api-1", "namespace": "ns"}})
                   + "\n" + json.dumps({"status": "success", "params": {}}) + "\nstdout:\n"
                   + '{"level":50,"time":1742277264243,"msg":"fetch failed","err":{"type":"TypeError","message":"boom"}}\n'
                   + "INFO: started\n\nstderr:\n")
    r = holmesgpt.read_recording(rec)
    assert r is not None and r.tool == "fetch_pod_logs" and r.params["pod_name"] == "api-1"
    logs = holmesgpt.recording_evidence(r).logs
    assert [(ln.entity, ln.level) for ln in logs] == [("ns/pod/api-1", "error"), ("ns/pod/api-1", "info")]
    assert logs[0].text == "fetch failed: TypeError: boom" and logs[0].at is not None


def test_failed_log_tool_output_is_not_application_logs(tmp_path: Path) -> None:
    rec = tmp_path / "prev.txt"
    rec.write_text(json.dumps({"tool_name": "kubectl_previous_logs", "match_params": {"pod_name": "p"}}) + "\n"
                   + json.dumps({"status": "error", "error": "not found"}) + "\nError from server (BadRequest)\n")
    r = holmesgpt.read_recording(rec)
    assert r is not None and holmesgpt.recording_evidence(r).logs == []


def test_finding_tables_become_events() -> None:
    finding = yaml.safe_dump({
        "subject_namespace": "ns", "subject_type": "deployment", "subject_name": "gpu", "description": "not ready",
        "evidence": [{"enrichment_type": "k8s_events", "data": json.dumps([
            {"type": "markdown", "data": "**Pod events for gpu-659d4dd659-cq4kq:**"},
            {"type": "table", "data": {"headers": ["reason", "type", "time", "message"],
                                       "rows": [["FailedScheduling", "Warning", 1737957030379.0, "Insufficient nvidia.com/gpu"]]}}])},
            {"enrichment_type": "pending_pod_info", "data": json.dumps([
                {"type": "table", "data": {"headers": ["label", "value"], "rows": [["Pod", "gpu-x"], ["Reason", "no nodes"]]}}])}],
    })
    b = parse_finding(finding)
    assert [(e.kind, e.name, e.reason) for e in b.events] == [("pod", "gpu-659d4dd659-cq4kq", "FailedScheduling"),
                                                               ("pod", "gpu-x", "FailedScheduling")]
    assert b.events[0].at is not None and b.notes == ["finding: not ready"]


def test_trace_tree_links_parents_and_reads_attributes() -> None:
    text = ("├─ /api (backend) - 7000.00ms (span_id=a1)\n"
            "│  Resource labels: k8s.namespace.name='shop' k8s.deployment.name='backend'\n"
            "  ├─ postgres.query (fraud) - 6500.00ms (span_id=b2)\n"
            "  │  Datetime: start=2025-03-18T05:55:55.466Z end=2025-03-18T05:56:01.675Z\n"
            "  │  Attributes:\n"
            "  │    db.statement: SELECT 1\n")
    root, child = parse_trace_tree(text, trace_id="t")
    assert root.entity == "shop/deployment/backend" and root.parent_id == ""
    assert child.parent_id == "a1" and child.attributes["db.statement"] == "SELECT 1" and child.start is not None


def test_prometheus_matrix_becomes_series() -> None:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"namespace": "shop", "deployment": "api"}, "values": [[1, "0.1"], [2, "0.4"]]}]}}
    (s,) = parse_prometheus(json.dumps(doc), query="histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))")
    assert s.entity == "shop/deployment/api" and s.metric == "latency" and s.values == [0.1, 0.4]


# --- labels and the real recordings --------------------------------------------------------------

@pytest.fixture(scope="module")
def holmes_dir(shared_dir: Path) -> Path:
    d = shared_dir / "benchmarks" / "holmesgpt-investigate"
    if not d.is_dir():
        pytest.skip("HolmesGPT fixtures absent")
    return d


def test_labels_quote_each_cases_expected_output(holmes_dir: Path) -> None:
    labels = scoring.load_labels(LABELS)
    cases = [c.name for c in holmesgpt.discover_cases(holmes_dir)]
    assert sorted(labels) == sorted(cases)
    for name, label in labels.items():
        expected = yaml.safe_load((holmes_dir / name / "test_case.yaml").read_text())["expected_output"]
        assert label["expected_output"] == (expected if isinstance(expected, list) else [expected])
        assert label["negative"] == (label["culprit"] is None)
    assert labels["13_Watchdog"]["negative"] is True


def test_holmesgpt_floors(holmes_dir: Path) -> None:
    """Measured through replay: 8/8 positives with culprit and key phrases, the negative clean."""
    plan = suites.plan_holmesgpt(holmes_dir, labels=LABELS)
    r = plan.finish(harness.run_items(plan.items, use_ray=False))
    assert r["positives"] == 8 and r["positives_passed"] >= 8
    assert r["negatives"] == 1 and r["negatives_clean"] == 1
    watchdog = next(c for c in r["per_case"] if c["case"] == "13_Watchdog")
    assert watchdog["ranked"] == [] and watchdog["no_incident"]


def test_ranking_does_not_depend_on_case_names_or_expected_answers(holmes_dir: Path, tmp_path: Path) -> None:
    labels = scoring.load_labels(LABELS)
    for i, name in enumerate(("02_crashloop_backoff", "14_tempo")):
        renamed = tmp_path / f"case_{i}"
        shutil.copytree(holmes_dir / name, renamed, ignore=shutil.ignore_patterns("test_case.yaml"))
        r = scoring.holmes_replay_case(str(renamed), holmesgpt.INVESTIGATE, labels[name])
        assert r.hit1 and r.extra["phrase_ok"], name


def test_missing_label_skips_the_case_and_reports_it(holmes_dir: Path, tmp_path: Path) -> None:
    doc = json.loads(LABELS.read_text())
    del doc["cases"]["14_tempo"]
    partial = tmp_path / "labels.json"
    partial.write_text(json.dumps(doc))
    plan = suites.plan_holmesgpt(holmes_dir, labels=partial)
    assert plan.unlabelled == ["14_tempo"] and len(plan.items) == 8
    assert plan.finish([])["unlabelled"] == ["14_tempo"]
