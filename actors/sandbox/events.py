"""Events a sandbox turn yields, in order, to the API (as SSE) and to the Slack mirror.

A turn yields any number of ``thought`` / ``tool_start`` / ``tool_end`` events and ends with exactly
one terminal event: ``result`` (the model finished), ``error`` (the turn failed; the conversation
stays usable) or ``interrupted`` (``POST .../interrupt``). Events cross Ray as plain dicts
(:meth:`SandboxEvent.to_dict`) so no pickled classes are shared between processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["thought", "tool_start", "tool_end", "approval", "result", "error", "interrupted"]
TERMINAL: frozenset[str] = frozenset({"result", "error", "interrupted"})


@dataclass(frozen=True)
class SandboxEvent:
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SandboxEvent:
        data = {k: v for k, v in d.items() if k != "type"}
        return cls(d["type"], data)


def thought(text: str) -> SandboxEvent:
    return SandboxEvent("thought", {"text": text})


def tool_start(tool_use_id: str, name: str, tool_input: dict[str, Any]) -> SandboxEvent:
    return SandboxEvent("tool_start", {"id": tool_use_id, "name": name, "input": tool_input})


def tool_end(tool_use_id: str, name: str, output: str, *, is_error: bool, duration_s: float) -> SandboxEvent:
    return SandboxEvent("tool_end", {"id": tool_use_id, "name": name, "output": output,
                                     "is_error": is_error, "duration_s": round(duration_s, 3)})


def approval(approval_id: str, tool: str, tool_input: dict[str, Any], status: str, *, by: str = "") -> SandboxEvent:
    """A mutating MCP call waiting for (``pending``) or given a decision (actors/sandbox/approvals.py)."""
    return SandboxEvent("approval", {"approval_id": approval_id, "tool": tool, "input": tool_input,
                                     "status": status, "by": by})


def result(text: str, *, stop_reason: str | None, usage: dict[str, Any] | None = None) -> SandboxEvent:
    return SandboxEvent("result", {"text": text, "stop_reason": stop_reason, "usage": usage or {}})


def error(code: str, message: str) -> SandboxEvent:
    return SandboxEvent("error", {"code": code, "message": message})


def interrupted(reason: str = "interrupted by user") -> SandboxEvent:
    return SandboxEvent("interrupted", {"reason": reason})
