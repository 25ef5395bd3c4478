"""An allow-listed MCP server's own credentials (the entry's encrypted ``env``, which no tenant ever
sees) never reach a tool result, a run record or a model, also when the server fails: a server's
error text may echo them (a proxy reporting the key its upstream refused)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet

from actors.tools import mcp as mcp_tools
from actors.tools.base import ToolContext
from actors.tools.execute import execute
from actors.tools.mcp import McpTool, list_tools, mcp_spec
from incidentfox.mcp_allowlist import encrypt_env

SERVER_KEY = "sk-platform-ops-0123456789abcdef"
TEAM_KEY = "team-grafana-key-9876543210"


@pytest.fixture
def entry() -> tuple[dict[str, Any], MultiFernet]:
    cipher = MultiFernet([Fernet(Fernet.generate_key())])
    return {"name": "ops", "transport": "stdio", "command": ["ops-mcp"], "url": None,
            "env": encrypt_env({"OPS_TOKEN": SERVER_KEY}, cipher), "tool_timeout_s": 5.0}, cipher


@pytest.fixture
def failing_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async def open_client(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError(f"upstream refused OPS_TOKEN={SERVER_KEY} (grafana said: bad key {TEAM_KEY})")
    monkeypatch.setattr(mcp_tools, "open_client", open_client)


def _ctx() -> ToolContext:
    return ToolContext(integrations={"grafana": {"url": "https://g.example.com", "api_key": TEAM_KEY}},
                       org_id="acme", team_id="payments", run_id="run_1")


async def test_a_failed_mcp_call_masks_the_servers_and_the_teams_credentials(entry, failing_server) -> None:
    spec_entry, cipher = entry
    decl = McpTool(name="mcp__ops__whoami", server="ops", tool="whoami", description="who", mutating=False,
                   parameters={"type": "object", "properties": {}}, timeout_s=5.0)
    result = await execute(mcp_spec(decl, spec_entry, cipher=cipher), {}, _ctx())
    assert not result.ok and result.error == "unavailable"
    text = result.model_dump_json()
    assert SERVER_KEY not in text and TEAM_KEY not in text
    assert "***" in result.message


async def test_a_failed_mcp_listing_masks_the_servers_credentials(entry, failing_server) -> None:
    spec_entry, cipher = entry
    with pytest.raises(Exception) as info:   # ToolError, reported by list_attached as an error line
        await list_tools(spec_entry, marks={}, cipher=cipher, ctx=_ctx(), timeout_s=5.0)
    message = getattr(info.value, "message", str(info.value))
    assert SERVER_KEY not in message and TEAM_KEY not in message
    assert "***" in message


async def test_a_sandbox_mcp_result_never_shows_the_servers_env(entry) -> None:
    """The sandbox path (the same allow-list): a stdio server that echoes its env value."""
    import sys
    from pathlib import Path

    from actors.sandbox.mcp import open_mcp_tools

    spec_entry, cipher = entry
    spec_entry = spec_entry | {"command": [sys.executable, str(Path(__file__).parents[1] / "engine_mcp_stdio.py")]}
    async with open_mcp_tools([spec_entry], cipher=cipher, connect_timeout_s=30) as toolset:
        outcome = await toolset.handlers["mcp__ops__whoami"]({})
    assert "running as ops" in outcome.content and SERVER_KEY not in outcome.content and "***" in outcome.content
