"""A stdio MCP server for the investigation MCP tests (run as a subprocess by an allow-list entry):
``whoami`` echoes its ``OPS_TOKEN`` env value, which must never reach a model or a record."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("engine-stdio")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def whoami() -> str:
    """Say which credential the server runs with."""
    return f"running as ops with token {os.environ.get('OPS_TOKEN', 'unset')}"


if __name__ == "__main__":
    server.run("stdio")
