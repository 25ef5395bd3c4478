"""Demo-world traces: a few requests walking the shop's topology from ``frontend``, answered in the
live trace tools' shape (:func:`actors.tools.traces.traces_result`).

Each service's span lasts its current p99 latency (the scenario's anomaly, else the baseline) plus
its callees'; a service whose error rate the scenario raises past 5 % fails in the first traces.
``postgres`` (RDS) is not instrumented: its callers hold leaf client spans naming it
(``peer.service``), as real instrumentation does.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from actors.tools.base import ToolError, ToolResult
from actors.tools.demo.scenarios import BASELINE, DATABASE, TOPOLOGY
from actors.tools.demo.signals import ALL_SERVICES
from actors.tools.demo.world import World
from actors.tools.traces import traces_result
from incidentfox.evidence import TraceSpan

TRACES = 3
ROOT = "frontend"


def _hex(*parts: object, n: int) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def _level(world: World, service: str, metric: str) -> float:
    found = [a.value for a in world.scenario.anomalies if a.service == service and a.metric == metric]
    return found[-1] if found else BASELINE.get(service, {}).get(metric, 0.0)


def _trace(world: World, index: int) -> list[TraceSpan]:
    trace_id = _hex(world.scenario.name, world.now.isoformat(), index, n=32)
    start = world.now - timedelta(minutes=2 * (index + 1))
    spans: list[TraceSpan] = []

    def visit(service: str, parent: str, path: str) -> float:
        span_id = _hex(trace_id, path, n=16)
        own = _level(world, service, "latency_p99") * 1000
        total = own
        for caller, callee in TOPOLOGY:
            if caller != service:
                continue
            if callee == DATABASE:
                db_ms = _level(world, DATABASE, "latency_p99") * 1000
                spans.append(TraceSpan(trace_id=trace_id, span_id=_hex(trace_id, path, callee, n=16),
                                       parent_id=span_id, entity=service, name="postgres.query", start=start,
                                       duration_ms=round(db_ms, 1), status="ok",
                                       attributes={"db.system": "postgresql", "peer.service": DATABASE}))
                total += db_ms
            else:
                total += visit(callee, span_id, f"{path}/{callee}")
        failing = index < 2 and _level(world, service, "error_rate") >= 0.05
        spans.append(TraceSpan(trace_id=trace_id, span_id=span_id, parent_id=parent, entity=service,
                               name=f"HTTP {'GET /' if service == ROOT else 'POST /api/'}{service}", start=start,
                               duration_ms=round(total, 1), status="error" if failing else "ok",
                               attributes={"http.status_code": "500" if failing else "200"}))
        return total

    visit(ROOT, "", ROOT)
    return spans


def _traces(world: World) -> list[list[TraceSpan]]:
    return [_trace(world, i) for i in range(TRACES)]


def trace_ids(world: World, *, xray: bool = False) -> list[str]:
    """The ids the world's traces go by (X-Ray's ``1-xxxxxxxx-…`` form when ``xray``)."""
    ids = [t[0].trace_id for t in _traces(world)]
    return [_xray_id(i) for i in ids] if xray else ids


def _xray_id(trace_id: str) -> str:
    return f"1-{trace_id[:8]}-{trace_id[8:32]}"


def _with_xray_ids(spans: list[TraceSpan]) -> list[TraceSpan]:
    return [s.model_copy(update={"trace_id": _xray_id(s.trace_id)}) for s in spans]


def search_traces(args: dict[str, Any], world: World, *, xray: bool = False) -> ToolResult:
    service = args.get("service")
    if service and service not in ALL_SERVICES:
        return traces_result([])
    minimum = args.get("min_duration_ms") or 0
    traces = [t for t in _traces(world) if max(s.duration_ms for s in t) >= minimum]
    if args.get("errors_only"):
        traces = [t for t in traces if any(s.status == "error" for s in t)]
    traces = traces[: args.get("limit") or 20]
    spans = [s for t in traces for s in t]
    return traces_result(_with_xray_ids(spans) if xray else spans)


def get_trace(args: dict[str, Any], world: World, *, xray: bool = False) -> ToolResult:
    wanted = args["trace_id"].lower().removeprefix("1-").replace("-", "")
    for trace in _traces(world):
        if trace[0].trace_id == wanted:
            return traces_result(_with_xray_ids(trace) if xray else trace, what="trace")
    raise ToolError("not_found", f"no trace {args['trace_id']}")


HANDLERS = {
    "tempo_search_traces": search_traces,
    "tempo_get_trace": get_trace,
    "jaeger_search_traces": search_traces,
    "jaeger_get_trace": get_trace,
    "datadog_search_traces": search_traces,
    "xray_search_traces": lambda args, world: search_traces(args, world, xray=True),
    "xray_get_trace": lambda args, world: get_trace(args, world, xray=True),
}
