"""The LLM planner's pass of one run: the planner agent asks the specialists (each a sub-agent call
through the run's fan-out), its report becomes the RCA, and the RCA's quoted evidence is checked
against what the run's tools returned (:mod:`actors.engine.evidence_check`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from actors.engine.evidence_check import EvidenceCheck, Source, verify_rca
from actors.engine.fanout import SubAgentFanout
from actors.engine.offline_planner import merged_bundle, proposals_for
from actors.engine.thread_turns import FollowUpPlan, Steering, llm_follow_up_input
from config_service import TeamConfig
from incidentfox.contracts import RCA

KNOWLEDGE_TOOLS = ("search_runbooks", "similar_incidents")   # the knowledge specialist's tools


async def plan_llm(fanout: SubAgentFanout, cfg: TeamConfig, *, trigger: dict[str, Any],
                    absorbed: list[dict[str, Any]], subagents: list[str], steering: Steering | None = None,
                    follow: FollowUpPlan | None = None, allowed: Collection[str] = (),
                    knowledge: dict[str, Any] | None = None) -> tuple[RCA, EvidenceCheck]:
    """The planner's RCA, its quoted evidence verified against what the run's tools returned (and the
    trigger): unverified quotes dropped, confidence lowered, the RCA says so (:mod:`.evidence_check`).

    ``steering`` hands the planner thread replies that reached the run (as untrusted input, after each
    specialist's answer); ``follow`` starts a follow-up run from its parent's analysis; ``knowledge``
    (what the run's knowledge base matched, :mod:`actors.engine.knowledge_use`) is shown as untrusted
    data, and a ``knowledge`` specialist is offered when the team's knowledge tools are allowed. The
    proposed fix comes from the run's typed evidence, never from the model."""
    from agents import RunConfig, Runner

    from actors.engine.agents.planner_agent import planner_agent, planner_input, report_to_rca
    from actors.engine.agents.providers import build_model, record_usage
    from actors.engine.agents.subagent_factory import planner_tool
    from actors.engine.agents.untrusted import as_data

    async def replies() -> str:
        return await steering.for_llm() if steering is not None else ""

    async def ask(name: str, question: str) -> str:
        result = await fanout.run_one(name, mode="llm", question=question)
        if result.status.unsuccessful:
            return f"The {name} specialist failed: {result.error}" + await replies()
        return (result.report or f"The {name} specialist found nothing to report.") + await replies()

    settings = cfg.agent("planner")
    knows = any(t in allowed for t in KNOWLEDGE_TOOLS) and cfg.agent("knowledge").enabled
    specialists = [*subagents, *(["knowledge"] if knows else [])]
    tools = [planner_tool(n, settings=cfg.agent(n), invoke=ask) for n in specialists]
    agent = planner_agent(settings=settings, tools=tools, model=build_model(cfg.llm, settings.model))
    first = planner_input(trigger=trigger, absorbed=absorbed, subagents=specialists)
    if knowledge:
        first += "\n\nWhat the team's knowledge base matched (runbooks, a similar past incident):\n\n" \
                 + as_data("knowledge_base", knowledge)
    if follow is not None:
        first += "\n\n" + llm_follow_up_input(follow)
    result = await Runner.run(agent, first + await replies(), max_turns=settings.max_turns,
                              run_config=RunConfig(workflow_name="incidentfox"))
    record_usage(cfg.llm, settings.model, result)
    sources = [*fanout.tool_outputs(), Source("trigger", trigger), *(Source("absorbed_alert", a) for a in absorbed)]
    if follow is not None:   # a follow-up may quote what its parent run found
        sources += [Source("previous_analysis", follow.parent_rca), Source("previous_evidence", follow.seed)]
    rca, check = await asyncio.to_thread(verify_rca, report_to_rca(result.final_output), sources)
    rca.proposed_actions = []   # the model never proposes an action; the typed evidence may
    rca = await asyncio.to_thread(proposals_for, rca, merged_bundle(fanout, trigger=trigger, absorbed=absorbed),
                                  allowed=set(allowed))
    return rca, check
