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
import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from actors.tools.base import ToolResult
from actors.tools.bounds import EVIDENCE_CAPS
from actors.tools.replay import ReplayStore, recording
from incidentfox.evidence import Alert, EvidenceBundle, LogLine, MetricSeries, TopologyEdge, TraceSpan

WINDOW_MIN = 3                 # inject minute + 2
METRIC_LOOKBACK_MIN = 60       # the playbook asks for 60 minutes; the points before the onset are the baseline
MAX_TRACES = 200               # traces served per case (deterministic sample)
MAX_SPANS = EVIDENCE_CAPS["spans"]   # what one tool result carries; more would be cut by the executor
MAX_LOG_LINES = EVIDENCE_CAPS["logs"]
# metric kind (the playbook's ``metric`` argument) -> (column, scale, unit); error_rate is derived.
METRIC_COLUMNS: dict[str, tuple[str, float, str]] = {
    "latency_p99": ("PodServerLatencyP99(s)", 1000.0, "ms"),
    "memory": ("MemoryUsage(Mi)", 1.0, "MiB"),
    "cpu": ("CpuUsageRate(%)", 1.0, "%"),
    "network_transmit": ("NetworkTransmitBytes", 1.0, "B"),
    "network_receive": ("NetworkReceiveBytes", 1.0, "B"),
}
# Call latency into each callee, as its callers measure it and as it measures itself (median, s).
CALL_LATENCY_FILES = {"call_latency_client": "source_50.csv", "call_latency_server": "destination_50.csv"}
SUCCESS_COLUMN = "PodSuccessRate(%)"
# The dataset's fault labels as the fault classes the ranking names (scoring only, never a rule).
FAULT_CLASS = {"cpu_contention": "cpu", "cpu_consumed": "cpu", "network_delay": "network", "return": "code",
               "exception": "code"}
ERROR_LEVELS = ("error", "warning", "warn", "severe", "fatal")
_GO_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d{4})")


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


@dataclass(frozen=True)
class _Table:
    """One service's (or callee's) per-minute rows: sorted timestamps and one array per column."""

    ts: np.ndarray
    cols: dict[str, np.ndarray]


def _columns(rows: list[list[str]], header: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    def num(v: str) -> float:
        f = _float(v)
        return np.nan if f is None else f

    arr = np.array([[num(v) for v in r] for r in rows], dtype=float).reshape(len(rows), len(header))
    return arr[:, 0], {h: arr[:, i] for i, h in enumerate(header)}


def _row_time(row: list[str], time_at: int | None, stamp: str) -> str:
    """A metric row's epoch seconds from its wall clock (``Time``, a Go time string such as
    ``2022-08-22 03:51:19.607 +0000 UTC m=+0.11``), else its ``TimeStamp``. The wall clock is what
    every file of a day agrees on; a ``TimeStamp`` column can be off (one pod file of 2022-08-22 is
    200,000,000 s ahead of its own ``Time`` column and of every other file), which would silently
    drop that pod from every window, as no real TSDB would."""
    if time_at is not None:
        m = _GO_TIME.match(row[time_at])
        if m:
            # whole seconds, as ``TimeStamp`` (and the other files' ``timestamp``) count them
            return str(datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S %z").timestamp())
    return stamp


@functools.lru_cache(maxsize=4)
def _day_metrics(metric_dir: str) -> dict[str, _Table]:
    """Every pod file of a day's ``metric/`` folder, read once per process, per service."""
    out: dict[str, _Table] = {}
    for file in sorted(Path(metric_dir).glob("*_metric.csv")):
        with file.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            if "TimeStamp" not in header:
                continue
            keep = ["TimeStamp", *(c for c in header if c not in ("TimeStamp", "Time", "PodName"))]
            idx = [header.index(c) for c in keep]
            pod_at = header.index("PodName") if "PodName" in header else None
            time_at = header.index("Time") if "Time" in header else None
            rows = [r for r in reader if len(r) == len(header)]
        svc = service_of(rows[0][pod_at] if rows and pod_at is not None else file.name[:-11])
        ts, cols = _columns([[_row_time(r, time_at, r[idx[0]]), *(r[i] for i in idx[1:])] for r in rows], keep)
        order = np.argsort(ts)
        out[svc] = _Table(ts[order], {c: v[order] for c, v in cols.items()})
    return out


@functools.lru_cache(maxsize=8)
def _day_call_latency(path: str) -> dict[str, _Table]:
    """``source_50.csv`` / ``destination_50.csv`` (one ``caller_callee`` column per edge) as one
    series per callee: the mean over its callers of each minute's latency (s)."""
    file = Path(path)
    if not file.is_file():
        return {}
    with file.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [r for r in reader if len(r) == len(header)]
    if "timestamp" not in header or not rows:
        return {}
    ts_at = header.index("timestamp")
    ts, cols = _columns([[r[ts_at], *(r[i] for i in range(len(header)) if i != ts_at and header[i] != "time")]
                         for r in rows], ["timestamp", *(h for h in header if h not in ("timestamp", "time"))])
    by_callee: dict[str, list[np.ndarray]] = {}
    for edge, values in cols.items():
        if "_" in edge and edge != "timestamp":
            by_callee.setdefault(edge.rsplit("_", 1)[1], []).append(values)
    order = np.argsort(ts)
    out = {}
    for callee, parts in by_callee.items():
        stacked = np.vstack(parts)[:, order]
        seen = ~np.isnan(stacked)
        mean = np.where(seen.any(axis=0), np.nansum(stacked, axis=0) / np.maximum(seen.sum(axis=0), 1), np.nan)
        out[callee] = _Table(ts[order], {"latency": mean})
    return out


def _series(kind: str, svc: str, ts: np.ndarray, values: np.ndarray, unit: str) -> MetricSeries | None:
    ok = ~np.isnan(values)
    if not ok.any():
        return None
    return MetricSeries(entity=svc, metric=kind, unit=unit, timestamps=ts[ok].tolist(), values=values[ok].tolist())


def metric_series(case: NezhaCase) -> dict[str, list[MetricSeries]]:
    """Per metric kind, one series per service over the look-back plus the window."""
    lo = case.inject.timestamp() - METRIC_LOOKBACK_MIN * 60
    hi = case.inject.timestamp() + WINDOW_MIN * 60
    out: dict[str, list[MetricSeries]] = {}

    def add(kind: str, series: MetricSeries | None) -> None:
        if series is not None:
            out.setdefault(kind, []).append(series)

    for svc, table in sorted(_day_metrics(str(case.day_dir / "metric")).items()):
        cut = (table.ts >= lo) & (table.ts < hi)
        ts = table.ts[cut]
        for kind, (col, scale, unit) in METRIC_COLUMNS.items():
            if col in table.cols:
                add(kind, _series(kind, svc, ts, table.cols[col][cut] * scale, unit))
        if SUCCESS_COLUMN in table.cols:
            ok = table.cols[SUCCESS_COLUMN][cut]
            # PodSuccessRate is 0 when a pod served nothing that minute: no data, not 100 % errors.
            add("error_rate", _series("error_rate", svc, ts, np.where(ok > 0, 100.0 - ok, np.nan), "%"))
    for kind, file in CALL_LATENCY_FILES.items():
        for callee, table in sorted(_day_call_latency(str(case.day_dir / "metric" / file)).items()):
            cut = (table.ts >= lo) & (table.ts < hi)
            add(kind, _series(kind, callee, table.ts[cut], table.cols["latency"][cut] * 1000.0, "ms"))
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


def _trace_lines(case: NezhaCase, gaps: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The window's trace files as (header, raw lines per trace id). ``TraceID`` is the first column,
    so a line is filed without parsing it; only the sampled traces' lines are parsed later."""
    header: list[str] = []
    by_trace: dict[str, list[str]] = {}
    for minute in case.minutes():
        fh = _open(case.day_dir / "trace" / f"{minute}_trace.csv")
        if fh is None:
            gaps.append(f"trace/{minute}")
            continue
        with fh:
            first = fh.readline()
            header = header or next(csv.reader([first]), [])
            for line in fh:
                tid, sep, _ = line.partition(",")
                if sep:
                    by_trace.setdefault(tid.strip('"'), []).append(line)
    return header, by_trace


def trace_spans(case: NezhaCase, gaps: list[str]) -> list[TraceSpan]:
    """A deterministic sample of the window's traces (by a hash of the trace id), whole traces only,
    up to the span cap a tool result carries (:data:`actors.tools.bounds.EVIDENCE_CAPS`)."""
    header, by_trace = _trace_lines(case, gaps)
    if not header or header[0] != "TraceID":
        return []
    chosen: list[str] = []
    room = MAX_SPANS
    for tid in sorted(by_trace, key=_keep):
        if len(by_trace[tid]) <= room:
            chosen.append(tid)
            room -= len(by_trace[tid])
        if room <= 0 or len(chosen) >= MAX_TRACES:
            break
    out: list[TraceSpan] = []
    for tid in chosen:
        for r in csv.DictReader(by_trace[tid], fieldnames=header):
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
