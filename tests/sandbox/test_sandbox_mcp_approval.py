"""Mutating MCP calls in a sandbox session wait for an approver: the real stdio MCP server
(``tests/sandbox_mcp_server.py``: one read-only, one destructive, one unannotated tool), the real
anthropic SDK against the scripted server, the in-process backend; approval over the API too."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from actors.sandbox.approvals import is_read_only, parse_decision
from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse
from incidentfox.contracts import Principal
from incidentfox.settings import Settings
from serve_apps.sandbox.api import create_sandbox_app
from tests.sandbox_helpers import needs_root

pytestmark = needs_root
ROOT = Path(__file__).resolve().parents[1]
SANDBOX = {"mcp_servers": ["ops"], "mcp_read_only": ["ops/scale_service"]}


@pytest.fixture
def server() -> Iterator[ScriptedAnthropicServer]:
    with ScriptedAnthropicServer() as srv:
        yield srv


async def _backend(db: str, root: Path, **kw: Any) -> LocalSandboxBackend:
    b = LocalSandboxBackend(SandboxRuntime(root=root, db_url=db, uid_base=330_000, uid_count=10_000,
                                           sweep_interval_s=3600, **kw))
    await b.start()
    await b.manager.store.replace_allowlist(entries=[
        {"name": "ops", "transport": "stdio", "command": [sys.executable, str(ROOT / "sandbox_mcp_server.py")],
         "tool_timeout_s": 20}], updated_by="admin")
    return b


@pytest.fixture
async def backend(sqlite_url: str, root: Path) -> AsyncIterator[LocalSandboxBackend]:
    b = await _backend(sqlite_url, root)
    yield b
    await b.manager.stop()


def llm(server: ScriptedAnthropicServer) -> dict[str, Any]:
    return {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-test"}


async def until_pending(events: AsyncIterator[dict[str, Any]], seen: list[dict[str, Any]]) -> dict[str, Any]:
    async for ev in events:
        seen.append(ev)
        if ev["type"] == "approval" and ev["status"] == "pending":
            return ev
    raise AssertionError(f"no approval was asked for: {seen}")


def test_classification_and_reply_parsing() -> None:
    ro, destructive = SimpleNamespace(readOnlyHint=True), SimpleNamespace(readOnlyHint=None, destructiveHint=True)
    assert is_read_only("ops", "status", ro, [])
    assert not is_read_only("ops", "restart", destructive, ["ops/*"])        # the server's word wins
    assert not is_read_only("ops", "scale", SimpleNamespace(readOnlyHint=False), ["ops/scale"])
    assert not is_read_only("ops", "scale", None, [])                          # unknown: mutating
    assert is_read_only("ops", "scale", None, ["ops/scale"]) and is_read_only("ops", "x", None, ["ops/*"])
    assert parse_decision("approve sapr_ab12") == (True, "sapr_ab12")
    assert parse_decision("<@UBOT> deny sapr_ab12") == (False, "sapr_ab12")
    assert parse_decision("please approve sapr_ab12") is None and parse_decision("approve it") is None


async def test_mutating_call_waits_for_approval_then_runs(backend: LocalSandboxBackend,
                                                         server: ScriptedAnthropicServer) -> None:
    sid = (await backend.create_session(org_id="acme", team_id="sre", sandbox=SANDBOX))["session_id"]
    server.add(Reply([ToolUse("mcp__ops__service_status", {"service": "checkout"}),
                      ToolUse("mcp__ops__scale_service", {"service": "checkout", "replicas": 3}),
                      ToolUse("mcp__ops__restart_service", {"service": "checkout"})]),
               Reply([Text("restarted")]))
    events = backend.send_message(sid, text="restart checkout", llm=llm(server), sandbox=SANDBOX)
    seen: list[dict[str, Any]] = []
    pending = await until_pending(events, seen)
    # The read-only tool and the one the team lists read-only ran without asking.
    ran = [e for e in seen if e["type"] == "tool_end"]
    assert [e["name"] for e in ran] == ["mcp__ops__service_status", "mcp__ops__scale_service"]
    assert not any(e["is_error"] for e in ran)
    assert pending["tool"] == "mcp__ops__restart_service" and pending["input"] == {"service": "checkout"}
    assert await backend.pending_approvals(sid) == [{"approval_id": pending["approval_id"], "status": "pending",
                                                     "tool": "mcp__ops__restart_service",
                                                     "input": {"service": "checkout"}}]
    assert not await backend.decide_approval(sid, "sapr_unknown", approve=True, by="slack:U1")
    assert await backend.decide_approval(sid, pending["approval_id"], approve=True, by="slack:UAPPROVER")
    rest = [ev async for ev in events]
    decided = next(e for e in rest if e["type"] == "approval")
    assert (decided["status"], decided["by"]) == ("approved", "slack:UAPPROVER")
    end = next(e for e in rest if e["type"] == "tool_end")
    assert end["output"] == "checkout: restarted" and not end["is_error"]
    assert rest[-1]["type"] == "result" and await backend.pending_approvals(sid) == []


async def test_denied_call_is_a_clear_tool_error(backend: LocalSandboxBackend,
                                                server: ScriptedAnthropicServer) -> None:
    sid = (await backend.create_session(org_id="acme", team_id="sre", sandbox=SANDBOX))["session_id"]
    server.add(Reply([ToolUse("mcp__ops__restart_service", {"service": "checkout"})]), Reply([Text("ok")]))
    events = backend.send_message(sid, text="restart", llm=llm(server), sandbox=SANDBOX)
    pending = await until_pending(events, [])
    assert await backend.decide_approval(sid, pending["approval_id"], approve=False, by="slack:UAPPROVER")
    rest = [ev async for ev in events]
    end = next(e for e in rest if e["type"] == "tool_end")
    assert end["is_error"] and "denied by an approver (slack:UAPPROVER)" in end["output"]
    # What the model got back in its next request says the same.
    result = server.requests[1]["messages"][-1]["content"][0]
    assert result["is_error"] and "denied" in result["content"]


async def test_unanswered_approval_expires_and_the_call_does_not_run(sqlite_url: str, root: Path,
                                                                    server: ScriptedAnthropicServer) -> None:
    b = await _backend(sqlite_url, root, approval_timeout_s=0.2)
    try:
        sid = (await b.create_session(org_id="acme", team_id="sre", sandbox=SANDBOX))["session_id"]
        server.add(Reply([ToolUse("mcp__ops__restart_service", {"service": "checkout"})]), Reply([Text("ok")]))
        out = [ev async for ev in b.send_message(sid, text="restart", llm=llm(server), sandbox=SANDBOX)]
        assert [e["status"] for e in out if e["type"] == "approval"] == ["pending", "expired"]
        end = next(e for e in out if e["type"] == "tool_end")
        assert end["is_error"] and "did not run" in end["output"]
    finally:
        await b.manager.stop()


async def test_api_approval_needs_an_admin_or_api_approvals(backend: LocalSandboxBackend, sqlite_url: str,
                                                           server: ScriptedAnthropicServer) -> None:
    principals = {"team": Principal(auth_kind="team", org_id="acme", team_node_id="sre", subject="token:t"),
                  "admin": Principal(auth_kind="org_admin", org_id="acme", subject="token:admin"),
                  "other": Principal(auth_kind="org_admin", org_id="globex", subject="token:other")}
    config: dict[str, Any] = {"access": {"api_approvals": False}}

    async def authenticate(token: str | None) -> Principal:
        return principals[token or "team"]

    async def team_config(principal: Principal) -> dict[str, Any]:
        return config

    app = create_sandbox_app(backend=backend, settings=Settings(database_url=sqlite_url),
                             store=backend.manager.store, authenticate=authenticate, team_config=team_config,
                             scheduling_for=lambda cfg, org, team: {})
    sid = (await backend.create_session(org_id="acme", team_id="sre", sandbox=SANDBOX))["session_id"]
    server.add(Reply([ToolUse("mcp__ops__restart_service", {"service": "checkout"})]), Reply([Text("ok")]))
    events = backend.send_message(sid, text="restart", llm=llm(server), sandbox=SANDBOX)
    pending = await until_pending(events, [])
    url = f"/sessions/{sid}/approvals/{pending['approval_id']}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        def as_(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {who}"}

        view = (await c.get(f"/sessions/{sid}", headers=as_("team"))).json()
        assert [p["approval_id"] for p in view["pending_approvals"]] == [pending["approval_id"]]
        refused = await c.post(url, json={"decision": "approve"}, headers=as_("team"))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_an_approver"
        assert (await c.post(url, json={"decision": "approve"}, headers=as_("other"))).status_code == 404
        config["access"]["api_approvals"] = True
        assert (await c.post(url, json={"decision": "maybe"}, headers=as_("team"))).status_code == 422
        ok = await c.post(url, json={"decision": "approve"}, headers=as_("admin"))
        assert ok.status_code == 200 and ok.json()["decision"] == "approve"
        again = await c.post(url, json={"decision": "deny"}, headers=as_("team"))
        assert again.status_code == 409 and again.json()["error"]["code"] == "approval_not_pending"
    rest = [ev async for ev in events]
    assert next(e for e in rest if e["type"] == "approval")["by"] == "token:admin"
    assert next(e for e in rest if e["type"] == "tool_end")["output"] == "checkout: restarted"
