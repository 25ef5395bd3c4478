"""Default playbooks: the tool calls each sub-agent makes when the offline planner runs.

A playbook is a list of *slots*; a slot is one question ("error rate per service") with alternative
tools in order of preference (Prometheus, else Datadog). :func:`playbook` picks, per slot, the first
tool in ``available`` (the team's :func:`actors.tools.registry.tools_for` names), so a team with both
Prometheus and Datadog asks once, and a demo team (where every tool is available) asks the primary.
With ``available=None`` the primary of every slot is returned.

Queries cover every service (``by (service)``), not just the trigger's: the culprit is often a
dependency of the service that alerted. The trigger's ``services`` add focused log searches. PromQL
comes from :mod:`actors.tools.promql`, built from the team's ``investigation.metrics`` (``metrics``);
the call graph from the service-graph metrics (``prometheus_service_graph``, unless that preset is
``off``) and Kubernetes services (``kubernetes_list_services``), which the demo backend answers
from its world like any other query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.tools import promql
from config_service import MetricSchema

Args = dict[str, Any]
# A builder gets (services, window minutes, the team's metric schema); None skips the slot, a list
# is several calls of that tool (one per latency statistic asked).
Slot = tuple[tuple[str, Callable[[list[str], int, MetricSchema], Args | list[Args] | None]], ...]

ERROR_WORDS = "(?i)(error|exception|fatal|panic|timeout|refused|out of memory|no space)"


def _selector(services: list[str]) -> str:
    safe = [re.escape(s) for s in services if re.fullmatch(r"[\w.-]+", s)]
    return f'{{service=~"{"|".join(safe)}"}}' if safe else '{service=~".+"}'


def _dd_services(services: list[str]) -> str:
    return " OR ".join(f"service:{s}" for s in services if re.fullmatch(r"[\w.-]+", s))


def _service_graph(m: MetricSchema, minutes: int) -> Args | None:
    if not m.service_graph_enabled:
        return None
    return {"metric": m.service_graph_metric, "client_label": m.client_label, "server_label": m.server_label,
            "since_minutes": minutes}


def _prom_latency(m: MetricSchema, statistic: str, minutes: int) -> Args:
    return {"query": promql.latency(m, statistic), "metric": promql.latency_metric(statistic),
            "since_minutes": minutes, "step_seconds": None, "baseline_offset_hours": 24}


def _dd_latency(statistic: str, minutes: int) -> Args:
    agg = "avg" if statistic == "average" else statistic
    return {"query": f"{agg}:trace.http.request.duration{{*}} by {{service}}",
            "metric": promql.latency_metric(statistic), "since_minutes": minutes}


# Each slot: alternatives of (tool, args builder(services, window_minutes)).
PLAYBOOKS: dict[str, tuple[Slot, ...]] = {
    "kubernetes": (
        (("kubernetes_list_pods", lambda sv, w, m: {"namespace": None, "label_selector": None, "limit": 500}),),
        (
            (
                "kubernetes_get_events",
                lambda sv, w, m: {
                    "namespace": None,
                    "warnings_only": True,
                    "since_minutes": w,
                    "object_name": None,
                    "limit": 200,
                },
            ),
        ),
        (("kubernetes_list_deployments", lambda sv, w, m: {"namespace": None, "label_selector": None}),),
        (("kubernetes_list_nodes", lambda sv, w, m: {"label_selector": None}),),
        (("kubernetes_list_services", lambda sv, w, m: {"namespace": None, "label_selector": None, "limit": 500}),),
        (("kubernetes_list_jobs", lambda sv, w, m: {"namespace": None, "label_selector": None, "limit": 500}),),
    ),
    "metrics": (
        (
            (
                "prometheus_query_range",
                lambda sv, w, m: {
                    "query": promql.error_rate(m),
                    "metric": "error_rate",
                    "since_minutes": w,
                    "step_seconds": None,
                    "baseline_offset_hours": 24,
                },
            ),
            (
                "datadog_query_metrics",
                lambda sv, w, m: {
                    "query": "sum:trace.http.request.errors{*} by {service}.as_rate()",
                    "metric": "error_rate",
                    "since_minutes": w,
                },
            ),
        ),
        (
            # One query per latency statistic asked (the team's, plus the alert's own).
            ("prometheus_query_range", lambda sv, w, m: [_prom_latency(m, stat, w) for stat in m.latency_statistics]),
            ("datadog_query_metrics", lambda sv, w, m: [_dd_latency(stat, w) for stat in m.latency_statistics]),
        ),
        (
            (
                "prometheus_query_range",
                lambda sv, w, m: {
                    "query": promql.memory(m),
                    "metric": "memory",
                    "since_minutes": w,
                    "step_seconds": None,
                    "baseline_offset_hours": 24,
                },
            ),
        ),
        (
            (
                "prometheus_query_range",
                lambda sv, w, m: {
                    "query": promql.cpu(m),
                    "metric": "cpu",
                    "since_minutes": w,
                    "step_seconds": None,
                    "baseline_offset_hours": 24,
                },
            ),
        ),
        (
            # Who calls whom: the service-graph metrics, else (no Prometheus) the traces, which also
            # say where time and errors go.
            ("prometheus_service_graph", lambda sv, w, m: _service_graph(m, w)),
            (
                "tempo_search_traces",
                lambda sv, w, m: {"service": None, "query": None, "min_duration_ms": None, "since_minutes": w,
                                  "limit": 20, "fetch_traces": 5},
            ),
            (
                "xray_search_traces",
                lambda sv, w, m: {"service": None, "filter_expression": None, "since_minutes": min(w, 24 * 60),
                                  "limit": 20, "fetch_traces": 5},
            ),
        ),
        # Message-broker health (nodes down, a split cluster, alarms blocking publishers).
        (("rabbitmq_cluster_status", lambda sv, w, m: {}),),
    ),
    "logs": (
        (
            (
                "loki_query_logs",
                lambda sv, w, m: {
                    "query": f'{{service=~".+"}} |~ "{ERROR_WORDS}"',
                    "since_minutes": w,
                    "limit": 300,
                },
            ),
            (
                "datadog_search_logs",
                lambda sv, w, m: {"query": "status:error", "since_minutes": w, "limit": 300},
            ),
            (
                "coralogix_query_logs",
                lambda sv, w, m: {
                    "query": "source logs | filter $m.severity >= ERROR",
                    "since_minutes": w,
                    "limit": 300,
                },
            ),
            (
                "elasticsearch_search_logs",
                lambda sv, w, m: {
                    "query": "error OR exception OR fatal OR panic OR timeout OR refused",
                    "index": None,
                    "since_minutes": w,
                    "limit": 300,
                },
            ),
        ),
        (
            ("loki_query_logs", lambda sv, w, m: {"query": _selector(sv), "since_minutes": w, "limit": 100}),
            (
                "datadog_search_logs",
                lambda sv, w, m: {"query": _dd_services(sv) or "*", "since_minutes": w, "limit": 100},
            ),
        ),
    ),
    "changes": (
        (("kubernetes_rollout_history", lambda sv, w, m: {"namespace": None, "deployment": None, "limit": 50}),),
        (
            (
                "github_deployments",
                lambda sv, w, m: {
                    "repo": None,
                    "environment": None,
                    "since_minutes": max(w * 3, 180),
                    "limit": 30,
                },
            ),
            (
                "grafana_annotations",
                lambda sv, w, m: {"tags": None, "since_minutes": max(w * 3, 180), "limit": 100},
            ),
        ),
        (
            (
                "github_recorded_changes",
                lambda sv, w, m: {"repo": None, "since_minutes": max(w * 3, 180), "limit": 100},
            ),
        ),
        (
            (
                "github_recent_commits",
                lambda sv, w, m: {"repo": None, "branch": None, "since_minutes": max(w * 3, 180), "limit": 30},
            ),
        ),
        # GitOps: applications out of sync, unhealthy, or whose last sync failed.
        (("argocd_list_applications", lambda sv, w, m: {"name": None}),),
    ),
    "cloud": (
        (("aws_rds_instances", lambda sv, w, m: {"identifier": None}),),
        (("aws_ec2_instance_status", lambda sv, w, m: {"instance_ids": None, "only_impaired": True}),),
        (
            (
                "aws_ecs_services",
                lambda sv, w, m: {"cluster": None, "services": None, "since_minutes": max(w * 3, 180)},
            ),
        ),
    ),
}


Window = timedelta | float | int | tuple[datetime, datetime] | None


def window_minutes(window: Window) -> int:
    """``window`` (see :func:`playbook`) as whole minutes of look-back, 1 minute to 7 days."""
    if window is None:
        return 60
    if isinstance(window, tuple):
        # Tools look back from the moment they run, so reach back to the window's start from now.
        start, end = window
        span = max(end - start, datetime.now(UTC) - start)
        minutes = span.total_seconds() / 60
    elif isinstance(window, timedelta):
        minutes = window.total_seconds() / 60
    else:
        minutes = float(window)
    return max(1, min(7 * 24 * 60, round(minutes)))


def playbook(
    subagent: str,
    *,
    services: Iterable[str] = (),
    window: Window = 60,
    available: Collection[str] | None = None,
    metrics: MetricSchema | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``[(tool name, args), …]`` for ``subagent`` to run in parallel.

    ``window`` is how far back to look: a ``timedelta``, minutes, or a ``(start, end)`` pair (the
    look-back then reaches ``start`` from now, since tools query up to the moment they run).
    ``available`` restricts the choice to those tool names, e.g. the sub-agent's allowed tools (None:
    the primary of each slot, which may be a tool the team lacks). The focused per-service log search
    is only included when ``services`` is non-empty. ``metrics`` are the team's metric names and
    labels (``TeamConfig.metrics``; None: the defaults); its ``latency_statistics`` are the latency
    queries asked, one call each (the planner adds a latency alert's own statistic with
    :meth:`~config_service.MetricSchema.asking`). ``KeyError`` for an unknown sub-agent.
    """
    slots = PLAYBOOKS[subagent]
    svc = sorted({s for s in services if s})
    w = window_minutes(window)
    m = metrics or promql.DEFAULT_SCHEMA
    out: list[tuple[str, dict[str, Any]]] = []
    for slot in slots:
        if subagent == "logs" and slot is slots[1] and not svc:
            continue
        for tool, build in slot:
            if available is None or tool in available:
                args = build(svc, w, m)
                calls = args if isinstance(args, list) else [] if args is None else [args]
                out.extend((tool, a) for a in calls)
                break
    return out
