"""The sandbox API over HTTP (ASGI): real config-service tokens and team config, the in-process
backend, the scripted Anthropic server. Sessions, SSE, tenant isolation, interrupt, expiry, the
admin-only MCP allow-list, health and Slack mirroring."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, seed_tenants, settings_for
from sqlalchemy import select

from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.reaping import uid_processes
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse
from serve_apps.sandbox.api import create_sandbox_app
from tests.sandbox_helpers import FakeSlack, make_root, needs_bwrap, needs_root, patch_team, remove_root

pytestmark = needs_root


@pytest.fixture
async def api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    root = make_root()
    # /health checks the settings' workspace root: the backend's (tmp_path is not traversable).
    settings = settings_for(sqlite_url, tmp_path).model_copy(update={"sandbox_root": root})
    toks = await seed_tenants(sqlite_url, settings)
    reporter = FakeSlack()
    server = ScriptedAnthropicServer().start()
    llm = {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-team-secret"}
    for team in ("payments", "search"):
        await patch_team(sqlite_url, settings, "acme", team, {"llm": llm})
    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=360_000, uid_count=20_000, sweep_interval_s=3600)
    backend = LocalSandboxBackend(runtime, reporter=reporter)
    app = create_sandbox_app(backend=backend, settings=settings, scheduling_for=lambda cfg, org, team: {})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        yield {"client": client, "toks": toks, "server": server, "backend": backend, "reporter": reporter,
               "settings": settings, "db": sqlite_url, "root": root}
    server.stop()
    await app.state.engine.dispose()
    remove_root(root)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sse(text: str) -> list[dict[str, Any]]:
    out = []
    for chunk in text.strip().split("\n\n"):
        if chunk.startswith(":"):   # a keep-alive comment (sse-starlette pings every 15 s)
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        ev = json.loads(lines["data"])
        assert ev["type"] == lines["event"]
        out.append(ev)
    return out


@needs_bwrap
async def test_session_lifecycle_over_http(api: dict[str, Any]) -> None:
    c, toks, server = api["client"], api["toks"], api["server"]
    server.add(Reply([Text("Checking."), ToolUse("Bash", {"command": "echo hello from the sandbox"})]),
               Reply([Text("The sandbox says hello.")]))
    r = await c.post("/sessions", json={"title": "first"}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    assert r.json()["ttl_s"] == 7200
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "say hello"}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert [e["type"] for e in events if e["type"] != "thought"] == ["tool_start", "tool_end", "result"]
    assert "".join(e["text"] for e in events if e["type"] == "thought") == "Checking.The sandbox says hello."
    assert next(e for e in events if e["type"] == "tool_end")["output"] == "hello from the sandbox"
    assert events[-1]["text"] == "The sandbox says hello."
    view = (await c.get(f"/sessions/{sid}", headers=auth(toks["acme/payments"]))).json()
    assert view["status"] == "active" and view["turns"] == 1 and view["title"] == "first"
    assert [m["role"] for m in view["transcript"]] == ["user", "assistant", "user", "assistant"]
    assert "sk-team-secret" not in json.dumps(view)
    r = await c.delete(f"/sessions/{sid}", headers=auth(toks["acme/payments"]))
    assert r.json() == {"session_id": sid, "deleted": True}
    assert (await c.get(f"/sessions/{sid}", headers=auth(toks["acme/payments"]))).status_code == 404
    assert not (api["root"] / sid).exists()


async def test_a_session_is_mirrored_only_into_a_channel_its_team_has(api: dict[str, Any]) -> None:
    """``slack_channel`` is another team's (acme/payments' C111 for acme/search, globex's for acme), or
    nobody's: 403 ``channel_not_claimed`` and no session; a session's Slack thread could otherwise sit
    in another team's channel (posted with this team's bot) or in one of its run threads."""
    from actors.sandbox.models import SandboxSessionRow

    c, toks = api["client"], api["toks"]
    for team, channel in (("acme/search", "C111"), ("acme/payments", "CGLOBEX"), ("acme/payments", "CNOBODY")):
        r = await c.post("/sessions", json={"slack_channel": channel, "slack_thread_ts": "1700000000.000100"},
                         headers=auth(toks[team]))
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "channel_not_claimed"
        assert r.json()["error"]["details"]["field"] == "slack_channel"
    async with api["backend"].manager.store.sessions() as s:
        assert (await s.scalars(select(SandboxSessionRow))).all() == []
    r = await c.post("/sessions", json={"slack_channel": "C111"}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 201, r.text                           # its own claimed channel


async def test_an_idempotency_key_opens_one_session(api: dict[str, Any]) -> None:
    """A retried create (also three at once) answers the session the first opened; the same key
    with another title is 422 and opens nothing; another team's same key is its own session."""
    from actors.sandbox.models import SandboxSessionRow

    c, toks = api["client"], api["toks"]
    h = {**auth(toks["acme/payments"]), "Idempotency-Key": "open-1"}
    first = await c.post("/sessions", json={"title": "db"}, headers=h)
    again = await c.post("/sessions", json={"title": "db"}, headers=h)
    assert first.status_code == again.status_code == 201, again.text
    assert "duplicate" not in first.json() and again.json() == {**first.json(), "duplicate": True}
    at_once = await asyncio.gather(*[c.post("/sessions", json={}, headers={**auth(toks["acme/payments"]),
                                                                            "Idempotency-Key": "open-2"})
                                     for _ in range(3)])
    assert [r.status_code for r in at_once] == [201] * 3
    assert len({r.json()["session_id"] for r in at_once}) == 1
    r = await c.post("/sessions", json={"title": "another"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused", r.text
    assert first.json()["session_id"] not in r.text
    theirs = await c.post("/sessions", json={"title": "db"}, headers={**auth(toks["acme/search"]),
                                                                       "Idempotency-Key": "open-1"})
    assert theirs.status_code == 201 and "duplicate" not in theirs.json()
    assert theirs.json()["session_id"] != first.json()["session_id"]
    async with api["backend"].manager.store.sessions() as s:
        rows = (await s.scalars(select(SandboxSessionRow))).all()
    assert sorted(row.team_id for row in rows) == ["payments", "payments", "search"]


async def test_auth_and_tenant_isolation(api: dict[str, Any]) -> None:
    c, toks = api["client"], api["toks"]
    assert (await c.post("/sessions", json={})).status_code == 401
    r = await c.post("/sessions", json={}, headers=auth(toks["acme"]))  # an org admin has no team
    assert r.status_code == 403 and r.json()["error"]["code"] == "team_token_required"
    sid = (await c.post("/sessions", json={}, headers=auth(toks["acme/payments"]))).json()["session_id"]
    other = auth(toks["acme/search"])
    assert (await c.get(f"/sessions/{sid}", headers=other)).status_code == 404
    assert (await c.post(f"/sessions/{sid}/messages", json={"text": "x"}, headers=other)).status_code == 404
    assert (await c.post(f"/sessions/{sid}/interrupt", headers=other)).status_code == 404
    assert (await c.delete(f"/sessions/{sid}", headers=other)).status_code == 404
    assert (await c.get(f"/sessions/{sid}", headers=auth(toks["acme"]))).status_code == 200  # its org admin
    assert (await c.get(f"/sessions/{sid}", headers=auth(toks["globex"]))).status_code == 404
    r = await c.post(f"/sessions/{sid}/messages", json={"text": ""}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await c.post(f"/sessions/{sid}/messages", content=b"{not json", headers=auth(toks["acme/payments"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = await c.post("/sessions", json={}, headers=auth(toks["globex/ops"]))  # a team without an llm
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_llm_config"


async def test_list_sessions_is_scoped_and_paged(api: dict[str, Any]) -> None:
    c, toks = api["client"], api["toks"]
    pay = [(await c.post("/sessions", json={"title": f"p{i}"}, headers=auth(toks["acme/payments"]))).json()
           ["session_id"] for i in range(3)]
    search = (await c.post("/sessions", json={}, headers=auth(toks["acme/search"]))).json()["session_id"]
    await c.delete(f"/sessions/{pay[0]}", headers=auth(toks["acme/payments"]))

    mine = (await c.get("/sessions", headers=auth(toks["acme/payments"]))).json()
    assert [s["session_id"] for s in mine["items"]] == [pay[2], pay[1]]      # newest first, deleted gone
    assert mine["next_cursor"] is None and mine["items"][0]["title"] == "p2"
    first = (await c.get("/sessions", params={"limit": 1}, headers=auth(toks["acme/payments"]))).json()
    rest = (await c.get("/sessions", params={"limit": 1, "cursor": first["next_cursor"]},
                        headers=auth(toks["acme/payments"]))).json()
    assert [s["session_id"] for s in first["items"] + rest["items"]] == [pay[2], pay[1]]
    assert [s["session_id"] for s in (await c.get("/sessions", headers=auth(toks["acme/search"]))).json()
            ["items"]] == [search]
    assert {s["session_id"] for s in (await c.get("/sessions", headers=auth(toks["acme"]))).json()["items"]} \
        == {pay[1], pay[2], search}
    assert (await c.get("/sessions", headers=auth(toks["globex"]))).json()["items"] == []
    assert len((await c.get("/sessions", headers=auth(ADMIN_TOKEN))).json()["items"]) == 3
    assert (await c.get("/sessions", params={"status": "expired"}, headers=auth(ADMIN_TOKEN))).json()["items"] == []
    assert (await c.get("/sessions", params={"status": "bogus"}, headers=auth(ADMIN_TOKEN))).status_code == 422
    assert (await c.get("/sessions")).status_code == 401


@needs_bwrap
async def test_interrupt_over_http_and_busy_conflict(api: dict[str, Any]) -> None:
    c, toks, server = api["client"], api["toks"], api["server"]
    h = auth(toks["acme/payments"])
    server.add(Reply([ToolUse("Bash", {"command": "sleep 600", "timeout": 600000})]), Reply([Text("stopped")]))
    sid = (await c.post("/sessions", json={}, headers=h)).json()["session_id"]
    uid = (await api["backend"].manager.store.get_session(session_id=sid)).uid
    running = asyncio.create_task(c.post(f"/sessions/{sid}/messages", json={"text": "long"}, headers=h))
    async with asyncio.timeout(120):   # a hang guard only: the command starts in well under a second
        while not uid_processes(uid):
            # A turn that ends before its command runs says why (the command never started).
            assert not running.done(), f"the turn ended before `sleep 600` started: {running.result().text}"
            await asyncio.sleep(0.02)
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "another"}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "turn_in_progress"
    r = await c.post(f"/sessions/{sid}/interrupt", headers=h)
    assert r.json() == {"session_id": sid, "interrupted": True}
    events = sse((await running).text)
    assert events[-1] == {"type": "interrupted", "reason": "interrupted by user"}
    assert uid_processes(uid) == []
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "continue"}, headers=h)
    assert sse(r.text)[-1]["text"] == "stopped"
    assert (await c.post(f"/sessions/{sid}/interrupt", headers=h)).json()["interrupted"] is False


async def test_expired_session_is_410(api: dict[str, Any]) -> None:
    from datetime import timedelta

    c, toks = api["client"], api["toks"]
    h = auth(toks["acme/payments"])
    sid = (await c.post("/sessions", json={}, headers=h)).json()["session_id"]
    row = await api["backend"].manager.store.get_session(session_id=sid)
    assert await api["backend"].manager.sweep(now=row.expires_at + timedelta(seconds=1)) == [sid]
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "hello?"}, headers=h)
    assert r.status_code == 410 and r.json()["error"]["code"] == "session_expired"
    assert (await c.get(f"/sessions/{sid}", headers=h)).json()["status"] == "expired"


async def test_mcp_allowlist_is_global_admin_only(api: dict[str, Any]) -> None:
    c, toks = api["client"], api["toks"]
    body = {"servers": [{"name": "grafana", "transport": "http", "url": "http://127.0.0.1:9/mcp",
                         "env": {"GRAFANA_TOKEN": "glsa_very_secret"}, "description": "Grafana"}]}
    for tok in (toks["acme/payments"], toks["acme"]):
        r = await c.put("/mcp-allowlist", json=body, headers=auth(tok))
        assert r.status_code == 403 and r.json()["error"]["code"] == "global_admin_required"
    r = await c.put("/mcp-allowlist", json={"servers": [{"name": "x", "transport": "stdio"}]},
                    headers=auth(ADMIN_TOKEN))
    assert r.status_code == 422
    r = await c.put("/mcp-allowlist", json=body, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200 and "glsa_very_secret" not in r.text
    assert r.json()["servers"][0]["env_keys"] == ["GRAFANA_TOKEN"]
    team_view = (await c.get("/mcp-allowlist", headers=auth(toks["acme/payments"]))).json()
    assert team_view == {"servers": [{"name": "grafana", "transport": "http", "description": "Grafana",
                                      "tool_timeout_s": 30.0}]}
    stored = (await api["backend"].manager.store.get_allowlist())[0]
    assert stored.env["GRAFANA_TOKEN"] != "glsa_very_secret"  # encrypted at rest
    # A team may only pick names from the list: an unknown one fails the message with 403.
    await patch_team(api["db"], api["settings"], "acme", "payments", {"sandbox": {"mcp_servers": ["jira"]}})
    sid = (await c.post("/sessions", json={}, headers=auth(toks["acme/payments"]))).json()["session_id"]
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "x"}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "mcp_not_allowed"


async def test_health_reports_isolation(api: dict[str, Any]) -> None:
    r = await api["client"].get("/health")
    assert r.status_code == 200
    assert r.json()["isolation"]["mode"] in ("bwrap", "rlimit_only", "unavailable")
    assert set(r.json()["isolation"]) == {"mode", "available", "reason", "workspace_root", "session_limits"}
    assert r.json()["isolation"]["workspace_root"] == str(api["root"])


async def test_health_names_an_unreachable_workspace_root(api: dict[str, Any]) -> None:
    private = api["root"] / "private"
    private.mkdir(mode=0o700)
    settings = api["settings"].model_copy(update={"sandbox_root": private / "workspaces"})
    app = create_sandbox_app(backend=api["backend"], settings=settings, scheduling_for=lambda cfg, org, team: {})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        r = await client.get("/health")
    await app.state.engine.dispose()
    isolation = r.json()["isolation"]
    assert r.status_code == 200 and isolation["mode"] == "unavailable" and not isolation["available"]
    assert isolation["workspace_root"] == str(private / "workspaces")
    assert f"{private} is mode 0700" in isolation["reason"] and "INCIDENTFOX_SANDBOX_ROOT" in isolation["reason"]


@needs_bwrap
async def test_session_progress_is_mirrored_to_slack(api: dict[str, Any]) -> None:
    c, toks, server, reporter = api["client"], api["toks"], api["server"], api["reporter"]
    server.add(Reply([ToolUse("Bash", {"command": "uptime"})]), Reply([Text("Load is fine.")]))
    h = auth(toks["acme/payments"])
    sid = (await c.post("/sessions", json={"slack_channel": "C111", "slack_thread_ts": "1700.1"},
                        headers=h)).json()["session_id"]
    r = await c.post(f"/sessions/{sid}/messages", json={"text": "check load"}, headers=h)
    assert sse(r.text)[-1]["text"] == "Load is fine."
    assert reporter.calls[0][:3] == ("post", "C111", "1700.1")
    assert reporter.calls[-1][0] == "update" and reporter.calls[-1][3].endswith("✅ Load is fine.")
    assert "✅ `Bash` uptime" in reporter.calls[-1][3]


def test_builder_delegates_to_build_app() -> None:
    from pydantic import ValidationError
    from ray.serve import Application

    from serve_apps.builder import build_sandbox

    assert isinstance(build_sandbox({"namespace": "incidentfox", "prewarm": [{}]}), Application)
    with pytest.raises(ValidationError):
        build_sandbox({"unknown": 1})
