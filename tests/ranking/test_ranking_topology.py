"""The merged call graph: spans, service-graph series and Kubernetes services, on hand-built inputs."""

from __future__ import annotations

from actors.ranking import rank
from actors.ranking.topology import (
    CallGraph,
    Span,
    call_graph,
    edges_from_service_graph,
    edges_from_spans,
    with_call_graph,
)
from incidentfox.evidence import EvidenceBundle, ObjectState, TopologyEdge, TraceSpan
from tests.ranking_helpers import alert, baseline, incident


def _pairs(graph: CallGraph) -> set[tuple[str, str]]:
    return set(graph.edges)


def test_spans_give_parent_service_to_child_service_with_counts_and_errors() -> None:
    spans = [Span("1", "", "front"), Span("2", "1", "front"),           # same service: no call
             Span("3", "2", "api"), Span("4", "2", "api", error=True),  # two calls front → api, one failed
             Span("5", "3", "db"), Span("6", "missing", "cache"), Span("7", "5", "")]
    edges = {(e.caller, e.callee): e for e in edges_from_spans(spans)}
    assert set(edges) == {("front", "api"), ("api", "db")}
    assert edges[("front", "api")].calls == 2 and edges[("front", "api")].errors == 1
    assert edges[("api", "db")].sources == ["traces"]


def test_bundle_trace_spans_convert_with_their_error_status() -> None:
    spans = [TraceSpan(trace_id="t", span_id="a", entity="front"),
             TraceSpan(trace_id="t", span_id="b", parent_id="a", entity="api", attributes={"otel.status_code": "ERROR"})]
    [edge] = edges_from_spans(spans)
    assert (edge.caller, edge.callee, edge.calls, edge.errors) == ("front", "api", 1, 1)


def test_service_graph_rows_skip_unknown_peers_and_self_calls() -> None:
    rows = [({"client": "front", "server": "api"}, 120.0), ({"client": "front", "server": "api"}, 30.0),
            ({"client": "unknown", "server": "api"}, 5.0), ({"client": "api", "server": "api"}, 9.0),
            ({"server": "db"}, 1.0), ({"client": "api", "server": "db"}, 40.0)]
    edges = edges_from_service_graph(rows, client_label="client", server_label="server")
    assert [(e.caller, e.callee, e.calls) for e in edges] == [("api", "db", 40.0), ("front", "api", 150.0)]
    istio = edges_from_service_graph([({"source_workload": "front", "destination_workload": "api"}, 3.0)],
                                     client_label="source_workload", server_label="destination_workload",
                                     source="istio")
    assert istio[0].sources == ["istio"]


def test_sources_merge_into_one_edge_with_provenance() -> None:
    graph = CallGraph.build(
        [TopologyEdge(caller="front", callee="api", calls=100, sources=["service_graph"]),
         TopologyEdge(caller="api", callee="db", calls=10, sources=["service_graph"])],
        spans=[Span("1", "", "front"), Span("2", "1", "api"), Span("3", "2", "db", error=True)])
    front_api, api_db = graph.edges[("front", "api")], graph.edges[("api", "db")]
    assert front_api.sources == ["service_graph", "traces"] and front_api.calls == 101
    assert api_db.errors == 1 and len(graph.edges) == 2


def test_kubernetes_services_join_names_from_different_sources() -> None:
    # Traces know the Kubernetes service name, Istio the workload; metrics are per workload.
    svc = ObjectState(namespace="shop", kind="Service", name="cart-svc",
                      extra={"workloads": ["deployment/cart"], "pods": ["cart-5d8f9-abcde"]})
    bundle = EvidenceBundle(
        topology=[TopologyEdge(caller="frontend", callee="cart", calls=5, sources=["istio"])],
        spans=[TraceSpan(trace_id="t", span_id="a", entity="frontend"),
               TraceSpan(trace_id="t", span_id="b", parent_id="a", entity="cart-svc")],
        objects=[svc], metrics=[incident("cart", 0.1, 0.2)])
    graph = call_graph(bundle)
    assert _pairs(graph) == {("frontend", "cart")}
    assert graph.edges[("frontend", "cart")].sources == ["istio", "traces"]
    assert graph.resolve("cart-svc") == graph.resolve("shop/deployment/cart") == "cart"


def test_node_names_prefer_what_the_metrics_use() -> None:
    svc = ObjectState(namespace="shop", kind="Service", name="cart",
                      extra={"workloads": ["replicaset/cart-v2-5d8f9c"]})
    edges = [TopologyEdge(caller="frontend", callee="cart", sources=["service_graph"])]
    assert CallGraph.build(edges, objects=[svc]).resolve("cart-v2") == "cart"
    assert CallGraph.build(edges, objects=[svc], known=["cart-v2"]).to_edges()[0].callee == "cart-v2"


def test_cycles_are_kept_and_self_calls_dropped() -> None:
    graph = CallGraph.build([TopologyEdge(caller="a", callee="b"), TopologyEdge(caller="b", callee="a"),
                             TopologyEdge(caller="a", callee="a")])
    assert _pairs(graph) == {("a", "b"), ("b", "a")} and graph.callees("a") == ["b"]


def test_empty_sources_give_an_empty_graph() -> None:
    assert CallGraph.build().to_edges() == [] and call_graph(EvidenceBundle()).edges == {}
    services_only = EvidenceBundle(objects=[ObjectState(kind="Service", name="x", extra={"workloads": []})])
    assert with_call_graph(services_only).topology == []


def test_with_call_graph_is_idempotent_and_resolves_the_alert() -> None:
    svc = ObjectState(namespace="shop", kind="Service", name="api-svc", extra={"workloads": ["deployment/api"]})
    bundle = EvidenceBundle(alert=alert("api-svc"), objects=[svc], metrics=[incident("api", 0.1, 0.5)],
                            spans=[TraceSpan(trace_id="t", span_id="a", entity="front"),
                                   TraceSpan(trace_id="t", span_id="b", parent_id="a", entity="api")])
    once = with_call_graph(bundle)
    assert [(e.caller, e.callee, e.calls) for e in once.topology] == [("front", "api", 1)]
    assert once.alert.entity == "api"
    assert with_call_graph(once).topology == once.topology


def _front_finding(bundle: EvidenceBundle) -> tuple[str, str]:
    front = next(s for s in rank(bundle).suspects if s.entity == "front")
    return front.findings[0].kind, front.findings[0].details["explained_by"]


def test_ranking_walks_a_graph_built_only_from_spans() -> None:
    # No topology edges at all: the spans alone say front calls db, so db's latency explains front's.
    metrics = [baseline("front", 0.2), incident("front", 0.2, 0.7), baseline("db", 0.01), incident("db", 0.01, 0.51)]
    spans = [TraceSpan(trace_id="t", span_id="a", entity="front"),
             TraceSpan(trace_id="t", span_id="b", parent_id="a", entity="db")]
    bundle = EvidenceBundle(alert=alert("front"), metrics=metrics, spans=spans)
    assert _front_finding(bundle) == ("root_of_anomaly", "")
    assert _front_finding(with_call_graph(bundle)) == ("explained_anomaly", "db")
