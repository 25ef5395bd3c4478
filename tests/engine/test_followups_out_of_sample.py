"""Each follow-up rule fires on a case it was not written from (other names, real Kubernetes
wording): the same contract as tests/ranking/test_rules_out_of_sample.py, for
:mod:`actors.engine.followups`."""

from __future__ import annotations

from typing import Any

from actors.engine.followups import derive
from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries, ObjectState, TraceSpan

ALL = {"kubernetes_get_pod_logs", "kubernetes_get_events", "kubernetes_describe_pod", "prometheus_query_range",
       "jaeger_search_traces", "datadog_search_logs", "datadog_search_traces"}


def tools(bundle: EvidenceBundle, available: set[str] = ALL) -> list[tuple[str, Any]]:
    return [(f.tool, f.args.get("pod") or f.args.get("object_name") or f.args.get("service") or f.args.get("query"))
            for f in derive(bundle, available=available, window_minutes=45)]


def test_an_oom_killed_statefulset_pod_is_described_then_its_memory_and_events_read() -> None:
    b = EvidenceBundle(objects=[ObjectState(namespace="warehouse", kind="Pod", name="stock-db-1", owner="statefulset/stock-db",
                                            reasons=["OOMKilled"], restarts=1)])
    assert [t for t, _ in tools(b)] == ["kubernetes_describe_pod", "prometheus_query_range", "kubernetes_get_events"]


def test_a_pod_restarting_with_error_exits_gets_previous_logs_describe_and_events() -> None:
    b = EvidenceBundle(objects=[ObjectState(namespace="warehouse", kind="Pod", name="picker-6f8d7c9b5-zx2lp",
                                            owner="deployment/picker", reasons=["Error"], restarts=4)])
    got = derive(b, available=ALL, window_minutes=45)
    assert [f.tool for f in got] == ["kubernetes_get_pod_logs", "kubernetes_describe_pod", "kubernetes_get_events"]
    assert got[0].args["previous"] is True and "describe the pod" in got[0].hypothesis


def test_a_slow_alert_in_other_words_traces_the_service_then_its_downstream() -> None:
    b = EvidenceBundle(alert=Alert(title="Response time of dispatch above SLO", entity="dispatch"))
    first = tools(b)
    assert [t for t in first if t[0] != "prometheus_query_range"] == [("jaeger_search_traces", "dispatch")]
    # and the network / call-latency series that tell a slow network from a slow service
    assert any("network_transmit" in str(q) for t, q in first if t == "prometheus_query_range")
    spans = [TraceSpan(trace_id="t", span_id="a", entity="dispatch", name="POST /route", duration_ms=4000),
             TraceSpan(trace_id="t", span_id="b", parent_id="a", entity="geo-lookup", name="Resolve", duration_ms=3800)]
    done = [f.key() for f in derive(b, available=ALL, window_minutes=45)]
    b2 = b.model_copy(update={"spans": spans})
    hop = derive(b2, available=ALL, window_minutes=45, done=done)
    assert [(f.tool, f.args["service"]) for f in hop if f.tool != "prometheus_query_range"] == [
        ("jaeger_search_traces", "geo-lookup")]


def test_an_error_rate_over_the_floor_without_a_baseline_reads_the_services_logs() -> None:
    b = EvidenceBundle(metrics=[MetricSeries(entity="warehouse/deployment/label-printer", metric="error_rate",
                                             values=[0.0, 0.12, 0.3])])
    assert tools(b) == [("datadog_search_logs", "service:label-printer")]


def test_a_job_failed_by_deadline_reads_its_pods_output() -> None:
    b = EvidenceBundle(objects=[
        ObjectState(namespace="warehouse", kind="Job", name="restock-28391520", status="Failed",
                    reasons=["DeadlineExceeded"]),
        ObjectState(namespace="warehouse", kind="Pod", name="restock-28391520-q8z2m", owner="job/restock-28391520",
                    status="Failed"),
    ])
    assert tools(b) == [("kubernetes_get_pod_logs", "restock-28391520-q8z2m")]


def test_a_failing_service_with_no_trace_backend_reads_its_workload_pods() -> None:
    b = EvidenceBundle(
        alert=Alert(title="5xx ratio high on courier", entity="courier"),
        objects=[ObjectState(namespace="warehouse", kind="Service", name="courier",
                             extra={"workloads": ["deployment/courier-api"]}),
                 ObjectState(namespace="warehouse", kind="Pod", name="courier-api-7b9c8d6f5-lq2xw",
                             owner="deployment/courier-api")])
    got = tools(b, available={"kubernetes_get_pod_logs"})
    assert got == [("kubernetes_get_pod_logs", "courier-api-7b9c8d6f5-lq2xw")]
