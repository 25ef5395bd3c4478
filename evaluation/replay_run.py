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
from dataclasses import dataclass, field
from typing import Any

from actors.ranking.model import Ranking
from actors.tools.replay import ReplayStore
from incidentfox.contracts import RCA
from incidentfox.evidence import Alert, EvidenceBundle

LOOKBACK_MINUTES = 60


@dataclass
class ReplayRun:
    rca: RCA
    ranking: Ranking
    bundle: EvidenceBundle
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)   # (tool, args, summary)


async def _gather(store: ReplayStore, config: dict[str, Any], services: list[str],
                  alert: Alert) -> tuple[EvidenceBundle, list]:
    from actors.engine.agents.toolset import agent_of, allowed_tools
    from actors.engine.followups import derive
    from actors.tools.base import ToolContext
    from actors.tools.execute import execute
    from actors.tools.playbooks import playbook
    from config_service import TeamConfig

    cfg = TeamConfig(config)
    allowed = allowed_tools(cfg)
    steps: list[tuple[str, dict[str, Any]]] = []
    for agent in cfg.enabled_subagents:
        steps += cfg.agent(agent).playbook or playbook(agent, services=services, window=LOOKBACK_MINUTES,
                                                       available=set(allowed), metrics=cfg.metrics)
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
        todo = derive(EvidenceBundle(alert=alert).merge(evidence), available=available,
                      window_minutes=LOOKBACK_MINUTES, metrics=cfg.metrics, done=done)
        room = inv.max_tool_calls - len(calls)
        if not todo or room <= 0:
            break
        todo = todo[:room]
        done.update(f.key() for f in todo)
        await run([(f.tool, f.args) for f in todo])
    return evidence, calls


def investigate(store: ReplayStore, *, integrations: dict[str, Any], alert: Alert,
                services: list[str] | None = None) -> ReplayRun:
    """The offline planner's RCA for ``alert`` when its tools are answered by ``store``."""
    from actors.ranking import rank
    from actors.ranking.rca import build_rca
    from actors.ranking.topology import with_call_graph

    got: list[tuple[EvidenceBundle, list]] = []

    async def main() -> None:
        # The result goes through a list, not the task's return value: on exit asyncio.run (3.11)
        # formats the main task's repr while restoring SIGINT, and that repr would print the whole
        # evidence bundle (a tenth of a second per case on Nezha).
        got.append(await _gather(store, {"integrations": integrations}, list(services or []), alert))

    asyncio.run(main())
    evidence, calls = got[0]
    bundle = with_call_graph(EvidenceBundle(alert=alert).merge(evidence))
    ranking = rank(bundle)
    return ReplayRun(rca=build_rca(ranking, bundle), ranking=ranking, bundle=bundle, calls=calls)
