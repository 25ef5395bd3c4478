"""PetShop cases and specificity windows as replay recordings for our own tools (:mod:`actors.tools.replay`).

PetShop records, per X-Ray node, a latency and an availability series in several statistics
(CloudWatch style), plus the call graph. A team with that data exposes it as request metrics and a
service graph, so each window's evidence (built by :mod:`evaluation.petshop`, which never reads how
the fault was injected) is filed under the tool of ours that returns that kind of evidence, by
**metric kind**, never by service name:

* ``availability`` series (``Average``, the one statistic PetShop has) → ``prometheus_query_range``
  for the playbook's error-rate query, kept as recorded (percent of successful requests, lower is
  worse). Turning it into an error ratio (``1 - availability``) is what a Prometheus would hold, but
  the ranker then scores a flat-zero baseline against its own jumps and availability specificity
  falls from 0.92 to 0.42 (measured on a quarter of the windows), so the series keeps its kind;
* ``latency`` series, one recording per statistic PetShop holds (``Average``, ``p50``, ``p90``,
  ``p95``, ``p99``) → ``prometheus_query_range`` for the latency query *of that statistic*
  (:func:`actors.tools.promql.latency`: the average is the histogram's ``_sum`` rate over its
  ``_count`` rate, a quantile is ``histogram_quantile``), named ``latency_<statistic>`` as the
  Prometheus tool names a series by the call's ``metric``. The planner asks p99 by default and, for
  an alert on the average (PetShop's latency alerts are), the average as well
  (:mod:`incidentfox.latency_statistic` reads it from the alert's ``statistic`` label). A query is
  only ever answered with the statistic it asks for: the p99 query never gets the Average series;
each matched on ``query`` exactly, computed with :mod:`actors.tools.promql` from the team's
``investigation.metrics`` (so the recordings follow whatever names the team configures). An answer
holds the window's points and, as ``baseline``, the normal-operation points the tool's
``baseline_offset_hours`` comparison brings back (``noissue`` for a case; only the points before the
window for a specificity window);
* the call graph (edges and X-Ray node kinds) → ``prometheus_service_graph`` (``match`` empty).

Any other call (memory, follow-up queries…) answers ``no data``. Series of another metric kind have
no query of ours and are listed in :attr:`PetshopReplay.unserved`. The team has Prometheus only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.tools import promql
from actors.tools.base import ToolResult
from actors.tools.replay import Recording, ReplayStore
from config_service import MetricSchema
from evaluation import petshop
from incidentfox.evidence import EvidenceBundle, MetricSeries
from incidentfox.latency_statistic import normalize

INTEGRATIONS: dict[str, Any] = {"prometheus": {"enabled": True}}
ERROR_SIGNAL: promql.Signal = "error_rate"     # the query availability answers (one statistic: Average)


def answer_series(s: MetricSeries, statistic: str = "") -> MetricSeries:
    """``s`` as the Prometheus tool names a series of that query: latency under
    ``latency_<statistic>`` (the tool names series by the call's ``metric``); availability keeps its
    name, unit and direction (see the module docstring for why it is not turned into an error ratio)."""
    if s.metric == "latency":
        return MetricSeries.model_construct(**{**s.__dict__, "metric": promql.latency_metric(statistic),
                                                 "statistic": ""})   # already validated: no copy
    return s


@dataclass
class PetshopReplay:
    # Recordings as objects, not JSON documents: a case's series would be dumped and validated once
    # more for nothing (:func:`actors.tools.replay.recording` gives a call's on-disk form).
    recordings: list[Recording] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)
    integrations: dict[str, Any] = field(default_factory=lambda: dict(INTEGRATIONS))

    def store(self) -> ReplayStore:
        return ReplayStore(tuple(self.recordings))


def bundle_replay(bundle: EvidenceBundle, schema: MetricSchema = promql.DEFAULT_SCHEMA) -> PetshopReplay:
    """Recordings answering the planner's metric and call-graph tools from ``bundle``'s evidence
    (its alert is not recorded: the planner is given the alert)."""
    out = PetshopReplay()
    latency: dict[str, list[MetricSeries]] = {}
    for s in bundle.metrics:
        stat = normalize(s.statistic) if s.metric == "latency" else None
        if stat is not None:
            latency.setdefault(stat, []).append(answer_series(s, stat))
    for stat, series in sorted(latency.items()):
        out.recordings.append(_answer(promql.latency(schema, stat), series, promql.latency_metric(stat)))
    availability = [s for s in bundle.metrics if s.metric == "availability"]
    if availability:
        out.recordings.append(_answer(promql.query(ERROR_SIGNAL, schema), availability, ERROR_SIGNAL))
    other = sorted({s.metric for s in bundle.metrics} - {"latency", "availability"})
    out.unserved += [f"metric kind {m!r}: no query of ours asks for it" for m in other]
    if bundle.topology:
        graph = EvidenceBundle(topology=list(bundle.topology), objects=list(bundle.objects))
        out.recordings.append(Recording("prometheus_service_graph", {}, ToolResult.success(
            None, evidence=graph, summary=f"{len(bundle.topology)} call edges")))
    return out


def _answer(query: str, series: list[MetricSeries], name: str) -> Recording:
    nodes = len({s.entity for s in series if not s.baseline})
    return Recording("prometheus_query_range", {"query": query}, ToolResult.success(
        None, evidence=EvidenceBundle(metrics=series), summary=f"{name}: {len(series)} series over {nodes} services"))


def case_replay(case: petshop.PetshopCase, schema: MetricSchema = promql.DEFAULT_SCHEMA) -> PetshopReplay:
    """Recordings for one PetShop issue (its alert is the bundle's: :func:`evaluation.petshop.case_bundle`)."""
    return bundle_replay(petshop.case_bundle(case), schema)


def window_replay(scenario_dir: Path, index: int, schema: MetricSchema = promql.DEFAULT_SCHEMA) -> PetshopReplay:
    """Recordings for one specificity window: every metric kind's points ``index-2 … index+2``, the
    points before the window as baseline (the planner asks for every kind, whichever alert fires)."""
    table = petshop.read_metrics(scenario_dir / "noissue" / "metrics.csv")
    lo = index - petshop.WINDOW_BEFORE
    edges = petshop.read_graph(scenario_dir / "graph.csv")
    window = slice(lo, index + petshop.WINDOW_AFTER + 1)
    bundle = EvidenceBundle(topology=list(edges), objects=petshop.node_objects(edges, table), metrics=[
        s for kind in petshop.METRIC_TYPES   # the kinds a query of ours asks for (requests: none)
        for s in (*petshop.table_series(table, window, baseline=False, metric=kind),
                  *petshop.table_series(table, slice(0, lo), baseline=True, metric=kind))])
    return bundle_replay(bundle, schema)
