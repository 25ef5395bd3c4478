"""Propagation: walk the call graph from the alerting node and find where the anomaly starts.

Edges run caller → callee. Starting at the alert's entity, the walk follows callees that are
anomalous (z ≥ ``anomaly.TAU`` at the alert's times), so a node is a candidate only when a chain of
anomalous calls links it to the symptom. A callee anomalous only in *another* metric family with a
bad direction (a database whose latency or free storage moved while the alert is about errors) is
walked too, weighted ``SECONDARY``, but only when another signal corroborates that entity (its own
error logs, Kubernetes state, a change): a cross-metric inference from metrics alone is too weak.
Two-sided metrics (requests, connections) never count here, since less traffic downstream is a
symptom of trouble upstream. Each candidate's raw score is::

    log(1 + z) · explained · correlation · view · self  +  BETA · (anomalous callers it explains)

* **explained**: a node whose anomalous callee moved by as much as it did (same metric, native
  units: a callee's extra latency is inside its caller's) is a victim, not a cause. The factor is
  ``1 - (1 - EXPLAINED) · share`` for the strongest such callee, ``share = min(1, Δcallee / Δnode)``
  in the same metric, else ``min(1, SECONDARY · zcallee / znode)``.
* **explains**: each anomalous upstream node (callers, transitively through anomalous nodes,
  anywhere in the graph) is one more symptom this node accounts for.
* **correlation** with the alerting series over the window: ``(1 - CORR) + CORR · max(0, r)``.
* **view**: entities whose ``ObjectState.kind`` is a client-side view (``remote``, ``client``:
  an endpoint measured only by its caller, as X-Ray draws uninstrumented calls) mirror the service
  behind them, so they weigh ``VIEW``.
* **self**: the alerting node blames itself only when nothing below it is anomalous (``SELF``).

Without a topology every anomalous node is a candidate scored by its z alone. Every candidate is a
significant anomaly on an anomalous path, so its score starts at ``FLOOR`` (just above the blame
threshold) and the raw score maps monotonically onto ``[FLOOR, 0.95)`` by
``FLOOR + (0.95 - FLOOR) · (1 - exp(-raw / SCALE))``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from actors.ranking.anomaly import TAU, AnomalyView, NodeAnomaly
from actors.ranking.model import ANOMALY, PROPAGATION, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import EvidenceBundle

BETA = 0.5
EXPLAINED = 0.5
CORR = 0.5
VIEW = 0.5
SELF = 0.2
SECONDARY = 0.85
SCALE = 4.0
FLOOR = 0.32
VIEW_KINDS = frozenset({"remote", "client"})


def _graph(bundle: EvidenceBundle) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    down: dict[str, list[str]] = {}
    up: dict[str, list[str]] = {}
    for e in bundle.topology:
        if e.caller == e.callee:
            continue
        down.setdefault(e.caller, []).append(e.callee)
        up.setdefault(e.callee, []).append(e.caller)
    return down, up


def _reachable(start: str, down: dict[str, list[str]], anomalous: set[str]) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for v in down.get(queue.popleft(), ()):
            if v in anomalous and v not in seen:
                seen.add(v)
                queue.append(v)
    return seen


def _explained_callers(node: str, up: dict[str, list[str]], anomalous: set[str], alert: str) -> set[str]:
    out, queue = set(), deque([node])
    while queue:
        for p in up.get(queue.popleft(), ()):
            if p not in out and (p in anomalous or p == alert):
                out.add(p)
                queue.append(p)
    out.discard(alert)
    out.discard(node)
    return out


def _share(node: NodeAnomaly, callee: NodeAnomaly, callee_weight: float) -> float:
    if callee.series.metric == node.series.metric:
        return 1.0 if node.delta <= 0 else max(0.0, min(1.0, callee.delta / node.delta))
    return max(0.0, min(1.0, callee_weight * callee.z / node.z)) if node.z > 0 else 1.0


def propagation_findings(bundle: EvidenceBundle, view: AnomalyView, *,
                         corroborated: Callable[[str], bool] = lambda _: False) -> list[Finding]:
    """Findings for the nodes where the alert's anomaly most plausibly starts (see module doc).

    ``corroborated(entity)`` says whether a non-metric signal also implicates the entity; only then
    do its anomalies in other metric families count.
    """
    if view.confirmed is False:
        return []        # the alerting series itself is normal: nothing to explain
    primary = view.anomalous()
    secondary = {e: a for e, a in view.secondary.items()
                 if a.z >= TAU and e not in primary and corroborated(e)}
    if not primary and not secondary:
        return []
    down, up = _graph(bundle)
    alert = bundle.alert.entity
    walkable = set(primary) | set(secondary)
    if alert and alert in down:
        candidates = _reachable(alert, down, walkable) & (walkable | {alert})
    else:
        candidates = set(primary)
    anomaly = {e: (a, 1.0) for e, a in primary.items()} | {e: (a, SECONDARY) for e, a in secondary.items()}
    view_kinds = {o.name for o in bundle.objects if o.kind.lower() in VIEW_KINDS}
    findings = []
    for node in candidates:
        if node not in anomaly:
            continue
        a, weight = anomaly[node]
        raw = math.log1p(a.z) * weight
        share, explained_by = 0.0, ""
        for c in down.get(node, ()):
            if c in candidates and c != node and c in anomaly:
                s = _share(a, *anomaly[c])
                if s > share:
                    share, explained_by = s, c
        raw *= 1 - (1 - EXPLAINED) * share
        r = view.correlation(node) if weight == 1.0 else None
        if r is not None:
            raw *= (1 - CORR) + CORR * max(0.0, r)
        if node in view_kinds:
            raw *= VIEW
        if node == alert:
            raw *= SELF
        explains = _explained_callers(node, up, set(primary), alert)
        raw += BETA * len(explains)
        score = FLOOR + (0.95 - FLOOR) * (1 - math.exp(-raw / SCALE))
        findings.append(Finding(
            entity=node, signal=PROPAGATION,
            kind="explained_anomaly" if explained_by else "root_of_anomaly",
            score=round(score, 4),
            summary=_summary(node, a.series.metric, alert, explained_by, explains),
            evidence=[Evidence(kind="metric", source=ANOMALY, quote=a.quote())]
            + ([Evidence(kind="metric", source=PROPAGATION, quote=anomaly[explained_by][0].quote())]
               if explained_by else []),
            details={"signals": [ANOMALY], "z": round(a.z, 2), "metric": a.series.metric,
                     "explains": sorted(explains), "explained_by": explained_by,
                     "correlation": None if r is None else round(r, 3), "secondary": weight != 1.0},
        ))
    findings.sort(key=lambda f: -f.score)
    return findings


def _summary(node: str, metric: str, alert: str, explained_by: str, explains: set[str]) -> str:
    if explained_by:
        return f"{node} {metric} is anomalous, partly explained by its dependency {explained_by}"
    if node == alert:
        return f"{node} {metric} is anomalous and none of its dependencies is"
    via = f" and {len(explains)} other anomalous caller(s)" if explains else ""
    target = f" behind the {alert} alert{via}" if alert else ""
    return f"{node} {metric} is anomalous while its own dependencies are not: the anomaly starts here{target}"
