"""The fan-out runs explicit offline steps (the planner's follow-ups) in the calling process: the
same dispatcher, allow-list and ToolExecutor calls as a worker's playbook, no SubAgentWorker call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actors.engine.fanout import SubAgentFanout
from actors.engine.outcomes import SubAgentStatus
from actors.engine.tool_executor import ToolCallRequest, ToolExecutorCore

CONFIG = {"integrations": {"demo": {"enabled": True, "latency_ms": 0}}}


class _Method:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, req: Any) -> Any:
        return self.fn(req)


class Executor:
    """A ToolExecutor handle over the real core (no Ray), remembering each call."""

    def __init__(self) -> None:
        self.core = ToolExecutorCore(None)
        self.asked: list[ToolCallRequest] = []
        self.batches: list[int] = []

        async def call(req: ToolCallRequest) -> Any:
            self.asked.append(req)
            return await self.core.call(req)

        async def call_many(reqs: list[ToolCallRequest]) -> list[Any]:
            self.batches.append(len(reqs))
            return list(await asyncio.gather(*(call(r) for r in reqs)))
        self.call = _Method(call)
        self.call_many = _Method(call_many)


class NoWorker:
    """A SubAgentWorker handle that must not be used."""

    def __init__(self) -> None:
        async def run(req: Any) -> Any:
            raise AssertionError("explicit steps must not go to a SubAgentWorker")
        self.run = _Method(run)


def fanout(executor: Executor, progress: list[tuple]) -> SubAgentFanout:
    return SubAgentFanout(run_id="r1", org_id="o", team_id="t", config=CONFIG, workers=[NoWorker()],
                          executors=[executor], services=["checkout"], window=None,
                          deadline_at=time.monotonic() + 60, on_progress=lambda *a: progress.append(a))


def test_explicit_steps_run_here_through_the_tool_executors_under_the_agents_name() -> None:
    executor, progress = Executor(), []
    f = fanout(executor, progress)
    steps = [("tempo_search_traces", {"service": "checkout"}), ("prometheus_query_range", {"query": "up"}),
             ("not_a_tool", {})]
    result = asyncio.run(f.run_one("metrics", mode="offline", steps=steps))
    assert [r.tool for r in executor.asked] == [t for t, _ in steps] and executor.batches == [3]   # one round trip
    assert {r.agent for r in executor.asked} == {"metrics"} and not any(r.want_data for r in executor.asked)
    assert result.tool_count == 3 and result.status is SubAgentStatus.OK and result.evidence.spans
    assert len(result.tool_errors) == 1 and result.tool_errors[0].startswith("not_a_tool: ")
    assert f.results["metrics"] is result
    assert [(a, s) for a, s, *_ in progress] == [("metrics", SubAgentStatus.RUNNING), ("metrics", SubAgentStatus.OK)]


def test_steps_of_a_second_round_add_to_the_agents_result() -> None:
    executor, progress = Executor(), []
    f = fanout(executor, progress)
    asyncio.run(f.run_one("logs", mode="offline", steps=[("loki_query_logs", {"query": '{service="checkout"}'})]))
    first = len(f.results["logs"].evidence.logs)
    asyncio.run(f.run_one("logs", mode="offline", steps=[("loki_query_logs", {"query": '{service="payments"}'})]))
    assert f.results["logs"].tool_count == 2 and len(f.results["logs"].evidence.logs) > first > 0


def test_each_tool_call_carries_the_teams_routing_claims_to_the_tool_context() -> None:
    """What a tool checks its target against (github_open_revert_pr: routing.github_repos) is the
    run's team's own routing, on every call a sub-agent makes."""
    executor, progress = Executor(), []
    routing = {"github_repos": ["acme/shop"], "slack_channel_ids": ["C111"]}
    f = SubAgentFanout(run_id="r1", org_id="o", team_id="t", config={**CONFIG, "routing": routing},
                       workers=[NoWorker()], executors=[executor], services=["checkout"], window=None,
                       deadline_at=time.monotonic() + 60, on_progress=lambda *a: progress.append(a))
    asyncio.run(f.run_one("metrics", mode="offline", steps=[("prometheus_query_range", {"query": "up"})]))
    [req] = executor.asked
    assert req.routing == routing and executor.core._context(req).routing == routing
