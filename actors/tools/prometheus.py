"""Prometheus HTTP API tools: instant (``/api/v1/query``) and range (``/api/v1/query_range``) queries.

``integrations.prometheus``: ``url`` (required), ``token`` (bearer) or ``username``/``password``
(basic auth), optional ``headers`` (e.g. ``X-Scope-OrgID`` for Mimir/Cortex/Thanos) and
``verify_ssl``. Range results become :class:`MetricSeries`; with ``baseline_offset_hours`` the same
window that many hours earlier is fetched too and marked ``baseline=True``. The service-graph tool
reads who calls whom from a client/server counter (Tempo's ``traces_service_graph_request_total``,
Istio's ``istio_requests_total``) and returns call-graph edges with their call counts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from actors.ranking.topology import SERVICE_GRAPH, edges_from_service_graph
from actors.tools import promql
from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.convert import metric_name, parse_time, service_from_labels
from actors.tools.httpcall import base_url, bearer, request_json
from incidentfox.evidence import EvidenceBundle, MetricSeries
from incidentfox.tenant_headers import tenant_headers

TIMEOUT_S = 20.0
_QUERY_SERVICE = re.compile(r'(?:service|app|job)\s*=~?\s*"([^"|]+)"')


def _auth(config: dict[str, Any]) -> dict[str, Any]:
    headers = tenant_headers(config.get("headers"))   # never Host or hop-by-hop names
    headers.update(bearer(config.get("token")))
    auth = (config["username"], config.get("password", "")) if config.get("username") else None
    return {"headers": headers, "auth": auth, "verify": bool(config.get("verify_ssl", True))}


async def _api(ctx: ToolContext, path: str, params: dict[str, Any]) -> dict[str, Any]:
    config = ctx.integration("prometheus")
    body = await request_json(
        ctx,
        "GET",
        f"{base_url(config, service='prometheus')}{path}",
        service="prometheus",
        timeout=TIMEOUT_S,
        params=params,
        **_auth(config),
    )
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ToolError(
            "upstream_error",
            f"prometheus: {str(body.get('error') if isinstance(body, dict) else body)[:300]}",
        )
    return body["data"]


def _entity(labels: dict[str, Any], query: str) -> str:
    found = _QUERY_SERVICE.search(query)
    return service_from_labels(labels, default=found.group(1) if found else "")


def series_from_matrix(
    result: list[dict[str, Any]],
    *,
    query: str,
    metric: str | None,
    baseline: bool = False,
    shift_s: float = 0.0,
) -> list[MetricSeries]:
    """Prometheus ``matrix`` (or ``vector``) results → MetricSeries; ``shift_s`` moves baseline
    timestamps onto the current window so they line up with the series they are compared with."""
    out = []
    for item in result:
        labels = item.get("metric") or {}
        points = item.get("values") or ([item["value"]] if item.get("value") else [])
        values, stamps = [], []
        for ts, v in points:
            try:
                values.append(float(v))
            except (TypeError, ValueError):
                continue
            stamps.append(float(ts) + shift_s)
        out.append(
            MetricSeries(
                entity=_entity(labels, query),
                metric=metric or metric_name(query, labels),
                timestamps=stamps,
                values=values,
                baseline=baseline,
                statistic=str(labels.get("quantile", "")),
            )
        )
    return out


def _describe(series: list[MetricSeries]) -> str:
    parts = []
    for sr in series[:6]:
        if sr.values:
            parts.append(f"{sr.entity or '?'} {sr.metric} last={sr.values[-1]:.4g} max={max(sr.values):.4g}")
    return "; ".join(parts)


async def query(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    params = {"query": args["query"]}
    if args["time"]:
        at = parse_time(args["time"])
        if at is None:
            raise ToolError("invalid_arguments", "time must be RFC 3339")
        params["time"] = f"{at.timestamp():.3f}"
    data = await _api(ctx, "/api/v1/query", params)
    kind, result = data.get("resultType"), data.get("result")
    series = (
        series_from_matrix(result, query=args["query"], metric=args["metric"])
        if kind in ("vector", "matrix")
        else []
    )
    return ToolResult.success(
        {"resultType": kind, "result": result},
        evidence=EvidenceBundle(metrics=series),
        summary=f"{len(series) if series else 'scalar'} series. {_describe(series)}",
    )


async def query_range(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"])
    step = args["step_seconds"] or max(15, int((end - start).total_seconds() // 240))

    async def fetch(a: datetime, b: datetime) -> list[dict[str, Any]]:
        data = await _api(
            ctx,
            "/api/v1/query_range",
            {
                "query": args["query"],
                "start": f"{a.timestamp():.3f}",
                "end": f"{b.timestamp():.3f}",
                "step": str(step),
            },
        )
        return data.get("result") or []

    result = await fetch(start, end)
    series = series_from_matrix(result, query=args["query"], metric=args["metric"])
    payload: dict[str, Any] = {"step": step, "result": result}
    if args["baseline_offset_hours"]:
        shift = timedelta(hours=args["baseline_offset_hours"])
        base = await fetch(start - shift, end - shift)
        series += series_from_matrix(
            base, query=args["query"], metric=args["metric"], baseline=True, shift_s=shift.total_seconds()
        )
        payload["baseline"] = base
    return ToolResult.success(
        payload,
        evidence=EvidenceBundle(metrics=series),
        summary=f"{len(result)} series over {args['since_minutes'] or 60} min. "
        f"{_describe([x for x in series if not x.baseline])}",
    )


async def service_graph(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    metric = args["metric"] or "traces_service_graph_request_total"
    client, server = args["client_label"] or "client", args["server_label"] or "server"
    for name in (metric, client, server):
        if not _NAME.fullmatch(name):
            raise ToolError("invalid_arguments", f"{name[:80]!r} is not a Prometheus metric or label name")
    minutes = args["since_minutes"] or 60
    data = await _api(ctx, "/api/v1/query", {"query": promql.service_graph(metric, client, server, minutes)})
    rows = []
    result = (data.get("result") or []) if data.get("resultType") == "vector" else []
    for item in result:
        try:
            rows.append((item.get("metric") or {}, float(item["value"][1])))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    edges = edges_from_service_graph(rows, client_label=client, server_label=server, source=SERVICE_GRAPH)
    return ToolResult.success(
        [{"caller": e.caller, "callee": e.callee, "calls": e.calls} for e in edges],
        evidence=EvidenceBundle(topology=edges),
        summary=f"{len(edges)} edges from {metric}: "
        + "; ".join(f"{e.caller} → {e.callee} ({e.calls:.0f})" for e in edges[:20]),
    )


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_METRIC = s.string(
    "What the query measures, e.g. `error_rate`, `latency_p99`, `memory` (null: guessed).",
    nullable=True,
    max_length=64,
)

SPECS: list[ToolSpec] = [
    ToolSpec(
        name="prometheus_query",
        category="metrics",
        integration="prometheus",
        fn=query,
        timeout_s=TIMEOUT_S,
        description="Evaluate a PromQL expression at one instant (default: now). Good for current "
        'values such as `sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))`.',
        parameters=s.obj(
            query=s.string("PromQL expression."),
            metric=_METRIC,
            time=s.string("RFC 3339 evaluation time (null: now).", nullable=True, max_length=40),
        ),
    ),
    ToolSpec(
        name="prometheus_query_range",
        category="metrics",
        integration="prometheus",
        fn=query_range,
        timeout_s=TIMEOUT_S,
        description="Evaluate a PromQL expression over a recent window and return time series. Set "
        "baseline_offset_hours (e.g. 24) to also get the same window from that long ago "
        "for comparison.",
        parameters=s.obj(
            query=s.string("PromQL expression."),
            metric=_METRIC,
            since_minutes=s.SINCE_MINUTES,
            step_seconds=s.integer(
                "Resolution in seconds (null: about 240 points).", nullable=True, minimum=1, maximum=3600
            ),
            baseline_offset_hours=s.integer(
                "Also fetch this many hours earlier as a baseline (null: no baseline).",
                nullable=True,
                minimum=1,
                maximum=24 * 14,
            ),
        ),
    ),
    ToolSpec(
        name="prometheus_service_graph",
        category="metrics",
        integration="prometheus",
        fn=service_graph,
        timeout_s=TIMEOUT_S,
        description="Show which services call which, with call counts, from service-graph metrics "
        "(Tempo's `traces_service_graph_request_total{client, server}` by default; for Istio use "
        "`istio_requests_total` with `source_workload`/`destination_workload`). Use it to tell a "
        "failing dependency from the services that merely suffer from it.",
        parameters=s.obj(
            metric=s.string("Service-graph counter (null: traces_service_graph_request_total).",
                            nullable=True, max_length=200),
            client_label=s.string("Label naming the caller (null: client).", nullable=True, max_length=200),
            server_label=s.string("Label naming the callee (null: server).", nullable=True, max_length=200),
            since_minutes=s.SINCE_MINUTES,
        ),
    ),
]
