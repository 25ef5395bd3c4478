"""A tiny stdio MCP server for the sandbox MCP tests (run as a subprocess by the allow-listed entry)."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("sbx-test")


@server.tool()
def service_status(service: str) -> str:
    """Report a service's status (scripted)."""
    return f"{service}: degraded (p99 2.4s), token={os.environ.get('DEMO_TOKEN', 'none')[:4]}…"


if __name__ == "__main__":
    server.run("stdio")
