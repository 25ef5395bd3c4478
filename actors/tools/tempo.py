"""Grafana Tempo tools: trace search (``/api/search``) and one trace (``/api/traces/{id}``, OTLP JSON).

``integrations.tempo``: ``url`` (required), ``token`` (bearer) or ``username``/``password``,
``tenant`` (sent as ``X-Scope-OrgID``), optional ``headers`` and ``verify_ssl``. The block's types
are checked at config write (``config_service/integration_blocks.py``). A search lists matching
traces (by service, TraceQL or minimum duration) and fetches the slowest few in full, so the answer
carries spans, slow and failing spans and service-to-service calls (:mod:`actors.tools.traces`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso, parse_time
from actors.tools.httpcall import json_endpoint, request_json
from actors.tools.traces import TraceHeader, hex_id, traces_result
from incidentfox.evidence import TraceSpan

TIMEOUT_S = 25.0
DEFAULT_FETCH = 3
TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,32}$")
spec = spec_builder(category="traces", integration="tempo", timeout_s=TIMEOUT_S)


def _value(v: dict[str, Any]) -> str:
    """An OTLP ``AnyValue`` as text."""
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in v:
            return str(v[key]).lower() if key == "boolValue" else str(v[key])
    return ""


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(a.get("key")): _value(a.get("value") or {}) for a in items or [] if a.get("key")}


def _status(span: dict[str, Any], attrs: dict[str, str]) -> str:
    code = (span.get("status") or {}).get("code")
    if code in (2, "STATUS_CODE_ERROR") or attrs.get("error") == "true":
        return "error"
    return "ok" if code in (1, "STATUS_CODE_OK") else ""


def spans_from_otlp(body: dict[str, Any], *, trace_id: str = "") -> list[TraceSpan]:
    """Spans of an OTLP JSON trace (``batches`` or ``resourceSpans``; ``scopeSpans`` or the older
    ``instrumentationLibrarySpans``)."""
    body = body.get("trace") or body
    out = []
    for batch in body.get("batches") or body.get("resourceSpans") or []:
        resource = _attrs((batch.get("resource") or {}).get("attributes"))
        service = resource.get("service.name") or "unknown"
        for scope in batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []:
            for raw in scope.get("spans") or []:
                attrs = _attrs(raw.get("attributes"))
                start_ns = int(raw.get("startTimeUnixNano") or 0)
                end_ns = int(raw.get("endTimeUnixNano") or start_ns)
                kind = str(raw.get("kind", ""))
                if kind:
                    attrs["span.kind"] = kind.removeprefix("SPAN_KIND_").lower()
                out.append(TraceSpan(
                    trace_id=hex_id(raw.get("traceId")) or trace_id, span_id=hex_id(raw.get("spanId")),
                    parent_id=hex_id(raw.get("parentSpanId")), entity=service, name=str(raw.get("name", "")),
                    start=parse_time(start_ns / 1e9) if start_ns else None,
                    duration_ms=max(0.0, (end_ns - start_ns) / 1e6), status=_status(raw, attrs),
                    attributes={k: v[:500] for k, v in attrs.items()}))
    return out



async def _trace(ctx: ToolContext, url: str, kw: dict[str, Any], trace_id: str) -> list[TraceSpan]:
    body = await request_json(ctx, "GET", f"{url}/api/traces/{trace_id}", service="tempo", timeout=TIMEOUT_S, **kw)
    if not isinstance(body, dict):
        raise ToolError("upstream_error", "tempo returned an unexpected trace body")
    return spans_from_otlp(body, trace_id=trace_id)


def _checked_id(value: str) -> str:
    if not TRACE_ID.match(value):
        raise ToolError("invalid_arguments", "trace_id must be 1-32 hex characters")
    return value.lower()


async def search_traces(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, kw = json_endpoint(ctx, "tempo")
    start, end = ctx.window(args["since_minutes"])
    params: dict[str, str] = {"start": str(int(start.timestamp())), "end": str(int(end.timestamp())),
                              "limit": str(args["limit"] or 20)}
    if args["query"]:
        params["q"] = args["query"]
    elif args["service"]:
        params["tags"] = f'service.name="{args["service"]}"'
    if args["min_duration_ms"]:
        params["minDuration"] = f"{args['min_duration_ms']}ms"
    body = await request_json(ctx, "GET", f"{url}/api/search", service="tempo", timeout=TIMEOUT_S,
                              params=params, **kw)
    if not isinstance(body, dict):
        raise ToolError("upstream_error", "tempo returned an unexpected search body")
    headers = [TraceHeader(trace_id=hex_id(t.get("traceID")), root_service=str(t.get("rootServiceName", "")),
                           root_operation=str(t.get("rootTraceName", "")),
                           start=iso(parse_time(int(t["startTimeUnixNano"]) / 1e9))
                           if t.get("startTimeUnixNano") else None,
                           duration_ms=float(t.get("durationMs") or 0))
               for t in body.get("traces") or [] if t.get("traceID")]
    fetch = DEFAULT_FETCH if args["fetch_traces"] is None else args["fetch_traces"]
    slowest = sorted(headers, key=lambda h: -h.duration_ms)[:fetch]
    fetched = await asyncio.gather(*(_trace(ctx, url, kw, h.trace_id) for h in slowest))
    spans = [span for trace in fetched for span in trace]
    failing = {sp.trace_id for sp in spans if sp.status == "error"}
    for h in headers:
        h.error = h.trace_id in failing
        h.span_count = sum(1 for sp in spans if sp.trace_id == h.trace_id)
    return traces_result(spans, headers=headers, what=f"traces ({len(slowest)} fetched)")


async def get_trace(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, kw = json_endpoint(ctx, "tempo")
    trace_id = _checked_id(args["trace_id"])
    return traces_result(await _trace(ctx, url, kw, trace_id), what="trace")


FETCH = s.integer("How many of the slowest matching traces to fetch in full (null: 3; 0: list only).",
                  nullable=True, minimum=0, maximum=10)
MIN_DURATION = s.integer("Only traces at least this long, in milliseconds (null: any).", nullable=True,
                         minimum=1, maximum=3_600_000)
TRACE_LIMIT = s.integer("Maximum number of traces to list (null: 20).", nullable=True, minimum=1, maximum=100)

SPECS: list[ToolSpec] = [
    spec("tempo_search_traces", search_traces,
         "Search Grafana Tempo for recent traces of a service (or a TraceQL query such as "
         '`{ resource.service.name = "checkout" && status = error }`) and fetch the slowest in full. Returns '
         "the slowest and failing spans and which service calls which (caller→callee counts).",
         s.obj(service=s.string("Service name (`service.name`); ignored when query is set.", nullable=True,
                                max_length=200),
               query=s.string("TraceQL query (null: search by service).", nullable=True),
               min_duration_ms=MIN_DURATION, since_minutes=s.SINCE_MINUTES, limit=TRACE_LIMIT,
               fetch_traces=FETCH)),
    spec("tempo_get_trace", get_trace,
         "Fetch one trace from Grafana Tempo by id: every span with service, operation, duration, status "
         "and parent, plus its slowest and failing spans and service-to-service calls.",
         s.obj(trace_id=s.string("Trace id (hex).", max_length=32))),
]
