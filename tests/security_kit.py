"""Helpers for the security suite (tests/security/): internal servers that must never be reached, and
policies. Its fixtures are in tests/security/conftest.py.

* ``Sentinel``: a real HTTP server on a loopback address that records every request and answers
  with a secret body. A refused call must leave ``sentinel.requests`` empty, and the secret must
  appear in no tool result and no log line.
* ``STRICT``: the egress policy with no allow-list at all: what a deployment enforces by default.
  (The rest of the test session allow-lists 127.0.0.1 through ``INCIDENTFOX_EGRESS_ALLOW``; these
  tests never use that process policy unless they say so.)
* ``FakeDNS``: an injected resolver with scripted answers per name (a list is served in order,
  the last answer repeating), recording every lookup.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from incidentfox.egress import EgressPolicy

STRICT = EgressPolicy()


@dataclass
class Sentinel:
    host: str = "127.0.0.1"
    secret: str = field(default_factory=lambda: "INTERNAL-SECRET-" + uuid.uuid4().hex)
    requests: list[tuple[str, str, str]] = field(default_factory=list)   # (method, path, Host header)
    server: TestServer | None = None
    redirect_to: str | None = None

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    def url(self, host: str | None = None) -> str:
        h = host or self.host
        return f"http://{'[' + h + ']' if ':' in h else h}:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, request.headers.get("Host", "")))
        if self.redirect_to is not None:
            raise web.HTTPFound(self.redirect_to)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []},
                                  "secret": self.secret, "ok": True, "messages": []})

    async def start(self, port: int = 0) -> Sentinel:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host=self.host, port=port)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


class FakeDNS:
    """``await dns(name, port)`` → the scripted addresses for ``name`` (trailing dot ignored)."""

    def __init__(self, answers: dict[str, Sequence[str] | list[Sequence[str]]]) -> None:
        self.answers = {k: (list(v) if v and isinstance(v[0], (list, tuple)) else [list(v)])
                        for k, v in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, name: str, port: int) -> list[str]:
        self.lookups.append(name)
        script = self.answers.get(name.removesuffix("."))
        if not script:
            raise OSError(f"no such name: {name}")
        return list(script.pop(0) if len(script) > 1 else script[0])
