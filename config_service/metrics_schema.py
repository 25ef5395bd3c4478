"""``investigation.metrics``: which metric names and labels a team's Prometheus has.

The offline planner's PromQL (:mod:`actors.tools.promql`) is built from this section, never from
hard-coded names. A team picks presets for its exporters and overrides single names where its
setup differs:

* ``requests`` (request rate, errors, latency per service): ``default`` (``http_requests_total`` /
  ``http_request_duration_seconds_bucket``, label ``service``; what the planner always used),
  ``opentelemetry`` (``http_server_request_duration_seconds`` histogram, ``service_name``,
  ``http_response_status_code``), ``istio`` (``istio_requests_total`` /
  ``istio_request_duration_milliseconds_bucket``, ``destination_workload``, ``response_code``) or
  ``ingress_nginx`` (``nginx_ingress_controller_requests`` / ``…_request_duration_seconds_bucket``,
  ``service``, ``status``);
* ``service_graph`` (who calls whom): ``tempo`` (``traces_service_graph_request_total{client, server}``,
  also what Grafana Agent/Alloy's service-graph connector writes), ``istio``
  (``istio_requests_total{source_workload, destination_workload}``) or ``off``;
* call latency per callee, measured by the caller and by the callee (the gap is the network):
  Tempo's ``traces_service_graph_request_client_seconds`` / ``…_server_seconds`` histograms
  (``tempo`` preset; none for ``istio`` and ``off``);
* containers: cAdvisor (``container_memory_working_set_bytes``, ``container_cpu_usage_seconds_total``,
  ``container_network_transmit_bytes_total``, ``container_network_receive_bytes_total``, labels
  ``pod``/``container``) and kube-state-metrics
  (``kube_pod_container_status_restarts_total``, ``kube_pod_container_status_last_terminated_reason``),
  each name overridable;
* ``latency_statistics``: which latency statistics the latency query asks for (default ``[p99]``,
  a histogram quantile; ``average`` is the histogram's ``_sum`` rate over its ``_count`` rate). The
  planner adds the statistic a latency alert is on (:mod:`incidentfox.latency_statistic`), so an
  alert on the average is investigated on the average as well as on the p99.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from config_service.core.defaults import DEFAULT_CONFIG

MetricName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=200)]
LatencyStatistic = Annotated[str, StringConstraints(pattern=r"^(average|p\d{1,2}(\.\d{1,3})?)$")]
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)]
RequestsPreset = Literal["default", "opentelemetry", "istio", "ingress_nginx"]
ServiceGraphPreset = Literal["tempo", "istio", "off"]


@dataclass(frozen=True)
class MetricSchema:
    """Every metric name and label the planner's queries use, resolved (presets + overrides)."""

    requests_total: str = "http_requests_total"   # a counter; "" means: use the duration histogram's _count
    request_duration_bucket: str = "http_request_duration_seconds_bucket"
    duration_unit: str = "s"                      # s | ms
    service_label: str = "service"
    status_label: str = "code"
    error_status: str = "5.."                     # a PromQL regex on status_label
    service_graph_metric: str = "traces_service_graph_request_total"
    client_label: str = "client"
    server_label: str = "server"
    service_graph_enabled: bool = True
    call_latency_client_bucket: str = "traces_service_graph_request_client_seconds_bucket"  # "" = none
    call_latency_server_bucket: str = "traces_service_graph_request_server_seconds_bucket"
    memory: str = "container_memory_working_set_bytes"
    cpu: str = "container_cpu_usage_seconds_total"
    network_transmit: str = "container_network_transmit_bytes_total"
    network_receive: str = "container_network_receive_bytes_total"
    restarts: str = "kube_pod_container_status_restarts_total"
    last_terminated_reason: str = "kube_pod_container_status_last_terminated_reason"
    pod_label: str = "pod"
    container_label: str = "container"
    latency_statistics: tuple[str, ...] = ("p99",)   # average | p<quantile>, see incidentfox.latency_statistic

    def asking(self, statistics: tuple[str, ...]) -> MetricSchema:
        """This schema with the latency query asking for ``statistics`` (the planner adds the alert's)."""
        return replace(self, latency_statistics=statistics) if statistics else self


REQUEST_PRESETS: dict[str, dict[str, str]] = {
    "default": {},
    "opentelemetry": {"requests_total": "", "request_duration_bucket": "http_server_request_duration_seconds_bucket",
                      "service_label": "service_name", "status_label": "http_response_status_code"},
    "istio": {"requests_total": "istio_requests_total",
              "request_duration_bucket": "istio_request_duration_milliseconds_bucket", "duration_unit": "ms",
              "service_label": "destination_workload", "status_label": "response_code"},
    "ingress_nginx": {"requests_total": "nginx_ingress_controller_requests",
                      "request_duration_bucket": "nginx_ingress_controller_request_duration_seconds_bucket",
                      "service_label": "service", "status_label": "status"},
}
SERVICE_GRAPH_PRESETS: dict[str, dict[str, object]] = {
    "tempo": {},
    # Istio reports one duration histogram from both sides (label ``reporter``): not split here.
    "istio": {"service_graph_metric": "istio_requests_total", "client_label": "source_workload",
              "server_label": "destination_workload", "call_latency_client_bucket": "",
              "call_latency_server_bucket": ""},
    "off": {"service_graph_enabled": False, "call_latency_client_bucket": "", "call_latency_server_bucket": ""},
}


class MetricsSection(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    requests: RequestsPreset = Field(default_factory=lambda: DEFAULT_CONFIG["investigation"]["metrics"]["requests"],
                                     description=(
        "Request metrics preset: `default` (http_requests_total, label `service`), `opentelemetry`, "
        "`istio` or `ingress_nginx`."))
    service_graph: ServiceGraphPreset = Field(
        default_factory=lambda: DEFAULT_CONFIG["investigation"]["metrics"]["service_graph"], description=(
            "Where the call graph's metrics come from: `tempo` (traces_service_graph_request_total), "
            "`istio` (istio_requests_total by source/destination workload) or `off`."))
    requests_total: MetricName | None = Field(default=None, description=(
        "Request counter (overrides the preset)."))
    request_duration_bucket: MetricName | None = Field(default=None, description=(
        "Request duration histogram's `_bucket` series (overrides the preset)."))
    duration_unit: Literal["s", "ms"] | None = Field(default=None, description=(
        "Unit of the duration histogram (overrides the preset)."))
    service_label: LabelName | None = Field(default=None, description=(
        "Label naming the service on request metrics (overrides the preset)."))
    status_label: LabelName | None = Field(default=None, description="Label holding the response status code.")
    error_status: Annotated[str, StringConstraints(pattern=r'^[^"\\\n]+$', max_length=200)] | None = Field(
        default=None, description="Regex of the failing status codes (default `5..`; no quotes or backslashes).")
    service_graph_metric: MetricName | None = Field(default=None, description=(
        "Service-graph counter (overrides the preset)."))
    client_label: LabelName | None = Field(default=None, description="Service-graph label of the caller.")
    server_label: LabelName | None = Field(default=None, description="Service-graph label of the callee.")
    call_latency_client_bucket: MetricName | None = Field(default=None, description=(
        "Service-graph histogram of call latency measured by the caller (Tempo: "
        "traces_service_graph_request_client_seconds_bucket; overrides the preset)."))
    call_latency_server_bucket: MetricName | None = Field(default=None, description=(
        "Service-graph histogram of call latency measured by the callee (Tempo: "
        "traces_service_graph_request_server_seconds_bucket; overrides the preset)."))
    memory: MetricName | None = Field(default=None, description=(
        "Container memory (cAdvisor: container_memory_working_set_bytes)."))
    cpu: MetricName | None = Field(default=None, description=(
        "Container CPU counter (cAdvisor: container_cpu_usage_seconds_total)."))
    network_transmit: MetricName | None = Field(default=None, description=(
        "Container bytes sent (cAdvisor: container_network_transmit_bytes_total)."))
    network_receive: MetricName | None = Field(default=None, description=(
        "Container bytes received (cAdvisor: container_network_receive_bytes_total)."))
    restarts: MetricName | None = Field(default=None, description=(
        "Container restarts (kube-state-metrics: kube_pod_container_status_restarts_total)."))
    last_terminated_reason: MetricName | None = Field(default=None, description=(
        "Last termination reason, e.g. OOMKilled (kube-state-metrics)."))
    pod_label: LabelName | None = Field(default=None, description="Label naming the pod on container metrics.")
    container_label: LabelName | None = Field(default=None, description=(
        "Label naming the container on container metrics."))

    latency_statistics: list[LatencyStatistic] | None = Field(default=None, min_length=1, max_length=4, description=(
        "Latency statistics the planner's latency query asks for: `p99` (default; a histogram quantile, "
        "any `p<q>` such as `p95` or `p99.9`) and/or `average` (the duration histogram's `_sum` rate over "
        "its `_count` rate). A latency alert's own statistic is always asked as well."))

    def schema(self) -> MetricSchema:
        """The resolved names: the built-in defaults, then the presets, then the overrides."""
        resolved = replace(MetricSchema(), **REQUEST_PRESETS[self.requests],
                           **SERVICE_GRAPH_PRESETS[self.service_graph])  # type: ignore[arg-type]
        overrides = {f.name: getattr(self, f.name) for f in fields(MetricSchema)
                     if f.name in type(self).model_fields and getattr(self, f.name) is not None}
        if self.latency_statistics is not None:
            overrides["latency_statistics"] = tuple(dict.fromkeys(self.latency_statistics))
        return replace(resolved, **overrides)
