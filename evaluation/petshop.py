"""PetShop adapter: the PetShop RCA dataset (Amazon Science, CC-BY-4.0) as evidence bundles.

Layout (``<data>/dataset/<scenario>/`` or ``<data>/<scenario>/``):

* ``graph.csv``: adjacency matrix, row = caller, column = callee → the bundle's topology.
* ``noissue/metrics.csv``: normal operation → ``baseline=True`` series. Where a scenario has none,
  the ranker falls back to each case's own points before the alert.
* ``<split>/issue_N/metrics.csv``: three header rows (microservice, metric, statistic), then a
  ``unix_timestamp`` row, then one row per 5-minute point → the incident series.
* ``<split>/issue_N/target.json``: only its ``target`` (node, metric, agg, timestamp) becomes the
  alert. The file is read through :func:`read_alert_target`, which keeps ``target`` and drops
  everything else: ``metadata`` records how the fault was injected and would leak the answer, and
  ``root_cause`` is ground truth, read by the scorer alone (:func:`read_ground_truth`).

Node kinds: X-Ray names a node ``<name>_<AWS type>``, ``<name>_remote`` (an uninstrumented endpoint
seen by its caller) or ``<name>_client``; the kind goes into ``ObjectState.kind`` so the ranker can
apply its provider-neutral rule for client-side views.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries, ObjectState, TopologyEdge

SPLITS = ("train", "test")
METRIC_TYPES = ("latency", "availability")
UNITS = {"latency": "s", "availability": "%"}
WINDOW_BEFORE = 2          # a case holds two points before the alert's bucket …
WINDOW_AFTER = 2           # … the alert's bucket, and two after
SPEC_STEP = 6              # specificity windows start every 6 points (30 minutes)


class PetshopLayoutError(ValueError):
    """The directory does not have the PetShop layout."""


@dataclass(frozen=True)
class PetshopCase:
    name: str          # "<scenario>/<split>/<issue>", e.g. "low_traffic/test/issue_3"
    scenario: str
    split: str
    path: Path


@dataclass(frozen=True, eq=False)
class MetricsTable:
    columns: tuple[tuple[str, str, str], ...]   # (node, metric, statistic)
    timestamps: np.ndarray                       # shape (rows,)
    data: np.ndarray                             # shape (rows, columns), NaN where empty


def dataset_root(data_dir: Path) -> Path:
    """``data_dir/dataset`` if present, else ``data_dir`` itself."""
    root = data_dir / "dataset" if (data_dir / "dataset").is_dir() else data_dir
    if not root.is_dir() or not any((p / "graph.csv").is_file() for p in root.iterdir() if p.is_dir()):
        raise PetshopLayoutError(f"{data_dir}: no <scenario>/graph.csv found")
    return root


def discover_cases(data_dir: Path, *, split: str = "all") -> list[PetshopCase]:
    """Every ``<scenario>/<split>/issue_*`` with a metrics.csv and target.json, in a stable order."""
    root = dataset_root(data_dir)
    splits = SPLITS if split == "all" else (split,)
    cases = []
    for scenario in sorted(p for p in root.iterdir() if (p / "graph.csv").is_file()):
        for sp in splits:
            d = scenario / sp
            if not d.is_dir():
                continue
            for issue in sorted(d.iterdir(), key=lambda p: (len(p.name), p.name)):
                if (issue / "metrics.csv").is_file() and (issue / "target.json").is_file():
                    cases.append(PetshopCase(f"{scenario.name}/{sp}/{issue.name}", scenario.name, sp, issue))
    return cases


def scenarios(data_dir: Path) -> list[Path]:
    root = dataset_root(data_dir)
    return sorted(p for p in root.iterdir() if (p / "graph.csv").is_file())


def read_alert_target(path: Path) -> dict[str, Any]:
    """The alert part of a ``target.json`` and nothing else (never ``metadata``/``root_cause``)."""
    raw = json.loads(path.read_text())
    target = raw.get("target") if isinstance(raw, dict) else None
    if not isinstance(target, dict):
        raise PetshopLayoutError(f"{path}: no 'target' object")
    return {k: target[k] for k in ("node", "metric", "agg", "timestamp") if k in target}


def read_ground_truth(path: Path) -> str:
    """The injected root-cause node. For the scorer only; the adapter never calls this."""
    raw = json.loads(path.read_text())
    node = (raw.get("root_cause") or {}).get("node") if isinstance(raw, dict) else None
    return node or ""


def _float(cell: str) -> float:
    try:
        return float(cell) if cell.strip() else math.nan
    except ValueError:
        return math.nan


@lru_cache(maxsize=16)
def read_metrics(path: Path) -> MetricsTable:
    """Parse a PetShop metrics.csv (three header rows and a ``unix_timestamp`` row)."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 4 or rows[0][:1] != ["microservice"] or rows[3][:1] != ["unix_timestamp"]:
        raise PetshopLayoutError(f"{path}: expected microservice/metric/statistic/unix_timestamp headers")
    columns = tuple(zip(rows[0][1:], rows[1][1:], rows[2][1:], strict=False))
    body = [r for r in rows[4:] if r and r[0].strip()]
    width = len(columns)
    data = np.full((len(body), width), np.nan)
    for i, r in enumerate(body):
        cells = r[1:width + 1]
        data[i, :len(cells)] = [_float(c) for c in cells]
    return MetricsTable(columns=columns, timestamps=np.array([float(r[0]) for r in body]), data=data)


@lru_cache(maxsize=8)
def read_graph(path: Path) -> tuple[TopologyEdge, ...]:
    """graph.csv → caller → callee edges (row = caller)."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    callees = rows[0][1:]
    edges = []
    for row in rows[1:]:
        for callee, cell in zip(callees, row[1:], strict=False):
            if _float(cell) and not math.isnan(_float(cell)):
                edges.append(TopologyEdge(caller=row[0], callee=callee))
    return tuple(edges)


def node_kind(node: str) -> str:
    """X-Ray naming → a kind: ``remote``, ``client``, the AWS type (``AWS::ECS::Fargate``) or ``service``."""
    if node.endswith("_remote"):
        return "remote"
    if node.endswith("_client"):
        return "client"
    if "_AWS::" in node:
        return "AWS::" + node.split("_AWS::", 1)[1]
    if node.startswith("AWS::"):
        return node
    return "service"


def table_series(table: MetricsTable, rows: slice, *, baseline: bool, metric: str = "") -> list[MetricSeries]:
    ts_all, block = table.timestamps[rows], table.data[rows]
    out = []
    for j, (node, m, stat) in enumerate(table.columns):
        if metric and m != metric:
            continue
        col = block[:, j]
        ok = ~np.isnan(col)
        if ok.any():
            out.append(MetricSeries(entity=node, metric=m, statistic=stat, unit=UNITS.get(m, ""),
                                    timestamps=ts_all[ok].tolist(), values=col[ok].tolist(), baseline=baseline))
    return out


@lru_cache(maxsize=8)
def _baseline(scenario_dir: Path) -> tuple[MetricSeries, ...]:
    path = scenario_dir / "noissue" / "metrics.csv"
    return tuple(table_series(read_metrics(path), slice(None), baseline=True)) if path.is_file() else ()


def node_objects(edges: tuple[TopologyEdge, ...], table: MetricsTable) -> list[ObjectState]:
    """One object per node, carrying its X-Ray kind."""
    nodes = sorted({e.caller for e in edges} | {e.callee for e in edges} | {c[0] for c in table.columns})
    return [ObjectState(name=n, kind=node_kind(n)) for n in nodes]


def _alert(target: dict[str, Any]) -> Alert:
    node, metric, agg = target.get("node", ""), target.get("metric", ""), target.get("agg", "")
    at = datetime.fromtimestamp(float(target["timestamp"]), UTC) if "timestamp" in target else None
    return Alert(title=f"{node} {metric} ({agg}) breached its SLO", entity=node, metric=metric,
                 started_at=at, labels={"statistic": agg} if agg else {})


def case_bundle(case: PetshopCase) -> EvidenceBundle:
    """The evidence bundle of one PetShop issue: topology, incident series, baseline, alert."""
    scenario_dir = case.path.parent.parent
    edges = read_graph(scenario_dir / "graph.csv")
    table = read_metrics(case.path / "metrics.csv")
    return EvidenceBundle(
        alert=_alert(read_alert_target(case.path / "target.json")),
        topology=list(edges),
        objects=node_objects(edges, table),
        metrics=[*table_series(table, slice(None), baseline=False), *_baseline(scenario_dir)],
    )


def specificity_windows(scenario_dir: Path, *, step: int = SPEC_STEP) -> list[int]:
    """Alert-point indices of the specificity windows over ``noissue`` (second half, every ``step``)."""
    path = scenario_dir / "noissue" / "metrics.csv"
    if not path.is_file():
        return []
    n = len(read_metrics(path).timestamps)
    return list(range(max(n // 2, WINDOW_BEFORE + 1), n - WINDOW_AFTER, step))


def window_alert(scenario_dir: Path, index: int, *, node: str, metric: str, statistic: str) -> Alert:
    """The alert of a specificity window: ``node``'s ``metric`` (``statistic``) at point ``index``,
    the shape of an issue's alert (:func:`spec_targets` gives the scenario's own targets)."""
    table = read_metrics(scenario_dir / "noissue" / "metrics.csv")
    return _alert({"node": node, "metric": metric, "agg": statistic, "timestamp": float(table.timestamps[index])})


def spec_targets(data_dir: Path, scenario: str) -> list[tuple[str, str, str]]:
    """The (node, metric, agg) alert targets used by a scenario's issues, from their alert parts."""
    out = set()
    for case in discover_cases(data_dir):
        if case.scenario == scenario:
            t = read_alert_target(case.path / "target.json")
            out.add((t.get("node", ""), t.get("metric", ""), t.get("agg", "")))
    return sorted(out)
