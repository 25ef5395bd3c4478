"""Propagation: walk the call graph from the alerting node and find where the anomaly starts.

Edges run caller → callee. Starting at the alert's entity, the walk follows callees that are
anomalous (z ≥ ``anomaly.TAU`` at the alert's times), so a node is a candidate only when a chain of
anomalous calls links it to the symptom. Each candidate's raw score is::

    log(1 + z) · explained · correlation · view · self  +  BETA · (anomalous callers it explains)

* **explained**: a node whose anomalous callee moved by as much as it did (same metric, native
  units: a callee's extra latency is inside its caller's) is a victim, not a cause. The factor is
  ``1 - (1 - EXPLAINED) · min(1, Δcallee / Δnode)`` for the strongest such callee.
* **explains**: each anomalous upstream node (callers, transitively through anomalous nodes,
  anywhere in the graph) is one more symptom this node accounts for.
* **correlation** with the alerting series over the window: ``(1 - CORR) + CORR · max(0, r)``.
* **view**: entities whose ``ObjectState.kind`` is a client-side view (``remote``, ``client``:
  an endpoint measured only by its caller, as X-Ray draws uninstrumented calls) mirror the service
  behind them, so they weigh ``VIEW``.
* **self**: the alerting node blames itself only when nothing below it is anomalous (``SELF``).

Without a topology every anomalous node is a candidate scored by its z alone. The raw score maps
to ``[0, 1]`` by ``1 - exp(-raw / SCALE)``, which keeps the order.
"""

from __future__ import annotations

import math
from collections import deque

from actors.ranking.anomaly import TAU, AnomalyView
from actors.ranking.model import ANOMALY, PROPAGATION, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import EvidenceBundle

BETA = 0.5
EXPLAINED = 0.5
CORR = 0.5
VIEW = 0.5
SELF = 0.2
SCALE = 4.0
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


def propagation_findings(bundle: EvidenceBundle, view: AnomalyView) -> list[Finding]:
    """Findings for the nodes where the alert's anomaly most plausibly starts (see module doc)."""
    if view.confirmed is False:
        return []        # the alerting series itself is normal: nothing to explain
    anomalous = view.anomalous()
    if not anomalous:
        return []
    down, up = _graph(bundle)
    alert = bundle.alert.entity
    view_kinds = {o.name for o in bundle.objects if o.kind.lower() in VIEW_KINDS}
    if alert and alert in down:
        candidates = _reachable(alert, down, set(anomalous)) & (set(anomalous) | {alert})
    else:
        candidates = set(anomalous)
    findings = []
    for node in candidates:
        a = view.nodes.get(node)
        if a is None or a.z < TAU:
            continue
        raw = math.log1p(a.z)
        victims_of = [c for c in down.get(node, ()) if c in candidates and c != node]
        explained_by = ""
        if victims_of:
            share = 0.0
            for c in victims_of:
                dc = view.nodes[c].delta
                s = 1.0 if a.delta <= 0 else max(0.0, min(1.0, dc / a.delta))
                if s > share:
                    share, explained_by = s, c
            raw *= 1 - (1 - EXPLAINED) * share
        r = view.correlation(node)
        if r is not None:
            raw *= (1 - CORR) + CORR * max(0.0, r)
        if node in view_kinds:
            raw *= VIEW
        if node == alert:
            raw *= SELF
        explains = _explained_callers(node, up, set(anomalous), alert)
        raw += BETA * len(explains)
        score = 1 - math.exp(-raw / SCALE)
        findings.append(Finding(
            entity=node, signal=PROPAGATION,
            kind="explained_anomaly" if explained_by else "root_of_anomaly",
            score=round(score, 4),
            summary=_summary(node, a.series.metric, alert, explained_by, explains),
            evidence=[Evidence(kind="metric", source=ANOMALY, quote=a.quote())]
            + ([Evidence(kind="metric", source=PROPAGATION, quote=view.nodes[explained_by].quote())]
               if explained_by else []),
            details={"signals": [ANOMALY], "z": round(a.z, 2), "metric": a.series.metric,
                     "explains": sorted(explains), "explained_by": explained_by,
                     "correlation": None if r is None else round(r, 3)},
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
