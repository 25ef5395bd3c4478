"""The tools an agent may call: the team's allow-list, and each tool as an SDK ``FunctionTool``.

* :func:`allowed_tools` is the team's allow-list: the registry's ``tools_for(config)`` (tools whose
  integration the team configured, or the demo world), narrowed by the team's ``tools: {id: bool}``
  switches. It is computed from the run's config snapshot, outside any prompt, and the
  ToolExecutor checks it again on every call.
* :func:`agent_of` maps a tool's category to the sub-agent that owns it.
* :func:`function_tools` turns specs into ``FunctionTool``s whose invocation is a ``dispatch``
  callable (a Ray call to a ToolExecutor in production). What the model sees back is the tool's
  result wrapped as untrusted data.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from actors.engine.agents.untrusted import as_data
from actors.tools.base import ToolSpec
from config_service import TeamConfig
from incidentfox.contracts import SUBAGENTS

if TYPE_CHECKING:   # the SDK is imported where tools are built: the offline planner never loads it
    from agents import FunctionTool
    from agents.tool_context import ToolContext as SDKToolContext

CATEGORY_AGENT = {"kubernetes": "kubernetes", "metrics": "metrics", "observability": "metrics",
                  "traces": "metrics", "logs": "logs", "slack": "logs", "changes": "changes", "cloud": "cloud",
                  "knowledge": "knowledge"}

if TYPE_CHECKING:   # the SDK is imported where FunctionTools are built: the offline path never needs it
    from agents import FunctionTool
    from agents.tool_context import ToolContext as SDKToolContext

Dispatch = Callable[[str, dict[str, Any]], Awaitable[Any]]   # (tool, args) → ToolOutcome


def agent_of(spec: ToolSpec) -> str:
    return CATEGORY_AGENT.get(spec.category, "metrics")


def allowed_tools(cfg: TeamConfig) -> dict[str, ToolSpec]:
    """Name → spec of every tool this team's runs may call."""
    from actors.tools.registry import tools_for

    specs = tools_for(cfg.doc)
    switches = cfg.tool_switches
    out = {}
    for spec in specs:
        if switches.get(spec.name, True):
            out[spec.name] = spec
    return out


def tools_by_agent(allowed: dict[str, ToolSpec]) -> dict[str, list[ToolSpec]]:
    grouped: dict[str, list[ToolSpec]] = {name: [] for name in SUBAGENTS}
    for spec in allowed.values():
        grouped.setdefault(agent_of(spec), []).append(spec)
    return grouped


def render_outcome(tool: str, outcome: Any) -> str:
    """The model-visible text for a tool result: status and data, delimited as untrusted."""
    result = outcome.result
    payload = {"ok": result.ok, "summary": result.summary}
    if result.ok:
        payload["data"] = result.data
    else:
        payload["error"] = result.error
        payload["message"] = result.message
    return as_data(f"tool:{tool}", payload)


def function_tools(specs: list[ToolSpec], dispatch: Dispatch) -> list[FunctionTool]:
    from agents import FunctionTool

    tools = []
    for spec in specs:
        async def invoke(_ctx: SDKToolContext[Any], raw: str, _name: str = spec.name) -> str:
            try:
                args = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                return as_data(f"tool:{_name}", {"ok": False, "error": "invalid_arguments",
                                                 "message": "arguments were not valid JSON"})
            outcome = await dispatch(_name, args if isinstance(args, dict) else {})
            return render_outcome(_name, outcome)

        tools.append(FunctionTool(name=spec.name, description=spec.description,
                                  params_json_schema=spec.parameters, on_invoke_tool=invoke,
                                  # an MCP server's schema is its own, not written for strict mode
                                  strict_json_schema=spec.integration != "mcp"))
    return tools
