"""Where the call graph comes from: the service-graph query, Kubernetes services → workloads, the
demo world answering both, and PromQL built from the team's metric names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.ranking.topology import call_graph
from actors.tools import promql
from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import EVAL_NOW, build_world
from actors.tools.execute import execute
from actors.tools.playbooks import playbook
from actors.tools.registry import TOOLS
from config_service import MetricsSection, TeamConfig
from incidentfox.evidence import EvidenceBundle
from tests.kube_api_kit import kube_ctx
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)




async def run(tool: str, args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS[tool], args, c, backoff_s=0.001)


def vector(*rows: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [NOW.timestamp(), str(v)]} for labels, v in rows]}}


# ---- the service-graph query --------------------------------------------------------------------

async def test_service_graph_from_tempo_metrics(http: FakeHTTP) -> None:
    http.route("GET", "/api/v1/query", (200, vector(({"client": "frontend", "server": "checkout"}, 1200),
                                                    ({"client": "checkout", "server": "postgres"}, 300),
                                                    ({"client": "user", "server": "frontend"}, 0))))
    c = ToolContext(integrations={"prometheus": {"url": http.url}}, clock=lambda: NOW)
    result = await run("prometheus_service_graph", {"since_minutes": 30}, c)
    assert result.ok, result.message
    edges = {(e.caller, e.callee): e for e in result.evidence.topology}
    assert edges[("frontend", "checkout")].calls == 1200 and edges[("frontend", "checkout")].sources == ["service_graph"]
    assert ("checkout", "postgres") in edges and "frontend → checkout (1200)" in result.summary
    query = http.calls("/api/v1/query")[0].arg("query")
    assert query == ('sum by (client, server) (increase(traces_service_graph_request_total'
                     '{client!="", server!=""}[30m]))')


async def test_service_graph_with_istio_labels_and_bad_names(http: FakeHTTP) -> None:
    http.route("GET", "/api/v1/query", (200, vector(({"source_workload": "unknown", "destination_workload": "a"}, 9),
                                                    ({"source_workload": "a", "destination_workload": "b"}, 4))))
    c = ToolContext(integrations={"prometheus": {"url": http.url}}, clock=lambda: NOW)
    result = await run("prometheus_service_graph", {"metric": "istio_requests_total", "client_label": "source_workload",
                                                    "server_label": "destination_workload"}, c)
    assert [(e.caller, e.callee) for e in result.evidence.topology] == [("a", "b")]
    bad = await run("prometheus_service_graph", {"client_label": 'x"} or vector(1) #'}, c)
    assert bad.error == "invalid_arguments" and len(http.calls("/api/v1/query")) == 1


# ---- Kubernetes services → endpoints → pods → owners ---------------------------------------------

def _pod(name: str, rs: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "labels": {"pod-template-hash": rs.rsplit("-", 1)[1]},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                              "uid": "u", "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}}


SERVICES = {"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": [
    {"metadata": {"name": "cart-svc", "namespace": "shop"},
     "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.7", "selector": {"app": "cart"},
              "ports": [{"port": 80, "protocol": "TCP"}]}},
    {"metadata": {"name": "legacy", "namespace": "shop"}, "spec": {"type": "ClusterIP", "ports": []}},
]}
SLICES = {"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1", "metadata": {}, "items": [
    {"metadata": {"name": "cart-svc-x1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "cart-svc"}},
     "addressType": "IPv4", "endpoints": [
         {"addresses": ["10.1.0.4"], "conditions": {"ready": True},
          "targetRef": {"kind": "Pod", "name": "cart-5d8f9c-abcde", "namespace": "shop"}},
         {"addresses": ["10.1.0.5"], "conditions": {"ready": False},
          "targetRef": {"kind": "Pod", "name": "cart-5d8f9c-fghjk", "namespace": "shop"}}]},
]}
PODS = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
    _pod("cart-5d8f9c-abcde", "cart-5d8f9c"), _pod("cart-5d8f9c-fghjk", "cart-5d8f9c")]}


@pytest.fixture
async def kube() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/api/v1/namespaces/shop/services", (200, SERVICES))
    fake.route("GET", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", (200, SLICES))
    fake.route("GET", "/api/v1/namespaces/shop/pods", (200, PODS))
    yield fake
    await fake.close()



async def test_list_services_names_the_workloads_behind_each_service(kube: FakeHTTP) -> None:
    result = await run("kubernetes_list_services", {"namespace": "shop"}, kube_ctx(kube))
    assert result.ok, result.message
    cart, legacy = result.evidence.objects
    assert (cart.kind, cart.name, cart.extra["workloads"]) == ("Service", "cart-svc", ["deployment/cart"])
    assert cart.extra["endpoints"] == 2 and cart.extra["ready_endpoints"] == 1
    assert legacy.extra["workloads"] == [] and legacy.extra["endpoints"] == 0
    # A trace naming the Kubernetes service and a metric naming the workload meet on one node.
    from incidentfox.evidence import MetricSeries, TopologyEdge
    bundle = EvidenceBundle(objects=result.evidence.objects, metrics=[MetricSeries(entity="cart", metric="latency")],
                            topology=[TopologyEdge(caller="frontend", callee="cart-svc", sources=["traces"])])
    assert call_graph(bundle).to_edges()[0].callee == "cart"


async def test_list_services_maps_denial(kube: FakeHTTP) -> None:
    kube.route("GET", "/api/v1/namespaces/shop/services", (403, {"kind": "Status", "message": "forbidden", "code": 403}))
    result = await run("kubernetes_list_services", {"namespace": "shop"}, kube_ctx(kube))
    assert result.error == "forbidden"


# ---- the demo world answers both, through the same tools ---------------------------------------

def test_demo_answers_the_service_graph_and_services() -> None:
    world = build_world("dependency_failure", now=EVAL_NOW)
    graph = answer("prometheus_service_graph", {"since_minutes": 60}, world).evidence.topology
    assert {(e.caller, e.callee) for e in graph} == {(e.caller, e.callee) for e in world.topology}
    assert all(e.sources == ["service_graph"] and e.calls > 0 for e in graph)
    services = answer("kubernetes_list_services", {}, world).evidence.objects
    assert {o.name for o in services} == {"frontend", "checkout", "payments", "cart"}
    assert all(o.extra["workloads"] == [f"deployment/{o.name}"] and o.extra["pods"] for o in services)


# ---- PromQL from the team's metric names -------------------------------------------------------

def test_default_schema_keeps_the_queries_the_planner_always_sent() -> None:
    m = TeamConfig({}).metrics
    assert promql.error_rate(m) == ('sum by (service) (rate(http_requests_total{code=~"5.."}[5m])) / '
                                    "sum by (service) (rate(http_requests_total[5m]))")
    assert promql.latency_p99(m) == ("histogram_quantile(0.99, sum by (service, le) "
                                     "(rate(http_request_duration_seconds_bucket[5m])))")
    assert promql.memory(m) == 'sum by (container) (container_memory_working_set_bytes{container!="", container!="POD"})'


def test_presets_name_each_exporters_metrics() -> None:
    otel = MetricsSection(requests="opentelemetry").schema()
    assert promql.error_rate(otel) == (
        'label_replace(sum by (service_name) (rate(http_server_request_duration_seconds_count'
        '{http_response_status_code=~"5.."}[5m])) / sum by (service_name) '
        '(rate(http_server_request_duration_seconds_count[5m])), "service", "$1", "service_name", "(.+)")')
    istio = MetricsSection(requests="istio", service_graph="istio").schema()
    assert "istio_request_duration_milliseconds_bucket" in promql.latency_p99(istio)
    assert promql.latency_p99(istio).endswith('/ 1000, "service", "$1", "destination_workload", "(.+)")')
    assert (istio.client_label, istio.server_label) == ("source_workload", "destination_workload")
    nginx = MetricsSection(requests="ingress_nginx").schema()
    assert promql.error_rate(nginx).startswith('sum by (service) (rate(nginx_ingress_controller_requests{status=~"5.."}')
    assert promql.query("restarts", nginx, minutes=30) == (
        "sum by (pod, container) (increase(kube_pod_container_status_restarts_total[30m])) > 0")
    assert 'reason="OOMKilled"' in promql.query("oom_killed", nginx)
    assert "container_cpu_usage_seconds_total" in promql.query("cpu", nginx)


def test_network_and_two_sided_call_latency_come_from_the_schema() -> None:
    tempo = MetricsSection().schema()
    assert promql.network_transmit(tempo) == ('sum by (container) (rate(container_network_transmit_bytes_total'
                                              '{container!="", container!="POD"}[5m]))')
    assert promql.query("network_receive", tempo).startswith("sum by (container) (rate(container_network_receive_")
    assert promql.call_latency("client", tempo) == (
        'label_replace(histogram_quantile(0.5, sum by (server, le) '
        '(rate(traces_service_graph_request_client_seconds_bucket[5m]))), "service", "$1", "server", "(.+)")')
    assert "traces_service_graph_request_server_seconds_bucket" in (promql.call_latency("server", tempo) or "")
    # Istio's one histogram is not split by side here; no service graph: no call latency either.
    assert promql.call_latency("client", MetricsSection(service_graph="istio").schema()) is None
    assert promql.call_latency("server", MetricsSection(service_graph="off").schema()) is None
    custom = TeamConfig({"investigation": {"metrics": {"call_latency_client_bucket": "edge_client_bucket",
                                                       "network_transmit": "net_tx_total"}}}).metrics
    assert "rate(edge_client_bucket[5m])" in (promql.call_latency("client", custom) or "")
    assert "net_tx_total" in promql.network_transmit(custom)


def test_overrides_win_over_the_preset() -> None:
    m = TeamConfig({"investigation": {"metrics": {"requests": "istio", "service_label": "app",
                                                  "memory": "my_memory_bytes"}}}).metrics
    assert "sum by (app)" in promql.error_rate(m) and "istio_requests_total" in promql.error_rate(m)
    assert promql.memory(m).startswith("sum by (container) (my_memory_bytes")


def test_playbook_queries_follow_the_team_config() -> None:
    cfg = TeamConfig({"investigation": {"metrics": {"requests": "opentelemetry", "service_graph": "istio"}}})
    steps = playbook("metrics", window=60, metrics=cfg.metrics)
    queries = [a["query"] for t, a in steps if t == "prometheus_query_range"]
    assert "http_server_request_duration_seconds_count" in queries[0] and "http_requests_total" not in " ".join(queries)
    graph = next(a for t, a in steps if t == "prometheus_service_graph")
    assert graph["metric"] == "istio_requests_total" and graph["client_label"] == "source_workload"
    off = playbook("metrics", window=60, metrics=MetricsSection(service_graph="off").schema())
    assert "prometheus_service_graph" not in [t for t, _ in off]
    assert "kubernetes_list_services" in [t for t, _ in playbook("kubernetes", window=60)]


def test_invalid_metric_names_fail_the_config_with_their_path() -> None:
    from config_service import config_errors
    errors = config_errors({"investigation": {"metrics": {"requests": "zipkin", "service_label": "a-b",
                                                          "error_status": '5.."} or vector(1) #'}}})
    assert {e["path"] for e in errors} == {"investigation.metrics.requests", "investigation.metrics.service_label",
                                           "investigation.metrics.error_status"}
