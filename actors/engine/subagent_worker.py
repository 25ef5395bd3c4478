"""SubAgentWorker: async Ray actors that run sub-agents, many at once, fanning tool calls out.

A run's sub-agents (kubernetes, metrics, logs, changes, cloud) are each one ``SubAgentWorker.run``
call, so they run in parallel across the pool. Inside, a sub-agent's tool calls are
``ToolExecutor.call`` actor calls awaited together, so they run in parallel too:

* ``offline``: the sub-agent's playbook (:func:`actors.tools.playbooks.playbook`) of tool calls;
* ``llm``: an openai-agents ``Agent`` (:mod:`actors.engine.agents.subagent_factory`) whose function tools
  dispatch to the ToolExecutors; the SDK runs a turn's tool calls concurrently.

Either way the result carries the evidence every tool call returned (merged), so the offline ranker
can rank over what an LLM sub-agent gathered too (used when a deadline cuts the planner short).
An ``llm`` sub-agent's result also carries the text each tool call showed its model
(``tool_outputs``), against which the planner's quoted evidence is verified
(:mod:`actors.engine.evidence_check`).
Only tools in the team's allow-list (from the run's config snapshot) are offered or dispatched.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ray

from actors.engine.outcomes import SubAgentStatus
from actors.engine.tool_executor import ToolCallRequest, ToolOutcome
from actors.ray_util import await_ref, is_actor_gone
from actors.tools.mcp import declared_spec
from config_service import TeamConfig
from incidentfox.evidence import EvidenceBundle

TOOL_CALL_SLACK_S = 10.0    # on top of a tool's own timeout × attempts: queueing in the executor
MAX_OUTPUT_CHARS = 2_000_000    # tool output text kept per sub-agent call for the evidence check


@dataclass
class SubAgentRequest:
    run_id: str
    org_id: str
    team_id: str
    agent: str
    mode: str                                   # offline | llm
    config: dict[str, Any] = field(repr=False)  # the run's config snapshot (secrets included)
    executors: list[Any] = field(default_factory=list, repr=False)
    services: list[str] = field(default_factory=list)
    window: tuple[datetime, datetime] | None = None
    question: str = ""
    timeout_s: float = 300.0
    steps: list[tuple[str, dict[str, Any]]] | None = None   # offline: these calls instead of the playbook
    latency_statistics: tuple[str, ...] = ()    # offline: the latency statistics asked (empty: the team's)


@dataclass
class SubAgentResult:
    agent: str
    status: SubAgentStatus      # ok | failed | skipped | timeout
    tool_count: int = 0
    duration_s: float = 0.0
    evidence: EvidenceBundle = field(default_factory=EvidenceBundle)
    report: str = ""
    error: str | None = None
    tool_errors: list[str] = field(default_factory=list)
    tool_timings: list[tuple[str, float, float]] = field(default_factory=list)  # (tool, start, end) unix s
    tool_outputs: list[tuple[str, str]] = field(default_factory=list, repr=False)  # (tool, text the model saw)


def _status(*, tools_offered: int, calls: int, errors: int) -> SubAgentStatus:
    """A finished sub-agent's status: skipped with nothing to use, failed when every call failed."""
    if not calls and not tools_offered:
        return SubAgentStatus.SKIPPED
    if calls and errors == calls:
        return SubAgentStatus.FAILED
    return SubAgentStatus.OK


def _team_knowledge(req: SubAgentRequest, cfg: TeamConfig) -> Any:
    """The run's knowledge settings (its team's scopes), from the config snapshot, never a prompt."""
    from actors.tools.knowledge_bases import TeamKnowledge

    return TeamKnowledge.from_config(cfg, org_id=req.org_id, team_id=req.team_id)


def _is_knowledge(spec: Any) -> bool:
    from actors.tools.base import KNOWLEDGE_INTEGRATION

    return spec is not None and spec.integration == KNOWLEDGE_INTEGRATION


class _Dispatcher:
    """Sends one sub-agent's tool calls to the ToolExecutors and collects their evidence."""

    def __init__(self, req: SubAgentRequest, allowed: dict[str, Any], cfg: TeamConfig,
                 mcp: dict[str, Any] | None = None) -> None:
        self.req = req
        self.allowed = allowed
        self.mcp = mcp or {}    # tool name → McpTool: calls to the run's MCP servers
        self.names = frozenset(allowed)
        self.count = 0
        self.evidence = EvidenceBundle()
        self.errors: list[str] = []
        self.timings: list[tuple[str, float, float]] = []
        self.outputs: list[tuple[str, str]] = []
        self._output_chars = 0
        self.deadline = time.monotonic() + req.timeout_s
        self._rr = itertools.count(hash(req.run_id + req.agent) % 997)
        self._integrations = cfg.integrations
        self._routing = dict(cfg.effective.routing)
        self._knowledge = _team_knowledge(req, cfg)

    def _budget(self, tool: str) -> float:
        spec = self.allowed.get(tool)
        return (spec.timeout_s * (spec.retries + 1) if spec else 5.0) + TOOL_CALL_SLACK_S

    def _request(self, tool: str, args: dict[str, Any], approval_s: float = 0.0) -> ToolCallRequest:
        self.count += 1
        return ToolCallRequest(run_id=self.req.run_id, org_id=self.req.org_id, team_id=self.req.team_id,
                               agent=self.req.agent, tool=tool, args=args, integrations=self._integrations,
                               allowed=self.names, approval_timeout_s=approval_s,
                               want_data=self.req.mode == "llm", mcp=self.mcp.get(tool), routing=self._routing,
                               knowledge=self._knowledge if _is_knowledge(self.allowed.get(tool)) else None)

    async def _send(self, submit: Callable[[Any], Any], budget: float) -> Any:
        """``submit(executor)``'s answer, retried once on another executor if the first one died."""
        executors = self.req.executors
        last: BaseException | None = None
        for _ in range(min(2, len(executors))):   # one retry on another executor if one died
            executor = executors[next(self._rr) % len(executors)]
            try:
                return await await_ref(submit(executor), timeout=budget)
            except Exception as exc:
                if not is_actor_gone(exc):
                    raise
                last = exc
        raise RuntimeError(f"no tool executor available: {last}")

    def _collect(self, tool: str, outcome: ToolOutcome) -> None:
        self.timings.append((tool, outcome.started_at, outcome.finished_at))
        if self.req.mode == "llm":
            self._keep_output(tool, outcome)
        if outcome.result.ok:
            self.evidence = self.evidence.merge(outcome.result.evidence)
        else:
            self.errors.append(f"{tool}: {outcome.result.error}")

    async def __call__(self, tool: str, args: dict[str, Any]) -> ToolOutcome:
        budget = self._budget(tool)
        approval_s = 0.0
        spec = self.allowed.get(tool)
        if spec is not None and spec.mutating:   # may wait for a human: up to the run's remaining time
            approval_s = max(0.0, self.deadline - time.monotonic() - TOOL_CALL_SLACK_S)
            budget += approval_s
        call = self._request(tool, args, approval_s)
        outcome: ToolOutcome = await self._send(lambda executor: executor.call.remote(call), budget)
        self._collect(tool, outcome)
        return outcome

    def batchable(self, steps: list[tuple[str, dict[str, Any]]]) -> bool:
        """Whether ``steps`` can go as one batch: none may wait for a human's approval."""
        return not any((spec := self.allowed.get(tool)) is not None and spec.mutating for tool, _ in steps)

    async def batch(self, steps: list[tuple[str, dict[str, Any]]]) -> list[ToolOutcome]:
        """``steps`` (:meth:`batchable`) as one ``ToolExecutor.call_many``: one Ray round trip instead of
        one per call; each call is still validated, run, bounded by its own timeout and recorded on its
        own. Outcomes in step order."""
        if not steps:
            return []
        calls = [self._request(tool, args) for tool, args in steps]
        budget = max(self._budget(tool) for tool, _ in steps)
        outcomes: list[ToolOutcome] = await self._send(lambda executor: executor.call_many.remote(calls), budget)
        for (tool, _), outcome in zip(steps, outcomes, strict=True):
            self._collect(tool, outcome)
        return outcomes

    def _keep_output(self, tool: str, outcome: ToolOutcome) -> None:
        """Keep the text the model is shown for this call (bounded per sub-agent call)."""
        from actors.engine.agents.toolset import render_outcome

        text = render_outcome(tool, outcome)
        if self._output_chars + len(text) <= MAX_OUTPUT_CHARS:
            self._output_chars += len(text)
            self.outputs.append((tool, text))


class SubAgentCore:
    """The worker's logic, usable without the actor wrapper."""

    def __init__(self) -> None:
        self._models: dict[tuple, Any] = {}
        self.active = 0

    async def run(self, req: SubAgentRequest) -> SubAgentResult:
        from actors.engine.agents.toolset import allowed_tools, tools_by_agent

        started = time.monotonic()
        self.active += 1
        try:
            cfg = TeamConfig(req.config, org_id=req.org_id, team_id=req.team_id)
            allowed = allowed_tools(cfg)
            mine = {s.name: s for s in tools_by_agent(allowed).get(req.agent, [])}
            mcp, mcp_errors = await self._mcp_tools(req, cfg) if req.mode == "llm" else ({}, [])
            for decl in mcp.values():
                allowed[decl.name] = mine[decl.name] = declared_spec(decl)
            dispatch = _Dispatcher(req, allowed, cfg, mcp)
            try:
                async with asyncio.timeout(req.timeout_s):
                    if req.mode == "llm":
                        report = await self._run_llm(req, cfg, list(mine.values()), dispatch)
                    else:
                        report = await self._run_playbook(req, allowed, dispatch, cfg)
                status = _status(tools_offered=len(mine), calls=dispatch.count, errors=len(dispatch.errors))
                error = None
            except TimeoutError:
                status, report, error = SubAgentStatus.TIMEOUT, "", f"{req.agent} did not finish within {req.timeout_s:.0f}s"
            return SubAgentResult(agent=req.agent, status=status, tool_count=dispatch.count,
                                  duration_s=time.monotonic() - started, evidence=dispatch.evidence,
                                  report=report, error=error, tool_errors=mcp_errors + dispatch.errors,
                                  tool_timings=dispatch.timings, tool_outputs=dispatch.outputs)
        finally:
            self.active -= 1

    async def _mcp_tools(self, req: SubAgentRequest, cfg: TeamConfig) -> tuple[dict[str, Any], list[str]]:
        """The tools of the MCP servers the team attached to this sub-agent, listed by a ToolExecutor
        (bounded by the sub-agent's time), and what went wrong with the servers left out."""
        from actors.engine.mcp_attach import LIST_TIMEOUT_S, attachments_for

        attachments = attachments_for(cfg, req.agent)
        if not attachments or not req.executors:
            return {}, []
        probe = ToolCallRequest(run_id=req.run_id, org_id=req.org_id, team_id=req.team_id, agent=req.agent,
                                tool="", args={}, integrations=TeamConfig(req.config).integrations)
        try:
            listing = await await_ref(req.executors[0].list_mcp.remote(probe, attachments),
                                      timeout=min(req.timeout_s, LIST_TIMEOUT_S * len(attachments) + TOOL_CALL_SLACK_S))
        except TimeoutError:
            return {}, ["mcp: listing the MCP servers' tools timed out"]
        return {t.name: t for t in listing.tools}, list(listing.errors)

    async def _run_playbook(self, req: SubAgentRequest, allowed: dict[str, Any], dispatch: _Dispatcher,
                            cfg: TeamConfig | None = None) -> str:
        from actors.tools.playbooks import playbook

        cfg = cfg or TeamConfig(req.config)   # the caller's parse, when it has one
        configured = cfg.agent(req.agent).playbook
        lookback = (req.window[1] - req.window[0]) if req.window else None
        steps = req.steps if req.steps is not None else configured or playbook(
            req.agent, services=req.services, window=lookback, available=set(allowed),
            metrics=cfg.metrics.asking(req.latency_statistics))
        if dispatch.batchable(steps):
            outcomes = await dispatch.batch(steps)
        else:
            outcomes = await asyncio.gather(*(dispatch(tool, args) for tool, args in steps))
        return "\n".join(f"{tool}: {o.result.summary}" for (tool, _), o in zip(steps, outcomes))

    def _model(self, cfg: TeamConfig, model_name: str | None) -> Any:
        from actors.engine.agents.providers import build_model

        llm = cfg.llm
        key = (llm.provider, llm.base_url, llm.api_key, model_name or llm.model, llm.request_timeout_s)
        if key not in self._models:
            self._models[key] = build_model(llm, model_name)
        return self._models[key]

    async def _run_llm(self, req: SubAgentRequest, cfg: TeamConfig, specs: list[Any],
                       dispatch: _Dispatcher) -> str:
        from agents import RunConfig, Runner

        from actors.engine.agents.providers import record_usage
        from actors.engine.agents.subagent_factory import build_subagent
        from actors.engine.agents.toolset import function_tools

        settings = cfg.agent(req.agent)
        agent = build_subagent(req.agent, settings=settings, tools=function_tools(specs, dispatch),
                               model=self._model(cfg, settings.model))
        result = await Runner.run(agent, req.question or f"Investigate as the {req.agent} specialist.",
                                  max_turns=settings.max_turns, run_config=RunConfig(workflow_name="incidentfox"))
        record_usage(cfg.llm, settings.model, result)
        return str(result.final_output)


@ray.remote(num_cpus=0, max_concurrency=1000)
class SubAgentWorker:
    """A named async actor hosting many concurrent sub-agent runs."""

    def __init__(self) -> None:
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        self._core = SubAgentCore()
        # Import the SDK and the tool registry now, not on the first sub-agent call.
        import agents  # noqa: F401

        import actors.engine.agents.toolset
        import actors.tools.playbooks
        import actors.tools.registry  # noqa: F401

    async def run(self, req: SubAgentRequest) -> SubAgentResult:
        return await self._core.run(req)

    async def load(self) -> int:
        return self._core.active

    async def ping(self) -> bool:
        return True


__all__ = ["SubAgentCore", "SubAgentRequest", "SubAgentResult", "SubAgentWorker"]
