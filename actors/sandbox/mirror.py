"""Mirror a sandbox turn into a Slack thread: one progress message, edited as events arrive.

:class:`TurnMirror` renders a turn's events (tool calls, thinking, the result) into the text of one
:class:`actors.slack.throttle.ThrottledMessage`, which posts it on first use and keeps its edits at
least 0.5 s apart (changes in between coalesced, the final state always delivered); Slack failures
are logged and counted, never raised into the turn.

The message talks to a :class:`actors.slack.client.Reporter` (``post`` / ``update``);
:class:`actors.slack.client.SlackWebReporter` is the one over the Slack Web API. The sandbox modules
import those names from here.
"""

from __future__ import annotations

from actors.sandbox.events import SandboxEvent
from actors.slack.client import Reporter, SlackWebReporter
from actors.slack.throttle import ThrottledMessage

__all__ = ["Reporter", "SlackWebReporter", "ThrottledMessage", "TurnMirror"]


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
        elif ev.type == "approval":
            if d.get("status") == "pending":
                self.footer = (f"⏳ awaiting approval for `{d.get('tool')}`: an approver replies "
                               f"`approve {d.get('approval_id')}` or `deny {d.get('approval_id')}` in this thread")
            else:
                self.lines.append(f"🔐 `{d.get('tool')}` {d.get('status')}" + (f" by {d['by']}" if d.get("by") else ""))
                self.footer = "🔄 working…"
        elif ev.type == "result":
            self.thinking = ""
            self.footer = "✅ " + (d.get("text") or "done")
        elif ev.type == "error":
            self.footer = f"❌ {d.get('message', 'error')}"
        elif ev.type == "interrupted":
            self.footer = "🚫 interrupted"
        await self.message.set(self.render())
