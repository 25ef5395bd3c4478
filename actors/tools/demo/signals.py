"""Demo-world metric and log answers: PromQL, LogQL, Datadog, DataPrime and CloudWatch queries are
understood loosely (service names and metric words in the text) and answered from the world's series
and log lines, in the same shapes the live backends return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from actors.tools.base import ToolError, ToolResult
from actors.tools.convert import error_count, logs_result
from actors.tools.demo.scenarios import DATABASE, NAMESPACE, SERVICES
from actors.tools.demo.world import World
from incidentfox.evidence import EvidenceBundle, MetricSeries

ALL_SERVICES = (*SERVICES, DATABASE)
_METRIC_WORDS = (
    ("duration", "latency_p99"),
    ("latency", "latency_p99"),
    ("5..", "error_rate"),
    ("error", "error_rate"),
    ("memory", "memory"),
    ("cpu", "cpu"),
    ("connection", "connections"),
    ("storage", "free_storage_gb"),
    ("request", "requests"),
)
_CW_METRICS = {
    "DatabaseConnections": ("connections", 1.0),
    "CPUUtilization": ("cpu", 1.0),
    "FreeStorageSpace": ("free_storage_gb", 1e9),
    "WriteLatency": ("latency_p99", 1.0),
    "ReadLatency": ("latency_p99", 1.0),
}


def services_in(text: str | None) -> set[str] | None:
    """Service names mentioned in a query/selector, or None (meaning: all services)."""
    found = {s for s in ALL_SERVICES if text and re.search(rf"(?<![\w-]){s}(?![\w-])", text)}
    return found or None


def metric_in(text: str) -> str | None:
    lowered = text.lower()
    return next((m for word, m in _METRIC_WORDS if word in lowered), None)


def since_ts(world: World, args: dict[str, Any], default: int = 60) -> float:
    return (world.now - timedelta(minutes=args.get("since_minutes") or default)).timestamp()


def _pick(
    series: Iterable[MetricSeries],
    services: set[str] | None,
    metric: str,
    start: float,
    baseline: bool = False,
) -> list[MetricSeries]:
    out = []
    for sr in series:
        if sr.metric != metric or sr.baseline != baseline or (services and sr.entity not in services):
            continue
        keep = [i for i, t in enumerate(sr.timestamps) if t >= start]
        out.append(
            sr.model_copy(
                update={
                    "timestamps": [sr.timestamps[i] for i in keep],
                    "values": [sr.values[i] for i in keep],
                }
            )
        )
    return out


def _metrics_result(series: list[MetricSeries], what: str) -> ToolResult:
    current = [s for s in series if not s.baseline]
    data = [
        {
            "metric": {"service": s.entity, "__name__": s.metric},
            "baseline": s.baseline,
            "values": [[round(t), f"{v:.6g}"] for t, v in zip(s.timestamps, s.values)],
        }
        for s in series
    ]
    desc = "; ".join(
        f"{s.entity} {s.metric} last={s.values[-1]:.4g} max={max(s.values):.4g}" for s in current if s.values
    )
    return ToolResult.success(
        data, evidence=EvidenceBundle(metrics=series), summary=f"{len(current)} series{what}. {desc}".strip()
    )


def query_range(args: dict[str, Any], world: World) -> ToolResult:
    metric = args.get("metric") if args.get("metric") in {s.metric for s in world.series} else None
    metric = metric or metric_in(args["query"])
    if metric is None:
        return ToolResult.success(
            [],
            summary="0 series (the demo world has latency, error, request, cpu, memory, "
            "connection and storage metrics)",
        )
    services, start = services_in(args["query"]), since_ts(world, args)
    series = _pick(world.series, services, metric, start)
    if args.get("baseline_offset_hours"):
        series += _pick(world.series, services, metric, start, baseline=True)
    return _metrics_result(series, "")


def query_instant(args: dict[str, Any], world: World) -> ToolResult:
    metric = args.get("metric") or metric_in(args["query"])
    if metric is None:
        return ToolResult.success({"resultType": "vector", "result": []}, summary="0 series")
    series = [
        s.model_copy(update={"timestamps": s.timestamps[-1:], "values": s.values[-1:]})
        for s in _pick(world.series, services_in(args["query"]), metric, world.now.timestamp() - 120)
    ]
    return _metrics_result(series, " (instant)")


def _search_logs(
    world: World,
    args: dict[str, Any],
    *,
    services: set[str] | None,
    levels: set[str] | None,
    pattern: re.Pattern[str] | None,
) -> ToolResult:
    start, limit = since_ts(world, args), args.get("limit") or 100
    lines = [
        ln
        for ln in world.logs
        if ln.at.timestamp() >= start
        and (not services or ln.entity in services)
        and (not levels or ln.level in levels)
        and (pattern is None or pattern.search(ln.text))
    ][:limit]
    return logs_result(
        lines,
        f"{len(lines)} log lines ({error_count(lines)} errors) from {len({ln.entity for ln in lines})} services",
    )


def loki_logs(args: dict[str, Any], world: World) -> ToolResult:
    query = args["query"]
    selector, _, pipeline = query.partition("}")
    filters = re.findall(r'(\|=|\|~|!=|!~)\s*"((?:[^"\\]|\\.)*)"', pipeline)
    pattern = None
    for op, text in filters:
        if op in ("|=", "|~"):
            pattern = re.compile(text if op == "|~" else re.escape(text))
    return _search_logs(world, args, services=services_in(selector), levels=None, pattern=pattern)


def datadog_logs(args: dict[str, Any], world: World) -> ToolResult:
    q = args["query"]
    levels = {"error", "fatal"} if re.search(r"status:(error|critical|emergency)", q) else None
    services = {m for m in re.findall(r"service:([\w-]+)", q)} or None
    return _search_logs(world, args, services=services, levels=levels, pattern=None)


def coralogix_logs(args: dict[str, Any], world: World) -> ToolResult:
    q = args["query"]
    levels = (
        {"error", "fatal"} if re.search(r"severity\s*[=><]+\s*'?(ERROR|CRITICAL)", q, re.IGNORECASE) else None
    )
    return _search_logs(world, args, services=services_in(q), levels=levels, pattern=None)


def elasticsearch_logs(args: dict[str, Any], world: World) -> ToolResult:
    q = args.get("query") or ""
    levels = {"error", "fatal"} if re.search(r"level\S*:\s*\(?\s*(error|fatal)", q, re.IGNORECASE) else None
    result = _search_logs(world, args, services=services_in(q), levels=levels, pattern=None)
    result.data = {"total": len(result.data), "lines": [
        {"timestamp": r["at"], "service": r["service"], "pod": None, "level": r["level"], "message": r["text"]}
        for r in result.data], "partial": False}
    return result


def cloudwatch_logs(args: dict[str, Any], world: World) -> ToolResult:
    group = args["log_group"].rstrip("/")
    service = DATABASE if group == f"/aws/rds/instance/{DATABASE}/postgresql" else group.split("/")[-1]
    if service not in ALL_SERVICES or not (group.startswith(f"/{NAMESPACE}/") or service == DATABASE):
        raise ToolError("not_found", f"aws logs: ResourceNotFoundException: log group {group} does not exist")
    pattern = (
        re.compile(re.escape(args["filter_pattern"]), re.IGNORECASE) if args.get("filter_pattern") else None
    )
    return _search_logs(world, args, services={service}, levels=None, pattern=pattern)


def cloudwatch_metric(args: dict[str, Any], world: World) -> ToolResult:
    dims = {d["name"]: d["value"] for d in args.get("dimensions") or []}
    mapped = _CW_METRICS.get(args["metric_name"])
    if args["namespace"] != "AWS/RDS" or dims.get("DBInstanceIdentifier") != DATABASE or mapped is None:
        return ToolResult.success([], summary=f"{args['namespace']} {args['metric_name']}: no datapoints")
    metric, scale = mapped
    series = [
        s.model_copy(
            update={
                "metric": args["metric_name"],
                "values": [v * scale for v in s.values],
                "statistic": args.get("statistic") or "Average",
                "unit": "",
            }
        )
        for s in _pick(world.series, {DATABASE}, metric, since_ts(world, args))
    ]
    return _metrics_result(series, f" ({args['metric_name']})")
