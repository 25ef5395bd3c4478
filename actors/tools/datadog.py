"""Datadog HTTP API tools: metric queries (``/api/v1/query``) and log search
(``/api/v2/logs/events/search``); APM span search is :mod:`actors.tools.datadog_traces`.

``integrations.datadog``: ``api_key`` and ``app_key`` (required), ``site`` (default ``datadoghq.com``)
or ``api_url`` (overrides the site; tests point it at a local server).
"""

from __future__ import annotations

from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.convert import error_count, iso, logs_result, metric_name, normalise_level, parse_time
from actors.tools.httpcall import request_json
from incidentfox.evidence import EvidenceBundle, LogLine, MetricSeries

TIMEOUT_S = 20.0


def endpoint(config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The API base URL and the key headers of ``integrations.datadog`` (``not_configured`` without keys)."""
    if not config.get("api_key") or not config.get("app_key"):
        raise ToolError("not_configured", "integrations.datadog needs api_key and app_key")
    url = (config.get("api_url") or f"https://api.{config.get('site') or 'datadoghq.com'}").rstrip("/")
    return url, {
        "DD-API-KEY": str(config["api_key"]),
        "DD-APPLICATION-KEY": str(config["app_key"]),
        "Accept": "application/json",
    }


def _scope_entity(scope: str) -> str:
    tags = dict(t.split(":", 1) for t in scope.split(",") if ":" in t)
    return tags.get("service") or tags.get("kube_deployment") or tags.get("host") or scope


async def query_metrics(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, headers = endpoint(ctx.integration("datadog"))
    start, end = ctx.window(args["since_minutes"])
    body = await request_json(
        ctx,
        "GET",
        f"{url}/api/v1/query",
        service="datadog",
        timeout=TIMEOUT_S,
        headers=headers,
        params={"query": args["query"], "from": int(start.timestamp()), "to": int(end.timestamp())},
    )
    if body.get("status") == "error":
        raise ToolError("bad_request", f"datadog: {str(body.get('error', ''))[:300]}")
    series = []
    for sr in body.get("series") or []:
        points = [(p[0] / 1000.0, float(p[1])) for p in sr.get("pointlist") or [] if p[1] is not None]
        series.append(
            MetricSeries(
                entity=_scope_entity(sr.get("scope", "")),
                metric=args["metric"] or metric_name(args["query"], {"__name__": sr.get("metric")}),
                timestamps=[t for t, _ in points],
                values=[v for _, v in points],
            )
        )
    data = [
        {"scope": sr.get("scope"), "metric": sr.get("metric"), "points": len(sr.get("pointlist") or [])}
        for sr in body.get("series") or []
    ]
    desc = "; ".join(
        f"{x.entity} last={x.values[-1]:.4g} max={max(x.values):.4g}" for x in series[:6] if x.values
    )
    return ToolResult.success(
        {"series": data, "evidence_series": len(series)},
        evidence=EvidenceBundle(metrics=series),
        summary=f"{len(series)} series. {desc}",
    )


async def search_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    url, headers = endpoint(ctx.integration("datadog"))
    start, end = ctx.window(args["since_minutes"])
    payload = {
        "filter": {"query": args["query"], "from": iso(start), "to": iso(end)},
        "page": {"limit": args["limit"] or 100},
        "sort": "-timestamp",
    }
    body = await request_json(
        ctx,
        "POST",
        f"{url}/api/v2/logs/events/search",
        service="datadog",
        timeout=TIMEOUT_S,
        headers=headers,
        json_body=payload,
    )
    lines = []
    for item in body.get("data") or []:
        a = item.get("attributes") or {}
        text = str(a.get("message", ""))
        lines.append(
            LogLine(
                entity=a.get("service") or a.get("host") or "unknown",
                text=text[:2000],
                level=normalise_level(a.get("status"), text),
                at=parse_time(a.get("timestamp")),
            )
        )
    return logs_result(lines, f"{len(lines)} log events ({error_count(lines)} errors)")


SPECS: list[ToolSpec] = [
    ToolSpec(
        name="datadog_query_metrics",
        category="metrics",
        integration="datadog",
        fn=query_metrics,
        timeout_s=TIMEOUT_S,
        description="Query Datadog metrics over a recent window, e.g. "
        "`avg:trace.http.request.duration{service:checkout} by {service}`.",
        parameters=s.obj(
            query=s.string("Datadog metric query."),
            metric=s.string(
                "What it measures, e.g. latency, error_rate (null: guessed).", nullable=True, max_length=64
            ),
            since_minutes=s.SINCE_MINUTES,
        ),
    ),
    ToolSpec(
        name="datadog_search_logs",
        category="logs",
        integration="datadog",
        fn=search_logs,
        timeout_s=TIMEOUT_S,
        description="Search Datadog logs over a recent window, newest first, e.g. "
        "`service:checkout status:error`.",
        parameters=s.obj(
            query=s.string("Datadog log search query."), since_minutes=s.SINCE_MINUTES, limit=s.LIMIT
        ),
    ),
]
