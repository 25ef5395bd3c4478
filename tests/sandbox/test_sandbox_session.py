"""Sandbox sessions end to end without Ray: the real anthropic SDK against the scripted
Anthropic-compatible server, the in-process manager/host, SQLite (and PostgreSQL where marked)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.errors import McpNotAllowed, SessionExpired, TurnInProgress
from actors.sandbox.reaping import uid_processes
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse, tool_results
from incidentfox.errors import Unprocessable
from tests.sandbox_helpers import needs_bwrap, needs_root

pytestmark = needs_root
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[ScriptedAnthropicServer]:
    with ScriptedAnthropicServer() as srv:
        yield srv


def runtime(db: str, root: Path, **kw: Any) -> SandboxRuntime:
    return SandboxRuntime(**{"root": root, "db_url": db, "uid_base": 310_000, "uid_count": 20_000,
                             "sweep_interval_s": 3600, **kw})


@pytest.fixture
async def backend(sqlite_url: str, root: Path) -> AsyncIterator[LocalSandboxBackend]:
    b = LocalSandboxBackend(runtime(sqlite_url, root))
    await b.start()
    yield b
    await b.manager.stop()


def llm(server: ScriptedAnthropicServer) -> dict[str, Any]:
    return {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-test"}


async def collect(agen: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev async for ev in agen]


@needs_bwrap
async def test_multi_turn_session_uses_every_tool(backend: LocalSandboxBackend, server: ScriptedAnthropicServer,
                                                  sqlite_url: str) -> None:
    server.add(
        Reply([Text("Let me create the files."),
               ToolUse("Write", {"file_path": "/workspace/svc/config.yaml", "content": "replicas: 1\nimage: v1\n"}),
               ToolUse("Bash", {"command": "cat svc/config.yaml | wc -l && id -u"})]),
        Reply([Text("Created config.yaml with 2 lines.")]),
        Reply([ToolUse("Read", {"file_path": "svc/config.yaml"}),
               ToolUse("Edit", {"file_path": "svc/config.yaml", "old_string": "replicas: 1", "new_string": "replicas: 3"})]),
        Reply([ToolUse("Grep", {"pattern": "replicas", "output_mode": "content"}),
               ToolUse("Glob", {"pattern": "**/*.yaml"})]),
        Reply([Text("Scaled to 3 replicas.")]),
    )
    created = await backend.create_session(org_id="acme", team_id="sre", created_by="token:t1", title="t")
    sid = created["session_id"]
    turn1 = await collect(backend.send_message(sid, text="create a config", llm=llm(server)))
    kinds = [e["type"] for e in turn1]
    assert kinds[0] == "thought" and kinds[-1] == "result"
    assert [e["name"] for e in turn1 if e["type"] == "tool_start"] == ["Write", "Bash"]
    bash_end = [e for e in turn1 if e["type"] == "tool_end"][1]
    assert not bash_end["is_error"] and bash_end["output"].split()[0] == "2"
    assert turn1[-1]["text"] == "Created config.yaml with 2 lines."
    turn2 = await collect(backend.send_message(sid, text="scale it to 3", llm=llm(server)))
    assert [e["name"] for e in turn2 if e["type"] == "tool_start"] == ["Read", "Edit", "Grep", "Glob"]
    assert turn2[-1] == {"type": "result", "text": "Scaled to 3 replicas.", "stop_reason": "end_turn",
                         "usage": {"input_tokens": 33, "output_tokens": 21}}
    # What the model saw: the whole history, tool results included, and the six tools.
    req = server.requests[2]
    assert [m["role"] for m in req["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert req["messages"][0]["content"][0]["text"] == "create a config"
    assert {t["name"] for t in req["tools"]} == {"Read", "Write", "Edit", "Bash", "Grep", "Glob"}
    assert req["model"] == "claude-test"
    auth = server.headers[0]
    assert auth.get("x-api-key") == "sk-test" or auth.get("authorization") == "Bearer sk-test"
    grep, glob = tool_results(server.requests[4])
    assert grep["content"] == "/workspace/svc/config.yaml:1:replicas: 3"
    assert glob["content"] == "/workspace/svc/config.yaml"
    # Persisted after each step: 2 user inputs, 5 assistant messages, 3 tool-result messages.
    store = SandboxStore(sqlite_url)
    rows = await store.list_messages(session_id=sid)
    assert [r["role"] for r in rows] == ["user", "assistant", "user", "assistant",
                                         "user", "assistant", "user", "assistant", "user", "assistant"]
    assert (await store.get_session(session_id=sid)).turns == 2
    await store.close()


@needs_bwrap
async def test_interrupt_long_bash_then_continue(backend: LocalSandboxBackend, server: ScriptedAnthropicServer) -> None:
    server.add(Reply([ToolUse("Bash", {"command": "sleep 300; echo never", "timeout": 600000})]),
               Reply([Text("OK, stopped.")]))
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    uid = (await backend.manager.store.get_session(session_id=sid)).uid
    stream = backend.send_message(sid, text="run the long job", llm=llm(server))
    seen = []
    async for ev in stream:
        seen.append(ev)
        if ev["type"] == "tool_start":
            break
    while not uid_processes(uid):  # the command is running
        await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await backend.interrupt(sid) is True
    rest = [ev async for ev in stream]
    assert loop.time() - t0 < 5
    assert rest[-1]["type"] == "interrupted" and uid_processes(uid) == []
    turn2 = await collect(backend.send_message(sid, text="never mind", llm=llm(server)))
    assert turn2[-1]["text"] == "OK, stopped."
    req = server.requests[1]  # valid for the API: the tool_use got an "interrupted" tool_result
    assert req["messages"][-1]["content"][0]["type"] == "tool_result"
    assert "interrupted" in req["messages"][-1]["content"][0]["content"]
    assert req["messages"][-1]["content"][1] == {"type": "text", "text": "never mind"}


@needs_bwrap
async def test_a_session_opened_while_bash_was_unavailable_runs_it_once_the_host_can(
        backend: LocalSandboxBackend, server: ScriptedAnthropicServer) -> None:
    """A transient probe failure (a saturated node) while a session opens must not disable Bash for
    the session's whole life: each turn of a session without isolation asks its host again."""
    from actors.sandbox.isolation import IsolationStatus

    server.add(Reply([ToolUse("Bash", {"command": "echo back"})]), Reply([Text("done")]))
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    host = backend.manager.host_handle(backend.manager.where(sid))
    session = host.sessions[sid]
    assert session.isolation.available
    session.isolation = IsolationStatus("unavailable", "bubblewrap could not start: timed out")
    out = await collect(backend.send_message(sid, text="echo", llm=llm(server)))
    assert next(e for e in out if e["type"] == "tool_end")["output"] == "back"
    assert session.isolation.mode == "bwrap"


async def test_interrupt_during_model_stream(backend: LocalSandboxBackend, server: ScriptedAnthropicServer) -> None:
    server.add(Reply([Text("Thinking about a very long answer that will be cut")], stall_s=30),
               Reply([Text("Here is the short answer.")]))
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    stream = backend.send_message(sid, text="explain", llm=llm(server))
    first = await stream.__anext__()
    assert first["type"] == "thought"
    assert await backend.interrupt(sid)
    rest = [ev async for ev in stream]
    assert rest[-1]["type"] == "interrupted"
    out = await collect(backend.send_message(sid, text="short please", llm=llm(server)))
    assert out[-1]["text"] == "Here is the short answer."
    msgs = server.requests[1]["messages"]
    assert msgs[1] == {"role": "assistant", "content": [{"type": "text", "text": first["text"]}]}
    assert msgs[2]["content"][0]["text"] == "short please"


async def test_second_message_while_busy_is_refused(backend: LocalSandboxBackend,
                                                    server: ScriptedAnthropicServer) -> None:
    server.add(Reply([Text("slow")], stall_s=30))
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    stream = backend.send_message(sid, text="one", llm=llm(server))
    await stream.__anext__()
    with pytest.raises(TurnInProgress):
        await backend.send_message(sid, text="two", llm=llm(server)).__anext__()
    await backend.interrupt(sid)
    await stream.aclose()


async def test_model_error_keeps_session_usable(backend: LocalSandboxBackend, server: ScriptedAnthropicServer) -> None:
    server.add(Reply(status=400, error_message="prompt is too long"), Reply([Text("fine now")]))
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    out = await collect(backend.send_message(sid, text="hi", llm=llm(server)))
    assert out[-1]["type"] == "error" and out[-1]["code"] == "model_error"
    assert "prompt is too long" in out[-1]["message"]
    out = await collect(backend.send_message(sid, text="again", llm=llm(server)))
    assert out[-1]["text"] == "fine now"
    assert [m["role"] for m in server.requests[1]["messages"]] == ["user"]  # both inputs, merged


async def test_ttl_expiry_removes_workspace_keeps_transcript(sqlite_url: str, root: Path,
                                                              server: ScriptedAnthropicServer) -> None:
    b = LocalSandboxBackend(runtime(sqlite_url, root, ttl_s=0.5, sweep_interval_s=0.05))
    server.add(Reply([ToolUse("Write", {"file_path": "notes.txt", "content": "x"})]), Reply([Text("done")]))
    sid = (await b.create_session(org_id="acme", team_id="sre", sandbox={"ttl_s": 600}))["session_id"]
    short = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
    await collect(b.send_message(sid, text="write", llm=llm(server)))
    assert (root / sid / "notes.txt").exists()
    store = b.manager.store
    row = await store.get_session(session_id=sid)
    assert row.ttl_s == 600  # the team's sandbox.ttl_s wins over the platform default
    # An explicit sweep at a given time (the TTL counts from the last activity)...
    expired = await b.manager.sweep(now=row.expires_at + timedelta(seconds=1))
    assert sid in expired
    row = await store.get_session(session_id=sid)
    assert row.status == "expired" and row.uid is None and row.end_reason == "ttl"
    assert not (root / sid).exists()
    assert [m["role"] for m in await store.list_messages(session_id=sid)] == ["user", "assistant", "user", "assistant"]
    with pytest.raises(SessionExpired):
        await b.send_message(sid, text="hello?", llm=llm(server)).__anext__()
    # ...and the background sweep expires the short-TTL session by itself.
    await b.start()
    async with asyncio.timeout(10):
        while (await store.get_session(session_id=short)).status != "expired":
            await asyncio.sleep(0.05)
    assert not (root / short).exists()
    await b.manager.stop()


async def test_activity_defers_expiry(backend: LocalSandboxBackend, server: ScriptedAnthropicServer) -> None:
    sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    store = backend.manager.store
    row = await store.get_session(session_id=sid)
    before = row.expires_at
    server.add(Reply([Text("hi")]))
    await collect(backend.send_message(sid, text="hi", llm=llm(server)))
    assert (await store.get_session(session_id=sid)).expires_at > before  # a message is activity
    hour = timedelta(hours=1)
    await store.touch(session_id=sid, now=row.created_at + hour)  # activity one hour in
    assert await backend.manager.sweep(now=row.created_at + 2 * hour + timedelta(seconds=1)) == []
    assert await backend.manager.sweep(now=row.created_at + 3 * hour + timedelta(seconds=1)) == [sid]


async def test_sessions_get_distinct_uids_and_workspaces(backend: LocalSandboxBackend) -> None:
    a = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    b = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
    store = backend.manager.store
    ra, rb = await store.get_session(session_id=a), await store.get_session(session_id=b)
    assert ra.uid != rb.uid and 310_000 <= ra.uid < 330_000
    assert ra.workspace != rb.workspace
    assert await backend.delete_session(a) is True
    assert (await store.get_session(session_id=a)).status == "deleted"
    assert not Path(ra.workspace).exists() and Path(rb.workspace).exists()


async def test_mcp_servers_only_from_the_allow_list(backend: LocalSandboxBackend, server: ScriptedAnthropicServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    from actors.sandbox.mcp import cipher_from_settings, encrypt_env
    from incidentfox.settings import Settings

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", key)
    monkeypatch.setattr("incidentfox.settings.get_settings", lambda: Settings())
    env = encrypt_env({"DEMO_TOKEN": "tok-12345"}, cipher_from_settings(Settings()))
    await backend.manager.store.replace_allowlist(entries=[
        {"name": "status", "transport": "stdio", "command": [sys.executable, str(ROOT / "sandbox_mcp_server.py")],
         "env": env, "tool_timeout_s": 20}], updated_by="admin")
    with pytest.raises(Unprocessable):  # a tenant can never name a command
        await backend.create_session(org_id="acme", team_id="sre",
                                     sandbox={"mcp_servers": [{"command": ["/bin/sh", "-c", "id"]}]})
    sid = (await backend.create_session(org_id="acme", team_id="sre",
                                        sandbox={"mcp_servers": ["status"]}))["session_id"]
    with pytest.raises(McpNotAllowed):
        await backend.send_message(sid, text="x", llm=llm(server),
                                   sandbox={"mcp_servers": ["status", "not-listed"]}).__anext__()
    server.add(Reply([ToolUse("mcp__status__service_status", {"service": "checkout"})]), Reply([Text("degraded")]))
    out = await collect(backend.send_message(sid, text="how is checkout?", llm=llm(server),
                                             sandbox={"mcp_servers": ["status"]}))
    end = next(e for e in out if e["type"] == "tool_end")
    assert end["name"] == "mcp__status__service_status" and not end["is_error"]
    assert end["output"].startswith("checkout: degraded") and "token=tok-" in end["output"]
    assert "mcp__status__service_status" in {t["name"] for t in server.requests[0]["tools"]}
    assert out[-1]["text"] == "degraded"


@needs_bwrap
@pytest.mark.postgres
async def test_transcript_round_trip_on_postgres(pg_url: str, root: Path, server: ScriptedAnthropicServer) -> None:
    b = LocalSandboxBackend(runtime(pg_url, root))
    server.add(Reply([ToolUse("Bash", {"command": "echo pg"})]), Reply([Text("ok")]))
    sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
    out = await collect(b.send_message(sid, text="hi", llm=llm(server)))
    assert out[-1]["text"] == "ok"
    rows = await b.manager.store.list_messages(session_id=sid)
    assert rows[2]["content"][0]["content"] == "pg"
    await b.manager.store.close()


async def test_hosts_follow_the_scheduling_constraint_and_fill_in_order(sqlite_url: str, root: Path) -> None:
    from actors.sandbox.manager import LocalSpawner, SandboxManagerCore

    spawned: list[tuple[str, dict[str, Any]]] = []

    class Recording(LocalSpawner):
        def spawn(self, name: str, scheduling: dict[str, Any]) -> Any:
            spawned.append((name, scheduling))
            return super().spawn(name, scheduling)

    rt = runtime(sqlite_url, root, sessions_per_host=4)
    mgr = SandboxManagerCore(rt, spawner=Recording(rt))
    shared = {"resources": {"shared": 0.001}}
    dedicated = {"resources": {"team_acme_sre": 0.001}}
    a = [await mgr.create_session(org_id="acme", team_id="web", scheduling=shared) for _ in range(5)]
    b = await mgr.create_session(org_id="acme", team_id="sre", scheduling=dedicated,
                                 slack={"channel": "C9", "thread_ts": "171.5"})
    assert [s for _, s in spawned] == [shared, shared, dedicated]  # a spare once 3/4 full, per group
    hosts = [x["host"] for x in a]
    assert hosts[:4] == [hosts[0]] * 4 and hosts[4] != hosts[0]  # packed, then the spare
    assert b["host"] not in hosts                                 # never shares a host across constraints
    row = await mgr.store.find_by_thread(channel="C9", thread_ts="171.5")
    assert row.id == b["session_id"] and row.scheduling == dedicated
    assert await mgr.store.find_by_thread(channel="C9", thread_ts="nope") is None
    await mgr.store.close()


async def test_pod_backend_hosts_live_on_shared_workers_even_for_dedicated_teams(sqlite_url: str, root: Path) -> None:
    """With the pod backend a session's commands run in its own pod; its host only relays them and
    needs the platform's Kubernetes identity, which dedicated worker groups do not carry."""
    from actors.sandbox.manager import LocalSpawner, SandboxManagerCore

    spawned: list[dict[str, Any]] = []

    class Recording(LocalSpawner):
        def spawn(self, name: str, scheduling: dict[str, Any]) -> Any:
            spawned.append(scheduling)
            return super().spawn(name, scheduling)

    rt = runtime(sqlite_url, root, backend="pod")
    mgr = SandboxManagerCore(rt, spawner=Recording(rt))
    made = await mgr.create_session(org_id="acme", team_id="sre",
                                    scheduling={"resources": {"team_acme_sre": 0.001}})
    row = await mgr.store.get_session(session_id=made["session_id"])
    assert spawned and all(s == {"resources": {"shared": 0.001}} for s in spawned)
    assert row.scheduling == {"resources": {"shared": 0.001}}
    await mgr.store.close()


async def test_a_keyed_create_whose_host_failed_is_opened_again_on_retry(sqlite_url: str, root: Path) -> None:
    """The first attempt's host never opened the session (the caller got the error): a retry under
    the same Idempotency-Key opens it, under the same id, instead of answering a dead session; a
    retry after that answers it even with the team at its session limit."""
    from actors.sandbox.errors import HostUnavailable
    from actors.sandbox.manager import LocalSpawner, SandboxManagerCore

    class FailingOnce(LocalSpawner):
        failed = False

        async def call(self, handle: Any, method: str, **kwargs: Any) -> Any:
            if method == "open_session" and not FailingOnce.failed:
                FailingOnce.failed = True
                raise HostUnavailable("no host")
            return await super().call(handle, method, **kwargs)

    rt = runtime(sqlite_url, root)
    mgr = SandboxManagerCore(rt, spawner=FailingOnce(rt))
    with pytest.raises(HostUnavailable):
        await mgr.create_session(org_id="acme", team_id="sre", title="t", key="k1")
    cap = {"max_open_sessions": 1}   # the retry is the one open session, not a second one over the cap
    made = await mgr.create_session(org_id="acme", team_id="sre", title="t", key="k1", sandbox=cap)
    again = await mgr.create_session(org_id="acme", team_id="sre", title="t", key="k1", sandbox=cap)
    assert "duplicate" not in made and again["duplicate"] is True
    assert again["session_id"] == made["session_id"]
    row = await mgr.store.get_session(session_id=made["session_id"])
    assert row.status == "active" and row.end_reason is None
    await mgr.store.close()
