"""The offline planner: no model, the same tools and the same Ray fan-out, deterministic ranking.

Used when a team configures no LLM provider, and by the demo. Steps:

1. every enabled sub-agent runs its playbook (:func:`actors.tools.playbooks.playbook`) as its own
   Ray call, all at once; each playbook's tool calls run in parallel on the ToolExecutors;
2. the evidence each tool call returned is merged into one :class:`EvidenceBundle`, with the alert
   taken from the trigger (and any absorbed alerts' services), and its call graph merged
   (:func:`actors.ranking.topology.with_call_graph`: service-graph metrics, trace spans and
   Kubernetes services joined on one name per workload; the demo world's map arrives the same way,
   as the demo backend's answer to the service-graph query);
3. :func:`actors.ranking.rank` ranks suspects with its documented rules (recent change before the
   alert, crash loops, OOM kills, image pull errors, metric anomalies, new log signatures,
   failing dependencies), and :func:`actors.ranking.rca.build_rca` writes the ``RCA``.

A team with no usable tools still gets an RCA, which says that no tools are configured.
:func:`rca_from_evidence` is also what a deadline-cut LLM run falls back to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from actors.engine.fanout import SubAgentFanout
from incidentfox.contracts import RCA
from incidentfox.evidence import Alert, EvidenceBundle
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
    return Alert(title=str(trigger.get("title") or trigger.get("event_kind") or ""),
                 entity=services[0] if services else "",
                 started_at=parse_time(trigger.get("occurred_at")),
                 text=str(trigger.get("text") or "")[:4000])


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


async def plan_offline(fanout: SubAgentFanout, *, subagents: list[str], tool_count: int,
                       trigger: dict[str, Any], absorbed: list[dict[str, Any]],
                       now: datetime) -> tuple[RCA, EvidenceBundle]:
    """Run the playbooks through ``fanout`` and rank what they found."""
    import asyncio

    if tool_count == 0 or not subagents:
        return no_tools_rca(), EvidenceBundle()
    await fanout.run_all(subagents, mode="offline")
    bundle = merged_bundle(fanout, trigger=trigger, absorbed=absorbed)
    rca = await asyncio.to_thread(rca_from_evidence, bundle, now=now)
    return rca, bundle


def merged_bundle(fanout: SubAgentFanout, *, trigger: dict[str, Any], absorbed: list[dict[str, Any]]) -> EvidenceBundle:
    """Everything the sub-agents found, with the alert from the trigger where tools set none (the
    call graph is merged by :func:`rca_from_evidence`, off the event loop)."""
    bundle = EvidenceBundle(alert=alert_from_trigger(trigger, trigger_services(trigger, absorbed)))
    return bundle.merge(fanout.evidence())
