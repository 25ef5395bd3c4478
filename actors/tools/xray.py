"""AWS X-Ray tools: trace summaries (``GetTraceSummaries``) and full traces (``BatchGetTraces``),
through :mod:`actors.tools.aws_client` with the run's tenant credentials (``integrations.aws``).

A segment document becomes a span of its service (``name``); each subsegment a span of the same
service (a ``remote``/``aws`` subsegment is a call to the service it names, kept as ``peer.service``).
``fault`` (5xx) and ``error`` (4xx) mark a span failed; HTTP 429 ``throttle`` does too.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from actors.tools import aws_client
from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso, parse_time
from actors.tools.tempo import FETCH, TRACE_LIMIT
from actors.tools.traces import TraceHeader, traces_result
from incidentfox.evidence import TraceSpan

TIMEOUT_S = aws_client.TIMEOUT_S
DEFAULT_FETCH = 3
BATCH = 5          # BatchGetTraces takes at most five ids per call
MAX_PAGES = 5
XRAY_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
_SERVICE = re.compile(r'^[^"\\]{1,200}$')
spec = spec_builder(category="traces", integration="aws", timeout_s=TIMEOUT_S)


def _failed(doc: dict[str, Any]) -> str:
    if doc.get("fault") or doc.get("error") or doc.get("throttle"):
        return "error"
    status = ((doc.get("http") or {}).get("response") or {}).get("status")
    if isinstance(status, int):
        return "error" if status >= 500 else "ok"
    return "ok" if doc.get("end_time") and not doc.get("in_progress") else ""


def _span(doc: dict[str, Any], *, trace_id: str, service: str, parent: str) -> TraceSpan:
    start, end = doc.get("start_time"), doc.get("end_time") or doc.get("start_time")
    attrs: dict[str, str] = {}
    if doc.get("namespace") in ("remote", "aws"):
        attrs["peer.service"] = str(doc.get("name", ""))
    request = (doc.get("http") or {}).get("request") or {}
    if request.get("url"):
        attrs["http.url"] = str(request["url"])[:500]
    status = ((doc.get("http") or {}).get("response") or {}).get("status")
    if status is not None:
        attrs["http.status_code"] = str(status)
    if (doc.get("sql") or {}).get("url"):
        attrs["db.url"] = str(doc["sql"]["url"])[:500]
    if doc.get("origin"):
        attrs["origin"] = str(doc["origin"])
    return TraceSpan(trace_id=trace_id, span_id=str(doc.get("id", "")), parent_id=parent, entity=service,
                     name=str(doc.get("name", "")), start=parse_time(float(start)) if start else None,
                     duration_ms=max(0.0, (float(end) - float(start)) * 1000) if start else 0.0,
                     status=_failed(doc), attributes=attrs)


def spans_from_segments(trace: dict[str, Any]) -> list[TraceSpan]:
    """Spans of one ``BatchGetTraces`` trace: its segments' JSON documents, subsegments flattened."""
    trace_id = str(trace.get("Id", ""))
    out: list[TraceSpan] = []

    def walk(doc: dict[str, Any], service: str, parent: str) -> None:
        out.append(_span(doc, trace_id=trace_id, service=service, parent=parent))
        for sub in doc.get("subsegments") or []:
            walk(sub, service, str(doc.get("id", "")))

    for seg in trace.get("Segments") or []:
        try:
            doc = json.loads(seg.get("Document") or "{}")
        except json.JSONDecodeError:
            continue
        service = str(doc.get("name") or "unknown")
        out.append(_span(doc, trace_id=trace_id, service=service, parent=str(doc.get("parent_id") or "")))
        for sub in doc.get("subsegments") or []:
            walk(sub, service, str(doc.get("id", "")))
    return out


def _header(summary: dict[str, Any]) -> TraceHeader:
    entry = summary.get("EntryPoint") or {}
    services = summary.get("ServiceIds") or []
    start = summary.get("StartTime")
    return TraceHeader(trace_id=str(summary.get("Id", "")),
                       root_service=str(entry.get("Name") or (services[0].get("Name") if services else "") or ""),
                       root_operation=str((summary.get("Http") or {}).get("HttpURL") or ""),
                       start=iso(start if isinstance(start, datetime) else parse_time(start)),
                       duration_ms=float(summary.get("Duration") or 0) * 1000,
                       error=bool(summary.get("HasFault") or summary.get("HasError") or summary.get("HasThrottle")))


async def _batch(ctx: ToolContext, ids: list[str]) -> list[TraceSpan]:
    spans: list[TraceSpan] = []
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        resp = await aws_client.call(ctx, "xray", lambda c, chunk=chunk: c.batch_get_traces(TraceIds=chunk))
        for trace in resp.get("Traces") or []:
            spans.extend(spans_from_segments(trace))
    return spans


def _filter(args: dict[str, Any]) -> str | None:
    parts = []
    if args["service"]:
        if not _SERVICE.match(args["service"]):
            raise ToolError("invalid_arguments", "service must not contain quotes or backslashes")
        parts.append(f'service("{args["service"]}")')
    if args["filter_expression"]:
        parts.append(f"({args['filter_expression']})" if parts else args["filter_expression"])
    return " AND ".join(parts) or None


async def search_traces(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"])
    request: dict[str, Any] = {"StartTime": start, "EndTime": end, "Sampling": False}
    expression = _filter(args)
    if expression:
        request["FilterExpression"] = expression
    limit = args["limit"] or 20
    summaries: list[dict[str, Any]] = []
    token = None
    for _ in range(MAX_PAGES):
        page = dict(request, **({"NextToken": token} if token else {}))
        resp = await aws_client.call(ctx, "xray", lambda c, page=page: c.get_trace_summaries(**page))
        summaries.extend(resp.get("TraceSummaries") or [])
        token = resp.get("NextToken")
        if not token or len(summaries) >= limit:
            break
    headers = [_header(x) for x in summaries[:limit]]
    fetch = DEFAULT_FETCH if args["fetch_traces"] is None else args["fetch_traces"]
    slowest = sorted(headers, key=lambda h: (not h.error, -h.duration_ms))[:fetch]
    spans = await _batch(ctx, [h.trace_id for h in slowest]) if slowest else []
    for h in headers:
        h.span_count = sum(1 for sp in spans if sp.trace_id == h.trace_id)
    return traces_result(spans, headers=headers, what=f"traces ({len(slowest)} fetched)")


async def get_trace(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if not XRAY_ID.match(args["trace_id"]):
        raise ToolError("invalid_arguments", "trace_id must look like 1-5759e988-bd862e3fe1be46a994272793")
    spans = await _batch(ctx, [args["trace_id"]])
    if not spans:
        raise ToolError("not_found", f"x-ray has no trace {args['trace_id']}")
    return traces_result(spans, what="trace")


SPECS: list[ToolSpec] = [
    spec("xray_search_traces", search_traces,
         "Search AWS X-Ray for recent traces (of a service, or any X-Ray filter expression such as "
         "`fault = true AND responsetime > 2`) and fetch the failing and slowest in full. Returns the "
         "slowest and failing spans and which service calls which (caller→callee counts).",
         s.obj(service=s.string('Service name (adds `service("<name>")` to the filter).', nullable=True,
                                max_length=200),
               filter_expression=s.string("X-Ray filter expression (null: none).", nullable=True, max_length=1000),
               since_minutes=s.integer("How far back to look, in minutes (null: 60; X-Ray keeps 30 days, "
                                       "one search spans at most 24 hours).", nullable=True, minimum=1,
                                       maximum=24 * 60),
               limit=TRACE_LIMIT, fetch_traces=FETCH)),
    spec("xray_get_trace", get_trace,
         "Fetch one AWS X-Ray trace by id: every segment and subsegment as a span with service, operation, "
         "duration, status and parent, plus its slowest and failing spans and service-to-service calls.",
         s.obj(trace_id=s.string("X-Ray trace id, e.g. 1-5759e988-bd862e3fe1be46a994272793.", max_length=64))),
]
