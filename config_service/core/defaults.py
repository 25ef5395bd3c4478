"""Built-in defaults: the bottom layer of every effective config (below the org).

Values match what later components assume when a team configures nothing: the offline planner (no
``llm.provider``), a 300 s run deadline, a 10-minute alert correlation window, shared deployment,
2-hour sandbox sessions, at most 10 open per team. ``locked_paths`` is not a layer value; see ``services.config``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

DEFAULT_CONFIG: MappingProxyType[str, Any] = MappingProxyType({
    "llm": {},
    "slack": {},
    "routing": {},
    "integrations": {},
    "tools": {},
    "subagents": {},
    "investigation": {"deadline_s": 300, "correlation_window_s": 600, "max_turns": 20},
    "deployment": {"mode": "shared", "resources": {}},
    "quotas": {"max_concurrent_runs": 5},
    "schedules": [],
    "sandbox": {"ttl_s": 7200, "mcp_servers": [], "max_open_sessions": 10},
})
