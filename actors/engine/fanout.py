"""The Ray fan-out of one run's sub-agents: each sub-agent is its own ``SubAgentWorker.run`` call.

Both planners use it: the offline planner starts every enabled sub-agent's playbook at once
(:meth:`SubAgentFanout.run_all`); the LLM planner calls :meth:`SubAgentFanout.run_one` from each
``ask_<name>_agent`` tool, and the SDK runs a turn's tool calls concurrently.

The offline planner's follow-ups (``run_one`` with explicit ``steps``) are fixed tool calls with no
agent logic, so they run here, in the calling process, through the same dispatcher as a worker's
playbook (:class:`actors.engine.subagent_worker.SubAgentCore`: allow-list check, ToolExecutor calls,
``tool_calls`` rows under the owning sub-agent's name), without a ``SubAgentWorker`` hop: each hop
cost a serialised request (config snapshot, executor handles) and result per round and agent.

Results are kept as they arrive (:attr:`SubAgentFanout.results`), so when a deadline cuts a run
short the run still has everything that finished. Progress goes to ``on_progress(agent, status,
tool_count, duration_s)``. Cancelling the caller cancels the Ray calls (:func:`actors.ray_util.await_ref`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from actors.engine.outcomes import SubAgentStatus
from actors.engine.subagent_worker import SubAgentCore, SubAgentRequest, SubAgentResult
from actors.ray_util import await_ref, is_actor_gone
from incidentfox.errors import failure_reason
from incidentfox.evidence import EvidenceBundle

Progress = Callable[[str, SubAgentStatus, int | None, float | None], None]


class SubAgentFanout:
    def __init__(self, *, run_id: str, org_id: str, team_id: str, config: dict[str, Any],
                 workers: list[Any], executors: list[Any], services: list[str],
                 window: tuple[datetime, datetime] | None, deadline_at: float,
                 on_progress: Progress | None = None, seed: EvidenceBundle | None = None,
                 latency_statistics: tuple[str, ...] = ()) -> None:
        self.run_id, self.org_id, self.team_id = run_id, org_id, team_id
        self._config = config
        self._workers = workers
        self._executors = executors
        self.services = services
        self.window = window
        self.latency_statistics = latency_statistics   # the playbooks' latency queries (empty: the team's)
        self.deadline_at = deadline_at          # time.monotonic() value
        self._on_progress = on_progress or (lambda *a: None)
        self._rr = itertools.count(hash(run_id) % 101)
        self.results: dict[str, SubAgentResult] = {}
        self.started: dict[str, float] = {}
        self.seed = seed or EvidenceBundle()    # a follow-up run starts from its parent's evidence
        self._local: SubAgentCore | None = None    # runs explicit steps in this process

    def _remaining(self) -> float:
        return max(0.1, self.deadline_at - time.monotonic())

    @property
    def config(self) -> dict[str, Any]:
        """The run's config snapshot."""
        return self._config

    async def run_one(self, agent: str, *, mode: str, question: str = "",
                      steps: list[tuple[str, dict[str, Any]]] | None = None) -> SubAgentResult:
        """One sub-agent as one Ray call (retried once on another worker if its worker died);
        ``steps``: offline, these tool calls instead of its playbook (the planner's follow-ups), run
        in this process (module docstring)."""
        self.started[agent] = time.monotonic()
        self._on_progress(agent, SubAgentStatus.RUNNING, None, None)
        req = SubAgentRequest(run_id=self.run_id, org_id=self.org_id, team_id=self.team_id, agent=agent,
                              mode=mode, config=self._config, executors=self._executors,
                              services=self.services, window=self.window, question=question,
                              timeout_s=self._remaining(), steps=steps,
                              latency_statistics=self.latency_statistics)
        try:
            if steps is not None and mode == "offline":
                result = await self._run_here(req)
            else:
                result = await self._run_on_worker(req)
        except asyncio.CancelledError:
            self._on_progress(agent, SubAgentStatus.CANCELLED, None, time.monotonic() - self.started[agent])
            raise
        result.duration_s = result.duration_s or (time.monotonic() - self.started[agent])
        prev = self.results.get(agent)
        if prev is not None:   # the LLM planner may ask the same specialist twice: keep both
            result.evidence = prev.evidence.merge(result.evidence)
            result.tool_count += prev.tool_count
            result.tool_outputs = [*prev.tool_outputs, *result.tool_outputs]
        self.results[agent] = result
        self._on_progress(agent, result.status, result.tool_count, result.duration_s)
        return result

    async def _run_here(self, req: SubAgentRequest) -> SubAgentResult:
        if self._local is None:
            self._local = SubAgentCore()
        try:
            return await self._local.run(req)
        except Exception as exc:  # noqa: BLE001 - as from a worker: the sub-agent failed, the run goes on
            return SubAgentResult(agent=req.agent, status=SubAgentStatus.FAILED,
                                  error=failure_reason(exc))

    async def _run_on_worker(self, req: SubAgentRequest) -> SubAgentResult:
        for attempt in range(2):
            worker = self._workers[next(self._rr) % len(self._workers)]
            try:
                return await await_ref(worker.run.remote(req), timeout=self._remaining() + 5)
            except TimeoutError:
                return SubAgentResult(agent=req.agent, status=SubAgentStatus.TIMEOUT, error="deadline reached")
            except Exception as exc:  # noqa: BLE001 - a dead worker is retried once; else the sub-agent failed
                if is_actor_gone(exc) and attempt == 0 and len(self._workers) > 1:
                    continue
                cause = getattr(exc, "cause", None) or exc
                return SubAgentResult(agent=req.agent, status=SubAgentStatus.FAILED,
                                      error=failure_reason(cause))
        raise AssertionError("unreachable")

    async def run_all(self, agents: list[str], *, mode: str = "offline") -> dict[str, SubAgentResult]:
        """Every agent at once; returns when all finished (or raises if cancelled)."""
        await asyncio.gather(*(self.run_one(a, mode=mode) for a in agents))
        return self.results

    def tool_outputs(self) -> list[tuple[str, str]]:
        """``(tool, text)`` of every tool call the LLM sub-agents made, as their models saw it."""
        return [out for result in self.results.values() for out in result.tool_outputs]

    def evidence(self) -> EvidenceBundle:
        bundle = self.seed
        for result in self.results.values():
            bundle = bundle.merge(result.evidence)
        return bundle
