"""The specialist sub-agents (kubernetes, metrics, logs, changes, cloud, and knowledge: the team's
runbooks and past incidents, docs/knowledge.md) as openai-agents ``Agent``s.

One factory builds all six: they differ only in instructions and in the tools they own (by tool
category, :mod:`actors.engine.agents.toolset`). Each runs as its own Ray call on a sub-agent worker; the
planner sees each one as a tool (:func:`planner_tool`, built with ``Agent.as_tool`` so name, schema
and description are the SDK's, with the invocation routed to that Ray call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from agents import Agent, FunctionTool, ModelSettings
from agents.tool_context import ToolContext as SDKToolContext

from actors.engine.agents.untrusted import with_notice
from config_service import AgentSettings

DESCRIPTIONS: dict[str, str] = {
    "kubernetes": "Inspects Kubernetes: pods, events, container logs, deployments and rollout history, nodes. "
                  "Finds crash loops, OOM kills, image pull errors, failed scheduling and bad rollouts.",
    "metrics": "Queries metrics (Prometheus, Datadog, Grafana, CloudWatch) and traces (Tempo, Jaeger, X-Ray): "
               "error rates, latency, saturation, slow and failing spans, which service calls which; finds "
               "anomalies and when they started.",
    "logs": "Searches logs (Loki, Coralogix, Elasticsearch/OpenSearch, Slack thread history) for new error "
            "signatures and their first occurrence.",
    "changes": "Finds recent changes: deploys, commits, pull requests, workflow runs and config changes "
               "shortly before the incident.",
    "cloud": "Checks AWS: CloudWatch metrics and logs, ECS services, RDS and EC2 status.",
    "knowledge": "Searches the team's runbooks, postmortems and past incidents: the documented diagnosis "
                 "and mitigation for this kind of problem, and whether it was seen before and what fixed it.",
}

DEFAULT_INSTRUCTIONS: dict[str, str] = {
    name: (f"You are the {name} specialist of an SRE investigation. {desc} "
           "Call your tools (several at once when they are independent) to gather evidence for the "
           "question you are given, then answer with a short report: what you checked, what is "
           "abnormal (quote the exact metric value, event or log line), when it started, and which "
           "entity (namespace/kind/name or service) you suspect. Say plainly when nothing is abnormal.")
    for name, desc in DESCRIPTIONS.items()
}


def build_subagent(name: str, *, settings: AgentSettings, tools: list[FunctionTool], model: Any) -> Agent:
    """The ``Agent`` for sub-agent ``name`` with the team's instructions/model and its allowed tools."""
    instructions = settings.instructions or DEFAULT_INSTRUCTIONS[name]
    return Agent(name=f"{name}_agent", instructions=with_notice(instructions), tools=tools, model=model,
                 model_settings=ModelSettings(parallel_tool_calls=True) if tools else ModelSettings())


def planner_tool(name: str, *, settings: AgentSettings,
                 invoke: Callable[[str, str], Awaitable[str]]) -> FunctionTool:
    """Sub-agent ``name`` as a planner tool: ``Agent.as_tool``'s declaration, executed by ``invoke``
    (``(sub-agent name, question) → report``), which runs the sub-agent as its own Ray call."""
    shell = Agent(name=f"{name}_agent", instructions=settings.instructions or DEFAULT_INSTRUCTIONS[name])
    declared = shell.as_tool(tool_name=f"ask_{name}_agent",
                             tool_description=f"Delegate to the {name} specialist. {DESCRIPTIONS[name]} "
                                              "Pass a precise question.")

    async def on_invoke(_ctx: SDKToolContext[Any], raw: str) -> str:
        import json

        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = {}
        question = args.get("input") if isinstance(args, dict) else None
        return await invoke(name, str(question or raw))

    return replace(declared, on_invoke_tool=on_invoke)
