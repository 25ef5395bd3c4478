"""The offline planner: no model, the same tools and the same Ray fan-out, deterministic ranking.

Used when a team configures no LLM provider, and by the demo. Steps:

1. every enabled sub-agent runs its playbook (:func:`actors.tools.playbooks.playbook`) as its own
   Ray call, all at once; each playbook's tool calls run in parallel on the ToolExecutors;
2. the evidence each tool call returned is merged into one :class:`EvidenceBundle`, with the alert
   taken from the trigger (and any absorbed alerts' services; a human question stands for an alert
   on the resource it names, pinned to what the tools found: :mod:`actors.engine.subject`), and its
   call graph merged
   (:func:`actors.ranking.topology.with_call_graph`: service-graph metrics, trace spans and
   Kubernetes services joined on one name per workload; the demo world's map arrives the same way,
   as the demo backend's answer to the service-graph query);
3. follow-ups (:func:`follow_up`): hypotheses derived from the evidence so far
   (:func:`actors.engine.followups.derive`: a crash-looping pod → its previous logs and events, an
   OOM kill → its memory series, a slow service → its traces and then the service its slowest
   spans wait on, an error spike → its logs for template mining) run as targeted tool calls through
   the same sub-agents and ToolExecutors, round after round while new hypotheses appear, up to
   ``investigation.followup_rounds`` rounds, ``investigation.max_tool_calls`` calls in all and
   ``investigation.time_budget_s`` seconds since the run started (checked before each round); the
   RCA lists each hypothesis pursued with what its call found (``RCA.hypotheses``) and, when a
   budget ended the follow-ups, says which in its notes;
4. :func:`actors.ranking.rank` ranks suspects with its documented rules (recent change before the
   alert, crash loops, OOM kills, image pull errors, metric anomalies, new log signatures,
   failing dependencies), :func:`actors.ranking.rca.build_rca` writes the ``RCA``, and
   :func:`actors.engine.remedies.propose_actions` adds the top cause's proposed fix.

A team with no usable tools still gets an RCA, which says that no tools are configured.
:func:`rca_from_evidence` is also what a deadline-cut LLM run falls back to.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from actors.engine.fanout import SubAgentFanout
from actors.engine.followups import FollowUp, derive
from actors.engine.subject import question_alert, resolve
from incidentfox.contracts import RCA, Hypothesis
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
    """The alert to investigate. A human's question without services (a Slack mention, a command)
    stands for an alert on the resource it names (:func:`actors.engine.subject.question_alert`).
    A latency alert's statistic (read from its title, text and links, e.g. a Prometheus
    ``generatorURL``: :func:`incidentfox.latency_statistic.alert_statistic`) goes into
    ``labels["statistic"]``, where the ranker looks for it."""
    if not services and trigger.get("human") and not trigger.get("is_alert"):
        alert = question_alert(str(trigger.get("text") or trigger.get("title") or ""), title=str(trigger.get("title") or ""))
        return alert.model_copy(update={"started_at": parse_time(trigger.get("occurred_at"))})
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


def rca_from_evidence(bundle: EvidenceBundle, *, now: datetime | None = None,
                      allowed: Collection[str] = ()) -> RCA:
    """Merge ``bundle``'s call graph, rank it and write the RCA, with the top cause's proposed fix
    when its mutating tool is in ``allowed`` (:mod:`actors.engine.remedies`). Pure CPU; callers on an
    event loop use a thread."""
    from actors.engine.remedies import propose_actions
    from actors.ranking import rank
    from actors.ranking.rca import build_rca
    from actors.ranking.topology import with_call_graph

    bundle = with_call_graph(bundle)
    ranking = rank(bundle, now=now)
    rca = build_rca(ranking, bundle)
    rca.proposed_actions = propose_actions(ranking, bundle, allowed=allowed)
    return rca


def proposals_for(rca: RCA, bundle: EvidenceBundle, *, now: datetime | None = None,
                  allowed: Collection[str] = ()) -> RCA:
    """The LLM planner's ``rca`` with a proposed fix only where the deterministic ranking of the run's
    typed evidence proposes one for the same top cause (model text never makes one)."""
    from actors.engine.remedies import agreeing

    ranked = rca_from_evidence(bundle, now=now, allowed=allowed)
    top = rca.root_causes[0].entity if rca.root_causes else None
    rca.proposed_actions = agreeing(ranked.proposed_actions, top)
    return rca


@dataclass(frozen=True)
class Budget:
    rounds: int = 3               # follow-up rounds after the playbooks
    max_tool_calls: int = 60      # tool calls of the whole run, playbooks included
    time_s: float | None = None   # no round starts once the run has taken this long (None: no limit)


# Why follow-ups stopped: no new hypothesis ("done"), or the budget that ended them.
Stop = Literal["done", "rounds", "tool_calls", "time"]
_BUDGET_NAMES = {"rounds": "the round limit (investigation.followup_rounds = {rounds})",
                 "tool_calls": "the tool-call budget (investigation.max_tool_calls = {max_tool_calls})",
                 "time": "the time budget (investigation.time_budget_s = {time_s:g} s)"}


@dataclass
class FollowUpLog:
    """What the follow-up rounds did: the hypotheses pursued with what each call found, and why they
    stopped (``skipped``: follow-ups a budget left unmade)."""

    rounds: int = 0
    hypotheses: list[Hypothesis] = field(default_factory=list)
    stopped: Stop = "done"
    skipped: int = 0

    def note(self, budget: Budget) -> str:
        """The sentence the RCA carries when a budget ended the follow-ups, else ""."""
        if self.stopped == "done":
            return ""
        which = _BUDGET_NAMES[self.stopped].format(rounds=budget.rounds, max_tool_calls=budget.max_tool_calls,
                                                   time_s=budget.time_s or 0.0)
        return (f"Follow-ups ended by {which} after {self.rounds} round(s); {self.skipped} further follow-up "
                "call(s) were not made, so the analysis ranks the evidence gathered so far.")


# Called once per follow-up round with (round number, the follow-ups it runs, the ones the budget cut).
OnRound = Callable[[int, list[FollowUp], list[FollowUp]], None]
# Called after the playbooks, before each follow-up round and before the ranking, with a function
# that builds the evidence so far (called only when a reply needs it): acts on replies that reached
# the run meanwhile (actors.engine.thread_turns.Steering).
Steer = Callable[[Callable[[], EvidenceBundle]], Awaitable[None]]


def _tool_calls(fanout: SubAgentFanout) -> int:
    return sum(r.tool_count for r in fanout.results.values())


def _found(steps: list[FollowUp], report: str) -> list[str]:
    """Each step's summary from an offline sub-agent report (one ``tool: summary`` line per call, in
    call order); "" where the report has no line for it."""
    lines = iter(report.splitlines())
    out = []
    for f in steps:
        line = next((ln for ln in lines if ln.startswith(f"{f.tool}: ")), "")
        out.append(line[len(f.tool) + 2:].strip()[:300])
    return out


async def follow_up(fanout: SubAgentFanout, *, subagents: list[str], tools: dict[str, str], budget: Budget,
                    trigger: dict[str, Any], absorbed: list[dict[str, Any]], window_minutes: int,
                    metrics: Any = None, on_round: OnRound | None = None, steer: Steer | None = None,
                    clock: Callable[[], float] = time.monotonic, started: float | None = None) -> FollowUpLog:
    """Run follow-up rounds after the playbooks and say what they did.

    ``tools`` maps each tool the team may call to the sub-agent that owns it; only tools of enabled
    ``subagents`` are used. A round's follow-ups run at once, one sub-agent call per owning agent.
    Stops when no new hypothesis appears, after ``budget.rounds`` rounds, when the run has made
    ``budget.max_tool_calls`` calls (a round is trimmed to what is left), or when ``budget.time_s``
    seconds have passed since ``started`` on ``clock`` (checked before each round; default: now)."""
    import asyncio

    available = {tool for tool, agent in tools.items() if agent in subagents}
    started = clock() if started is None else started
    done: set[str] = set()
    log = FollowUpLog()

    def stop(n: int, why: Stop, left: list[FollowUp]) -> None:
        log.stopped, log.skipped = why, len(left)
        if on_round is not None:
            on_round(n, [], left)

    for n in range(1, budget.rounds + 2):
        if steer is not None:
            await steer(lambda: merged_bundle(fanout, trigger=trigger, absorbed=absorbed))
        bundle = merged_bundle(fanout, trigger=trigger, absorbed=absorbed)
        todo = derive(bundle, available=available, window_minutes=window_minutes, metrics=metrics, done=done)
        if not todo:
            break
        if n > budget.rounds:
            log.stopped, log.skipped = "rounds", len(todo)
            break
        if budget.time_s is not None and clock() - started >= budget.time_s:
            stop(n, "time", todo)
            break
        room = budget.max_tool_calls - _tool_calls(fanout)
        if room <= 0:
            stop(n, "tool_calls", todo)
            break
        todo, cut = todo[:room], todo[room:]
        done.update(f.key() for f in todo)
        if on_round is not None:
            on_round(n, todo, cut)
        by_agent: dict[str, list[FollowUp]] = {}
        for f in todo:
            by_agent.setdefault(tools[f.tool], []).append(f)
        results = await asyncio.gather(*(fanout.run_one(agent, mode="offline", steps=[(f.tool, f.args) for f in fs])
                                         for agent, fs in by_agent.items()))
        found = {id(f): text for fs, r in zip(by_agent.values(), results, strict=True)
                 for f, text in zip(fs, _found(fs, r.report), strict=True)}
        log.hypotheses += [Hypothesis(round=n, hypothesis=f.hypothesis, tool=f.tool, found=found[id(f)]) for f in todo]
        log.rounds = n
        if cut:
            log.stopped, log.skipped = "tool_calls", len(cut)
            break
    return log


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
                       now: datetime, on_round: OnRound | None = None, started: float | None = None,
                       clock: Callable[[], float] = time.monotonic,
                       steer: Steer | None = None) -> tuple[RCA, EvidenceBundle]:
    """Run the playbooks through ``fanout``, follow up on what they found, and rank it all.

    ``started`` is when the run began on ``clock`` (default: now), what the time budget counts from.
    ``steer`` acts on thread replies that reached the run meanwhile (after the playbooks, before each
    follow-up round and before the ranking).
    The RCA lists the hypotheses followed up and, when a budget ended them, says so in its notes."""
    import asyncio

    from actors.engine.agents.toolset import agent_of, allowed_tools
    from actors.tools.playbooks import window_minutes
    from config_service import TeamConfig

    if tool_count == 0 or not subagents:
        return no_tools_rca(), EvidenceBundle()
    started = clock() if started is None else started
    await fanout.run_all(subagents, mode="offline")
    if steer is not None:
        await steer(lambda: merged_bundle(fanout, trigger=trigger, absorbed=absorbed))
    cfg = TeamConfig(fanout.config)
    inv = cfg.effective.investigation
    budget = Budget(rounds=inv.followup_rounds, max_tool_calls=inv.max_tool_calls, time_s=inv.time_budget_s)
    log = FollowUpLog()
    if budget.rounds:
        tools = {name: agent_of(spec) for name, spec in allowed_tools(cfg).items()}
        log = await follow_up(fanout, subagents=subagents, tools=tools, budget=budget, trigger=trigger,
                              absorbed=absorbed, window_minutes=window_minutes(fanout.window),
                              metrics=cfg.metrics.asking(fanout.latency_statistics),
                              on_round=on_round, steer=steer, clock=clock, started=started)
    if steer is not None:
        await steer(lambda: merged_bundle(fanout, trigger=trigger, absorbed=absorbed))
    bundle = merged_bundle(fanout, trigger=trigger, absorbed=absorbed)
    rca = await asyncio.to_thread(rca_from_evidence, bundle, now=now, allowed=set(allowed_tools(cfg)))
    rca.hypotheses = log.hypotheses
    if note := log.note(budget):
        rca.notes.append(note)
    return rca, bundle


def merged_bundle(fanout: SubAgentFanout, *, trigger: dict[str, Any], absorbed: list[dict[str, Any]]) -> EvidenceBundle:
    """Everything the sub-agents found, with the alert from the trigger where tools set none (the
    call graph is merged by :func:`rca_from_evidence`, off the event loop)."""
    bundle = EvidenceBundle(alert=alert_from_trigger(trigger, trigger_services(trigger, absorbed)))
    return resolve(bundle.merge(fanout.evidence()))
