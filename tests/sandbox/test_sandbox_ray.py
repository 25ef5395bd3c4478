"""Sandbox on Ray: the named manager, hosting actors, streaming turns, interrupt across processes,
and resume after the hosting actor is killed (history survives, no turn lost)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actors.sandbox.client import RaySandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.manager import get_or_create_manager
from actors.sandbox.reaping import uid_processes
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse, tool_results
from tests.sandbox_helpers import needs_bwrap, needs_root

pytestmark = [pytest.mark.ray, needs_root]


@pytest.fixture
async def ray_backend(ray_session: None, sqlite_url: str, root: Path) -> AsyncIterator[RaySandboxBackend]:
    import ray

    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=340_000, uid_count=20_000,
                             namespace=f"sbx-test-{uuid.uuid4().hex[:8]}", sweep_interval_s=3600)
    manager = get_or_create_manager(runtime, prewarm=[{}], detached=False)
    await manager.start.remote()
    yield RaySandboxBackend(manager, namespace=runtime.namespace)
    ray.kill(manager)  # its hosts are owned by it and go with it


def llm(server: ScriptedAnthropicServer) -> dict[str, Any]:
    return {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-test"}


async def collect(agen: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev async for ev in agen]


async def test_resume_after_host_actor_is_killed(ray_backend: RaySandboxBackend, sqlite_url: str) -> None:
    import ray

    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Write", {"file_path": "incident.md", "content": "checkout 5xx since 10:02\n"})]),
                   Reply([Text("Noted the incident.")]),
                   Reply([ToolUse("Read", {"file_path": "incident.md"})]),
                   Reply([Text("It started at 10:02.")]))
        sid = (await ray_backend.create_session(org_id="acme", team_id="sre"))["session_id"]
        turn1 = await collect(ray_backend.send_message(sid, text="note: checkout 5xx since 10:02", llm=llm(server)))
        assert turn1[-1] == {"type": "result", "text": "Noted the incident.", "stop_reason": "end_turn",
                             "usage": {"input_tokens": 22, "output_tokens": 14}}
        first_host = await ray_backend.manager.where.remote(session_id=sid)
        ray.kill(ray.get_actor(first_host, namespace=ray_backend.namespace), no_restart=True)

        turn2 = await collect(ray_backend.send_message(sid, text="when did it start?", llm=llm(server)))
        assert turn2[-1]["text"] == "It started at 10:02."
        read_end = next(e for e in turn2 if e["type"] == "tool_end")
        assert read_end["output"] == "     1\tcheckout 5xx since 10:02"  # the workspace survived too
        second_host = await ray_backend.manager.where.remote(session_id=sid)
        assert second_host and second_host != first_host
        # The first request after the kill carried the whole first turn: no turn was lost.
        msgs = server.requests[2]["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
        assert msgs[0]["content"][0]["text"] == "note: checkout 5xx since 10:02"
        assert msgs[-1]["content"][0]["text"] == "when did it start?"
    store = SandboxStore(sqlite_url)
    row = await store.get_session(session_id=sid)
    assert row.host == second_host and row.turns == 2
    await store.close()


@needs_bwrap
async def test_interrupt_across_processes(ray_backend: RaySandboxBackend, sqlite_url: str) -> None:
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Bash", {"command": "sleep 600", "timeout": 600000})]), Reply([Text("stopped")]))
        sid = (await ray_backend.create_session(org_id="acme", team_id="sre"))["session_id"]
        store = SandboxStore(sqlite_url)
        uid = (await store.get_session(session_id=sid)).uid
        stream = ray_backend.send_message(sid, text="run it", llm=llm(server))
        async for ev in stream:
            if ev["type"] == "tool_start":
                break
        async with asyncio.timeout(30):
            while not uid_processes(uid):
                await asyncio.sleep(0.02)
        assert await ray_backend.interrupt(sid) is True
        rest = await collect(stream)
        assert rest[-1]["type"] == "interrupted" and uid_processes(uid) == []
        out = await collect(ray_backend.send_message(sid, text="ok", llm=llm(server)))
        assert out[-1]["text"] == "stopped"
        assert "interrupted" in tool_results(server.requests[1])[0]["content"]
        stats = await ray_backend.stats()
        assert stats["sessions"] == 1 and stats["hosts"][0]["rss_bytes"] > 0
        await store.close()
