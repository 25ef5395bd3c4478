"""The platform's MCP allow-list: the one list of MCP servers any tenant may use, and its one owner.

Sandbox sessions (``sandbox.mcp_servers``) and investigations (``investigation.mcp_servers``) both
pick servers from this list by name; neither may name a command or a URL of its own.

* **Owner.** The global admin alone writes the list (``PUT /api/v1/sandbox/mcp-allowlist``). An
  entry (:class:`McpServerSpec`) names a server and says how to reach it: a stdio ``command`` (argv,
  run as a platform process, which is why only the global admin may choose it) or a streamable-HTTP
  ``url``, plus optional ``env`` (Fernet-encrypted at rest with the platform's keys, never returned).
* **Storage.** Table ``sandbox_mcp_allowlist`` (:class:`McpServerRow`; the name predates its second
  reader). :func:`load_allowlist` reads it as entry dicts; :func:`unknown_names` is the one check a
  team's picks get, at config write and again at run time.
* **Read-only or mutating.** :func:`is_read_only` classifies a tool: the server's annotations win
  when they say anything, else the team's declaration, else mutating (approval needed).
* **Connecting.** :func:`open_client` opens the ``mcp`` package's ``Client`` for an entry: stdio with
  the decrypted env, HTTP through the egress policy (every request and redirect checked).
"""

from __future__ import annotations

import fnmatch
import json
import re
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db import Base, utcnow
from incidentfox.errors import IncidentFoxError

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
MAX_RESULT_CHARS = 30_000


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


class McpServerRow(Base):
    __tablename__ = "sandbox_mcp_allowlist"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    transport: Mapped[str] = mapped_column(String(16))                   # stdio | http
    command: Mapped[list[str]] = mapped_column(default=list)             # argv, stdio only
    url: Mapped[str | None] = mapped_column(String(1024))                # http only
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)            # name -> Fernet token
    description: Mapped[str] = mapped_column(Text, default="")
    tool_timeout_s: Mapped[float] = mapped_column(default=30.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class McpSecretError(IncidentFoxError):
    """The platform's keys are missing or do not decrypt an entry's env."""


def entry_of(row: McpServerRow) -> dict[str, Any]:
    return {"name": row.name, "transport": row.transport, "command": list(row.command or []), "url": row.url,
            "env": dict(row.env or {}), "description": row.description or "",
            "tool_timeout_s": float(row.tool_timeout_s or 30.0)}


async def load_allowlist(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Name → entry (env still encrypted) of every allow-listed server."""
    rows = await session.scalars(select(McpServerRow).order_by(McpServerRow.name))
    return {r.name: entry_of(r) for r in rows}


def unknown_names(names: list[str], allowlist: dict[str, Any]) -> list[str]:
    """The names not on the allow-list, in the order given (empty: all known)."""
    return [n for n in dict.fromkeys(names) if n not in allowlist]


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
        raise McpSecretError("MCP server env values need INCIDENTFOX_SECRET_KEY to be encrypted",
                             code="secret_key_missing", status=400)
    return {k: cipher.encrypt(v.encode()).decode() for k, v in env.items()} if env else {}


def decrypt_env(env: dict[str, str], cipher: MultiFernet | None) -> dict[str, str]:
    if not env:
        return {}
    if cipher is None:
        raise McpSecretError("cannot decrypt MCP server env: INCIDENTFOX_SECRET_KEY is not set",
                             code="secret_key_missing", status=500)
    try:
        return {k: cipher.decrypt(v.encode()).decode() for k, v in env.items()}
    except InvalidToken:
        raise McpSecretError("an MCP server env value does not decrypt with the current keys",
                             code="secret_undecryptable", status=500) from None


def public_view(entry: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """An entry as the API shows it: env values never; command/url only to the global admin."""
    view = {"name": entry["name"], "transport": entry["transport"], "description": entry.get("description", ""),
            "tool_timeout_s": entry.get("tool_timeout_s", 30.0)}
    if full:
        view.update(command=entry.get("command") or [], url=entry.get("url"),
                    env_keys=sorted((entry.get("env") or {}).keys()))
    return view


def tool_name(server: str, tool: str) -> str:
    """The name a model sees for ``server``'s ``tool``: ``mcp__<server>__<tool>``."""
    return _TOOL_NAME.sub("_", f"mcp__{server}__{tool}")[:128]


def is_read_only(server: str, tool: str, annotations: Any, team_read_only: list[str]) -> bool:
    """Whether a call to ``server``'s ``tool`` may run without approval: the server's annotations
    decide when they say anything (``readOnlyHint: true`` → read-only; ``readOnlyHint: false`` or
    ``destructiveHint: true`` → mutating, whatever the team says); else read-only only when the team
    lists it (``"<server>/<tool>"`` or ``"<server>/*"`` patterns)."""
    read_only, destructive = _hint(annotations, "readOnlyHint", "read_only_hint"), \
        _hint(annotations, "destructiveHint", "destructive_hint")
    if read_only is True:
        return True
    if read_only is False or destructive is True:
        return False
    return any(fnmatch.fnmatchcase(f"{server}/{tool}", pattern) for pattern in team_read_only)


def _hint(annotations: Any, wire: str, python: str) -> bool | None:
    """An annotation as the protocol names it, or as the ``mcp`` package's model does."""
    if annotations is None:
        return None
    value = getattr(annotations, python, None)
    return getattr(annotations, wire, None) if value is None else value


def result_text(result: Any) -> str:
    """A ``tools/call`` result as text (content blocks, else structured content), bounded."""
    parts = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        parts.append(text if text is not None else json.dumps(block.model_dump(mode="json"))[:2000])
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return ("\n".join(parts) or "(no content)")[:MAX_RESULT_CHARS]


async def open_client(stack: AsyncExitStack, entry: dict[str, Any], *, cipher: MultiFernet | None,
                      verify: Any = True, policy: Any = None, resolver: Any = None) -> Any:
    """An (unopened) ``mcp.Client`` for ``entry``; transports it needs close with ``stack``. HTTP goes
    through the egress policy (the server is reached on a tenant's behalf); the SDK's own defaults
    apply: 30 s, and 300 s to read (a server may hold a stream open). ``policy``/``resolver``: the
    egress policy to apply (None: the process's) and a DNS stand-in (tests)."""
    from mcp import Client, StdioServerParameters

    timeout = float(entry.get("tool_timeout_s") or 30.0)
    if entry["transport"] == "stdio":
        target: Any = StdioServerParameters(command=entry["command"][0], args=list(entry["command"][1:]),
                                            env=decrypt_env(entry.get("env") or {}, cipher) or None)
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        from incidentfox.egress.transport import egress_client

        http = egress_client(httpx2, policy=policy, resolver=resolver, timeout=httpx2.Timeout(30.0, read=300.0),
                             verify=verify)
        await stack.enter_async_context(http)
        target = streamable_http_client(entry["url"], http_client=http)
    return Client(target, read_timeout_seconds=timeout)
