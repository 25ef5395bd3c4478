"""MCP servers as investigation tools: a team's allow-listed servers, listed and called per run.

A team attaches servers from the platform's allow-list (:mod:`incidentfox.mcp_allowlist`, the list
sandbox sessions use too) to its sub-agents::

    investigation:
      mcp_servers:
        - name: runbooks                      # an allow-list entry; unknown names refused at write
          subagents: [logs]                   # empty: every sub-agent
          tools: {search: read_only, restart_job: mutating}

* :func:`list_tools` connects to one entry, asks ``tools/list`` and returns each tool as an
  :class:`McpTool` declaration named ``mcp__<server>__<tool>``, marked mutating or read-only
  (:func:`classify`).
* :func:`declared_spec` is the declaration as the agent sees it (a :class:`ToolSpec` like a
  built-in one); :func:`mcp_spec` is the same with a backend that connects and calls ``tools/call``.
  Calls run through :func:`actors.tools.execute.execute` on a ToolExecutor, so they get the same
  per-attempt timeout, approval gate (mutating), size bounds and masking as built-in tools, and HTTP
  servers are reached through the run's egress policy. A call opens its own connection (stdio: its
  own server process) and closes it: nothing is held between calls or runs. No retries: a tool
  that may change things is never sent twice.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.execute import mask_text
from incidentfox.egress import refusal_in
from incidentfox.mcp_allowlist import (
    McpSecretError,
    decrypt_env,
    is_read_only,
    open_client,
    result_text,
    tool_name,
)

INTEGRATION = "mcp"
MAX_TOOLS_PER_SERVER = 64


@dataclass(frozen=True)
class McpTool:
    """One MCP tool as declared to an agent (plain data: crosses Ray calls)."""

    name: str              # mcp__<server>__<tool>
    server: str
    tool: str
    description: str
    parameters: dict[str, Any]
    mutating: bool
    timeout_s: float


def classify(server: str, tool: str, annotations: Any, marks: dict[str, str]) -> bool:
    """True when a call needs approval: the team's ``mutating`` mark, else the server's hints
    (:func:`incidentfox.mcp_allowlist.is_read_only`, the team's ``read_only`` mark as its list)."""
    mark = marks.get(tool)
    if mark == "mutating":
        return True
    return not is_read_only(server, tool, annotations, [f"{server}/{tool}"] if mark == "read_only" else [])


def _schema(raw: Any) -> dict[str, Any]:
    schema = dict(raw or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _failure(entry: dict[str, Any], exc: BaseException, secrets: list[str]) -> ToolError:
    """The typed error for a failed connection or call. A server's error text may echo its own
    credentials (the allow-list entry's env, which no tenant ever sees): masked like a result."""
    if (refused := refusal_in(exc)) is not None:
        return ToolError("egress_refused", f"MCP server {entry['name']} is refused by the egress policy: {refused}")
    detail = mask_text(str(exc), secrets)[:200]
    return ToolError("unavailable", f"MCP server {entry['name']} failed: {type(exc).__name__}: {detail}")


def _server_secrets(entry: dict[str, Any], cipher: Any) -> list[str]:
    """The entry's decrypted env values worth masking (``McpSecretError`` when they do not decrypt)."""
    return [v for v in decrypt_env(entry.get("env") or {}, cipher).values() if len(v) >= 6]


async def list_tools(entry: dict[str, Any], *, marks: dict[str, str], cipher: Any, ctx: ToolContext,
                     timeout_s: float = 30.0) -> list[McpTool]:
    """The tools of allow-list ``entry`` (``tools/list``), bounded by ``timeout_s``; ``ToolError``
    (``egress_refused`` | ``unavailable``) when the server cannot be reached."""
    timeout = float(entry.get("tool_timeout_s") or 30.0)
    try:
        secrets = _server_secrets(entry, cipher)
    except McpSecretError as exc:
        raise ToolError("not_configured", f"MCP server {entry['name']}: {exc}") from None
    try:
        async with asyncio.timeout(timeout_s), AsyncExitStack() as stack:
            client = await open_client(stack, entry, cipher=cipher, policy=ctx.egress, resolver=ctx.resolver)
            await stack.enter_async_context(client)
            listing = await client.list_tools()
    except ToolError:
        raise
    except Exception as exc:  # noqa: BLE001 - any transport/server failure becomes a typed ToolError
        raise _failure(entry, exc, [*ctx.secret_values(), *secrets]) from None
    tools = []
    for t in listing.tools[:MAX_TOOLS_PER_SERVER]:
        tools.append(McpTool(name=tool_name(entry["name"], t.name), server=entry["name"], tool=t.name,
                             description=(t.description or f"{t.name} (MCP server {entry['name']})")[:4000],
                             parameters=_schema(t.input_schema), timeout_s=timeout,
                             mutating=classify(entry["name"], t.name, getattr(t, "annotations", None), marks)))
    return tools


async def _not_here(_args: dict[str, Any], _ctx: ToolContext) -> ToolResult:
    raise ToolError("not_configured", "MCP tools run on a ToolExecutor")


def declared_spec(decl: McpTool, fn: Any = _not_here) -> ToolSpec:
    """``decl`` as a :class:`ToolSpec` (the agent's declaration; ``fn`` runs it)."""
    return ToolSpec(name=decl.name, description=f"[MCP {decl.server}] {decl.description}",
                    parameters=decl.parameters, category="observability", integration=INTEGRATION, fn=fn,
                    mutating=decl.mutating, timeout_s=decl.timeout_s, retries=0)


def mcp_spec(decl: McpTool, entry: dict[str, Any], *, cipher: Any) -> ToolSpec:
    """``decl`` with a backend that calls ``entry``'s tool (one connection per call)."""

    async def call(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            server_secrets = _server_secrets(entry, cipher)
        except McpSecretError as exc:
            raise ToolError("not_configured", f"MCP server {entry['name']}: {exc}") from None
        try:
            async with AsyncExitStack() as stack:
                client = await open_client(stack, entry, cipher=cipher, policy=ctx.egress, resolver=ctx.resolver)
                await stack.enter_async_context(client)
                res = await client.call_tool(decl.tool, {k: v for k, v in args.items() if v is not None})
        except (ToolError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - typed below, never swallowed
            raise _failure(entry, exc, [*ctx.secret_values(), *server_secrets]) from None
        # The model never sees a credential: the team's, or the server's own env values echoed back.
        text = mask_text(result_text(res), [*ctx.secret_values(), *server_secrets])
        if getattr(res, "is_error", False):
            raise ToolError("upstream_error", f"{decl.name}: {text[:500]}")
        return ToolResult.success({"text": text}, summary=f"{decl.name}: {text[:160]}")

    return declared_spec(decl, call)
