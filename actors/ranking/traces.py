"""Traces: which service the slow requests spend their time in.

For each trace, a span's *exclusive* time is its duration minus its children's (never below 0):
the time the service spent itself rather than waiting on a callee. Over the slow traces (root at
or above the alert's threshold, else at or above the median root duration), each service's share
is its exclusive time over the exclusive time of every span of those traces (so shares sum to 1 even
when a trace has several top-level spans or concurrent children). The service with the largest share is where the
latency lives; a share of at least ``MIN_SHARE`` becomes a finding scoring
``0.35 + 0.5·share``. Its longest exclusive span is quoted; a database span (``db.system`` /
``db.statement`` attributes, or a ``query``/``sql`` operation) is called a slow database query.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from actors.ranking.logs import slow_threshold
from actors.ranking.model import TRACE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import Alert, TraceSpan

MIN_SHARE = 0.2


def _is_db(span: TraceSpan) -> bool:
    a = span.attributes
    return bool(a.get("db.system") or a.get("db.statement")) or any(
        w in span.name.lower() for w in ("query", "sql", "db."))


def _exclusive(spans: list[TraceSpan]) -> dict[str, float]:
    child_time: dict[str, float] = defaultdict(float)
    for s in spans:
        if s.parent_id:
            child_time[s.parent_id] += s.duration_ms
    return {s.span_id: max(0.0, s.duration_ms - child_time[s.span_id]) for s in spans}


def trace_findings(spans: list[TraceSpan], alert: Alert) -> list[Finding]:
    traces: dict[str, list[TraceSpan]] = defaultdict(list)
    for s in spans:
        traces[s.trace_id].append(s)
    roots = {}
    for tid, ss in traces.items():
        ids = {s.span_id for s in ss}
        top = [s for s in ss if not s.parent_id or s.parent_id not in ids]
        if top:
            roots[tid] = max(top, key=lambda s: s.duration_ms)
    if not roots:
        return []
    threshold_ms = slow_threshold(alert) * 1000
    median = statistics.median(r.duration_ms for r in roots.values())
    cut = threshold_ms if any(r.duration_ms >= threshold_ms for r in roots.values()) else median
    slow = [tid for tid, r in roots.items() if r.duration_ms >= cut]
    share: dict[str, float] = defaultdict(float)
    worst: dict[str, tuple[float, TraceSpan, str]] = {}
    total = 0.0
    for tid in slow:
        excl = _exclusive(traces[tid])
        for s in traces[tid]:
            share[s.entity] += excl[s.span_id]
            total += excl[s.span_id]
            if s.entity not in worst or excl[s.span_id] > worst[s.entity][0]:
                worst[s.entity] = (excl[s.span_id], s, tid)
    if total <= 0:
        return []
    out = []
    for entity, t in sorted(share.items(), key=lambda kv: -kv[1]):
        frac = t / total
        if frac < MIN_SHARE:
            continue
        ms, span, tid = worst[entity]
        root = roots[tid]
        db = _is_db(span)
        stmt = span.attributes.get("db.statement", "")
        what = f"a slow database query ({span.name}{': ' + stmt if stmt else ''})" if db else f"{span.name}"
        out.append(Finding(
            entity=entity, signal=TRACE, kind="slow_span", score=round(min(0.85, 0.35 + 0.5 * frac), 4),
            summary=f"{entity} accounts for {frac:.0%} of the time of {len(slow)} slow trace(s), "
                    f"mostly in {what}",
            evidence=[Evidence(kind="metric", source=TRACE,
                               quote=f"{span.name} ({entity}) {span.duration_ms:.0f} ms, {ms:.0f} ms of it exclusive, "
                                     f"in a {root.duration_ms:.0f} ms {root.name} trace {tid}"
                                     + (f"; db.statement: {stmt}" if stmt else ""), at=span.start)],
            details={"share": round(frac, 3), "operation": span.name, "database": db, "db_statement": stmt,
                     "slow_traces": len(slow)},
        ))
    return out
