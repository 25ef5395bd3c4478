"""A tiny stdio MCP server for the sandbox MCP tests (run as a subprocess by the allow-listed entry).

``service_status`` is annotated read-only; ``restart_service`` says it is destructive;
``scale_service`` says nothing (unknown → mutating unless the team lists it read-only)."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("sbx-test")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def service_status(service: str) -> str:
    """Report a service's status (scripted)."""
    return f"{service}: degraded (p99 2.4s), token={os.environ.get('DEMO_TOKEN', 'none')[:4]}…"


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def restart_service(service: str) -> str:
    """Restart a service (scripted)."""
    return f"{service}: restarted"


@server.tool()
def scale_service(service: str, replicas: int) -> str:
    """Scale a service (scripted)."""
    return f"{service}: scaled to {replicas}"


if __name__ == "__main__":
    server.run("stdio")
