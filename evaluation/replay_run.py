"""Run the offline planner's investigation against a replay store, in this process.

The same steps as a live offline run (:mod:`actors.engine.offline_planner`), without the Ray actors
around them: the team's enabled sub-agents each pick their playbook
(:func:`actors.tools.playbooks.playbook`, restricted to the tools the team's integrations allow,
or the team's configured playbook), every call goes through :func:`actors.tools.execute.execute`
with ``ToolContext.replay`` set, so the replay store answers it (a call nothing recorded answers
``no data``); then the planner's follow-up rounds (:func:`actors.engine.followups.derive`, within
``investigation.followup_rounds`` and ``max_tool_calls``) run the same way; and the evidence of every successful call is merged under the alert and ranked by
:func:`actors.ranking.rank` exactly as :func:`~actors.engine.offline_planner.rca_from_evidence` does.
The planner decides what to call; :attr:`ReplayRun.calls` says what it called.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from actors.ranking.model import Ranking
from actors.tools.replay import ReplayStore
from incidentfox.contracts import RCA
from incidentfox.evidence import Alert, EvidenceBundle
from incidentfox.latency_statistic import alert_statistic, asked

LOOKBACK_MINUTES = 60


@dataclass
class ReplayRun:
    rca: RCA
    ranking: Ranking
    bundle: EvidenceBundle
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)   # (tool, args, summary)


async def _gather(store: ReplayStore, config: dict[str, Any], services: list[str],
                  alert: Alert) -> tuple[EvidenceBundle, list]:
    from actors.engine.agents.toolset import agent_of
    from actors.engine.followups import derive
    from actors.engine.subject import resolve
    from actors.tools.base import ToolContext
    from actors.tools.execute import execute
    from actors.tools.playbooks import playbook

    cfg, allowed = _team(json.dumps(config, sort_keys=True))
    # As the live planner: the latency statistics the team asks, plus the one the alert is on.
    metrics = cfg.metrics.asking(asked(cfg.metrics.latency_statistics, alert_statistic(alert)))
    steps: list[tuple[str, dict[str, Any]]] = []
    for agent in cfg.enabled_subagents:
        steps += cfg.agent(agent).playbook or playbook(agent, services=services, window=LOOKBACK_MINUTES,
                                                       available=set(allowed), metrics=metrics)
    steps = [(tool, args) for tool, args in steps if tool in allowed]
    ctx = ToolContext(integrations=cfg.integrations, run_id="replay", replay=store)
    evidence = EvidenceBundle()
    calls: list[tuple[str, dict[str, Any], str]] = []

    async def run(batch: list[tuple[str, dict[str, Any]]]) -> None:
        nonlocal evidence
        results = await asyncio.gather(*(execute(allowed[tool], args, ctx) for tool, args in batch))
        for (tool, args), res in zip(batch, results, strict=True):
            calls.append((tool, args, res.summary if res.ok else f"error: {res.error}"))
            if res.ok:
                evidence = evidence.merge(res.evidence)

    await run(steps)
    # The offline planner's follow-up rounds (actors/engine/offline_planner.follow_up), same budget.
    inv = cfg.effective.investigation
    available = {tool for tool, spec in allowed.items() if agent_of(spec) in cfg.enabled_subagents}
    done: set[str] = set()
    for _ in range(inv.followup_rounds):
        todo = derive(resolve(EvidenceBundle(alert=alert).merge(evidence)), available=available,
                      window_minutes=LOOKBACK_MINUTES, metrics=metrics, done=done)
        room = inv.max_tool_calls - len(calls)
        if not todo or room <= 0:
            break
        todo = todo[:room]
        done.update(f.key() for f in todo)
        await run([(f.tool, f.args) for f in todo])
    return evidence, calls


@functools.lru_cache(maxsize=16)
def _team(config: str) -> tuple[Any, dict[str, Any]]:
    """The team view and its allowed tools, once per config (the same for every case of a suite)."""
    from actors.engine.agents.toolset import allowed_tools
    from config_service import TeamConfig

    cfg = TeamConfig(json.loads(config))
    return cfg, allowed_tools(cfg)


def _run(coro: Any) -> Any:
    """``coro`` on a fresh event loop. Not ``asyncio.run``: on the main thread it installs a SIGINT
    handler bound to the main task, and reading that handler back reprs the task and its result
    (here a whole evidence bundle: seconds per case, measured)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def investigate(store: ReplayStore, *, integrations: dict[str, Any], alert: Alert,
                services: list[str] | None = None) -> ReplayRun:
    """The offline planner's RCA for ``alert`` when its tools are answered by ``store``."""
    from actors.engine.subject import resolve
    from actors.ranking import rank
    from actors.ranking.rca import build_rca
    from actors.ranking.topology import with_call_graph

    evidence, calls = _run(_gather(store, {"integrations": integrations}, list(services or []), alert))
    bundle = with_call_graph(resolve(EvidenceBundle(alert=alert).merge(evidence)))
    ranking = rank(bundle)
    return ReplayRun(rca=build_rca(ranking, bundle), ranking=ranking, bundle=bundle, calls=calls)
