"""A local Slack-compatible Web API server that records every call (tests and the demo).

It speaks the subset of the Slack Web API the engine uses, at ``{url}<method>`` exactly like
``https://slack.com/api/<method>``, so a real ``slack_sdk`` ``AsyncWebClient(base_url=recorder.url)``
talks to it unchanged:

* ``chat.postMessage`` → a new message with a monotonically increasing ``ts`` (``thread_ts`` kept);
* ``chat.update`` → edits the stored message (``message_not_found`` for an unknown ts);
* ``conversations.replies`` → the recorded thread (root + replies), oldest first;
* ``files.getUploadURLExternal`` / upload ``POST`` / ``files.completeUploadExternal`` → a stored file;
* ``auth.test``; anything else answers ``{"ok": false, "error": "unknown_method"}`` as Slack does.

Each call is a :class:`RecordedCall`. The bearer token is kept apart from the recorded arguments
(``token``), so a test can assert which token was used while nothing prints it. A test can make the
next N calls answer HTTP 429 with ``Retry-After`` (:meth:`SlackRecorder.rate_limit`), which is what
``AsyncRateLimitErrorRetryHandler`` must survive.

Waiting is event-driven: :meth:`SlackRecorder.wait_for` wakes on each recorded call, no polling.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class RecordedCall:
    method: str
    args: dict[str, Any]
    at: float                      # time.monotonic() when received
    token: str | None = field(default=None, repr=False)
    response: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The call without its token, as the demo prints it."""
        return {"method": self.method, "args": self.args, "ok": self.response.get("ok")}


class SlackRecorder:
    """An aiohttp app serving the Slack Web API subset above on 127.0.0.1, recording calls."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}   # (channel, ts) → message
        self.files: dict[str, dict[str, Any]] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._listeners: list[asyncio.Queue[RecordedCall]] = []
        self._rate_limited = 0
        self._retry_after = 1
        self._slow: dict[tuple[str, str], tuple[float, Any]] = {}   # (method, channel) → (seconds, when)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ----------------------------------------------------------------- lifecycle
    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/api/{method}", self._handle)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.host = host
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient`` (ends with ``/api/``)."""
        return f"http://{self.host}:{self.port}/api/"

    # ----------------------------------------------------------------- test helpers
    def rate_limit(self, n: int, *, retry_after: int = 1) -> None:
        """Answer the next ``n`` API calls with HTTP 429 and ``Retry-After: retry_after``."""
        self._rate_limited, self._retry_after = n, retry_after

    def slow(self, method: str, channel: str, seconds: float,
             when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Answer ``method`` calls for ``channel`` (whose arguments pass ``when``, if given) after
        ``seconds``: a slow Slack. A call whose client gives up first is not recorded."""
        self._slow[(method, channel)] = (seconds, when)

    def subscribe(self) -> asyncio.Queue[RecordedCall]:
        """A queue receiving every call recorded from now on (the demo prints from it)."""
        q: asyncio.Queue[RecordedCall] = asyncio.Queue()
        self._listeners.append(q)
        return q

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[list[RecordedCall]], Any], *, timeout: float = 30.0) -> Any:
        """Wait until ``predicate(self.calls)`` is truthy; return its value. Raises TimeoutError."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                while not (value := predicate(self.calls)):
                    await self._changed.wait()
                return value

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        msgs = [m for (c, _), m in self.messages.items()
                if c == channel and (m["ts"] == ts or m.get("thread_ts") == ts)]
        return sorted(msgs, key=lambda m: float(m["ts"]))

    # ----------------------------------------------------------------- HTTP
    async def _parse(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            ctype = request.headers.get("Content-Type", "")
            if "json" in ctype:
                args.update(json.loads(body))
            else:
                args.update(parse_qsl(body.decode(), keep_blank_values=True))
        for key in ("blocks", "attachments", "files"):   # form posts carry these JSON-encoded
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except json.JSONDecodeError:
                    pass
        return args

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._parse(request)
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        if self._rate_limited > 0:
            self._rate_limited -= 1
            resp = {"ok": False, "error": "ratelimited"}
            await self._record(RecordedCall(method, args, time.monotonic(), token, resp))
            return web.json_response(resp, status=429, headers={"Retry-After": str(self._retry_after)})
        delay, when = self._slow.get((method, str(args.get("channel", ""))), (0.0, None))
        if delay and (when is None or when(args)):
            await asyncio.sleep(delay)   # simulated Slack latency
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)   # the client gave up: nothing applied or recorded
        if not token:
            resp = {"ok": False, "error": "not_authed"}
        else:
            resp = self._answer(method, args, request)
        await self._record(RecordedCall(method, args, time.monotonic(), token, resp))
        return web.json_response(resp)

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _answer(self, method: str, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "TLOCAL"}
        if method == "chat.postMessage":
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            ts = self._next_ts()
            msg = {"ts": ts, "text": args.get("text", ""), "blocks": args.get("blocks"),
                   "thread_ts": args.get("thread_ts"), "user": "UBOT", "bot_id": "BBOT"}
            self.messages[(channel, ts)] = msg
            return {"ok": True, "channel": channel, "ts": ts, "message": msg}
        if method == "chat.postEphemeral":   # seen by one user only: recorded, not kept in the channel
            if not channel or not args.get("user"):
                return {"ok": False, "error": "channel_not_found" if not channel else "user_not_in_channel"}
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.update":
            key = (channel, str(args.get("ts", "")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key].update(text=args.get("text", ""), blocks=args.get("blocks"))
            return {"ok": True, "channel": channel, "ts": key[1], "text": args.get("text", "")}
        if method == "conversations.replies":
            return {"ok": True, "messages": self.thread(channel, str(args.get("ts", ""))), "has_more": False}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.files) + 1:08d}"
            self.files[file_id] = {"id": file_id, "name": args.get("filename", ""), "content": b""}
            base = f"http://{request.host}"
            return {"ok": True, "upload_url": f"{base}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files") or []
            out = []
            for f in files:
                stored = self.files.get(f.get("id", ""))
                if stored is None:
                    return {"ok": False, "error": "file_not_found"}
                stored.update(title=f.get("title", ""), channel=args.get("channel_id"),
                              thread_ts=args.get("thread_ts"))
                out.append({"id": stored["id"], "title": stored.get("title", ""), "name": stored["name"]})
            return {"ok": True, "files": out}
        return {"ok": False, "error": "unknown_method"}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.files:
            return web.Response(status=404, text="unknown file")
        self.files[file_id]["content"] = await request.read()
        return web.Response(text=f"OK - {len(self.files[file_id]['content'])}")

    async def _record(self, call: RecordedCall) -> None:
        self.calls.append(call)
        for q in self._listeners:
            q.put_nowait(call)
        async with self._changed:
            self._changed.notify_all()


async def _serve(port: int) -> None:
    rec = SlackRecorder()
    url = await rec.start(port=port)
    print(json.dumps({"slack_api_url": url}), flush=True)
    q = rec.subscribe()
    while True:
        call = await q.get()
        print(json.dumps(call.public(), default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m cli.demo.slack_recorder --port P``: serve and print calls as JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    ns = p.parse_args(argv)
    try:
        asyncio.run(_serve(ns.port))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
