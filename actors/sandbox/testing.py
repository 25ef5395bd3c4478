"""A local Anthropic-compatible server that replays scripted replies, for tests and the benchmark.

It speaks the real wire protocol of ``POST /v1/messages``: with ``"stream": true`` an SSE stream of
``message_start``, ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``) / ``content_block_stop``, ``message_delta`` and ``message_stop``; without it,
one JSON message. The real ``anthropic`` SDK is pointed at it through ``base_url``; nothing is
patched. Every request body is recorded, so tests assert what the agent actually sent (history,
tool results, tools offered).

Threaded (stdlib ``ThreadingHTTPServer``), so it serves callers in other processes (Ray actors) and
a stalled reply does not block other requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Text:
    text: str


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str | None = None


@dataclass
class Reply:
    """One model response. ``stall_s`` pauses after the first delta (to interrupt a model call);
    ``status`` != 200 answers with an API error instead."""

    blocks: list[Text | ToolUse] = field(default_factory=list)
    stop_reason: str | None = None
    stall_s: float = 0.0
    chunk_delay_s: float = 0.0
    status: int = 200
    error_message: str = "scripted error"


Responder = Callable[[dict[str, Any], int], Reply]


class ScriptedAnthropicServer:
    """``with ScriptedAnthropicServer([Reply(...), ...]) as srv: AsyncAnthropic(base_url=srv.url)``."""

    def __init__(self, script: list[Reply] | Responder | None = None) -> None:
        self._script = script if callable(script) else list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._tool_seq = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ScriptedAnthropicServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *replies: Reply) -> None:
        assert isinstance(self._script, list)
        with self._lock:
            self._script.extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            n = len(self.requests)
            self.requests.append(body)
            if callable(self._script):
                return self._script(body, n)
            if self._script:
                return self._script.pop(0)
        return Reply([Text("(script exhausted)")])

    def _new_tool_id(self) -> str:
        with self._lock:
            self._tool_seq += 1
            return f"toolu_{self._tool_seq:04d}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.split("?")[0].endswith("/v1/messages"):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                with server._lock:
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                problem = validate_request(body)
                reply = server._next(body) if problem is None else Reply(status=400, error_message=problem)
                if reply.status != 200:
                    self._json(reply.status, {"type": "error", "error": {"type": "invalid_request_error",
                                                                         "message": reply.error_message}})
                    return
                blocks = [b if not isinstance(b, ToolUse) or b.id else ToolUse(b.name, b.input, server._new_tool_id())
                          for b in reply.blocks]
                stop = reply.stop_reason or ("tool_use" if any(isinstance(b, ToolUse) for b in blocks) else "end_turn")
                try:
                    if body.get("stream"):
                        self._stream(body, blocks, stop, reply)
                    else:
                        self._json(200, _message(body, blocks, stop))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (an interrupt): nothing more to send

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_scripted")
                self.end_headers()
                self.wfile.write(data)

            def _event(self, name: str, data: dict[str, Any]) -> None:
                chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()

            def _stream(self, body: dict[str, Any], blocks: list[Text | ToolUse], stop: str, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                msg = _message(body, [], None)
                self._event("message_start", {"type": "message_start", "message": msg})
                stalled = False
                for i, b in enumerate(blocks):
                    if isinstance(b, Text):
                        self._event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "text", "text": ""}})
                        pieces = [b.text[j:j + 16] for j in range(0, len(b.text), 16)] or [""]
                        for piece in pieces:
                            self._event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                "delta": {"type": "text_delta", "text": piece}})
                            if reply.stall_s and not stalled:
                                stalled = True
                                time.sleep(reply.stall_s)
                            if reply.chunk_delay_s:
                                time.sleep(reply.chunk_delay_s)
                    else:
                        self._event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "tool_use", "id": b.id,
                                                                              "name": b.name, "input": {}}})
                        raw = json.dumps(b.input)
                        for j in range(0, len(raw), 24):
                            self._event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                "delta": {"type": "input_json_delta",
                                                                          "partial_json": raw[j:j + 24]}})
                    self._event("content_block_stop", {"type": "content_block_stop", "index": i})
                self._event("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": stop, "stop_sequence": None},
                                              "usage": {"output_tokens": 7}})
                self._event("message_stop", {"type": "message_stop"})
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


def _message(body: dict[str, Any], blocks: list[Text | ToolUse], stop: str | None) -> dict[str, Any]:
    content = [{"type": "text", "text": b.text} if isinstance(b, Text) else
               {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input} for b in blocks]
    return {"id": "msg_scripted", "type": "message", "role": "assistant", "model": body.get("model", "scripted"),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 1 if stop is None else 7}}


def validate_request(body: dict[str, Any]) -> str | None:
    """The Messages API's structural rules a transcript must keep (what the real API answers 400 to):
    roles alternate starting with ``user``; each assistant ``tool_use`` is answered by a
    ``tool_result`` in the next user message, and ``tool_result`` blocks come first there."""
    msgs = body.get("messages") or []
    if not msgs or msgs[0].get("role") != "user":
        return "messages: first message must use the user role"
    for i, m in enumerate(msgs):
        if i and m.get("role") == msgs[i - 1].get("role"):
            return f"messages.{i}: roles must alternate between user and assistant"
        content = m.get("content")
        blocks = [{"type": "text"}] if isinstance(content, str) else list(content or [])
        if not blocks:
            return f"messages.{i}: content must not be empty"
        kinds = [b.get("type") for b in blocks]
        first = sorted(kinds, key=lambda k: k != "tool_result")
        if m.get("role") == "user" and "tool_result" in kinds and kinds != first:
            return f"messages.{i}: tool_result blocks must come first"
        if m.get("role") == "assistant":
            ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
            nxt = msgs[i + 1] if i + 1 < len(msgs) else None
            if ids and nxt is not None:
                got = {b.get("tool_use_id") for b in (nxt.get("content") or []) if isinstance(b, dict)
                       and b.get("type") == "tool_result"}
                if not set(ids) <= got:
                    return f"messages.{i + 1}: tool_use ids {sorted(set(ids) - got)} have no tool_result"
    return None


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of a recorded request's last user message."""
    last = request["messages"][-1]
    return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
