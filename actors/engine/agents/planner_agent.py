"""The planner: an openai-agents ``Agent`` that delegates to the sub-agents and writes the RCA.

Exports :func:`planner_agent` and its output model :class:`PlannerReport`. The planner's tools are
the enabled sub-agents (``ask_<name>_agent``), each executed as its own Ray call; it may call several
in one turn (``parallel_tool_calls``), and the SDK runs those concurrently. The trigger (alert text,
Slack message, absorbed alerts) is given as untrusted data. :func:`report_to_rca` turns the report
into the shared :class:`incidentfox.contracts.RCA`.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, AgentOutputSchema, FunctionTool, ModelSettings
from pydantic import BaseModel, ConfigDict

from actors.engine.agents.untrusted import as_data, with_notice
from config_service import AgentSettings
from incidentfox.contracts import RCA, Evidence, RootCause, TimelineEntry

DEFAULT_INSTRUCTIONS = (
    "You are the lead SRE investigating a production incident. Delegate evidence gathering to your "
    "specialist tools: call every relevant specialist in the same turn so they work in parallel, then "
    "follow up only where the evidence is unclear. Finally answer with a root-cause analysis: a short "
    "summary, the most likely root causes (entity, description, confidence 0-1, and the exact quoted "
    "evidence lines), affected services, a timeline, and recommended actions. If nothing is abnormal, "
    "say there is no incident and name no root cause."
)


class ReportCause(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: str
    description: str
    confidence: float
    evidence: list[str]


class PlannerReport(BaseModel):
    """What the planner must answer (strict JSON schema: every field required)."""

    model_config = ConfigDict(extra="forbid")
    summary: str
    root_causes: list[ReportCause]
    affected_services: list[str]
    timeline: list[str]
    recommended_actions: list[str]
    no_incident: bool


def planner_agent(*, settings: AgentSettings, tools: list[FunctionTool], model: Any) -> Agent:
    return Agent(
        name="planner",
        instructions=with_notice(settings.instructions or DEFAULT_INSTRUCTIONS),
        tools=tools,
        model=model,
        model_settings=ModelSettings(parallel_tool_calls=True) if tools else ModelSettings(),
        output_type=AgentOutputSchema(PlannerReport, strict_json_schema=True),
    )


def planner_input(*, trigger: dict[str, Any], absorbed: list[dict[str, Any]], subagents: list[str]) -> str:
    """The planner's first message: the task in our words, the trigger as untrusted data."""
    trig = {k: trigger.get(k) for k in ("source", "event_kind", "title", "text", "services", "fingerprint",
                                         "links", "occurred_at") if trigger.get(k)}
    parts = ["Investigate this incident trigger and produce the root-cause analysis.",
             f"Specialists available: {', '.join(subagents) or 'none (no tools are configured)'}.",
             as_data("trigger", trig)]
    if absorbed:
        parts.append("Further alerts that arrived for the same incident:")
        parts.append(as_data("absorbed_alerts", absorbed))
    return "\n\n".join(parts)


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, float(x)))


def report_to_rca(report: PlannerReport) -> RCA:
    causes = [] if report.no_incident else [
        RootCause(entity=c.entity, description=c.description, confidence=_clamp(c.confidence),
                  evidence=[Evidence(kind="note", source="planner", quote=q) for q in c.evidence])
        for c in report.root_causes]
    return RCA(summary=report.summary, root_causes=causes, affected_services=report.affected_services,
               timeline=[TimelineEntry(event=t) for t in report.timeline],
               recommended_actions=report.recommended_actions, no_incident=report.no_incident)
