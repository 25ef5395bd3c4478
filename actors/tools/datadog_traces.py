"""``datadog_search_traces``: Datadog APM spans of a service, as the same bounded trace view as Tempo,
Jaeger and X-Ray (:mod:`actors.tools.traces`).

Datadog's Spans API searches spans, not traces (``POST /api/v2/spans/events/search``, a JSON:API
``search_request`` with ``filter.query``/``from``/``to``, ``page.limit`` and ``sort``; needs the
``apm_read`` scope and is rate limited to 300 requests an hour). The tool runs one search for the
service's spans in the window (optionally ``status:error``, a minimum ``@duration`` and any span query),
then, for the ``fetch_traces`` slowest traces among them, one search ``trace_id:<id>`` each, so the
result holds whole traces with their parent links and the downstream services the slow spans wait
on. Each span's service, resource (the operation), parent (``0`` = root), start and end times become a
:class:`~incidentfox.evidence.TraceSpan`; it is an error when its ``status`` is ``error`` or it carries
``error.*`` / an HTTP status ≥ 500 in its attributes.

Credentials and site are those of ``integrations.datadog`` (:mod:`actors.tools.datadog`); every call
goes through the egress-checked client (:func:`actors.tools.httpcall.request_json`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso, parse_time
from actors.tools.datadog import endpoint
from actors.tools.httpcall import request_json
from actors.tools.tempo import DEFAULT_FETCH, FETCH, MIN_DURATION, TRACE_LIMIT
from actors.tools.traces import traces_result
from incidentfox.evidence import TraceSpan

TIMEOUT_S = 25.0
MAX_TRACE_SPANS = 500          # spans read per fetched trace (one page)
_SERVICE = re.compile(r"^[\w.:/-]{1,200}$")
_TRACE_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
spec = spec_builder(category="traces", integration="datadog", timeout_s=TIMEOUT_S)


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is not None and not isinstance(value, list):
        out[prefix] = str(value)[:500]


def _status(a: dict[str, Any], attrs: dict[str, str]) -> str:
    if str(a.get("status") or attrs.get("status") or "").lower() == "error" or \
            any(k.startswith("error.") for k in attrs):
        return "error"
    code = attrs.get("http.status_code") or attrs.get("http.response.status_code") or ""
    if code.isdigit():
        return "error" if int(code) >= 500 else "ok"
    return "ok" if str(a.get("status") or "").lower() == "ok" else ""


def _ms(start: datetime | None, end: datetime | None, attrs: dict[str, str]) -> float:
    if start is not None and end is not None:
        return max(0.0, (end - start).total_seconds() * 1000)
    duration = attrs.get("duration", "")
    return float(duration) / 1e6 if duration.replace(".", "", 1).isdigit() else 0.0   # Datadog: nanoseconds


def spans_from_datadog(items: list[dict[str, Any]]) -> list[TraceSpan]:
    """Spans of a Spans API answer (``data``), de-duplicated by (trace, span)."""
    out: dict[tuple[str, str], TraceSpan] = {}
    for item in items:
        a = item.get("attributes") if isinstance(item, dict) else None
        if not isinstance(a, dict) or not a.get("trace_id") or not a.get("span_id"):
            continue
        attrs: dict[str, str] = {}
        _flat("", a.get("custom") or {}, attrs)
        _flat("", a.get("attributes") or {}, attrs)
        start, end = parse_time(a.get("start_timestamp")), parse_time(a.get("end_timestamp"))
        parent = str(a.get("parent_id") or "")
        span = TraceSpan(trace_id=str(a["trace_id"]), span_id=str(a["span_id"]),
                         parent_id="" if parent in ("", "0") else parent,
                         entity=str(a.get("service") or "unknown"),
                         name=str(a.get("resource_name") or attrs.get("operation_name") or a.get("type") or ""),
                         start=start, duration_ms=_ms(start, end, attrs), status=_status(a, attrs), attributes=attrs)
        out[(span.trace_id, span.span_id)] = span
    return list(out.values())


async def _search(ctx: ToolContext, query: str, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    url, headers = endpoint(ctx.integration("datadog"))
    payload = {"data": {"type": "search_request", "attributes": {
        "filter": {"query": query, "from": iso(start), "to": iso(end)},
        "page": {"limit": limit}, "sort": "-timestamp"}}}
    body = await request_json(ctx, "POST", f"{url}/api/v2/spans/events/search", service="datadog",
                              timeout=TIMEOUT_S, headers={**headers, "Content-Type": "application/json"},
                              json_body=payload)
    if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
        raise ToolError("upstream_error", "datadog returned an unexpected spans body")
    return body.get("data") or []


def span_query(args: dict[str, Any]) -> str:
    """The span search query the arguments describe."""
    service = args["service"]
    if not _SERVICE.match(service or ""):
        raise ToolError("invalid_arguments", "service must be 1-200 characters of letters, digits and ._:/-")
    parts = [f"service:{service}"]
    if args.get("errors_only"):
        parts.append("status:error")
    if args.get("min_duration_ms"):
        parts.append(f"@duration:>={int(args['min_duration_ms'])}ms")
    if args.get("query"):
        parts.append(f"({args['query']})")
    return " ".join(parts)


async def search_traces(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"])
    limit = args["limit"] or 20
    found = spans_from_datadog(await _search(ctx, span_query(args), start, end, min(1000, limit * 10)))
    fetch = DEFAULT_FETCH if args["fetch_traces"] is None else args["fetch_traces"]
    slowest: list[str] = []
    for sp in sorted(found, key=lambda sp: -sp.duration_ms):
        if sp.trace_id not in slowest and _TRACE_ID.match(sp.trace_id):
            slowest.append(sp.trace_id)
    slowest = slowest[:fetch]
    whole = await asyncio.gather(*(_search(ctx, f"trace_id:{t}", start, end, MAX_TRACE_SPANS) for t in slowest))
    spans = spans_from_datadog([item for items in whole for item in items])
    seen = {(sp.trace_id, sp.span_id) for sp in spans}
    traces = {sp.trace_id for sp in spans}
    others = [sp for sp in found if (sp.trace_id, sp.span_id) not in seen]
    kept_traces = list(dict.fromkeys(sp.trace_id for sp in others if sp.trace_id not in traces))
    kept = set(kept_traces[: max(0, limit - len(traces))])
    spans += [sp for sp in others if sp.trace_id in kept]
    return traces_result(spans, what=f"traces ({len(slowest)} fetched)")


SPECS: list[ToolSpec] = [
    spec("datadog_search_traces", search_traces,
         "Search Datadog APM for recent spans of a service (optionally failing ones, a minimum duration or "
         "a span query such as `resource_name:\"GET /cart\"`) and fetch the slowest traces in full. Returns "
         "the slowest and failing spans and which service calls which (caller→callee counts).",
         s.obj(service=s.string("Service name as Datadog APM knows it (`service:` tag).", max_length=200),
               query=s.string("Extra span search terms, e.g. `env:prod resource_name:\"GET /cart\"` (null: none).",
                              nullable=True, max_length=500),
               errors_only=s.boolean("Only spans with status error (null: false).", nullable=True),
               min_duration_ms=MIN_DURATION, since_minutes=s.SINCE_MINUTES, limit=TRACE_LIMIT,
               fetch_traces=FETCH)),
]
