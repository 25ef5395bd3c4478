"""A run's MCP servers: which of the team's attachments a sub-agent gets, their tools, their calls.

* :func:`attachments_for` reads the run's config snapshot (``investigation.mcp_servers``) for one
  sub-agent. Only LLM sub-agents use MCP tools: a playbook names its calls in advance.
* :func:`list_attached` (on a ToolExecutor, which holds the egress policy and the database) checks
  each name against the platform allow-list again (an entry may have been removed since the config
  was written), connects and lists its tools. A server that is refused or down is reported as an
  error and left out; the sub-agent runs with the rest.
* :func:`spec_for_call` rebuilds the executable spec of one call from the allow-list entry, so a
  call never runs against a server that is no longer allow-listed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.tools.base import ToolContext, ToolError, ToolSpec
from actors.tools.mcp import McpTool, list_tools, mcp_spec
from config_service import TeamConfig
from incidentfox.mcp_allowlist import cipher_from_settings, load_allowlist

ALLOWLIST_TTL_S = 15.0
LIST_TIMEOUT_S = 30.0


@dataclass
class McpListing:
    tools: list[McpTool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def attachments_for(cfg: TeamConfig, agent: str) -> list[dict[str, Any]]:
    """The team's MCP attachments that give ``agent`` tools (plain dicts: they cross Ray calls)."""
    return [a.model_dump() for a in cfg.effective.investigation.mcp_servers
            if not a.subagents or agent in a.subagents]


class AllowlistCache:
    """The allow-list as one ToolExecutor sees it, re-read at most every ``ttl_s``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None, ttl_s: float = ALLOWLIST_TTL_S) -> None:
        self._sessions, self._ttl_s = sessions, ttl_s
        self._entries: dict[str, dict[str, Any]] = {}
        self._at = float("-inf")

    async def entries(self) -> dict[str, dict[str, Any]]:
        if self._sessions is None:
            return {}
        if time.monotonic() - self._at > self._ttl_s:
            async with self._sessions() as s:
                self._entries = await load_allowlist(s)
            self._at = time.monotonic()
        return self._entries


def _cipher(entry: dict[str, Any]) -> Any:
    return cipher_from_settings() if entry.get("env") else None


async def list_attached(allowlist: AllowlistCache, attachments: list[dict[str, Any]], ctx: ToolContext) -> McpListing:
    entries = await allowlist.entries()
    out = McpListing()
    for att in attachments:
        entry = entries.get(att["name"])
        if entry is None:
            out.errors.append(f"mcp:{att['name']}: not on the platform MCP allow-list")
            continue
        try:
            out.tools += await list_tools(entry, marks=att.get("tools") or {}, cipher=_cipher(entry), ctx=ctx,
                                          timeout_s=LIST_TIMEOUT_S)
        except ToolError as exc:
            out.errors.append(f"mcp:{att['name']}: {exc.reason}: {exc.message}")
    return out


async def spec_for_call(allowlist: AllowlistCache, decl: McpTool) -> ToolSpec | None:
    """The spec that runs ``decl``, or None when its server is not on the allow-list (any more)."""
    entry = (await allowlist.entries()).get(decl.server)
    return None if entry is None else mcp_spec(decl, entry, cipher=_cipher(entry))
