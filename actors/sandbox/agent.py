"""The agent loop: Anthropic Messages API with streaming and tool use, over a session transcript.

:func:`run_turn` is an async generator. It streams one model call (yielding ``thought`` deltas),
appends the assistant message, runs each ``tool_use`` through the toolbox (``tool_start`` /
``tool_end``), appends the ``tool_result`` message, and repeats until the model stops asking for
tools (``result``) or ``max_steps`` is reached (``error``). The transcript is persisted after every
appended message, so a crash loses at most the step in flight.

Cancellation (an interrupt) can land in the model stream (the HTTP request is closed) or in a tool
(Bash kills its processes). Either way the transcript is left valid for the next call: partial
assistant text is kept, and every ``tool_use`` gets a ``tool_result``: the real one if the tool
finished, ``interrupted by user`` otherwise. Then the ``CancelledError`` propagates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.sandbox import events
from actors.sandbox.config import LLMConfig
from actors.sandbox.events import SandboxEvent
from actors.sandbox.tools import ToolOutcome
from actors.sandbox.transcript import Message, api_messages, final_text
from incidentfox.egress import refusal_in
from incidentfox.metrics import record_llm_tokens

if TYPE_CHECKING:
    import anthropic


DEFAULT_SYSTEM = (
    "You are IncidentFox, an SRE assistant working in an isolated sandbox session. Your working "
    "directory is /workspace; files there persist for the whole session. Use the tools to inspect "
    "and change files and to run commands (Bash runs as an unprivileged user without network "
    "unless the team enabled it). Be concise; show the evidence for your conclusions."
)
INTERRUPTED_RESULT = "interrupted by user before the tool finished"

_clients: dict[tuple[str | None, str, float], anthropic.AsyncAnthropic] = {}
_http: Any = None
_tenant_http: Any = None
_tls: Any = None


def preload() -> None:
    """Import the Anthropic SDK now (a sandbox host calls this at start, so the first turn does not
    pay ~1 s for it). Processes that only route sessions, such as the SandboxAPI replica, never
    import it: that is ~50 MB less in each."""
    import anthropic  # noqa: F401


def shared_tls_context() -> Any:
    """One TLS context per process for every HTTP client of the sandbox (the default endpoint's, each
    tenant host's pool, MCP over HTTP): each context parses the CA bundle, ~0.5 MB apiece, and
    ``httpx2`` would otherwise build one per client and per tenant host. Same settings as
    ``verify=True`` (certifi's bundle, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured)."""
    global _tls
    if _tls is None:
        import httpx2

        _tls = httpx2.create_ssl_context()
    return _tls


def shared_http_client() -> Any:
    """One HTTP client (connection pool, TLS context) per process, shared by every session's
    Anthropic client: building one costs ~0.1 s and several MB, a client on top of it ~0.3 ms."""
    global _http
    if _http is None:
        import anthropic

        _http = anthropic.DefaultAsyncHttpxClient(verify=shared_tls_context())
    return _http


def tenant_http_client() -> Any:
    """The HTTP client for teams that set their own ``llm.base_url``: one per process, through the
    egress policy (every request and redirect checked, the address pinned; connections pooled per
    host name, so no team's connection serves another host)."""
    global _tenant_http
    if _tenant_http is None:
        import anthropic
        import httpx2

        from incidentfox.egress.transport import egress_client

        _tenant_http = egress_client(httpx2, client_cls=anthropic.DefaultAsyncHttpxClient,
                                     verify=shared_tls_context())
    return _tenant_http


def client_for(llm: LLMConfig, *, timeout_s: float) -> anthropic.AsyncAnthropic:
    """The Anthropic client for a team's (base_url, key), cached per process. The key never falls
    back to the process environment (the platform's own key must not serve a tenant). A team's own
    ``base_url`` is tenant egress (:func:`tenant_http_client`); the default endpoint is not."""
    import anthropic

    key = llm.api_key.get_secret_value() if llm.api_key else "unset"
    cache_key = (llm.base_url, key, timeout_s)
    client = _clients.get(cache_key)
    if client is None:
        http = tenant_http_client() if llm.base_url else shared_http_client()
        client = anthropic.AsyncAnthropic(api_key=key, base_url=llm.base_url, max_retries=2, timeout=timeout_s,
                                          http_client=http)
        _clients[cache_key] = client
    return client


@dataclass
class TurnContext:
    client: anthropic.AsyncAnthropic
    model: str
    max_tokens: int
    system: str
    tools: list[dict[str, Any]]
    execute: Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]
    persist: Callable[[], Awaitable[None]]
    max_steps: int = 40
    model_timeout_s: float = 300.0
    tool_timeout_s: float = 660.0


def _param_block(block: Any) -> dict[str, Any] | None:
    """A response content block as a request block (only the fields the API accepts back)."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return {"type": "text", "text": block.text} if block.text else None
    if kind == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input or {}}
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return block.model_dump(mode="json", exclude_none=True) if hasattr(block, "model_dump") else None


def _usage(total: dict[str, int], usage: Any) -> None:
    for name in ("input_tokens", "output_tokens"):
        total[name] = total.get(name, 0) + int(getattr(usage, name, 0) or 0)


async def run_turn(ctx: TurnContext, transcript: list[Message]) -> AsyncIterator[SandboxEvent]:
    """Run the model/tool loop on ``transcript`` (whose last message is the new user input)."""
    import anthropic

    usage: dict[str, int] = {}
    partial: list[str] = []
    pending: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    try:
        for _step in range(ctx.max_steps):
            partial.clear()
            try:
                async with asyncio.timeout(ctx.model_timeout_s):
                    async with ctx.client.messages.stream(
                            model=ctx.model, max_tokens=ctx.max_tokens, system=ctx.system,
                            messages=api_messages(transcript), tools=ctx.tools) as stream:
                        async for ev in stream:
                            if ev.type == "text" and ev.text:
                                partial.append(ev.text)
                                yield events.thought(ev.text)
                        final = await stream.get_final_message()
            except anthropic.APIStatusError as exc:
                yield events.error("model_error", f"model API returned {exc.status_code}: {_short(exc.message)}")
                return
            except (anthropic.APIConnectionError, TimeoutError) as exc:
                if (refused := refusal_in(exc)) is not None:
                    yield events.error("egress_refused", f"model API refused by the egress policy: {refused}")
                else:
                    yield events.error("model_unreachable", f"model API unreachable: {type(exc).__name__}")
                return
            _usage(usage, final.usage)
            record_llm_tokens(provider="anthropic", model=ctx.model,
                              input_tokens=getattr(final.usage, "input_tokens", 0),
                              output_tokens=getattr(final.usage, "output_tokens", 0))
            content = [b for b in (_param_block(b) for b in final.content) if b]
            partial.clear()
            if content:
                transcript.append({"role": "assistant", "content": content})
                await ctx.persist()
            pending = [b for b in content if b["type"] == "tool_use"]
            if not pending:
                yield events.result(final_text(content), stop_reason=final.stop_reason, usage=usage)
                return
            results = []
            while pending:
                use = pending[0]
                yield events.tool_start(use["id"], use["name"], use["input"])
                started = time.monotonic()
                try:
                    async with asyncio.timeout(ctx.tool_timeout_s):
                        outcome = await ctx.execute(use["name"], use["input"])
                except TimeoutError:
                    outcome = ToolOutcome(f"tool {use['name']} timed out after {ctx.tool_timeout_s:.0f}s", True)
                results.append({"type": "tool_result", "tool_use_id": use["id"],
                                "content": outcome.content, "is_error": outcome.is_error})
                pending.pop(0)
                yield events.tool_end(use["id"], use["name"], outcome.content, is_error=outcome.is_error,
                                      duration_s=time.monotonic() - started)
            transcript.append({"role": "user", "content": results})
            results = []
            await ctx.persist()
        yield events.error("max_steps", f"stopped after {ctx.max_steps} model calls in one turn")
    except asyncio.CancelledError:
        if partial:
            transcript.append({"role": "assistant", "content": [{"type": "text", "text": "".join(partial)}]})
        if pending:
            results.extend({"type": "tool_result", "tool_use_id": u["id"], "content": INTERRUPTED_RESULT,
                            "is_error": True} for u in pending)
            transcript.append({"role": "user", "content": results})
        await asyncio.shield(ctx.persist())
        raise


def _short(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + "…"
