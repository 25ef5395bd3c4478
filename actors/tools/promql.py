"""The one place PromQL is written: queries built from a team's metric names and labels
(:class:`config_service.MetricSchema`, ``investigation.metrics``), never from hard-coded names.

Per-service results always carry a ``service`` label (a configured label of another name is copied
into it with ``label_replace``), so the Prometheus tool names series the same way for every
exporter. With the default schema the queries are exactly what the planner always sent.
"""

from __future__ import annotations

import re
from typing import Literal

from config_service import MetricSchema
from incidentfox.latency_statistic import AVERAGE, STATISTIC

Signal = Literal["error_rate", "latency_p99", "memory", "cpu", "network_transmit", "network_receive", "restarts",
                 "oom_killed"]
SIGNALS: tuple[Signal, ...] = ("error_rate", "latency_p99", "memory", "cpu", "network_transmit", "network_receive",
                               "restarts", "oom_killed")
Side = Literal["client", "server"]
DEFAULT_SCHEMA = MetricSchema()
RATE_WINDOW = "5m"
_POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _as_service(expr: str, label: str) -> str:
    """``expr`` with its ``label`` also exposed as ``service`` (unchanged when it already is)."""
    if label == "service":
        return expr
    return f'label_replace({expr}, "service", "$1", "{label}", "(.+)")'


def _requests(m: MetricSchema) -> str:
    """The request counter: the configured one, else the duration histogram's ``_count``."""
    return m.requests_total or m.request_duration_bucket.removesuffix("_bucket") + "_count"


def error_rate(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Share of failing requests per service."""
    by, counter = m.service_label, _requests(m)
    expr = (f'sum by ({by}) (rate({counter}{{{m.status_label}=~"{m.error_status}"}}[{RATE_WINDOW}])) / '
            f"sum by ({by}) (rate({counter}[{RATE_WINDOW}]))")
    return _as_service(expr, by)


def latency(m: MetricSchema = DEFAULT_SCHEMA, statistic: str = "p99") -> str:
    """Request duration per service, in seconds, as ``statistic``: ``average`` (the histogram's
    ``_sum`` rate over its ``_count`` rate) or ``p<q>`` (``histogram_quantile`` over the buckets).
    ``ValueError`` for another statistic."""
    by, hist = m.service_label, m.request_duration_bucket.removesuffix("_bucket")
    if statistic == AVERAGE:
        expr = (f"sum by ({by}) (rate({hist}_sum[{RATE_WINDOW}])) / "
                f"sum by ({by}) (rate({hist}_count[{RATE_WINDOW}]))")
    else:
        q = _quantile(statistic)
        expr = f"histogram_quantile({q}, sum by ({by}, le) (rate({m.request_duration_bucket}[{RATE_WINDOW}])))"
    if m.duration_unit == "ms":
        expr = f"{expr} / 1000"
    return _as_service(expr, by)


def _quantile(statistic: str) -> str:
    if not STATISTIC.fullmatch(statistic) or statistic == AVERAGE:
        raise ValueError(f"not a latency statistic: {statistic!r} (average or p<quantile>)")
    return f"{float(statistic[1:]) / 100:g}"


def latency_metric(statistic: str) -> str:
    """The series name of the latency query for ``statistic`` (``latency_p99``, ``latency_average``)."""
    return f"latency_{statistic}"


def latency_p99(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """p99 request duration per service, in seconds."""
    return latency(m, "p99")


def _containers(m: MetricSchema) -> str:
    return f'{{{m.container_label}!="", {m.container_label}!="POD"}}'


def memory(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Working-set memory per container (cAdvisor)."""
    return f"sum by ({m.container_label}) ({m.memory}{_containers(m)})"


def cpu(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """CPU cores used per container (cAdvisor)."""
    return f"sum by ({m.container_label}) (rate({m.cpu}{_containers(m)}[{RATE_WINDOW}]))"


def network_transmit(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Bytes per second sent per container (cAdvisor)."""
    return f"sum by ({m.container_label}) (rate({m.network_transmit}{_containers(m)}[{RATE_WINDOW}]))"


def network_receive(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Bytes per second received per container (cAdvisor)."""
    return f"sum by ({m.container_label}) (rate({m.network_receive}{_containers(m)}[{RATE_WINDOW}]))"


def call_latency(side: Side, m: MetricSchema = DEFAULT_SCHEMA) -> str | None:
    """Median latency of the calls *into* each service, as its callers measure it (``client``) or
    as it measures itself (``server``), from the service-graph histograms, labelled ``service``
    (the callee). None when the schema has no such histogram. A gap between the two sides is time
    spent on the network."""
    bucket = m.call_latency_client_bucket if side == "client" else m.call_latency_server_bucket
    if not bucket or not m.service_graph_enabled:
        return None
    expr = f"histogram_quantile(0.5, sum by ({m.server_label}, le) (rate({bucket}[{RATE_WINDOW}])))"
    return _as_service(expr, m.server_label)


def restarts(m: MetricSchema = DEFAULT_SCHEMA, minutes: int = 60) -> str:
    """Container restarts over the last ``minutes`` per pod and container (kube-state-metrics)."""
    return (f"sum by ({m.pod_label}, {m.container_label}) "
            f"(increase({m.restarts}[{max(1, minutes)}m])) > 0")


def oom_killed(m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Containers whose last termination was an OOM kill (kube-state-metrics)."""
    return f'max by ({m.pod_label}, {m.container_label}) ({m.last_terminated_reason}{{reason="OOMKilled"}})'


def query(signal: Signal, m: MetricSchema = DEFAULT_SCHEMA, *, minutes: int = 60) -> str:
    """The PromQL for ``signal`` under ``m``; ``KeyError`` for an unknown signal."""
    if signal == "restarts":
        return restarts(m, minutes)
    return {"error_rate": error_rate, "latency_p99": latency_p99, "memory": memory, "cpu": cpu,
            "network_transmit": network_transmit, "network_receive": network_receive,
            "oom_killed": oom_killed}[signal](m)


def service_graph(metric: str, client_label: str, server_label: str, minutes: int) -> str:
    """Calls per client/server pair over the last ``minutes`` (Tempo's service graph, Istio…)."""
    return (f"sum by ({client_label}, {server_label}) "
            f"(increase({metric}{{{client_label}!=\"\", {server_label}!=\"\"}}[{max(1, minutes)}m]))")


def pod_memory(pod: str, m: MetricSchema = DEFAULT_SCHEMA) -> str:
    """Working-set memory of one pod's containers (cAdvisor); ``pod`` must be a pod name."""
    if not _POD_NAME.fullmatch(pod):
        raise ValueError(f"not a pod name: {pod!r}")
    return (f"sum by ({m.pod_label}, {m.container_label}) "
            f'({m.memory}{{{m.pod_label}="{pod}", {m.container_label}!="", {m.container_label}!="POD"}})')
