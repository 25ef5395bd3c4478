"""Built-in defaults: the bottom layer of every effective config (below the org).

The ONE set of defaults. The typed model (:mod:`config_service.team_config`) takes every default
it has from here (a test checks that parsing ``{}`` gives exactly this document), so the engine,
the gateway, the scheduler and the sandbox all see the same numbers a team that configures
nothing gets: the offline planner (no ``llm.provider``), a 300 s run deadline, a 10-minute alert
correlation window, the ``default`` request-metric names
(``http_requests_total`` by ``service``) with Tempo's service graph, shared deployment, 5 concurrent runs, nobody on the ``access`` lists, at most 10 open sandbox sessions per team.

``sandbox.ttl_s`` is deliberately absent: a team that sets none gets the platform's
``INCIDENTFOX_SANDBOX_TTL_S``. ``locked_paths`` is not a layer value; see ``services.config``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

DEFAULT_CONFIG: MappingProxyType[str, Any] = MappingProxyType({
    "llm": {"request_timeout_s": 60, "max_tokens": 4096},
    "slack": {},
    "routing": {},
    "integrations": {},
    "tools": {},
    "subagents": {},
    "agents": {},
    "investigation": {"deadline_s": 300, "correlation_window_s": 600, "max_turns": 20, "planner": "auto",
                      "followup_rounds": 3, "max_tool_calls": 60, "time_budget_s": 120, "mcp_servers": [],
                      "metrics": {"requests": "default", "service_graph": "tempo"}},
    "deployment": {"mode": "shared", "resources": {}},
    "quotas": {"max_concurrent_runs": 5},
    "schedules": [],
    "sandbox": {"mcp_servers": [], "network": False, "max_open_sessions": 10, "mcp_read_only": []},
    "access": {"approvers": [], "sandbox_users": [], "responders": [], "non_responder_replies": "refuse",
               "api_approvals": False, "github_approvers": []},
    "knowledge": {"enabled": True, "top_k": 5, "past_incidents": True, "summaries": "auto",
                  "rebuild_interval_s": 60},
})

# The engine's model when a team sets ``llm.provider`` but no ``llm.model``. Not a config layer
# value: the sandbox agent needs an explicit model, and a default in the layer would hide that.
ENGINE_DEFAULT_MODEL = "gpt-4.1"
