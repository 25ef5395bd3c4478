"""MCP servers for sandbox sessions, from a platform allow-list only.

* The allow-list is owned by :mod:`incidentfox.mcp_allowlist` (one list for sandbox sessions and
  investigations), written by the global admin alone, through ``PUT /api/v1/sandbox/mcp-allowlist``. An entry names a server and says how to reach it: a stdio
  ``command`` (argv) or a streamable-HTTP ``url``, plus optional ``env`` (encrypted at rest with the
  platform's Fernet keys, never returned by the API).
* A team's config (``sandbox.mcp_servers: ["name", …]``) only picks entries by name. A name that is
  not on the list is refused (:class:`McpNotAllowed`); a tenant can never supply a command or URL.
* Per turn, :func:`open_mcp_tools` connects to the session's servers (the ``mcp`` package's
  ``Client``), lists their tools and exposes them to the model as ``mcp__<server>__<tool>``; the
  connections close when the turn ends (or is interrupted). Tools that may change things wait for
  an approver before they run (:mod:`actors.sandbox.approvals`). Stdio servers run as platform
  processes, which is why only the global admin may choose their commands.
* HTTP servers are reached through the egress policy like any call made for a tenant: an entry
  whose URL is internal needs the egress allow-list too (``docs/security.md``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from cryptography.fernet import MultiFernet

from actors.sandbox.errors import McpNotAllowed, SandboxError
from actors.sandbox.tools import BUILTIN_NAMES, ToolOutcome
from incidentfox.egress import refusal_in
from incidentfox.mcp_allowlist import (  # the allow-list's one owner; re-exported for the sandbox API
    McpServerSpec,
    cipher_from_settings,
    decrypt_env,
    encrypt_env,
    is_read_only,
    open_client,
    public_view,
    result_text,
    tool_name,
    unknown_names,
)

__all__ = ["McpServerSpec", "McpToolset", "cipher_from_settings", "encrypt_env", "open_mcp_tools",
           "public_view", "select_servers", "tool_name"]


def select_servers(names: list[str], allowlist: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The allow-list entries a team picked, in its order. Unknown names are refused, so a config
    written before an entry was removed fails loudly instead of silently losing tools."""
    missing = unknown_names(names, allowlist)
    if missing:
        raise McpNotAllowed("MCP servers not on the platform allow-list: " + ", ".join(missing),
                            details={"servers": missing})
    return [allowlist[n] for n in dict.fromkeys(names)]


def mask_text(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (longest first) replaced by ``***``. Local, not
    :func:`actors.tools.execute.mask_text`: a sandbox host never loads httpx."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


Gate = Callable[[str, dict[str, Any]], Awaitable[str | None]]   # (tool, input) → refusal or None


class McpToolset:
    """The tools of the connected servers: Anthropic tool specs and a handler per tool. A tool that
    is not read-only (:func:`is_read_only`) asks ``gate`` first and runs only if it says None."""

    def __init__(self, *, read_only: list[str] | None = None, gate: Gate | None = None) -> None:
        self.specs: list[dict[str, Any]] = []
        self.handlers: dict[str, Any] = {}
        self.mutating: set[str] = set()
        self.read_only = list(read_only or [])
        self.gate = gate

    def add(self, server: str, client: Any, tool: Any, timeout_s: float, secrets: list[str] | None = None) -> None:
        """Expose ``tool``. ``secrets``: the entry's env values, masked in whatever the call returns
        (the server's own credentials are the platform's, never the tenant's to read)."""
        name = tool_name(server, tool.name)
        hidden = list(secrets or [])
        if name in BUILTIN_NAMES or name in self.handlers:
            return
        schema = dict(tool.input_schema or {"type": "object"})
        schema.setdefault("type", "object")
        self.specs.append({"name": name, "description": (tool.description or f"{tool.name} ({server})")[:4000],
                           "input_schema": schema})

        mutating = not is_read_only(server, tool.name, getattr(tool, "annotations", None), self.read_only)
        if mutating:
            self.mutating.add(name)

        async def call(args: dict[str, Any], _tool: str = tool.name) -> ToolOutcome:
            if mutating:
                if self.gate is None:
                    return ToolOutcome(f"{name} may change things and needs an approval, which this "
                                       "session cannot ask for; it did not run", True)
                refusal = await self.gate(name, args)
                if refusal is not None:
                    return ToolOutcome(refusal, True)
            try:
                res = await client.call_tool(_tool, args, read_timeout_seconds=timeout_s)
            except Exception as exc:  # noqa: BLE001 - any server/transport failure goes back to the model
                detail = mask_text(str(exc), hidden)[:300]
                return ToolOutcome(f"MCP server {server} failed: {type(exc).__name__}: {detail}", True)
            return ToolOutcome(mask_text(result_text(res), hidden), bool(getattr(res, "is_error", False)))

        self.handlers[name] = call


@asynccontextmanager
async def open_mcp_tools(entries: list[dict[str, Any]], *, cipher: MultiFernet | None,
                         connect_timeout_s: float = 30.0, read_only: list[str] | None = None,
                         gate: Gate | None = None) -> AsyncIterator[McpToolset]:
    """Connect to each entry (already decrypted env is computed here), yield their tools, close all
    connections on exit. A server that fails to start is an error: the turn reports it. Mutating
    tools ask ``gate`` before each call (``read_only``: the team's ``sandbox.mcp_read_only``)."""
    toolset = McpToolset(read_only=read_only, gate=gate)
    if not entries:  # the common case: no MCP, and no import of the mcp package on the turn's path
        yield toolset
        return
    import asyncio

    from actors.sandbox.agent import shared_tls_context

    async with AsyncExitStack() as stack:
        for e in entries:
            secrets = [v for v in decrypt_env(e.get("env") or {}, cipher).values() if len(v) >= 6]
            client = await open_client(stack, e, cipher=cipher, verify=shared_tls_context())
            try:
                async with asyncio.timeout(connect_timeout_s):
                    await stack.enter_async_context(client)
                    listing = await client.list_tools()
            except Exception as exc:  # noqa: BLE001 - reported with the server's name, never swallowed
                if (refused := refusal_in(exc)) is not None:
                    raise SandboxError(f"MCP server {e['name']} is refused by the egress policy: {refused}",
                                       code="egress_refused", status=403) from None
                raise SandboxError(f"MCP server {e['name']} is unavailable: {type(exc).__name__}: "
                                   f"{mask_text(str(exc), secrets)[:200]}",
                                   code="mcp_unavailable", status=502) from None
            for tool in listing.tools:
                toolset.add(e["name"], client, tool, float(e.get("tool_timeout_s") or 30.0), secrets)
        yield toolset
