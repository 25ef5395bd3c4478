"""A small scripted HTTP server for the tool tests: routes are (method, path) → scripted responses,
and every request is recorded (method, path, query, headers, body) for assertions.

A response is a ``(status, body)`` pair (dict/list → JSON, str → text), an ``aiohttp`` handler
``async fn(request) -> web.Response``, or a list of those served in order (the last one repeats).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class FakeHTTP:
    routes: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def route(self, method: str, path: str, *responses: Any) -> None:
        self.routes[(method.upper(), path)] = list(responses)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query: dict[str, list[str]] = {}
        for k, v in request.query.items():
            query.setdefault(k, []).append(v)
        self.requests.append(Recorded(request.method, request.path, query, dict(request.headers), body))
        script = self.routes.get((request.method, request.path))
        if not script:
            return web.json_response({"message": f"no route {request.method} {request.path}"}, status=404)
        response = script.pop(0) if len(script) > 1 else script[0]
        if callable(response):
            return await response(request)
        status, payload = response
        if isinstance(payload, str):
            return web.Response(status=status, text=payload)
        headers = {}
        if isinstance(payload, dict) and "__headers__" in payload:
            payload = dict(payload)
            headers = payload.pop("__headers__")
        return web.json_response(payload, status=status, headers=headers)

    async def start(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server(ssl=ssl_context)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
