"""Loki tool: LogQL over ``/loki/api/v1/query_range``.

``integrations.loki``: ``url`` (required), ``token`` (bearer) or ``username``/``password``,
``tenant`` (sent as ``X-Scope-OrgID``), optional ``headers`` and ``verify_ssl``. Log streams become
:class:`LogLine` (entity = the stream's service-like label); metric queries become series.
"""

from __future__ import annotations

from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.convert import error_count, logs_result, normalise_level, parse_time, service_from_labels
from actors.tools.httpcall import base_url, bearer, request_json
from actors.tools.prometheus import series_from_matrix
from incidentfox.evidence import EvidenceBundle, LogLine
from incidentfox.tenant_headers import tenant_headers

TIMEOUT_S = 25.0


def lines_from_streams(result: list[dict[str, Any]]) -> list[LogLine]:
    out = []
    for stream in result:
        labels = stream.get("stream") or {}
        entity = service_from_labels(labels, default="unknown")
        for ts, text in stream.get("values") or []:
            level = normalise_level(labels.get("level") or labels.get("detected_level"), text)
            out.append(LogLine(entity=entity, text=str(text)[:2000], level=level, at=parse_time(ts)))
    out.sort(key=lambda ln: ln.at.timestamp() if ln.at else 0.0, reverse=True)
    return out


async def query_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("loki")
    headers = tenant_headers(config.get("headers"))   # never Host or hop-by-hop names
    headers.update(bearer(config.get("token")))
    if config.get("tenant"):
        headers["X-Scope-OrgID"] = str(config["tenant"])
    auth = (config["username"], config.get("password", "")) if config.get("username") else None
    start, end = ctx.window(args["since_minutes"])
    params = {
        "query": args["query"],
        "start": str(int(start.timestamp() * 1e9)),
        "end": str(int(end.timestamp() * 1e9)),
        "limit": str(args["limit"] or 200),
        "direction": "backward",
    }
    body = await request_json(
        ctx,
        "GET",
        f"{base_url(config, service='loki')}/loki/api/v1/query_range",
        service="loki",
        timeout=TIMEOUT_S,
        params=params,
        headers=headers,
        auth=auth,
        verify=bool(config.get("verify_ssl", True)),
    )
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ToolError("upstream_error", "loki returned an unexpected body")
    kind, result = body["data"].get("resultType"), body["data"].get("result") or []
    if kind == "streams":
        lines = lines_from_streams(result)
        return logs_result(
            lines,
            f"{len(lines)} log lines ({error_count(lines)} errors) from "
            f"{len({ln.entity for ln in lines})} services",
        )
    series = series_from_matrix(result, query=args["query"], metric=None)
    return ToolResult.success(
        {"resultType": kind, "result": result},
        evidence=EvidenceBundle(metrics=series),
        summary=f"{len(series)} series from a LogQL metric query",
    )


SPECS: list[ToolSpec] = [
    ToolSpec(
        name="loki_query_logs",
        category="logs",
        integration="loki",
        fn=query_logs,
        timeout_s=TIMEOUT_S,
        description="Search logs with LogQL over a recent window, newest first, e.g. "
        '`{service="checkout"} |~ "(?i)error|timeout"`. A metric query '
        "(`sum by (service) (count_over_time(...[5m]))`) returns series instead.",
        parameters=s.obj(query=s.string("LogQL query."), since_minutes=s.SINCE_MINUTES, limit=s.LIMIT),
    ),
]
