"""A local MCP server over streamable HTTP for the investigation MCP tests, served in the test's
event loop by uvicorn on 127.0.0.1 (an ephemeral port). Its tools record their calls.

``service_status`` is annotated read-only; ``restart_service`` is destructive; ``scale_service``
has no hints (mutating unless the team marks it read-only); ``dump_logs`` returns a large text that
echoes a credential (bounded and masked before any model sees it)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations


class LocalMcp:
    def __init__(self, echo_secret: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.server = MCPServer("engine-test")
        calls = self.calls

        @self.server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        def service_status(service: str) -> str:
            """Report a service's health."""
            calls.append(("service_status", {"service": service}))
            return f"{service}: degraded, p99 2.4s since 12:01 UTC"

        @self.server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
        def restart_service(service: str) -> str:
            """Restart a service."""
            calls.append(("restart_service", {"service": service}))
            return f"{service}: restarted"

        @self.server.tool()
        def scale_service(service: str, replicas: int) -> str:
            """Scale a service."""
            calls.append(("scale_service", {"service": service, "replicas": replicas}))
            return f"{service}: scaled to {replicas}"

        @self.server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        def dump_logs(service: str) -> str:
            """Return a service's recent logs."""
            calls.append(("dump_logs", {"service": service}))
            return f"auth header Bearer {echo_secret} token={echo_secret}\n" + "log line\n" * 20_000

        self._task: asyncio.Task | None = None
        self._uv: uvicorn.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = self.server.streamable_http_app(stateless_http=True, json_response=True)
        self._uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._task = asyncio.create_task(self._uv.serve(sockets=[sock]))
        while not self._uv.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._uv is not None:
            self._uv.should_exit = True
        if self._task is not None:
            await self._task
