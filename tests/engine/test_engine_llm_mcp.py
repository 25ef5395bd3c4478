"""MCP in a whole LLM investigation on Ray (issue 16): the planner (the real openai-agents SDK against
the local scripted server) asks the logs sub-agent, which calls the team's attached MCP server's tool
on a ToolExecutor actor; the call is recorded like any tool call and its answer reaches the RCA."""

from __future__ import annotations

import pytest
from engine_mcp_server import LocalMcp
from engine_support import TOKEN, Engine, demo_config

from actors.testing.scripted_llm import ScriptedLLM
from incidentfox.mcp_allowlist import McpServerRow

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPORT = {"summary": "checkout is degraded (MCP status)", "root_causes": [
    {"entity": "checkout", "description": "degraded", "confidence": 0.7, "evidence": ["degraded, p99 2.4s"]}],
    "affected_services": ["checkout"], "timeline": [], "recommended_actions": [], "no_incident": False}


async def test_llm_run_calls_an_attached_mcp_tool(engine: Engine) -> None:
    mcp = LocalMcp(echo_secret=TOKEN)
    await mcp.start()
    llm = ScriptedLLM({
        "lead SRE": [{"tool_calls": [{"name": "ask_logs_agent", "arguments": {"input": "checkout status?"}}]},
                     {"json": REPORT}],
        "logs specialist": [{"tool_calls": [{"name": "mcp__ops__service_status",
                                              "arguments": {"service": "checkout"}}]},
                            {"text": "checkout: degraded, p99 2.4s"}]})
    await llm.start()
    try:
        async with engine.sessions() as s:
            if await s.get(McpServerRow, "ops") is None:
                s.add(McpServerRow(name="ops", transport="http", url=mcp.url))
            else:
                (await s.get(McpServerRow, "ops")).url = mcp.url
            await s.commit()
        team = await engine.add_team(demo_config(
            channel="CMCP", llm={"provider": "openai_compatible", "model": "scripted", "base_url": llm.url,
                                 "api_key": "sk-test-secret-key"},
            subagents={"kubernetes": False, "metrics": False, "changes": False, "cloud": False},
            investigation={"deadline_s": 60, "mcp_servers": [{"name": "ops", "subagents": ["logs"]}]}))
        run_id = await engine.start(team, channel="CMCP")
        run = await engine.wait_terminal(run_id, timeout=120)
    finally:
        await llm.stop()
        await mcp.stop()
    assert run.status == "succeeded", run.error
    calls = await engine.tool_calls(run_id)
    assert [(c.tool, c.agent, c.status) for c in calls] == [("mcp__ops__service_status", "logs", "ok")]
    assert mcp.calls == [("service_status", {"service": "checkout"})]
    assert run.result["root_causes"][0]["entity"] == "checkout"
