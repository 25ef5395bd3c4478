"""The offline planner: no model, the same tools and the same Ray fan-out, deterministic ranking.

Used when a team configures no LLM provider, and by the demo. Steps:

1. every enabled sub-agent runs its playbook (:func:`actors.tools.playbooks.playbook`) as its own
   Ray call, all at once; each playbook's tool calls run in parallel on the ToolExecutors;
2. the evidence each tool call returned is merged into one :class:`EvidenceBundle`, with the alert
   taken from the trigger (and any absorbed alerts' services), and its call graph merged
   (:func:`actors.ranking.topology.with_call_graph`: service-graph metrics, trace spans and
   Kubernetes services joined on one name per workload; the demo world's map arrives the same way,
   as the demo backend's answer to the service-graph query);
3. follow-ups (:func:`follow_up`): hypotheses derived from the evidence so far
   (:func:`actors.engine.followups.derive`: a crash-looping pod → its previous logs and events, an
   OOM kill → its memory series, a slow service → its traces and then the service its slowest
   spans wait on, an error spike → its logs for template mining) run as targeted tool calls through
   the same sub-agents and ToolExecutors, round after round while new hypotheses appear, up to
   ``investigation.followup_rounds`` rounds and ``investigation.max_tool_calls`` calls in all;
4. :func:`actors.ranking.rank` ranks suspects with its documented rules (recent change before the
   alert, crash loops, OOM kills, image pull errors, metric anomalies, new log signatures,
   failing dependencies), and :func:`actors.ranking.rca.build_rca` writes the ``RCA``.

A team with no usable tools still gets an RCA, which says that no tools are configured.
:func:`rca_from_evidence` is also what a deadline-cut LLM run falls back to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.engine.fanout import SubAgentFanout
from actors.engine.followups import FollowUp, derive
from incidentfox.contracts import RCA
from incidentfox.evidence import Alert, EvidenceBundle
from incidentfox.latency_statistic import alert_statistic, asked
from incidentfox.timeparse import parse_time

DEFAULT_LOOKBACK = timedelta(minutes=60)
NO_TOOLS_SUMMARY = ("No tools are configured for this team, so nothing could be investigated. "
                    "Enable an integration (Kubernetes, Prometheus, Loki, GitHub, AWS, …) or "
                    "`integrations.demo` in the team's config.")


def trigger_services(trigger: dict[str, Any], absorbed: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for svc in [*(trigger.get("services") or []), *(s for a in absorbed for s in (a.get("services") or []))]:
        if svc and svc not in seen:
            seen.append(svc)
    return seen


def investigation_window(trigger: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """From an hour before the alert (or now) until now."""
    at = parse_time(trigger.get("occurred_at")) or now
    return min(at, now) - DEFAULT_LOOKBACK, now


def alert_from_trigger(trigger: dict[str, Any], services: list[str]) -> Alert:
    """The trigger as an alert; a latency alert's statistic (read from its title, text and links,
    e.g. a Prometheus ``generatorURL``: :func:`incidentfox.latency_statistic.alert_statistic`) goes
    into ``labels["statistic"]``, where the ranker looks for it."""
    alert = Alert(title=str(trigger.get("title") or trigger.get("event_kind") or ""),
                  entity=services[0] if services else "",
                  started_at=parse_time(trigger.get("occurred_at")),
                  text=str(trigger.get("text") or "")[:4000])
    links = [str(u) for u in (trigger.get("links") or []) if isinstance(u, str)]
    stat = alert_statistic(alert, extra_texts=links)
    return alert.model_copy(update={"labels": {"statistic": stat}}) if stat else alert


def latency_statistics(trigger: dict[str, Any], absorbed: list[dict[str, Any]], default: tuple[str, ...]
                       ) -> tuple[str, ...]:
    """The latency statistics the run's latency queries ask: the team's ``default`` plus the one the
    alert is on (an alert on the average is investigated on the average too, not only on p99)."""
    alert = alert_from_trigger(trigger, trigger_services(trigger, absorbed))
    return asked(default, alert.labels.get("statistic"))


def no_tools_rca() -> RCA:
    return RCA(summary=NO_TOOLS_SUMMARY, root_causes=[],
               recommended_actions=["Configure at least one integration for this team."])


def rca_from_evidence(bundle: EvidenceBundle, *, now: datetime | None = None) -> RCA:
    """Merge ``bundle``'s call graph, rank it and write the RCA (pure CPU; callers on an event loop
    use a thread)."""
    from actors.ranking import rank
    from actors.ranking.rca import build_rca
    from actors.ranking.topology import with_call_graph

    bundle = with_call_graph(bundle)
    ranking = rank(bundle, now=now)
    return build_rca(ranking, bundle)


@dataclass(frozen=True)
class Budget:
    rounds: int = 3               # follow-up rounds after the playbooks
    max_tool_calls: int = 60      # tool calls of the whole run, playbooks included


# Called once per follow-up round with (round number, the follow-ups it runs, the ones the call budget cut).
OnRound = Callable[[int, list[FollowUp], list[FollowUp]], None]


def _tool_calls(fanout: SubAgentFanout) -> int:
    return sum(r.tool_count for r in fanout.results.values())


async def follow_up(fanout: SubAgentFanout, *, subagents: list[str], tools: dict[str, str], budget: Budget,
                    trigger: dict[str, Any], absorbed: list[dict[str, Any]], window_minutes: int,
                    metrics: Any = None, on_round: OnRound | None = None) -> int:
    """Run follow-up rounds after the playbooks; returns how many rounds ran.

    ``tools`` maps each tool the team may call to the sub-agent that owns it; only tools of enabled
    ``subagents`` are used. A round's follow-ups run at once, one sub-agent call per owning agent.
    Stops when no new hypothesis appears, after ``budget.rounds`` rounds, or when the run has made
    ``budget.max_tool_calls`` calls (a round is trimmed to what is left)."""
    import asyncio

    available = {tool for tool, agent in tools.items() if agent in subagents}
    done: set[str] = set()
    ran = 0
    for n in range(1, budget.rounds + 1):
        bundle = merged_bundle(fanout, trigger=trigger, absorbed=absorbed)
        todo = derive(bundle, available=available, window_minutes=window_minutes, metrics=metrics, done=done)
        room = budget.max_tool_calls - _tool_calls(fanout)
        if not todo or room <= 0:
            if todo and on_round is not None:
                on_round(n, [], todo)
            break
        todo, cut = todo[:room], todo[room:]
        done.update(f.key() for f in todo)
        if on_round is not None:
            on_round(n, todo, cut)
        by_agent: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for f in todo:
            by_agent.setdefault(tools[f.tool], []).append((f.tool, f.args))
        await asyncio.gather(*(fanout.run_one(agent, mode="offline", steps=steps)
                               for agent, steps in by_agent.items()))
        ran = n
        if cut:
            break
    return ran


def followup_event(n: int, todo: list[FollowUp], cut: list[FollowUp]) -> dict[str, Any]:
    """The ``phase`` run event of one follow-up round: which calls ran and why."""
    data: dict[str, Any] = {"phase": "followup", "round": n,
                            "calls": [{"tool": f.tool, "args": f.args, "hypothesis": f.hypothesis} for f in todo]}
    if cut:
        data["budget_reached"] = True
        data["skipped"] = [{"tool": f.tool, "hypothesis": f.hypothesis} for f in cut]
    return data


async def plan_offline(fanout: SubAgentFanout, *, subagents: list[str], tool_count: int,
                       trigger: dict[str, Any], absorbed: list[dict[str, Any]],
                       now: datetime, on_round: OnRound | None = None) -> tuple[RCA, EvidenceBundle]:
    """Run the playbooks through ``fanout``, follow up on what they found, and rank it all."""
    import asyncio

    from actors.engine.agents.toolset import agent_of, allowed_tools
    from actors.tools.playbooks import window_minutes
    from config_service import TeamConfig

    if tool_count == 0 or not subagents:
        return no_tools_rca(), EvidenceBundle()
    await fanout.run_all(subagents, mode="offline")
    cfg = TeamConfig(fanout.config)
    inv = cfg.effective.investigation
    budget = Budget(rounds=inv.followup_rounds, max_tool_calls=inv.max_tool_calls)
    if budget.rounds:
        tools = {name: agent_of(spec) for name, spec in allowed_tools(cfg).items()}
        await follow_up(fanout, subagents=subagents, tools=tools, budget=budget, trigger=trigger,
                        absorbed=absorbed, window_minutes=window_minutes(fanout.window),
                        metrics=cfg.metrics.asking(fanout.latency_statistics),
                        on_round=on_round)
    bundle = merged_bundle(fanout, trigger=trigger, absorbed=absorbed)
    rca = await asyncio.to_thread(rca_from_evidence, bundle, now=now)
    return rca, bundle


def merged_bundle(fanout: SubAgentFanout, *, trigger: dict[str, Any], absorbed: list[dict[str, Any]]) -> EvidenceBundle:
    """Everything the sub-agents found, with the alert from the trigger where tools set none (the
    call graph is merged by :func:`rca_from_evidence`, off the event loop)."""
    bundle = EvidenceBundle(alert=alert_from_trigger(trigger, trigger_services(trigger, absorbed)))
    return bundle.merge(fanout.evidence())
