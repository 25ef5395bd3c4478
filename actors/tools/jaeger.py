"""Jaeger tools: trace search (``/api/traces?service=…``) and one trace (``/api/traces/{id}``), over
the query service's HTTP JSON API (the one its UI uses).

``integrations.jaeger``: ``url`` (the query service, required), ``token`` (bearer) or
``username``/``password``, optional ``headers`` and ``verify_ssl``. The block's types are checked at
config write (``config_service/integration_blocks.py``). Jaeger answers a search with
whole traces, so the result carries spans, slow and failing spans and service-to-service calls
(:mod:`actors.tools.traces`).
"""

from __future__ import annotations

import json
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import parse_time
from actors.tools.httpcall import json_endpoint, request_json
from actors.tools.tempo import MIN_DURATION, TRACE_ID, TRACE_LIMIT
from actors.tools.traces import traces_result
from incidentfox.evidence import TraceSpan

TIMEOUT_S = 25.0
spec = spec_builder(category="traces", integration="jaeger", timeout_s=TIMEOUT_S)


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value")).lower() if t.get("type") == "bool" else str(t.get("value"))
            for t in items or [] if t.get("key")}


def _status(tags: dict[str, str]) -> str:
    if tags.get("error") == "true" or tags.get("otel.status_code") == "ERROR":
        return "error"
    code = tags.get("http.status_code") or tags.get("http.response.status_code") or ""
    if code.isdigit():
        return "error" if int(code) >= 500 else "ok"
    return "ok" if tags.get("otel.status_code") == "OK" else ""


def spans_from_jaeger(traces: list[dict[str, Any]]) -> list[TraceSpan]:
    """Spans of Jaeger JSON traces (``data`` of ``/api/traces``): service from ``processes``, parent
    from the ``CHILD_OF`` reference (else the first one), times in microseconds."""
    out = []
    for trace in traces:
        processes = trace.get("processes") or {}
        for raw in trace.get("spans") or []:
            tags = _tags(raw.get("tags"))
            refs = raw.get("references") or []
            parent = next((r for r in refs if r.get("refType") == "CHILD_OF"), refs[0] if refs else {})
            process = processes.get(raw.get("processID")) or raw.get("process") or {}
            start_us = raw.get("startTime")
            out.append(TraceSpan(
                trace_id=str(raw.get("traceID") or trace.get("traceID") or ""), span_id=str(raw.get("spanID", "")),
                parent_id=str(parent.get("spanID") or ""), entity=str(process.get("serviceName") or "unknown"),
                name=str(raw.get("operationName", "")),
                start=parse_time(float(start_us) / 1e6) if start_us else None,
                duration_ms=float(raw.get("duration") or 0) / 1000.0, status=_status(tags),
                attributes={k: v[:500] for k, v in tags.items()}))
    return out



def _data(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ToolError("upstream_error", "jaeger returned an unexpected body")
    errors = body.get("errors") or []
    if errors and not body["data"]:
        first = errors[0] if isinstance(errors[0], dict) else {"msg": str(errors[0])}
        reason = "not_found" if first.get("code") == 404 else "bad_request"
        raise ToolError(reason, f"jaeger: {str(first.get('msg', ''))[:300]}")
    return body["data"]


async def search_traces(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, kw = json_endpoint(ctx, "jaeger")
    start, end = ctx.window(args["since_minutes"])
    params: dict[str, str] = {"service": args["service"], "start": str(int(start.timestamp() * 1e6)),
                              "end": str(int(end.timestamp() * 1e6)), "limit": str(args["limit"] or 20)}
    if args["operation"]:
        params["operation"] = args["operation"]
    if args["min_duration_ms"]:
        params["minDuration"] = f"{args['min_duration_ms']}ms"
    if args["errors_only"]:
        params["tags"] = json.dumps({"error": "true"})
    body = await request_json(ctx, "GET", f"{url}/api/traces", service="jaeger", timeout=TIMEOUT_S,
                              params=params, **kw)
    return traces_result(spans_from_jaeger(_data(body)))


async def get_trace(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, kw = json_endpoint(ctx, "jaeger")
    if not TRACE_ID.match(args["trace_id"]):
        raise ToolError("invalid_arguments", "trace_id must be 1-32 hex characters")
    body = await request_json(ctx, "GET", f"{url}/api/traces/{args['trace_id'].lower()}", service="jaeger",
                              timeout=TIMEOUT_S, **kw)
    return traces_result(spans_from_jaeger(_data(body)), what="trace")


SPECS: list[ToolSpec] = [
    spec("jaeger_search_traces", search_traces,
         "Search Jaeger for recent traces of a service (optionally one operation, a minimum duration, or "
         "failing traces only). Returns the slowest and failing spans and which service calls which "
         "(caller→callee counts).",
         s.obj(service=s.string("Service name as Jaeger knows it.", max_length=200),
               operation=s.string("Operation (span name) to narrow to (null: all).", nullable=True, max_length=300),
               min_duration_ms=MIN_DURATION,
               errors_only=s.boolean("Only traces with an error span (null: false).", nullable=True),
               since_minutes=s.SINCE_MINUTES, limit=TRACE_LIMIT)),
    spec("jaeger_get_trace", get_trace,
         "Fetch one trace from Jaeger by id: every span with service, operation, duration, status and "
         "parent, plus its slowest and failing spans and service-to-service calls.",
         s.obj(trace_id=s.string("Trace id (hex).", max_length=32))),
]
