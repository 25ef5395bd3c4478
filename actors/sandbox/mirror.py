"""Mirror a sandbox turn into a Slack thread: one progress message, edited as events arrive.

The mirror talks to a *reporter*: any object with

    async def post(channel: str, thread_ts: str | None, text: str, blocks: list | None) -> str  # ts
    async def update(channel: str, ts: str, text: str, blocks: list | None) -> None

so the engine's Slack reporter plugs in; :class:`SlackWebReporter` is a small one over
``slack_sdk``'s ``AsyncWebClient`` (the team's bot token lives only inside its client).
:class:`ThrottledMessage` keeps Slack edits of one message at least ``min_interval_s`` (0.5 s)
apart: changes in between are coalesced, and the final state is always delivered. Slack failures
are logged and counted, never raised into the turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from actors.sandbox.events import SandboxEvent

log = logging.getLogger("incidentfox.sandbox.mirror")
MIN_INTERVAL_S = 0.5
CALL_TIMEOUT_S = 10.0
_MAX_TEXT = 2900


class Reporter(Protocol):
    async def post(self, channel: str, thread_ts: str | None, text: str,
                   blocks: list[dict[str, Any]] | None) -> str: ...

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None) -> None: ...


class SlackWebReporter:
    """A :class:`Reporter` over ``chat.postMessage`` / ``chat.update``."""

    def __init__(self, token: str, *, base_url: str = "https://slack.com/api/") -> None:
        from slack_sdk.web.async_client import AsyncWebClient

        self._client = AsyncWebClient(token=token, base_url=base_url, timeout=int(CALL_TIMEOUT_S))

    async def post(self, channel: str, thread_ts: str | None, text: str,
                   blocks: list[dict[str, Any]] | None) -> str:
        resp = await self._client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
        return str(resp["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None) -> None:
        await self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


class ThrottledMessage:
    """One Slack message whose edits are spaced at least ``min_interval_s`` apart."""

    def __init__(self, reporter: Reporter, *, channel: str, thread_ts: str | None,
                 min_interval_s: float = MIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.reporter, self.channel, self.thread_ts = reporter, channel, thread_ts
        self.min_interval_s, self._clock, self._sleep = min_interval_s, clock, sleep
        self.ts: str | None = None
        self.failures = 0
        self._text = ""
        self._blocks: list[dict[str, Any]] | None = None
        self._dirty = False
        self._last = float("-inf")
        self._flusher: asyncio.Task[None] | None = None
        self._posting: asyncio.Task[None] | None = None

    async def set(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Make ``text`` the message's next state; posts the message on first use."""
        self._text, self._blocks, self._dirty = text[:_MAX_TEXT], blocks, True
        if self.ts is None:
            if self._posting is None:
                self._posting = asyncio.ensure_future(self._post())
            await self._posting
            if self.ts is None:
                return
        if self._dirty and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush())

    async def close(self) -> None:
        """Deliver the last state (waiting out the interval) and stop."""
        if self._posting is not None:
            await self._posting
        if self._flusher is not None:
            await self._flusher
        if self._dirty and self.ts is not None:
            await self._flush()

    async def _post(self) -> None:
        text, blocks = self._text, self._blocks
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                self.ts = await self.reporter.post(self.channel, self.thread_ts, text, blocks)
            self._last = self._clock()
            self._dirty = self._text != text or self._blocks != blocks
        except Exception as exc:  # noqa: BLE001 - Slack trouble must not fail the turn
            self.failures += 1
            log.warning("sandbox mirror: post failed: %s", type(exc).__name__)

    async def _flush(self) -> None:
        while self._dirty:
            delay = self._last + self.min_interval_s - self._clock()
            if delay > 0:
                await self._sleep(delay)
            text, blocks, self._dirty = self._text, self._blocks, False
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    await self.reporter.update(self.channel, self.ts or "", text, blocks)
            except Exception as exc:  # noqa: BLE001 - Slack trouble must not fail the turn
                self.failures += 1
                log.warning("sandbox mirror: update failed: %s", type(exc).__name__)
            self._last = self._clock()


class TurnMirror:
    """Renders a turn's events into a :class:`ThrottledMessage`."""

    def __init__(self, message: ThrottledMessage, *, session_id: str, question: str) -> None:
        self.message = message
        self.header = f"🧪 Sandbox `{session_id}`: {question[:200]}"
        self.lines: list[str] = []
        self.thinking = ""
        self.footer = "🔄 working…"
        self._tool_line: dict[str, int] = {}

    def render(self) -> str:
        body = self.lines[-12:]
        parts = [self.header, *body]
        if self.thinking:
            parts.append("> " + self.thinking[-300:].replace("\n", "\n> "))
        parts.append(self.footer)
        return "\n".join(parts)

    async def on_event(self, ev: SandboxEvent) -> None:
        d = ev.data
        if ev.type == "thought":
            self.thinking += d.get("text", "")
        elif ev.type == "tool_start":
            self.thinking = ""
            summary = str(d.get("input", {}).get("command") or d.get("input", {}).get("file_path")
                          or d.get("input", {}).get("pattern") or "")[:80]
            self._tool_line[d["id"]] = len(self.lines)
            self.lines.append(f"🔄 `{d['name']}` {summary}".rstrip())
        elif ev.type == "tool_end":
            i = self._tool_line.get(d["id"])
            if i is not None:
                icon = "❌" if d.get("is_error") else "✅"
                self.lines[i] = self.lines[i].replace("🔄", icon, 1) + f" ({d.get('duration_s', 0):.1f}s)"
        elif ev.type == "result":
            self.thinking = ""
            self.footer = "✅ " + (d.get("text") or "done")
        elif ev.type == "error":
            self.footer = f"❌ {d.get('message', 'error')}"
        elif ev.type == "interrupted":
            self.footer = "🚫 interrupted"
        await self.message.set(self.render())
