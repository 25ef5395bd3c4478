"""Nezha RCA data (IntelligentDDS/Nezha, ESEC/FSE 2023) as replay recordings for our own tools.

Layout (see the dataset's ``PROVENANCE.md``): ``rca_data/<date>/<date>-fault_list.json`` lists the
injected faults (one case each: ``inject_time``, ``inject_pod``, ``inject_type``); per date,
``metric/<pod>_metric.csv`` holds one row a minute per pod, ``trace/HH_MM_trace.csv[.gz]`` and
``log/HH_MM_log.csv`` one minute of spans and log lines each. Every rule here reads that format only:
a service is a pod name without its last two dash-separated parts (ReplicaSet hash, pod suffix), so
any system exported the same way (Nezha's Train Ticket half, other days) works unchanged.

Per case, the window is the inject minute and the two after (the files upstream evaluates on), and
metrics reach back :data:`METRIC_LOOKBACK_MIN` minutes before the injection for a normal period.
Our tools are answered like a live backend over that window:

* ``prometheus_query_range`` matched on the playbook's ``metric`` kind: ``error_rate`` ←
  100 − ``PodSuccessRate(%)``, ``latency_p99`` ← ``PodServerLatencyP99(s)`` (ms), ``memory`` ←
  ``MemoryUsage(Mi)``, ``cpu`` ← ``CpuUsageRate(%)``; one series per service;
* ``prometheus_service_graph``: the call graph of ``metric/dependency.csv`` (``Source, Target``);
* ``loki_query_logs`` (any query): the window's log lines (inner ``message`` of the JSON record);
* ``tempo_search_traces`` (any arguments): a deterministic sample of the window's traces as spans.

A missing file (``MISSING.txt``) is a backend with a gap: that tool answers ``no data``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from actors.tools.base import ToolResult
from actors.tools.replay import ReplayStore, recording
from incidentfox.evidence import Alert, EvidenceBundle, LogLine, MetricSeries, TopologyEdge, TraceSpan

WINDOW_MIN = 3                 # inject minute + 2
METRIC_LOOKBACK_MIN = 60       # the playbook asks for 60 minutes; the points before the onset are the baseline
MAX_TRACES = 200               # traces served per case (deterministic sample)
MAX_LOG_LINES = 2000
# metric kind (the playbook's ``metric`` argument) -> (column, scale, unit); error_rate is derived.
METRIC_COLUMNS: dict[str, tuple[str, float, str]] = {
    "latency_p99": ("PodServerLatencyP99(s)", 1000.0, "ms"),
    "memory": ("MemoryUsage(Mi)", 1.0, "MiB"),
    "cpu": ("CpuUsageRate(%)", 1.0, "%"),
}
SUCCESS_COLUMN = "PodSuccessRate(%)"
ERROR_LEVELS = ("error", "warning", "warn", "severe", "fatal")


class NezhaLayoutError(ValueError):
    """The directory is not laid out like Nezha's ``rca_data`` (the message says what is missing)."""


@dataclass(frozen=True)
class NezhaCase:
    name: str                  # "<date>/<HH_MM>"
    day_dir: Path              # rca_data/<date>
    inject: datetime           # UTC, from inject_time
    pod: str
    fault_type: str

    @property
    def service(self) -> str:
        return service_of(self.pod)

    def minutes(self) -> list[str]:
        return [(self.inject + timedelta(minutes=i)).strftime("%H_%M") for i in range(WINDOW_MIN)]


@dataclass
class CaseData:
    recordings: list[dict[str, Any]] = field(default_factory=list)
    integrations: dict[str, Any] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)        # modality files missing for this window

    def store(self) -> ReplayStore:
        return ReplayStore.from_records(self.recordings)


def service_of(pod: str) -> str:
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


def discover_cases(data: Path) -> list[NezhaCase]:
    root = data / "rca_data" if (data / "rca_data").is_dir() else data
    lists = sorted(root.glob("*/*-fault_list.json"))
    if not lists:
        raise NezhaLayoutError(f"no <date>/<date>-fault_list.json under {root}")
    out: list[NezhaCase] = []
    for fl in lists:
        doc = json.loads(fl.read_text())
        for _, faults in sorted(doc.items()):
            for f in faults:
                at = datetime.strptime(f["inject_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                out.append(NezhaCase(f"{fl.parent.name}/{at:%H_%M}", fl.parent, at, f["inject_pod"],
                                     f.get("inject_type", "")))
    return out


def _open(path: Path) -> Any:
    gz = path.with_name(path.name + ".gz")
    if path.is_file():
        return path.open(newline="")
    if gz.is_file():
        return gzip.open(gz, "rt", newline="")
    return None


def _float(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def metric_series(case: NezhaCase) -> dict[str, list[MetricSeries]]:
    """Per metric kind, one series per service over the look-back plus the window."""
    lo = case.inject.timestamp() - METRIC_LOOKBACK_MIN * 60
    hi = case.inject.timestamp() + WINDOW_MIN * 60
    rows_by_service: dict[str, list[dict[str, str]]] = {}
    for file in sorted((case.day_dir / "metric").glob("*_metric.csv")):
        with file.open(newline="") as fh:
            for row in csv.DictReader(fh):
                ts = _float(row.get("TimeStamp", ""))
                if ts is not None and lo <= ts < hi:
                    rows_by_service.setdefault(service_of(row.get("PodName") or file.name[:-11]), []).append(row)
    out: dict[str, list[MetricSeries]] = {}
    for svc, rows in sorted(rows_by_service.items()):
        rows.sort(key=lambda r: float(r["TimeStamp"]))
        ts = [float(r["TimeStamp"]) for r in rows]
        for kind, (col, scale, unit) in METRIC_COLUMNS.items():
            vals = [_float(r.get(col, "")) for r in rows]
            pts = [(t, v * scale) for t, v in zip(ts, vals, strict=True) if v is not None]
            if pts:
                out.setdefault(kind, []).append(MetricSeries(entity=svc, metric=kind, unit=unit,
                                                             timestamps=[p[0] for p in pts],
                                                             values=[p[1] for p in pts]))
        ok = [(t, _float(r.get(SUCCESS_COLUMN, ""))) for t, r in zip(ts, rows, strict=True)]
        # PodSuccessRate is 0 when a pod served nothing that minute: no data, not 100 % errors.
        pts = [(t, 100.0 - v) for t, v in ok if v is not None and v > 0]
        if pts:
            out.setdefault("error_rate", []).append(MetricSeries(entity=svc, metric="error_rate", unit="%",
                                                                 timestamps=[p[0] for p in pts],
                                                                 values=[p[1] for p in pts]))
    return out


def _log_text(raw: str) -> tuple[str, str]:
    """(message, level) from the container record ``{"log": ..., ...}`` whose ``log`` may be JSON."""
    try:
        inner = json.loads(raw).get("log", raw)
    except (json.JSONDecodeError, AttributeError):
        return raw.strip(), ""
    try:
        doc = json.loads(inner)
        if isinstance(doc, dict):
            level = str(doc.get("severity") or doc.get("level") or "")
            return str(doc.get("message") or doc.get("msg") or inner).strip(), level.lower()
    except (json.JSONDecodeError, TypeError):
        pass
    text = str(inner).strip()
    m = re.search(r"\b(ERROR|WARN(?:ING)?|INFO|DEBUG|SEVERE|FATAL)\b", text)
    return text, (m.group(1).lower() if m else "")


def _rows(case: NezhaCase, kind: str, gaps: list[str]) -> Iterator[dict[str, str]]:
    """The rows of the case window's ``<kind>/<minute>_<kind>.csv`` files; a missing file is a gap
    (``<kind>/<minute>`` appended to ``gaps``), as a real backend with no data for that minute."""
    for minute in case.minutes():
        fh = _open(case.day_dir / kind / f"{minute}_{kind}.csv")
        if fh is None:
            gaps.append(f"{kind}/{minute}")
            continue
        with fh:
            yield from csv.DictReader(fh)


def log_lines(case: NezhaCase, gaps: list[str]) -> list[LogLine]:
    out: list[LogLine] = []
    for row in _rows(case, "log", gaps):
        text, level = _log_text(row.get("Log", ""))
        ns = _float(row.get("TimeUnixNano", ""))
        at = datetime.fromtimestamp(ns / 1e9, UTC) if ns else None
        out.append(LogLine(entity=service_of(row.get("PodName", "")), text=text, level=level, at=at))
    # Error-level lines first (what the playbook's error search asks for), then the rest, up to the cap.
    out.sort(key=lambda ln: ln.level not in ERROR_LEVELS)
    return out[:MAX_LOG_LINES]


def _keep(trace_id: str) -> int:
    return int(hashlib.sha1(trace_id.encode()).hexdigest()[:8], 16)


def trace_spans(case: NezhaCase, gaps: list[str]) -> list[TraceSpan]:
    by_trace: dict[str, list[dict[str, str]]] = {}
    for row in _rows(case, "trace", gaps):
        by_trace.setdefault(row["TraceID"], []).append(row)
    chosen = sorted(by_trace, key=_keep)[:MAX_TRACES]
    out: list[TraceSpan] = []
    for tid in chosen:
        for r in by_trace[tid]:
            start = _float(r.get("StartTimeUnixNano", ""))
            dur = _float(r.get("Duration", "")) or 0.0
            parent = r.get("ParentID", "")
            out.append(TraceSpan(trace_id=tid, span_id=r.get("SpanID", ""),
                                 parent_id="" if parent in ("root", "") else parent,
                                 entity=service_of(r.get("PodName", "")), name=r.get("OperationName", ""),
                                 start=datetime.fromtimestamp(start / 1e9, UTC) if start else None,
                                 duration_ms=dur / 1000.0))
    return out


def call_graph(case: NezhaCase) -> list[TopologyEdge]:
    path = case.day_dir / "metric" / "dependency.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        pairs = {(r.get("Source", ""), r.get("Target", "")) for r in csv.DictReader(fh)}
    return [TopologyEdge(caller=a, callee=b, sources=["service_graph"]) for a, b in sorted(pairs) if a and b]


def case_alert(case: NezhaCase) -> Alert:
    """What paged: the entry service's latency/success (``front_service.csv``), not the culprit."""
    entry = ""
    front = case.day_dir / "metric" / "front_service.csv"
    if front.is_file():
        with front.open(newline="") as fh:
            entry = next((r.get("ServiceName", "") for r in csv.DictReader(fh)), "").lower()
    return Alert(title=f"{entry or 'entry service'}: latency / success rate anomaly", entity=entry,
                 metric="latency", started_at=case.inject)


def case_data(case: NezhaCase) -> CaseData:
    out = CaseData(integrations={"prometheus": {"enabled": True}, "loki": {"enabled": True},
                                 "tempo": {"enabled": True}})
    for kind, series in metric_series(case).items():
        out.recordings.append(recording("prometheus_query_range", {"metric": kind}, ToolResult.success(
            None, evidence=EvidenceBundle(metrics=series), summary=f"{len(series)} series")))
    edges = call_graph(case)
    if edges:
        out.recordings.append(recording("prometheus_service_graph", {}, ToolResult.success(
            None, evidence=EvidenceBundle(topology=edges), summary=f"{len(edges)} edges"), match_keys=()))
    logs = log_lines(case, out.gaps)
    if logs:
        out.recordings.append(recording("loki_query_logs", {}, ToolResult.success(
            None, evidence=EvidenceBundle(logs=logs), summary=f"{len(logs)} log lines"), match_keys=()))
    spans = trace_spans(case, out.gaps)
    if spans:
        out.recordings.append(recording("tempo_search_traces", {}, ToolResult.success(
            None, evidence=EvidenceBundle(spans=spans), summary=f"{len(spans)} spans"), match_keys=()))
    return out
