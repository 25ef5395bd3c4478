"""MCP servers for sandbox sessions, from a platform allow-list only.

* The allow-list (table ``sandbox_mcp_allowlist``) is written by the global admin alone, through
  ``PUT /api/v1/sandbox/mcp-allowlist``. An entry names a server and says how to reach it: a stdio
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

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.sandbox.approvals import is_read_only
from actors.sandbox.errors import McpNotAllowed, SandboxError
from actors.sandbox.tools import BUILTIN_NAMES, ToolOutcome
from incidentfox.egress import refusal_in

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpServerSpec(BaseModel):
    """One allow-list entry as the global admin writes it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_RE)
    transport: Literal["stdio", "http"]
    command: list[str] = Field(default_factory=list, max_length=64)
    url: str | None = Field(default=None, max_length=1024)
    env: dict[str, str] = Field(default_factory=dict, max_length=64)
    description: str = Field(default="", max_length=2000)
    tool_timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _shape(self) -> McpServerSpec:
        if self.transport == "stdio" and (not self.command or self.url):
            raise ValueError("a stdio server needs `command` (argv) and no `url`")
        if self.transport == "http" and (self.command or not self.url or
                                         not self.url.startswith(("http://", "https://"))):
            raise ValueError("an http server needs an http(s) `url` and no `command`")
        return self


def cipher_from_settings(settings: Any = None) -> MultiFernet | None:
    """The platform's Fernet keys (``INCIDENTFOX_SECRET_KEY``, newest first), or None if unset."""
    if settings is None:
        from incidentfox.settings import get_settings

        settings = get_settings()
    if settings.secret_key is None:
        return None
    keys = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys]) if keys else None


def encrypt_env(env: dict[str, str], cipher: MultiFernet | None) -> dict[str, str]:
    if env and cipher is None:
        raise SandboxError("MCP server env values need INCIDENTFOX_SECRET_KEY to be encrypted",
                           code="secret_key_missing", status=400)
    return {k: cipher.encrypt(v.encode()).decode() for k, v in env.items()} if env else {}


def decrypt_env(env: dict[str, str], cipher: MultiFernet | None) -> dict[str, str]:
    if not env:
        return {}
    if cipher is None:
        raise SandboxError("cannot decrypt MCP server env: INCIDENTFOX_SECRET_KEY is not set",
                           code="secret_key_missing", status=500)
    try:
        return {k: cipher.decrypt(v.encode()).decode() for k, v in env.items()}
    except InvalidToken:
        raise SandboxError("an MCP server env value does not decrypt with the current keys",
                           code="secret_undecryptable", status=500) from None


def public_view(entry: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """An entry as the API shows it: env values never; command/url only to the global admin."""
    view = {"name": entry["name"], "transport": entry["transport"], "description": entry.get("description", ""),
            "tool_timeout_s": entry.get("tool_timeout_s", 30.0)}
    if full:
        view.update(command=entry.get("command") or [], url=entry.get("url"),
                    env_keys=sorted((entry.get("env") or {}).keys()))
    return view


def select_servers(names: list[str], allowlist: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The allow-list entries a team picked, in its order. Unknown names are refused, so a config
    written before an entry was removed fails loudly instead of silently losing tools."""
    missing = [n for n in names if n not in allowlist]
    if missing:
        raise McpNotAllowed("MCP servers not on the platform allow-list: " + ", ".join(missing),
                            details={"servers": missing})
    return [allowlist[n] for n in dict.fromkeys(names)]


def tool_name(server: str, tool: str) -> str:
    return _TOOL_NAME.sub("_", f"mcp__{server}__{tool}")[:128]


def _result_text(result: Any) -> str:
    parts = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        parts.append(text if text is not None else json.dumps(block.model_dump(mode="json"))[:2000])
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts) or "(no content)"


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

    def add(self, server: str, client: Any, tool: Any, timeout_s: float) -> None:
        name = tool_name(server, tool.name)
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
                return ToolOutcome(f"MCP server {server} failed: {type(exc).__name__}: {str(exc)[:300]}", True)
            return ToolOutcome(_result_text(res)[:30_000], bool(getattr(res, "is_error", False)))

        self.handlers[name] = call


async def _http_target(stack: AsyncExitStack, url: str) -> Any:
    """A streamable-HTTP transport for ``url`` whose HTTP client goes through the egress policy
    (every request and redirect checked, the address pinned): the server runs on a tenant's behalf."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from actors.sandbox.agent import shared_tls_context
    from incidentfox.egress.transport import egress_client

    # The MCP SDK's own defaults: 30 s, and 300 s to read (a server may hold a stream open).
    http = egress_client(httpx2, timeout=httpx2.Timeout(30.0, read=300.0), verify=shared_tls_context())
    await stack.enter_async_context(http)
    return streamable_http_client(url, http_client=http)


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

    from mcp import Client, StdioServerParameters

    async with AsyncExitStack() as stack:
        for e in entries:
            if e["transport"] == "stdio":
                target: Any = StdioServerParameters(command=e["command"][0], args=list(e["command"][1:]),
                                                    env=decrypt_env(e.get("env") or {}, cipher) or None)
            else:
                target = await _http_target(stack, e["url"])
            client = Client(target, read_timeout_seconds=float(e.get("tool_timeout_s") or 30.0))
            try:
                async with asyncio.timeout(connect_timeout_s):
                    await stack.enter_async_context(client)
                    listing = await client.list_tools()
            except Exception as exc:  # noqa: BLE001 - reported with the server's name, never swallowed
                if (refused := refusal_in(exc)) is not None:
                    raise SandboxError(f"MCP server {e['name']} is refused by the egress policy: {refused}",
                                       code="egress_refused", status=403) from None
                raise SandboxError(f"MCP server {e['name']} is unavailable: {type(exc).__name__}: {str(exc)[:200]}",
                                   code="mcp_unavailable", status=502) from None
            for tool in listing.tools:
                toolset.add(e["name"], client, tool, float(e.get("tool_timeout_s") or 30.0))
        yield toolset
