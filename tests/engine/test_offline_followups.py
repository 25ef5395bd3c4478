"""Offline follow-ups: hypotheses derived from evidence (pure), and the budgeted rounds that run them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from actors.engine.followups import derive, downstream
from actors.engine.offline_planner import Budget, FollowUpLog, follow_up, followup_event
from actors.engine.outcomes import SubAgentStatus
from actors.engine.subagent_worker import SubAgentResult
from actors.tools import promql
from config_service import MetricSchema
from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries, ObjectState, TraceSpan

ALL = {"kubernetes_get_pod_logs", "kubernetes_get_events", "prometheus_query_range", "tempo_search_traces",
       "jaeger_search_traces", "loki_query_logs", "datadog_search_logs"}


def pod(name: str, *, reasons: list[str] = (), restarts: int = 0, owner: str = "") -> ObjectState:  # type: ignore[assignment]
    return ObjectState(namespace="shop", kind="Pod", name=name, reasons=list(reasons), restarts=restarts,
                       owner=owner or f"deployment/{name.split('-')[0]}")


def calls(bundle: EvidenceBundle, available: set[str] = ALL, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(f.tool, f.args) for f in derive(bundle, available=available, window_minutes=60, **kw)]


def test_a_crash_looping_pod_leads_to_its_previous_logs_and_events() -> None:
    bundle = EvidenceBundle(objects=[pod("api-7d9-x1", reasons=["CrashLoopBackOff"], restarts=5),
                                     pod("web-1-a")])
    got = derive(bundle, available=ALL, window_minutes=30)
    assert [(f.tool, f.args.get("pod") or f.args.get("object_name")) for f in got] == [
        ("kubernetes_get_pod_logs", "api-7d9-x1"), ("kubernetes_get_events", "api-7d9-x1")]
    assert got[0].args["previous"] is True and got[0].args["namespace"] == "shop"
    assert all("shop/api-7d9-x1 is crash-looping (5 restarts)" in f.hypothesis for f in got)


def test_restarts_alone_count_and_one_pod_per_owner_is_followed() -> None:
    bundle = EvidenceBundle(objects=[pod("api-1-a", restarts=4, owner="deployment/api"),
                                     pod("api-1-b", restarts=9, owner="deployment/api"),
                                     pod("db-0", restarts=1, owner="statefulset/db")])
    assert {a.get("pod") or a.get("object_name") for _, a in calls(bundle)} == {"api-1-b"}


def test_an_oom_kill_leads_to_the_pods_memory_series_from_the_metric_schema_and_events() -> None:
    schema = MetricSchema(memory="mem_ws", pod_label="kpod")
    bundle = EvidenceBundle(objects=[pod("cart-5-z", reasons=["OOMKilled"])])
    got = calls(bundle, metrics=schema)
    assert [t for t, _ in got] == ["prometheus_query_range", "kubernetes_get_events"]
    assert got[0][1]["query"] == promql.pod_memory("cart-5-z", schema)
    assert 'mem_ws{kpod="cart-5-z"' in got[0][1]["query"] and got[0][1]["metric"] == "memory"


def test_a_latency_alert_leads_to_the_services_traces_then_one_hop_downstream() -> None:
    bundle = EvidenceBundle(alert=Alert(title="High p99 latency", entity="shop/deployment/checkout"))
    first = derive(bundle, available=ALL, window_minutes=60)
    assert [(f.tool, f.args["service"]) for f in first if "service" in f.args] == [("tempo_search_traces", "checkout")]
    spans = [TraceSpan(trace_id="t", span_id="1", entity="checkout", name="POST /pay", duration_ms=900),
             TraceSpan(trace_id="t", span_id="2", parent_id="1", entity="payments", name="charge", duration_ms=850),
             TraceSpan(trace_id="t", span_id="3", parent_id="1", entity="checkout", name="render", duration_ms=20)]
    after = bundle.model_copy(update={"spans": spans})
    second = derive(after, available=ALL, window_minutes=60, done={f.key() for f in first})
    assert [(f.tool, f.args["service"]) for f in second] == [("tempo_search_traces", "payments")]
    assert "wait on payments" in second[0].hypothesis and "charge" in second[0].hypothesis
    assert downstream(spans, "payments") is None


def test_a_latency_alert_asks_for_network_and_both_sides_of_call_latency_from_the_schema() -> None:
    bundle = EvidenceBundle(alert=Alert(title="High p99 latency", entity="checkout"))
    got = [(t, a) for t, a in calls(bundle) if t == "prometheus_query_range"]
    assert [a["metric"] for _, a in got] == ["network_transmit", "network_receive", "call_latency_client",
                                             "call_latency_server"]
    assert got[0][1]["query"] == promql.network_transmit() and "container_network_transmit_bytes_total" in got[0][1]["query"]
    assert "traces_service_graph_request_client_seconds_bucket" in got[2][1]["query"]
    # A schema without the service-graph histograms (istio preset) asks for the network series only.
    istio = MetricSchema(call_latency_client_bucket="", call_latency_server_bucket="")
    assert [a["metric"] for t, a in calls(bundle, metrics=istio) if t == "prometheus_query_range"] == [
        "network_transmit", "network_receive"]
    # No latency or error alert: no such follow-up.
    quiet = EvidenceBundle(alert=Alert(title="Disk almost full", entity="db"))
    assert not [a for t, a in calls(quiet) if t == "prometheus_query_range"]


def test_a_latency_spike_over_baseline_uses_the_available_trace_backend() -> None:
    bundle = EvidenceBundle(metrics=[MetricSeries(entity="search", metric="latency_p99", values=[0.2, 1.5]),
                                     MetricSeries(entity="search", metric="latency_p99", values=[0.2, 0.3],
                                                  baseline=True),
                                     MetricSeries(entity="steady", metric="latency_p99", values=[0.3]),
                                     MetricSeries(entity="steady", metric="latency_p99", values=[0.3], baseline=True)])
    assert [(t, a["service"]) for t, a in calls(bundle, available={"jaeger_search_traces"})] == [
        ("jaeger_search_traces", "search")]


def test_every_latency_statistic_is_compared_with_its_own_baseline() -> None:
    """The average of ``cart`` doubled; its p99 baseline is higher than its average now, which must not
    hide the spike (each statistic against its own baseline), nor make ``steady`` look slow."""
    def s(entity: str, metric: str, v: float, baseline: bool = False) -> MetricSeries:
        return MetricSeries(entity=entity, metric=metric, values=[v], baseline=baseline)

    bundle = EvidenceBundle(metrics=[s("cart", "latency_average", 0.4), s("cart", "latency_average", 0.1, True),
                                     s("cart", "latency_p99", 0.9), s("cart", "latency_p99", 0.8, True),
                                     s("steady", "latency_average", 0.5), s("steady", "latency_p99", 0.2, True)])
    assert [a["service"] for _, a in calls(bundle, available={"jaeger_search_traces"})] == ["cart"]


def test_an_error_spike_leads_to_the_services_logs_over_a_longer_window() -> None:
    bundle = EvidenceBundle(metrics=[MetricSeries(entity="orders", metric="error_rate", values=[0.0, 0.3])])
    got = derive(bundle, available=ALL, window_minutes=30)
    assert [(f.tool, f.args["query"], f.args["since_minutes"]) for f in got] == [
        ("loki_query_logs", '{service=~"orders"}', 60)]
    assert "new or surging" in got[0].hypothesis


@pytest.mark.parametrize("bundle", [
    EvidenceBundle(),
    EvidenceBundle(alert=Alert(title="Disk almost full", entity="db")),
    EvidenceBundle(objects=[pod("ok-1-a", restarts=1)],
                   metrics=[MetricSeries(entity="a", metric="error_rate", values=[0.01])]),
])
def test_no_signal_no_follow_ups(bundle: EvidenceBundle) -> None:
    assert calls(bundle) == []


def test_a_follow_up_whose_tools_are_unavailable_is_skipped_and_done_ones_are_not_repeated() -> None:
    bundle = EvidenceBundle(objects=[pod("api-1-a", reasons=["CrashLoopBackOff"])],
                            alert=Alert(title="latency", entity="api"))
    assert [t for t, _ in calls(bundle, available={"kubernetes_get_events"})] == ["kubernetes_get_events"]
    done = {f.key() for f in derive(bundle, available=ALL, window_minutes=60)}
    # The trace search found nothing for api: one new hypothesis (its pod's current logs), then none.
    second = derive(bundle, available=ALL, window_minutes=60, done=done)
    assert [(f.tool, f.args["pod"], f.args["previous"]) for f in second] == [
        ("kubernetes_get_pod_logs", "api-1-a", None)]
    assert calls(bundle, done=done | {f.key() for f in second}) == []


def job(name: str, *, status: str = "Failed", reasons: list[str] = ()) -> ObjectState:  # type: ignore[assignment]
    return ObjectState(namespace="shop", kind="Job", name=name, status=status, reasons=list(reasons))


@pytest.mark.parametrize(("objects", "pods_read"), [
    # a failed job → current logs of its own pods (owner job/<name>, name <name>-…), a few of them
    ([job("nightly", reasons=["BackoffLimitExceeded"]), pod("nightly-a1", owner="job/nightly"),
      pod("nightly-b2", owner="job/nightly"), pod("nightly-c3", owner="job/nightly")],
     ["nightly-a1", "nightly-b2"]),
    # a failure reason counts without the Failed status
    ([job("sync", status="", reasons=["DeadlineExceeded"]), pod("sync-x", owner="job/sync")], ["sync-x"]),
    # a complete job, or pods of another owner (same prefix, other job / a deployment), lead nowhere
    ([job("report", status="Complete"), pod("report-z", owner="job/report")], []),
    ([job("nightly"), pod("nightly-2-a", owner="job/nightly-2"), pod("nightly-web-q", owner="deployment/nightly-web")],
     []),
    # a pod owned by the job but not named after it is not taken on the owner alone
    ([job("etl"), pod("other-1", owner="job/etl")], []),
])
def test_a_failed_job_leads_to_its_pods_current_logs(objects: list[ObjectState], pods_read: list[str]) -> None:
    got = derive(EvidenceBundle(objects=objects), available=ALL, window_minutes=60)
    assert [f.args["pod"] for f in got if f.tool == "kubernetes_get_pod_logs"] == pods_read
    assert all(f.args["previous"] is None and "failed" in f.hypothesis for f in got)


SLOW = Alert(title="High p99 latency", entity="shop/deployment/orders")
ORDERS = [pod("orders-7f-a", owner="deployment/orders"), pod("orders-7f-b", owner="deployment/orders"),
          pod("ordersvc-1-c", owner="deployment/ordersvc")]


@pytest.mark.parametrize(("bundle", "available", "done_traces", "pods_read"), [
    # no trace backend: the alerted workload's pod logs at once, one pod per owner
    (EvidenceBundle(alert=SLOW, objects=ORDERS), ALL - {"tempo_search_traces", "jaeger_search_traces"}, False,
     ["orders-7f-a"]),
    # a trace backend not yet asked: traces first, no logs yet
    (EvidenceBundle(alert=SLOW, objects=ORDERS), ALL, False, []),
    # traces asked and found nothing of the service: its pods' logs
    (EvidenceBundle(alert=SLOW, objects=ORDERS), ALL, True, ["orders-7f-a"]),
    # traces asked and answered: no pod logs
    (EvidenceBundle(alert=SLOW, objects=ORDERS, spans=[TraceSpan(trace_id="t", span_id="1", entity="orders")]),
     ALL, True, []),
    # the alert names a Kubernetes Service: the workloads behind it
    (EvidenceBundle(alert=Alert(title="5xx errors", entity="shop/service/orders-svc"), objects=[
        *ORDERS, ObjectState(namespace="shop", kind="Service", name="orders-svc",
                             extra={"workloads": ["deployment/ordersvc"]})]), {"kubernetes_get_pod_logs"}, False,
     ["ordersvc-1-c"]),
    # no pods of that workload in the evidence: nothing to read
    (EvidenceBundle(alert=SLOW, objects=[pod("web-1-a")]), {"kubernetes_get_pod_logs"}, False, []),
])
def test_a_slow_or_failing_service_without_traces_leads_to_its_pods_logs(
        bundle: EvidenceBundle, available: set[str], done_traces: bool, pods_read: list[str]) -> None:
    done = {f.key() for f in derive(bundle, available=available, window_minutes=60)} if done_traces else set()
    got = derive(bundle, available=available, window_minutes=60, done=done)
    assert [f.args["pod"] for f in got if f.tool == "kubernetes_get_pod_logs"] == pods_read


# ---- the rounds and their budget, over a fake fan-out ----

@dataclass
class FakeFanout:
    """Answers each follow-up call with new evidence: each trace search reveals a slow pod."""

    results: dict[str, SubAgentResult] = field(default_factory=dict)
    asked: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = field(default_factory=list)
    first_pass: int = 10

    def __post_init__(self) -> None:
        self.results["metrics"] = SubAgentResult(
            agent="metrics", status=SubAgentStatus.OK, tool_count=self.first_pass,
            evidence=EvidenceBundle(objects=[pod(f"p{i}-1-a", reasons=["CrashLoopBackOff"], owner=f"d/p{i}")
                                             for i in range(2)]))

    async def run_one(self, agent: str, *, mode: str, steps: list[tuple[str, dict[str, Any]]]) -> SubAgentResult:
        self.asked.append((agent, steps))
        n = len(self.asked)
        new = EvidenceBundle(objects=[pod(f"r{n}x{i}-1-a", restarts=5, owner=f"d/r{n}x{i}") for i in range(2)])
        prev = self.results[agent] if agent in self.results else SubAgentResult(agent=agent, status=SubAgentStatus.OK)
        self.results[agent] = SubAgentResult(agent=agent, status=SubAgentStatus.OK,
                                             tool_count=prev.tool_count + len(steps),
                                             evidence=prev.evidence.merge(new),
                                             report="\n".join(f"{tool}: {len(tool)} lines from {args.get('pod') or args.get('object_name')}"
                                                              for tool, args in steps))
        return self.results[agent]

    def evidence(self) -> EvidenceBundle:
        out = EvidenceBundle()
        for r in self.results.values():
            out = out.merge(r.evidence)
        return out


TOOLS = {"kubernetes_get_pod_logs": "kubernetes", "kubernetes_get_events": "kubernetes"}


def run_rounds(fanout: FakeFanout, budget: Budget, subagents: list[str] = ["kubernetes"],  # noqa: B006
               clock: Any = None) -> tuple[FollowUpLog, list]:
    seen: list[tuple[int, list, list]] = []
    log = asyncio.run(follow_up(fanout, subagents=subagents, tools=TOOLS, budget=budget, trigger={},  # type: ignore[arg-type]
                                absorbed=[], window_minutes=60, on_round=lambda *a: seen.append(a),
                                **({"clock": clock, "started": 0.0} if clock else {})))
    return log, seen


def test_rounds_stop_at_the_rounds_cap_and_record_their_hypotheses() -> None:
    fanout = FakeFanout()
    log, seen = run_rounds(fanout, Budget(rounds=2, max_tool_calls=1000))
    assert log.rounds == 2 and [n for n, _, _ in seen] == [1, 2]
    assert log.stopped == "rounds" and log.skipped > 0 and "round limit" in log.note(Budget(rounds=2))
    assert [h.round for h in log.hypotheses] == [1] * 4 + [2] * 4
    first = log.hypotheses[0]
    assert "crash-looping" in first.hypothesis and first.found == f"{len(first.tool)} lines from p0-1-a"
    assert [agent for agent, _ in fanout.asked] == ["kubernetes", "kubernetes"]
    assert len(fanout.asked[0][1]) == 4     # two pods × (previous logs, events), one sub-agent call
    event = followup_event(*seen[0])
    assert event["phase"] == "followup" and event["round"] == 1 and "budget_reached" not in event
    assert {c["tool"] for c in event["calls"]} == set(TOOLS) and "crash-looping" in event["calls"][0]["hypothesis"]


def test_the_call_budget_counts_the_first_pass_and_trims_the_last_round() -> None:
    fanout = FakeFanout(first_pass=10)
    log, seen = run_rounds(fanout, Budget(rounds=5, max_tool_calls=13))
    assert log.rounds == 1 and sum(len(steps) for _, steps in fanout.asked) == 3
    assert (log.stopped, log.skipped, len(log.hypotheses)) == ("tool_calls", 1, 3)
    assert sum(r.tool_count for r in fanout.results.values()) == 13
    event = followup_event(*seen[0])
    assert event["budget_reached"] is True and len(event["skipped"]) == 1


def test_no_budget_left_or_no_enabled_agent_means_no_follow_up_calls() -> None:
    for budget, subagents in ((Budget(rounds=3, max_tool_calls=10), ["kubernetes"]),
                              (Budget(rounds=0, max_tool_calls=100), ["kubernetes"]),
                              (Budget(rounds=3, max_tool_calls=100), ["metrics"])):
        fanout = FakeFanout(first_pass=10)
        log, _ = run_rounds(fanout, budget, subagents)
        assert log.rounds == 0 and fanout.asked == [] and log.hypotheses == []


class FakeClock:
    """Seconds since the run started: each round's calls take ``per_round`` seconds of it."""

    def __init__(self, fanout: FakeFanout, per_round: float) -> None:
        self.fanout, self.per_round = fanout, per_round

    def __call__(self) -> float:
        return self.per_round * len(self.fanout.asked)


def test_the_time_budget_stops_further_rounds_and_is_named_in_the_note() -> None:
    fanout = FakeFanout()
    budget = Budget(rounds=5, max_tool_calls=1000, time_s=50)
    log, seen = run_rounds(fanout, budget, clock=FakeClock(fanout, per_round=30))
    assert log.rounds == 2 and len(fanout.asked) == 2          # 0 s, 30 s: rounds start; at 60 s none does
    assert log.stopped == "time" and log.skipped > 0
    assert seen[-1][0] == 3 and seen[-1][1] == [] and followup_event(*seen[-1])["budget_reached"] is True
    note = log.note(budget)
    assert "time budget (investigation.time_budget_s = 50 s) after 2 round(s)" in note and f"{log.skipped} further" in note


def test_a_time_budget_already_spent_by_the_playbooks_runs_no_round() -> None:
    fanout = FakeFanout()
    log, _ = run_rounds(fanout, Budget(rounds=3, max_tool_calls=1000, time_s=10), clock=lambda: 10.0)
    assert log.rounds == 0 and fanout.asked == [] and log.stopped == "time"
    assert FollowUpLog().note(Budget()) == ""


def test_a_pod_waiting_on_an_unbound_claim_leads_to_its_namespaces_claims() -> None:
    from incidentfox.evidence import K8sEvent

    waiting = K8sEvent(namespace="cache", kind="pod", name="redis-1", type="Warning", reason="FailedScheduling",
                       message="0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
    other = waiting.model_copy(update={"name": "redis-2", "message": "0/2 nodes are available: Insufficient cpu."})
    got = derive(EvidenceBundle(events=[waiting, other]), available={"kubernetes_list_volume_claims"},
                 window_minutes=60)
    assert [(f.tool, f.args["namespace"]) for f in got] == [("kubernetes_list_volume_claims", "cache")]
    assert derive(EvidenceBundle(events=[other]), available={"kubernetes_list_volume_claims"}, window_minutes=60) == []
