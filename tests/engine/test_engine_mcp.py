"""MCP servers for investigations (issue 16): a team attaches an allow-listed MCP server to a sub-agent;
the LLM sub-agent (the real openai-agents SDK against the local scripted LLM server) sees its tools
like built-in ones and calls them through a ToolExecutor: recorded, bounded, masked, mutating ones
only after an approval. Not allow-listed → refused at config write and left out at run time; an
internal URL → refused by the egress policy. No Ray: the executor's core behind a stand-in handle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_mcp_server import LocalMcp
from sqlalchemy import select

from actors.engine import approvals
from actors.engine.subagent_worker import SubAgentCore, SubAgentRequest
from actors.engine.tool_executor import ToolExecutorCore
from actors.testing.scripted_llm import ScriptedLLM
from config_service.services.config import check_mcp_names
from incidentfox.contracts import ThreadRef, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.errors import Unprocessable
from incidentfox.mcp_allowlist import McpServerRow
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval

SECRET = "xoxb-team-bot-token-0123456789"


class _Remote:
    def __init__(self, fn: Any) -> None:
        self.remote = lambda *a: asyncio.ensure_future(fn(*a))


class LocalExecutor:
    """A ToolExecutor handle in this process: ``.call.remote`` / ``.list_mcp.remote`` like Ray's."""

    def __init__(self, core: ToolExecutorCore) -> None:
        self.call, self.list_mcp = _Remote(core.call), _Remote(core.list_mcp)


@pytest.fixture
async def mcp():
    server = LocalMcp(echo_secret=SECRET)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def world(sqlite_url: str, mcp: LocalMcp):
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        s.add(McpServerRow(name="ops", transport="http", url=mcp.url, tool_timeout_s=20.0))
        s.add(McpServerRow(name="internal", transport="http", url="http://[::1]:9/mcp"))
        run = await store.create_run(s, org_id="acme", team_id="sre", trigger=Trigger(
            source="slack", delivery_id="d1", event_kind="app_mention", title="checkout 500s", text="why?",
            thread=ThreadRef(channel="C1", ts="1.1")))
        await s.commit()
    core = ToolExecutorCore(sqlite_url)
    yield {"sessions": sessions, "run_id": run.id, "core": core, "executor": LocalExecutor(core)}
    await core.flush()
    await engine.dispose()


def _config(llm: ScriptedLLM, servers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"integrations": {"slack": {"bot_token": SECRET}},
            "llm": {"provider": "openai_compatible", "model": "scripted", "base_url": llm.url, "api_key": "sk-test"},
            "investigation": {"deadline_s": 60, "mcp_servers": servers}}


def _request(world: dict, config: dict, agent: str = "logs") -> SubAgentRequest:
    return SubAgentRequest(run_id=world["run_id"], org_id="acme", team_id="sre", agent=agent, mode="llm",
                           config=config, executors=[world["executor"]], question="is checkout healthy?",
                           timeout_s=60)


async def _llm(script: dict) -> ScriptedLLM:
    server = ScriptedLLM(script)
    await server.start()
    return server


def _call(name: str, **args: Any) -> dict:
    return {"name": name, "arguments": args}


async def test_llm_subagent_calls_an_attached_mcp_tool(world: dict, mcp: LocalMcp) -> None:
    llm = await _llm({"logs specialist": [
        {"tool_calls": [_call("mcp__ops__service_status", service="checkout"),
                        _call("mcp__ops__dump_logs", service="checkout")]},
        {"text": "checkout is degraded"}]})
    try:
        result = await SubAgentCore().run(_request(world, _config(llm, [{"name": "ops", "subagents": ["logs"]}])))
    finally:
        await llm.stop()
    assert result.status == "ok", (result.error, result.tool_errors)
    assert result.report == "checkout is degraded" and result.tool_count == 2
    # Declared to the model like built-in tools, namespaced, with the server's description.
    offered = {t.get("function", t).get("name"): t for t in llm.requests[0].body["tools"]}
    assert {"mcp__ops__service_status", "mcp__ops__restart_service", "mcp__ops__dump_logs"} <= set(offered)
    assert "Report a service's health" in offered["mcp__ops__service_status"]["function"]["description"]
    assert [c for c, _ in mcp.calls] == ["service_status", "dump_logs"] or \
        sorted(c for c, _ in mcp.calls) == ["dump_logs", "service_status"]
    outputs = dict(result.tool_outputs)
    assert "degraded, p99 2.4s" in outputs["mcp__ops__service_status"]
    # Bounded (the server sent ~180 kB) and no credential reaches the model.
    assert len(outputs["mcp__ops__dump_logs"]) < 40_000 and SECRET not in outputs["mcp__ops__dump_logs"]
    async with world["sessions"]() as s:
        rows = await store.list_tool_calls(s, run_id=world["run_id"])
    assert {(r.tool, r.status, r.agent) for r in rows} == {("mcp__ops__service_status", "ok", "logs"),
                                                            ("mcp__ops__dump_logs", "ok", "logs")}


async def test_mcp_tools_only_reach_the_subagents_they_are_attached_to(world: dict, mcp: LocalMcp) -> None:
    llm = await _llm({"metrics specialist": [{"text": "nothing"}]})
    try:
        result = await SubAgentCore().run(_request(world, _config(llm, [{"name": "ops", "subagents": ["logs"]}]),
                                                   agent="metrics"))
    finally:
        await llm.stop()
    names = {t.get("function", t).get("name") for t in llm.requests[0].body.get("tools") or []}
    assert not any(n.startswith("mcp__") for n in names) and result.tool_errors == []


@pytest.mark.parametrize("approve", [True, False])
async def test_a_mutating_mcp_tool_waits_for_an_approval(world: dict, mcp: LocalMcp, approve: bool) -> None:
    llm = await _llm({"logs specialist": [{"tool_calls": [_call("mcp__ops__restart_service", service="checkout")]},
                                          {"text": "done"}]})
    try:
        task = asyncio.create_task(SubAgentCore().run(_request(world, _config(llm, [{"name": "ops"}]))))
        approval = None
        async with asyncio.timeout(30):
            while approval is None:   # wait on the recorded state: the pending approval row
                async with world["sessions"]() as s:
                    approval = (await s.scalars(select(ToolApproval).where(
                        ToolApproval.run_id == world["run_id"]))).first()
                await asyncio.sleep(0.05)
        assert approval.tool == "mcp__ops__restart_service" and approval.status == "pending"
        assert mcp.calls == []   # nothing changed before the decision
        async with world["sessions"]() as s:
            assert await approvals.decide(s, run_id=world["run_id"], approval_id=approval.id, approve=approve,
                                          by="U0CAROL")
            await s.commit()
        result = await task
    finally:
        await llm.stop()
    assert result.status == ("ok" if approve else "failed")   # a denied call is the sub-agent's only call
    assert mcp.calls == ([("restart_service", {"service": "checkout"})] if approve else [])


async def test_team_marks_decide_unannotated_tools_but_not_against_the_server(world: dict, mcp: LocalMcp) -> None:
    from actors.engine.mcp_attach import AllowlistCache, list_attached
    from actors.tools.base import ToolContext

    listing = await list_attached(AllowlistCache(world["sessions"]),
                                  [{"name": "ops", "tools": {"scale_service": "read_only",
                                                             "restart_service": "read_only",
                                                             "service_status": "mutating"}}], ToolContext())
    mutating = {t.tool: t.mutating for t in listing.tools}
    assert mutating == {"service_status": True, "restart_service": True, "scale_service": False, "dump_logs": False}


async def test_not_allow_listed_and_egress_refused_servers_are_left_out(world: dict, mcp: LocalMcp) -> None:
    llm = await _llm({"logs specialist": [{"text": "nothing to call"}]})
    try:
        result = await SubAgentCore().run(_request(world, _config(llm, [{"name": "internal"}, {"name": "gone"}])))
    finally:
        await llm.stop()
    names = {t.get("function", t).get("name") for t in llm.requests[0].body.get("tools") or []}
    assert not any(n.startswith("mcp__") for n in names)
    assert any(e.startswith("mcp:internal: egress_refused") for e in result.tool_errors), result.tool_errors
    assert any(e.startswith("mcp:gone: not on the platform MCP allow-list") for e in result.tool_errors)


async def test_a_call_to_a_server_removed_from_the_allow_list_does_not_run(world: dict, mcp: LocalMcp) -> None:
    from actors.engine.tool_executor import ToolCallRequest
    from actors.tools.mcp import McpTool

    decl = McpTool(name="mcp__ops2__service_status", server="ops2", tool="service_status", description="",
                   parameters={"type": "object", "properties": {}}, mutating=False, timeout_s=5)
    out = await world["core"].call(ToolCallRequest(
        run_id=world["run_id"], org_id="acme", team_id="sre", agent="logs", tool=decl.name, args={},
        integrations={}, allowed=frozenset({decl.name}), mcp=decl))
    assert not out.result.ok and out.result.error == "unknown_tool" and mcp.calls == []


async def test_config_write_refuses_servers_not_on_the_allow_list(world: dict) -> None:
    async with world["sessions"]() as s:
        await check_mcp_names(s, {"investigation": {"mcp_servers": [{"name": "ops"}]}})
        with pytest.raises(Unprocessable) as info:
            await check_mcp_names(s, {"investigation": {"mcp_servers": [{"name": "ops"}, {"name": "evil"}]}})
    assert info.value.code == "invalid_config"
    assert info.value.details["errors"] == [{"path": "investigation.mcp_servers.1.name",
                                             "message": "'evil' is not on the platform's MCP allow-list "
                                                        "(ask the global admin to add it)"}]


async def test_a_stdio_server_runs_with_its_encrypted_env_and_never_shows_it(world: dict, monkeypatch) -> None:
    """A stdio entry (the global admin's command) gets its decrypted env; what it echoes is masked."""
    import sys
    from pathlib import Path

    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    import incidentfox.settings
    from actors.engine.mcp_attach import AllowlistCache, list_attached, spec_for_call
    from actors.tools.base import ToolContext
    from actors.tools.execute import execute
    from incidentfox.mcp_allowlist import cipher_from_settings, encrypt_env

    token = "ops-secret-value-123456"
    settings = incidentfox.settings.Settings(secret_key=SecretStr(Fernet.generate_key().decode()))
    monkeypatch.setattr(incidentfox.settings, "get_settings", lambda: settings)
    async with world["sessions"]() as s:
        s.add(McpServerRow(name="local", transport="stdio",
                           command=[sys.executable, str(Path(__file__).parents[1] / "engine_mcp_stdio.py")],
                           env=encrypt_env({"OPS_TOKEN": token}, cipher_from_settings(settings))))
        await s.commit()
    cache = AllowlistCache(world["sessions"])
    listing = await list_attached(cache, [{"name": "local"}], ToolContext())
    (decl,) = listing.tools
    assert decl.name == "mcp__local__whoami" and not decl.mutating and listing.errors == []
    spec = await spec_for_call(cache, decl)
    result = await execute(spec, {}, ToolContext())
    assert result.ok and "running as ops with token ***" in result.data["text"]
    assert token not in result.model_dump_json()


async def test_the_config_api_write_path_refuses_unknown_servers(world: dict, sqlite_url: str, tmp_path) -> None:
    from gateway_kit import settings_for

    from config_service.services import config as config_svc
    from config_service.services import nodes, orgs

    settings = settings_for(sqlite_url, tmp_path)
    async with world["sessions"]() as s:
        await orgs.create_org(s, org_id="acme", name="Acme", actor="test")
        await nodes.create_node(s, org_id="acme", node_id="sre", parent_id=None, kind="team", name="sre",
                                actor="test")
        ok = await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="sre", actor="test",
                                           patch={"investigation": {"mcp_servers": [{"name": "ops"}]}})
        assert ok["version"] >= 1
        with pytest.raises(Unprocessable) as info:
            await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="sre", actor="test",
                                          patch={"investigation": {"mcp_servers": [{"name": "nope"}]}})
    assert info.value.code == "invalid_config" and "nope" in str(info.value)
