"""A local scripted LLM server speaking three real wire APIs, for driving the real SDKs in tests.

Endpoints (as the official clients call them, under ``{url}``):

* ``POST /v1/chat/completions``: OpenAI Chat Completions (the ``openai_compatible`` provider);
* ``POST /v1/responses``: OpenAI Responses (the ``openai`` provider);
* ``POST /v1/messages``: Anthropic Messages (the ``anthropic`` provider).

A *script* maps an agent to its turns. The agent is recognised by a marker string found in the
request's system prompt / instructions (e.g. ``"lead SRE"`` for the planner, ``"kubernetes
specialist"`` for that sub-agent); the turn is the number of assistant turns already in the
conversation, so concurrent conversations need no server-side state. A turn is one of:

* ``{"tool_calls": [{"name": …, "arguments": {…}}, …]}``: call these tools (in parallel);
* ``{"text": "…"}``: a final text answer; ``{"json": {…}}``: a final answer that is that JSON;
* ``{"error": 500}``: answer with that HTTP status; ``{"hang": true}``: never answer.

Every request is recorded (:attr:`ScriptedLLM.requests`) with the API, agent, turn and arrival time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Turn = dict[str, Any]


@dataclass
class LLMRequest:
    api: str
    agent: str | None
    turn: int
    body: dict[str, Any]
    at: float


def _system_text(api: str, body: dict[str, Any]) -> str:
    if api == "chat":
        return " ".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") in ("system", "developer"))
    if api == "responses":
        return str(body.get("instructions") or "")
    system = body.get("system") or ""
    return system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)


def _assistant_turns(api: str, body: dict[str, Any]) -> int:
    if api == "chat":
        return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    if api == "messages":
        return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    items = body.get("input")
    if not isinstance(items, list):
        return 0
    turns, in_turn = 0, False
    for item in items:
        is_model = item.get("type") == "function_call" or item.get("role") == "assistant"
        if is_model and not in_turn:
            turns += 1
        in_turn = is_model
    return turns


class ScriptedLLM:
    def __init__(self, script: dict[str, list[Turn]], *, default: Turn | None = None) -> None:
        self.script = script
        self.default = default or {"text": "nothing further"}
        self.requests: list[LLMRequest] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port: int | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    @property
    def url(self) -> str:
        """Base URL for the OpenAI client (``…/v1``); the Anthropic client takes :attr:`root`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self._closing.set()   # release hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ script lookup
    def _turn(self, api: str, body: dict[str, Any]) -> tuple[str | None, int, Turn]:
        system = _system_text(api, body)
        agent = next((k for k in self.script if k in system), None)
        turn = _assistant_turns(api, body)
        turns = self.script.get(agent or "", [])
        return agent, turn, (turns[turn] if turn < len(turns) else self.default)

    async def _prelude(self, api: str, request: web.Request) -> tuple[dict[str, Any], Turn] | web.Response:
        body = await request.json()
        agent, turn, spec = self._turn(api, body)
        self.requests.append(LLMRequest(api=api, agent=agent, turn=turn, body=body, at=time.monotonic()))
        if spec.get("hang"):
            await self._closing.wait()     # until the client gives up (handler cancelled) or stop()
        if "error" in spec:
            status = int(spec["error"])
            payload = ({"type": "error", "error": {"type": "api_error", "message": "scripted failure"}}
                       if api == "messages" else {"error": {"message": "scripted failure", "type": "server_error"}})
            return web.json_response(payload, status=status)
        if spec.get("delay_s"):
            await asyncio.sleep(float(spec["delay_s"]))   # simulated model latency
        return body, spec

    @staticmethod
    def _final_text(spec: Turn) -> str | None:
        if "json" in spec:
            return json.dumps(spec["json"])
        return spec.get("text")

    # ------------------------------------------------------------------ the three APIs
    async def _chat(self, request: web.Request) -> web.Response:
        got = await self._prelude("chat", request)
        if isinstance(got, web.Response):
            return got
        body, spec = got
        message: dict[str, Any] = {"role": "assistant", "content": self._final_text(spec)}
        if spec.get("tool_calls"):
            message["tool_calls"] = [{"id": f"call_{next(self._ids)}", "type": "function",
                                      "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                                     for c in spec["tool_calls"]]
        return web.json_response({
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if spec.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    async def _responses(self, request: web.Request) -> web.Response:
        got = await self._prelude("responses", request)
        if isinstance(got, web.Response):
            return got
        body, spec = got
        output: list[dict[str, Any]] = []
        for c in spec.get("tool_calls") or []:
            n = next(self._ids)
            output.append({"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": c["name"],
                           "arguments": json.dumps(c.get("arguments", {})), "status": "completed"})
        text = self._final_text(spec)
        if text is not None and not spec.get("tool_calls"):
            output.append({"type": "message", "id": f"msg_{next(self._ids)}", "role": "assistant",
                           "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]})
        return web.json_response({
            "id": f"resp_{next(self._ids)}", "object": "response", "created_at": int(time.time()),
            "model": body.get("model", "scripted"), "status": "completed", "output": output,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}})

    async def _messages(self, request: web.Request) -> web.Response:
        got = await self._prelude("messages", request)
        if isinstance(got, web.Response):
            return got
        body, spec = got
        content: list[dict[str, Any]] = []
        text = self._final_text(spec)
        if text is not None:
            content.append({"type": "text", "text": text})
        for c in spec.get("tool_calls") or []:
            content.append({"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": c["name"],
                            "input": c.get("arguments", {})})
        return web.json_response({
            "id": f"msg_{next(self._ids)}", "type": "message", "role": "assistant",
            "model": body.get("model", "scripted"), "content": content,
            "stop_reason": "tool_use" if spec.get("tool_calls") else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5}})
