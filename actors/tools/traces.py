"""What every trace backend (Tempo, Jaeger, X-Ray, the demo world) returns: one normalised,
bounded view of a set of traces.

A backend turns its provider's format into :class:`~incidentfox.evidence.TraceSpan` s (service,
operation, start, duration, parent, ``status`` ``error``/``ok``/``""``) and calls
:func:`traces_result`, which adds what an investigation reads first:

* ``slow_spans``: the spans with the most time of their own (``self_ms``: duration minus the
  children's, so a slow leaf outranks the root waiting on it), at most :data:`TOP_N`;
* ``error_spans``: the failing spans, at most :data:`TOP_N`;
* ``edges``: service-to-service calls (``caller → callee`` with call and error counts), from a
  span whose parent ran in another service, or from a leaf client span naming its peer
  (``peer.service``, ``db.system``, an X-Ray remote subsegment). Later topology work reads them;
  the evidence carries them as :class:`~incidentfox.evidence.TopologyEdge` s.

``data.spans`` is capped at :data:`MAX_SPANS` (slowest and failing spans kept first), so a huge trace
cannot crowd out the summary; the evidence keeps the same spans.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from actors.tools.base import ToolResult
from actors.tools.convert import iso
from incidentfox.evidence import EvidenceBundle, TopologyEdge, TraceSpan

MAX_SPANS = 200
TOP_N = 10
PEER_KEYS = ("peer.service", "db.system", "messaging.system", "rpc.service", "server.address", "net.peer.name")


class TraceHeader(BaseModel):
    """One trace as a search lists it."""

    trace_id: str
    root_service: str = ""
    root_operation: str = ""
    start: str | None = None
    duration_ms: float = 0.0
    error: bool = False
    span_count: int = 0


class SpanRow(BaseModel):
    trace_id: str
    span_id: str
    parent_id: str = ""
    service: str
    operation: str = ""
    start: str | None = None
    duration_ms: float = 0.0
    self_ms: float = 0.0
    status: str = ""


class Edge(BaseModel):
    caller: str
    callee: str
    calls: int = 0
    errors: int = 0


class TracesView(BaseModel):
    """``ToolResult.data`` of every trace tool."""

    traces: list[TraceHeader] = Field(default_factory=list)
    slow_spans: list[SpanRow] = Field(default_factory=list)
    error_spans: list[SpanRow] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    spans: list[SpanRow] = Field(default_factory=list)
    span_count: int = 0
    spans_truncated: bool = False


def hex_id(value: Any) -> str:
    """A trace/span id as lowercase hex: OTLP JSON from Tempo carries ids base64-encoded."""
    text = str(value or "")
    if not text:
        return ""
    if all(c in "0123456789abcdefABCDEF" for c in text) and len(text) in (8, 16, 32):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    return raw.hex() if len(raw) in (8, 16) else text


def self_times(spans: list[TraceSpan]) -> dict[tuple[str, str], float]:
    """``(trace_id, span_id) → ms`` a span spent outside its children (never below 0)."""
    children: dict[tuple[str, str], float] = {}
    for s in spans:
        if s.parent_id:
            key = (s.trace_id, s.parent_id)
            children[key] = children.get(key, 0.0) + s.duration_ms
    return {(s.trace_id, s.span_id): max(0.0, s.duration_ms - children.get((s.trace_id, s.span_id), 0.0))
            for s in spans}


def _row(span: TraceSpan, own: dict[tuple[str, str], float]) -> SpanRow:
    return SpanRow(trace_id=span.trace_id, span_id=span.span_id, parent_id=span.parent_id,
                   service=span.entity, operation=span.name, start=iso(span.start) if span.start else None,
                   duration_ms=round(span.duration_ms, 3),
                   self_ms=round(own.get((span.trace_id, span.span_id), span.duration_ms), 3), status=span.status)


def _peer(span: TraceSpan) -> str:
    return next((span.attributes[k] for k in PEER_KEYS if span.attributes.get(k)), "")


def service_edges(spans: list[TraceSpan]) -> list[Edge]:
    """Caller → callee call counts (and how many of those calls failed), most calls first."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    has_child = {(s.trace_id, s.parent_id) for s in spans if s.parent_id}
    calls: Counter[tuple[str, str]] = Counter()
    errors: Counter[tuple[str, str]] = Counter()
    for span in spans:
        parent = by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None
        if parent is not None and parent.entity != span.entity:
            pair = (parent.entity, span.entity)
        elif (span.trace_id, span.span_id) not in has_child and _peer(span) and _peer(span) != span.entity:
            pair = (span.entity, _peer(span))
        else:
            continue
        calls[pair] += 1
        errors[pair] += span.status == "error"
    return [Edge(caller=a, callee=b, calls=n, errors=errors[(a, b)])
            for (a, b), n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))]


def headers_from_spans(spans: list[TraceSpan]) -> list[TraceHeader]:
    """One header per trace id (root = the span without a parent in the trace, else the longest)."""
    grouped: dict[str, list[TraceSpan]] = {}
    for span in spans:
        grouped.setdefault(span.trace_id, []).append(span)
    out = []
    for trace_id, members in grouped.items():
        ids = {s.span_id for s in members}
        roots = [s for s in members if not s.parent_id or s.parent_id not in ids]
        root = max(roots or members, key=lambda s: s.duration_ms)
        out.append(TraceHeader(trace_id=trace_id, root_service=root.entity, root_operation=root.name,
                               start=iso(root.start) if root.start else None, duration_ms=root.duration_ms,
                               error=any(s.status == "error" for s in members), span_count=len(members)))
    return out


def traces_result(spans: list[TraceSpan], *, headers: list[TraceHeader] | None = None,
                  what: str = "traces") -> ToolResult:
    """The normalised result of a trace tool: :class:`TracesView` as data, spans and edges as
    evidence, and a one-line summary naming the slowest and failing services."""
    headers = headers if headers is not None else headers_from_spans(spans)
    own = self_times(spans)
    slow = sorted(spans, key=lambda s: -own[(s.trace_id, s.span_id)])[:TOP_N]
    failing = [s for s in spans if s.status == "error"][:TOP_N]
    edges = service_edges(spans)
    kept = _keep(spans, slow, failing)
    view = TracesView(traces=headers, slow_spans=[_row(s, own) for s in slow],
                      error_spans=[_row(s, own) for s in failing], edges=edges,
                      spans=[_row(s, own) for s in kept], span_count=len(spans),
                      spans_truncated=len(kept) < len(spans))
    parts = [f"{len(headers)} {what}, {len(spans)} spans"]
    if failing:
        parts.append("errors in " + ", ".join(sorted({s.entity for s in failing})))
    hot: dict[tuple[str, str], float] = {}
    for s in slow:
        hot.setdefault((s.entity, s.name), own[(s.trace_id, s.span_id)])
    if hot:
        parts.append("most time in " + ", ".join(f"{svc} {op} {ms:.0f}ms" for (svc, op), ms in list(hot.items())[:3]))
    if edges:
        parts.append("calls " + ", ".join(f"{e.caller}→{e.callee}×{e.calls}" for e in edges[:6]))
    topology = [TopologyEdge(caller=e.caller, callee=e.callee) for e in edges]
    result = ToolResult.success(view.model_dump(mode="json"), evidence=EvidenceBundle(spans=kept, topology=topology),
                                summary="; ".join(parts))
    result.truncated = view.spans_truncated
    return result


def _keep(spans: list[TraceSpan], slow: list[TraceSpan], failing: list[TraceSpan]) -> list[TraceSpan]:
    """At most :data:`MAX_SPANS` spans: the slow and failing ones first, then in the given order."""
    if len(spans) <= MAX_SPANS:
        return list(spans)
    chosen = {id(s) for s in (*slow, *failing)}
    rest = [s for s in spans if id(s) not in chosen]
    picked = {id(s) for s in (*slow, *failing, *rest[: MAX_SPANS - len(chosen)])}
    return [s for s in spans if id(s) in picked]
