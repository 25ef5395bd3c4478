"""The stored conversation and the Messages API view of it (pure functions).

A session's transcript is an append-only list of ``{"role", "content"}`` messages, written to
``sandbox_messages`` as they happen. Appending never edits an earlier message, so the raw list can
contain two user messages in a row (an interrupted turn, then the next question) or an assistant
``tool_use`` without its result (the host died mid-command). :func:`api_messages` turns it into a
request the API accepts: consecutive same-role messages are merged, every ``tool_use`` gets a
``tool_result`` in the next user message (a missing one becomes an "interrupted" error result), and
``tool_result`` blocks come first in their user message.
"""

from __future__ import annotations

import copy
from typing import Any

Message = dict[str, Any]
MISSING_RESULT = "interrupted: the command did not finish and no result was recorded"


def blocks(content: Any) -> list[dict[str, Any]]:
    """Content as a list of blocks (the API also accepts a bare string for text)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in (content or []) if isinstance(b, dict)]


def user_text(text: str) -> Message:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def tool_results_message(results: list[dict[str, Any]]) -> Message:
    return {"role": "user", "content": results}


def pending_tool_uses(messages: list[Message]) -> list[dict[str, Any]]:
    """``tool_use`` blocks of the last assistant message that have no result yet."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "assistant":
            uses = [b for b in blocks(messages[i]["content"]) if b.get("type") == "tool_use"]
            done = {b.get("tool_use_id") for m in messages[i + 1:] for b in blocks(m["content"])
                    if b.get("type") == "tool_result"}
            return [u for u in uses if u.get("id") not in done]
    return []


def api_messages(messages: list[Message]) -> list[Message]:
    """The valid Messages API ``messages`` for a stored transcript (input is not modified)."""
    out: list[Message] = []
    for m in messages:
        content = copy.deepcopy(blocks(m.get("content")))
        if not content or m.get("role") not in ("user", "assistant"):
            continue
        if out and out[-1]["role"] == m["role"]:
            out[-1]["content"].extend(content)
        else:
            out.append({"role": m["role"], "content": content})
    while out and out[0]["role"] != "user":  # the API requires the first message to be the user's
        out.pop(0)
    i = 0
    while i < len(out):
        m = out[i]
        if m["role"] == "assistant":
            ids = [b["id"] for b in m["content"] if b.get("type") == "tool_use"]
            nxt = out[i + 1] if i + 1 < len(out) else None
            have = {b.get("tool_use_id") for b in (nxt["content"] if nxt else []) if b.get("type") == "tool_result"}
            fill = [{"type": "tool_result", "tool_use_id": t, "content": MISSING_RESULT, "is_error": True}
                    for t in ids if t not in have]
            if fill and nxt is None:
                out.append({"role": "user", "content": fill})
            elif fill:
                nxt["content"] = fill + nxt["content"]
        elif m["role"] == "user":
            results = [b for b in m["content"] if b.get("type") == "tool_result"]
            rest = [b for b in m["content"] if b.get("type") != "tool_result"]
            m["content"] = results + rest
        i += 1
    return out


def final_text(content: list[dict[str, Any]]) -> str:
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")
