"""The offline sub-agent's playbook queries follow the team's ``investigation.metrics``."""

from __future__ import annotations

from typing import Any

from actors.engine.agents.toolset import allowed_tools
from actors.engine.subagent_worker import SubAgentCore, SubAgentRequest
from actors.engine.tool_executor import ToolOutcome
from actors.tools.base import ToolResult
from config_service import TeamConfig


async def _calls(config: dict[str, Any], agent: str,
                 latency_statistics: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Dispatch:   # the playbook's calls go as one batch
        def batchable(self, steps: list[tuple[str, dict[str, Any]]]) -> bool:
            return True

        async def batch(self, steps: list[tuple[str, dict[str, Any]]]) -> list[ToolOutcome]:
            seen.extend(steps)
            return [ToolOutcome(result=ToolResult.success([], summary="ok"), started_at=0.0, finished_at=0.0)
                    for _ in steps]

    req = SubAgentRequest(run_id="r", org_id="o", team_id="t", agent=agent, mode="offline", config=config,
                          latency_statistics=latency_statistics)
    await SubAgentCore()._run_playbook(req, allowed_tools(TeamConfig(config)), Dispatch())  # type: ignore[arg-type]
    return seen


async def test_a_prometheus_team_gets_its_exporters_queries_and_service_graph() -> None:
    config = {"integrations": {"prometheus": {"url": "http://prom"}},
              "investigation": {"metrics": {"requests": "istio", "service_graph": "istio"}}}
    calls = await _calls(config, "metrics")
    queries = [a["query"] for t, a in calls if t == "prometheus_query_range"]
    assert any("istio_requests_total" in q for q in queries)
    assert not any("http_requests_total" in q for q in queries)
    graph = [a for t, a in calls if t == "prometheus_service_graph"]
    assert graph and graph[0]["metric"] == "istio_requests_total"
    assert graph[0]["client_label"] == "source_workload"


async def test_defaults_keep_the_old_queries_and_ask_kubernetes_for_services() -> None:
    calls = await _calls({"integrations": {"prometheus": {"url": "http://prom"}}}, "metrics")
    assert any('http_requests_total{code=~"5.."}' in a["query"] for t, a in calls if t == "prometheus_query_range")
    assert [a["metric"] for t, a in calls if t == "prometheus_service_graph"] == ["traces_service_graph_request_total"]
    k8s = await _calls({"integrations": {"kubernetes": {"host": "https://k", "token": "x"}}}, "kubernetes")
    assert "kubernetes_list_services" in [t for t, _ in k8s]


async def _latency_queries(config: dict[str, Any], statistics: tuple[str, ...] = ()) -> dict[str, str]:
    seen = await _calls(config, "metrics", latency_statistics=statistics)
    return {a["metric"]: a["query"] for t, a in seen if t == "prometheus_query_range"
            and a["metric"].startswith("latency")}


async def test_an_alert_on_the_average_is_asked_on_the_average_too() -> None:
    prom = {"integrations": {"prometheus": {"url": "http://prom"}}}
    assert list(await _latency_queries(prom)) == ["latency_p99"]
    both = await _latency_queries(prom, ("p99", "average"))
    assert both["latency_p99"].startswith("histogram_quantile(0.99,")
    assert both["latency_average"] == ("sum by (service) (rate(http_request_duration_seconds_sum[5m])) / "
                                       "sum by (service) (rate(http_request_duration_seconds_count[5m]))")


async def test_the_team_sets_its_latency_statistics() -> None:
    config = {"integrations": {"prometheus": {"url": "http://prom"}},
              "investigation": {"metrics": {"requests": "istio", "latency_statistics": ["p95", "average"]}}}
    queries = await _latency_queries(config)
    assert set(queries) == {"latency_p95", "latency_average"}
    assert "istio_request_duration_milliseconds_sum" in queries["latency_average"]
    assert queries["latency_p95"].startswith('label_replace(histogram_quantile(0.95,')


def test_the_planner_reads_the_statistic_from_the_trigger() -> None:
    from urllib.parse import quote

    from actors.engine.offline_planner import alert_from_trigger, latency_statistics

    expr = "sum(rate(rpc_duration_seconds_sum[5m])) by (service) / sum(rate(rpc_duration_seconds_count[5m])) by (service)"
    trigger = {"title": "[FIRING:1] RpcLatencyHigh", "text": "- firing RpcLatencyHigh {service=api}",
               "links": ["http://prom:9090/graph?g0.expr=" + quote(expr)], "services": ["api"]}
    assert alert_from_trigger(trigger, ["api"]).labels == {"statistic": "average"}
    assert latency_statistics(trigger, [], ("p99",)) == ("p99", "average")
    plain = {"title": "[FIRING:1] PodCrashLooping", "services": ["api"]}
    assert alert_from_trigger(plain, ["api"]).labels == {}
    assert latency_statistics(plain, [], ("p99",)) == ("p99",)


def test_a_cloudwatch_alarm_names_its_statistic() -> None:
    import json

    from actors.engine.offline_planner import latency_statistics

    def alarm(**trigger: object) -> dict[str, Any]:
        body = {"AlarmName": "checkout-latency", "NewStateValue": "ALARM",
                "Trigger": {"MetricName": "TargetResponseTime", "Namespace": "AWS/ApplicationELB", **trigger}}
        return {"title": "ALARM: checkout-latency", "text": json.dumps(body), "services": ["checkout"]}

    assert latency_statistics(alarm(Statistic="Average"), [], ("p99",)) == ("p99", "average")
    assert latency_statistics(alarm(ExtendedStatistic="p99"), [], ("p99",)) == ("p99",)
    assert latency_statistics(alarm(ExtendedStatistic="p95"), [], ("p99",)) == ("p99", "p95")


async def test_the_playbook_asks_for_each_services_cpu_from_the_schema() -> None:
    config = {"integrations": {"prometheus": {"url": "http://prom"}},
              "investigation": {"metrics": {"cpu": "node_cpu_used_total", "container_label": "ctr"}}}
    calls = await _calls(config, "metrics")
    cpu = [a for t, a in calls if t == "prometheus_query_range" and a["metric"] == "cpu"]
    assert len(cpu) == 1 and "rate(node_cpu_used_total{ctr!=" in cpu[0]["query"] and "by (ctr)" in cpu[0]["query"]
