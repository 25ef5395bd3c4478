"""The offline sub-agent's playbook queries follow the team's ``investigation.metrics``."""

from __future__ import annotations

from typing import Any

from actors.engine.agents.toolset import allowed_tools
from actors.engine.subagent_worker import SubAgentCore, SubAgentRequest
from actors.engine.tool_executor import ToolOutcome
from actors.tools.base import ToolResult
from config_service import TeamConfig


async def _calls(config: dict[str, Any], agent: str) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Dispatch:   # the playbook's calls go as one batch
        def batchable(self, steps: list[tuple[str, dict[str, Any]]]) -> bool:
            return True

        async def batch(self, steps: list[tuple[str, dict[str, Any]]]) -> list[ToolOutcome]:
            seen.extend(steps)
            return [ToolOutcome(result=ToolResult.success([], summary="ok"), started_at=0.0, finished_at=0.0)
                    for _ in steps]

    req = SubAgentRequest(run_id="r", org_id="o", team_id="t", agent=agent, mode="offline", config=config)
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
