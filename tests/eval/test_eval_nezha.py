"""The Nezha adapter (evaluation/nezha.py): cases from the fault lists, our tools answered from a
case's window, a missing modality answered as ``no data``; plus one real case when the data is here."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evaluation import nezha, replay_run, scoring
from evaluation.suites import DEFAULT_DATA, SuiteError, plan

INJECT = datetime(2024, 3, 1, 10, 30, 0, tzinfo=UTC)
PODS = {"web-5f6585d649-aaaaa": "web", "db-api-579f59597d-bbbbb": "db-api", "mail-55fdc5b988-ccccc": "mail"}
METRIC_HEADER = ["Time", "TimeStamp", "PodName", "CpuUsage(m)", "CpuUsageRate(%)", "MemoryUsage(Mi)",
                 "PodServerLatencyP99(s)", "PodSuccessRate(%)"]


def _write_csv(path: Path, header: list[str], rows: list[list[object]], *, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    else:
        path.write_text(buf.getvalue())


def _make_day(root: Path, *, with_logs: bool) -> Path:
    day = root / "rca_data" / "2024-03-01"
    day.mkdir(parents=True)
    (day / "2024-03-01-fault_list.json").write_text(json.dumps({"10": [{
        "inject_time": INJECT.strftime("%Y-%m-%d %H:%M:%S"), "inject_timestamp": str(int(INJECT.timestamp())),
        "inject_pod": "db-api-579f59597d-bbbbb", "inject_type": "network_delay"}]}))
    t0 = int(INJECT.timestamp())
    for pod, svc in PODS.items():
        rows = []
        for i in range(-60, 3):
            late = i >= 0
            slow = late and svc in ("db-api", "web")
            lat = (0.8 if svc == "db-api" else 0.9) if slow else 0.01 + 0.0001 * (i % 3)
            rows.append(["t", t0 + 60 * i, pod, 3, 10 + (i % 2), 30, lat, 100])
        _write_csv(day / "metric" / f"{pod}_metric.csv", METRIC_HEADER, rows)
    (day / "metric" / "front_service.csv").write_text("Time,TimeStamp,ServiceName,SuccessRate(%)\nt,1,Web,100\n")
    ns = t0 * 10**9
    spans = []
    for k in range(5):
        tid = f"trace{k}"
        spans += [[tid, f"{k}a", "root", "web-5f6585d649-aaaaa", "Recv", ns, ns + 900_000_000, 900_000],
                  [tid, f"{k}b", f"{k}a", "db-api-579f59597d-bbbbb", "Query", ns, ns + 850_000_000, 850_000]]
    _write_csv(day / "trace" / "10_30_trace.csv", ["TraceID", "SpanID", "ParentID", "PodName", "OperationName",
                                                    "StartTimeUnixNano", "EndTimeUnixNano", "Duration"], spans, gz=True)
    if with_logs:
        record = json.dumps({"log": json.dumps({"message": "query timeout talking to store", "severity": "error"}),
                             "stream": "stdout"})
        _write_csv(day / "log" / "10_31_log.csv", ["Timestamp", "TimeUnixNano", "Node", "PodName", "Container",
                                                   "TraceID", "SpanID", "Log"],
                   [["x", ns + 60 * 10**9, "1.1.1.1", "db-api-579f59597d-bbbbb", "server", "trace0", "0b", record]])
    return root


def test_cases_come_from_the_fault_list_with_the_service_of_the_pod(tmp_path: Path) -> None:
    cases = nezha.discover_cases(_make_day(tmp_path, with_logs=True))
    assert [(c.name, c.service, c.fault_type, c.inject) for c in cases] == [
        ("2024-03-01/10_30", "db-api", "network_delay", INJECT)]
    assert nezha.case_alert(cases[0]).entity == "web"


def test_tools_are_answered_from_the_window(tmp_path: Path) -> None:
    case = nezha.discover_cases(_make_day(tmp_path, with_logs=True))[0]
    data = nezha.case_data(case)
    store = data.store()
    latency = store.answer("prometheus_query_range", {"query": "anything", "metric": "latency_p99"})
    assert sorted(s.entity for s in latency.evidence.metrics) == ["db-api", "mail", "web"]
    assert max(next(s for s in latency.evidence.metrics if s.entity == "db-api").values) == pytest.approx(800.0)
    spans = store.answer("tempo_search_traces", {"service": None, "limit": 20}).evidence.spans
    assert {s.entity for s in spans} == {"web", "db-api"} and {s.parent_id for s in spans if s.entity == "web"} == {""}
    logs = store.answer("loki_query_logs", {"query": '{service=~".+"}'}).evidence.logs
    assert [(ln.entity, ln.text, ln.level) for ln in logs] == [("db-api", "query timeout talking to store", "error")]
    assert data.gaps == ["log/10_30", "log/10_32", "trace/10_31", "trace/10_32"]


def test_a_missing_modality_answers_no_data(tmp_path: Path) -> None:
    case = nezha.discover_cases(_make_day(tmp_path, with_logs=False))[0]
    data = nezha.case_data(case)
    answer = data.store().answer("loki_query_logs", {"query": '{service=~".+"}', "since_minutes": 60})
    assert answer.ok and answer.summary.startswith("no data") and not answer.evidence.logs
    assert {g.split("/")[0] for g in data.gaps} == {"log", "trace"}


def test_the_planner_ranks_the_hand_built_case(tmp_path: Path) -> None:
    root = _make_day(tmp_path, with_logs=True)
    result = scoring.nezha_case(str(root), "2024-03-01/10_30")
    assert result.extra["tool_calls"] >= 1 and result.extra["tool_calls_answered"] >= 1
    assert result.ranked and result.expected == "db-api" and result.group == "network_delay"


def test_a_directory_without_fault_lists_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="Nezha data not usable"):
        plan("nezha", data=tmp_path)


REAL = DEFAULT_DATA["nezha"]


@pytest.mark.skipif(not (REAL / "rca_data").is_dir(), reason="Nezha data not present")
def test_one_real_case_is_investigated_and_ranked() -> None:
    suite = plan("nezha", data=REAL)
    assert len(suite.items) >= 50
    fn, args = suite.items[0]
    result = fn(*args)
    assert result.extra["tool_calls"] >= 1
    assert result.ranked and result.expected


def test_replay_run_reports_its_calls_for_a_real_shaped_case(tmp_path: Path) -> None:
    case = nezha.discover_cases(_make_day(tmp_path, with_logs=False))[0]
    data = nezha.case_data(case)
    run = replay_run.investigate(data.store(), integrations=data.integrations, alert=nezha.case_alert(case))
    loki = [summary for tool, _, summary in run.calls if tool == "loki_query_logs"]
    assert loki and all(s.startswith("no data") for s in loki)


def _edge_files(root: Path) -> None:
    """Call latency per caller_callee edge, measured at the caller (source) and the callee
    (destination): calls into db-api slow down by 0.5 s on the way, db-api itself sees no change."""
    metric = root / "rca_data" / "2024-03-01" / "metric"
    t0 = int(INJECT.timestamp())
    for name, slow in (("source_50.csv", 0.5), ("destination_50.csv", 0.0)):
        rows = [["t", t0 + 60 * i, 0.01 + (slow if i >= 0 else 0.0), 0.03 + (slow if i >= 0 else 0.0), 0.004]
                for i in range(-60, 3)]
        _write_csv(metric / name, ["time", "timestamp", "web_db-api", "mail_db-api", "web_mail"], rows)


def test_call_latency_is_served_per_callee_from_both_sides_of_the_call(tmp_path: Path) -> None:
    root = _make_day(tmp_path, with_logs=False)
    _edge_files(root)
    case = nezha.discover_cases(root)[0]
    store = nezha.case_data(case).store()
    client = store.answer("prometheus_query_range", {"query": "q", "metric": "call_latency_client"}).evidence.metrics
    server = store.answer("prometheus_query_range", {"query": "q", "metric": "call_latency_server"}).evidence.metrics
    assert sorted(s.entity for s in client) == ["db-api", "mail"]
    into = next(s for s in client if s.entity == "db-api")
    assert into.unit == "ms" and into.values[0] == pytest.approx(20.0) and into.values[-1] == pytest.approx(520.0)
    assert max(next(s for s in server if s.entity == "db-api").values) == pytest.approx(20.0)


def test_the_planner_asks_for_resources_and_names_the_fault_class(tmp_path: Path) -> None:
    root = _make_day(tmp_path, with_logs=False)
    _edge_files(root)
    result = scoring.nezha_case(str(root), "2024-03-01/10_30")
    asked = [c for c in result.extra["calls"] if c == "prometheus_query_range"]
    assert len(asked) >= 7    # error rate, latency, memory, cpu; network ×2, call latency ×2
    assert result.ranked[0] == "db-api" and result.extra["fault"] == "network"
    summary = scoring.summarize_nezha([result])
    assert summary["per_day"] == {"2024-03-01": {"cases": 1, "top1": 1.0, "top3": 1.0}}
    assert summary["fault_class_ok"] == 1.0 and summary["min_tool_calls"] >= 7


def test_metric_rows_are_timed_by_their_wall_clock_when_the_timestamp_column_is_off(tmp_path: Path) -> None:
    """A pod file whose ``TimeStamp`` column disagrees with its own ``Time`` (as one file of the real
    data does, by 200,000,000 s) is still served in the window: the wall clock times the row."""
    root = _make_day(tmp_path, with_logs=False)
    t0 = int(INJECT.timestamp())
    rows = [[datetime.fromtimestamp(t0 + 60 * i, UTC).strftime("%Y-%m-%d %H:%M:%S.123456789 +0000 UTC m=+1.5"),
             t0 + 60 * i + 200_000_000, "mail-55fdc5b988-ccccc", 3, 10, 30, 0.01, 100] for i in range(-60, 3)]
    _write_csv(root / "rca_data" / "2024-03-01" / "metric" / "mail-55fdc5b988-ccccc_metric.csv", METRIC_HEADER, rows)
    nezha._day_metrics.cache_clear()
    case = nezha.discover_cases(root)[0]
    cpu = nezha.case_data(case).store().answer("prometheus_query_range", {"query": "q", "metric": "cpu"})
    mail = next(s for s in cpu.evidence.metrics if s.entity == "mail")
    assert len(mail.timestamps) == 63 and mail.timestamps[-1] == t0 + 120


def test_answered_calls_count_an_error_rate_answer_as_answered() -> None:
    calls = [("prometheus_query_range", {}, "error_rate: 3 series"), ("loki_query_logs", {}, "no data: none"),
             ("tempo_search_traces", {}, "error: backend down")]
    counts = scoring._call_counts(calls)
    assert counts["tool_calls"] == 3 and counts["tool_calls_answered"] == 1
