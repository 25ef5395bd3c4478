"""Sandbox sessions from Slack, through the gateway's HTTP layer (ASGI): a signed
``/incidentfox sandbox …`` command opens a session bound to a new thread, a signed threaded reply
continues it; the gateway records each delivery once and hands it to the sandbox side
(:class:`actors.sandbox.slack_dispatch.SlackDispatchCore`, in-process here, with its own database
engine as the ``sandbox-slack`` actor has); the real config service holds the team config, the
in-process sandbox backend runs the sessions, and the real ``anthropic`` SDK talks to the local
scripted server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from gateway_kit import (
    DEFAULT_ROUTES,
    StaticRoutes,
    client_for,
    make_core,
    seed_tenants,
    settings_for,
    signed,
    slack_event,
)
from sqlalchemy import select, update

from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.slack_dispatch import SlackDispatchCore
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs.models import Delivery, Run
from serve_apps import deliveries
from tests.sandbox_helpers import FakeSlack, make_root, needs_root, patch_team, remove_root

pytestmark = needs_root

ROUTES = {**DEFAULT_ROUTES, ("slack_channel_id", "C222"): ("acme", "search")}


@pytest.fixture
async def gw(sqlite_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    settings = settings_for(sqlite_url, tmp_path)
    await seed_tenants(sqlite_url, settings)
    server = ScriptedAnthropicServer().start()
    llm = {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-team-secret"}
    await patch_team(sqlite_url, settings, "acme", "payments",   # W111 may drive its sandbox
                     {"llm": llm, "integrations": {"slack": {"bot_token": "xoxb-payments"}},
                      "access": {"sandbox_users": ["W111"]}})
    await patch_team(sqlite_url, settings, "acme", "search",   # a bot, but no llm
                     {"integrations": {"slack": {"bot_token": "xoxb-search"}}, "access": {"sandbox_users": ["W111"]}})
    root = make_root()
    slack = FakeSlack()
    backend = LocalSandboxBackend(SandboxRuntime(root=root, db_url=sqlite_url, uid_base=380_000, uid_count=20_000,
                                                 sweep_interval_s=3600), reporter=slack)
    store = SandboxStore(sqlite_url)
    tokens: list[str] = []
    isolation = {"status": IsolationStatus(mode="bwrap", reason="ok")}
    engine = make_async_engine(sqlite_url)   # the sandbox side's own, as in the sandbox-slack actor
    sandbox_sessions = session_factory(engine)

    async def team_config(org: str, team: str) -> dict[str, Any]:
        from config_service.services.config import get_effective_config

        async with sandbox_sessions() as s:
            return await get_effective_config(s, org_id=org, node_id=team, reveal_secrets=True, settings=settings)

    def reporter_for(token: str) -> FakeSlack:
        tokens.append(token)
        return slack

    sandbox = SlackDispatchCore(sessions=sandbox_sessions, backend=backend, team_config=team_config,
                                reporter_for=reporter_for, scheduling_for=lambda cfg, org, team: {},
                                isolation=lambda: isolation["status"], busy_retry_s=0.05, engine=engine)
    core = make_core(sqlite_url, routes=StaticRoutes(ROUTES), sandbox=sandbox)

    async def drain() -> None:
        """The gateway's hand-offs, then the opens and turns they started on the sandbox side."""
        await core.drain()
        await sandbox.drain()

    async with client_for(core) as client:
        yield {"core": core, "client": client, "server": server, "slack": slack, "store": store,
               "tokens": tokens, "isolation": isolation, "sandbox": sandbox, "drain": drain}
    await drain()
    server.stop()
    await store.close()
    await backend.manager.store.close()
    await sandbox.close()
    await core.engine.dispose()
    remove_root(root)


def command(text: str, *, trigger_id: str, channel: str = "C111") -> bytes:
    return urlencode({"token": "x", "team_id": "T111", "channel_id": channel, "user_id": "W111",
                      "command": "/incidentfox", "text": text, "trigger_id": trigger_id,
                      "response_url": "https://hooks.slack.com/commands/T111/1/x"}).encode()


def reply(text: str, *, thread_ts: str, event_id: str, channel: str = "C111") -> bytes:
    return json.dumps({
        "type": "event_callback", "event_id": event_id, "team_id": "T111", "api_app_id": "A111",
        "event_time": int(time.time()),
        "authorizations": [{"user_id": "UBOT", "is_bot": True}],
        "event": {"type": "message", "channel": channel, "user": "W111", "text": text,
                  "ts": f"{time.time():.6f}", "thread_ts": thread_ts},
    }).encode()


async def rows(core: Any, model: Any) -> list[Any]:
    async with core.sessions() as s:
        return list((await s.scalars(select(model))).all())


def user_texts(transcript: list[dict[str, Any]]) -> list[str]:
    return [b["text"] for m in transcript if m["role"] == "user"
            for b in m["content"] if isinstance(b, dict) and b.get("type") == "text"]


async def wait_for_session(core: Any) -> SandboxSessionRow:
    async with asyncio.timeout(20):
        while not (found := await rows(core, SandboxSessionRow)):
            await asyncio.sleep(0.02)
    return found[0]


async def test_command_opens_one_session_and_a_reply_continues_it_in_order(gw: dict[str, Any]) -> None:
    core, c, server, slack = gw["core"], gw["client"], gw["server"], gw["slack"]
    # The first answer stalls, so the reply arrives while the first turn is still running.
    server.add(Reply([Text("First look: "), Text("nothing odd.")], stall_s=1.0), Reply([Text("Second answer.")]))
    body = command("sandbox what is in the workspace?", trigger_id="111.222.sbx")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["response_type"] == "ephemeral" and data["outcome"] == "sandbox_opened"
    assert "Sandbox session opened" in data["text"] and "duplicate" not in data
    # Slack retries the same command (same trigger_id): recorded once, no second session.
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["duplicate"] is True

    session = await wait_for_session(core)
    root_post = slack.calls[0]
    assert root_post[:3] == ("post", "C111", None) and "what is in the workspace?" in root_post[3]
    root_ts = "1700000000.000001"
    assert (session.org_id, session.team_id) == ("acme", "payments")
    assert (session.slack_channel, session.slack_thread_ts) == ("C111", root_ts)

    body2 = reply("and what about /tmp?", thread_ts=root_ts, event_id="EvReply1")
    r = await c.post("/slack/events", content=body2, headers=signed("slack", body2))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "sandbox_continued" and r.json()["session_id"] == session.id
    await gw["drain"]()

    assert len(await rows(core, SandboxSessionRow)) == 1
    transcript = await gw["store"].list_messages(session_id=session.id)
    assert user_texts(transcript) == ["what is in the workspace?", "and what about /tmp?"]
    assert [m["role"] for m in transcript] == ["user", "assistant", "user", "assistant"]
    # The second model call saw the first exchange: one conversation, in order.
    second = server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    # No investigation was started or continued; the deliveries are recorded once each.
    assert await rows(core, Run) == [] and core.runner.submitted == [] and core.runner.attached == []
    outcomes = sorted((d.delivery_id, d.outcome) for d in await rows(core, Delivery))
    assert outcomes == [("111.222.sbx", "sandbox_opened"), ("EvReply1", "sandbox_continued")]
    # The hosts mirrored both turns into the thread with the team's bot token.
    mirrored = [call for call in slack.calls if call[0] == "post" and call[2] == root_ts]
    assert len(mirrored) == 2 and all(session.id in call[3] for call in mirrored)
    finals = [call[3] for call in slack.calls if call[2] in {"1700000000.000002", "1700000000.000003"}]
    assert any("Second answer." in t for t in finals)
    assert set(gw["tokens"]) == {"xoxb-payments"}


async def test_investigation_thread_reply_is_not_routed_to_the_sandbox(gw: dict[str, Any], fixtures_dir: Path) -> None:
    core, c = gw["core"], gw["client"]
    body = slack_event(fixtures_dir, event_id="EvMention1")
    r = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.json()["outcome"] == "accepted"
    (run,) = await rows(core, Run)
    body2 = reply("any update?", thread_ts=run.thread_ts, event_id="EvInvReply")
    r = await c.post("/slack/events", content=body2, headers=signed("slack", body2))
    assert r.status_code == 200 and r.json()["outcome"] == "continued" and r.json()["run_id"] == run.id
    await core.drain()
    assert core.runner.attached == [(run.id, "EvInvReply")]
    assert await rows(core, SandboxSessionRow) == [] and gw["slack"].calls == []


async def test_reply_in_an_unknown_thread_keeps_the_investigation_behaviour(gw: dict[str, Any]) -> None:
    core, c = gw["core"], gw["client"]
    body = reply("hello?", thread_ts="1600000000.000001", event_id="EvStray")
    r = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["outcome"] == "unmatched"
    assert await rows(core, SandboxSessionRow) == []


async def test_team_without_llm_is_told_in_the_thread(gw: dict[str, Any]) -> None:
    core, c, slack = gw["core"], gw["client"], gw["slack"]
    body = command("sandbox list files", trigger_id="111.333.nollm", channel="C222")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["outcome"] == "sandbox_opened"
    await gw["drain"]()
    assert await rows(core, SandboxSessionRow) == []
    (root, notice) = slack.calls
    assert root[:3] == ("post", "C222", None)
    assert notice[:3] == ("post", "C222", "1700000000.000001") and "`llm`" in notice[3]
    (row,) = await rows(core, Delivery)
    assert "llm" in (row.dispatch_error or "")
    assert gw["tokens"] == ["xoxb-search"]


async def test_isolation_unavailable_is_told_in_the_thread(gw: dict[str, Any]) -> None:
    core, c, slack = gw["core"], gw["client"], gw["slack"]
    gw["isolation"]["status"] = IsolationStatus(mode="unavailable", reason="bwrap is not installed")
    body = command("sandbox run ls", trigger_id="111.444.noiso")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200
    await gw["drain"]()
    assert await rows(core, SandboxSessionRow) == []
    notice = slack.calls[-1]
    assert notice[2] == "1700000000.000001" and "isolation is unavailable" in notice[3]
    assert "bwrap is not installed" in notice[3]


async def test_unrouted_sandbox_command_says_no_team(gw: dict[str, Any]) -> None:
    core, c = gw["core"], gw["client"]
    body = command("sandbox hi", trigger_id="111.555.unrouted", channel="CNOBODY")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["outcome"] == "unrouted" and "No team" in r.json()["text"]
    assert await rows(core, SandboxSessionRow) == [] and await rows(core, Run) == []


async def test_concurrent_copies_of_a_command_open_one_session(gw: dict[str, Any]) -> None:
    core, c, server = gw["core"], gw["client"], gw["server"]
    server.add(Reply([Text("only once")]))
    body = command("sandbox count files", trigger_id="111.666.race")
    answers = await asyncio.gather(*(c.post("/slack/commands", content=body, headers=signed("slack", body))
                                     for _ in range(4)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(1 for a in answers if not a.json().get("duplicate")) == 1
    await gw["drain"]()
    assert len(await rows(core, SandboxSessionRow)) == 1 and len(server.requests) == 1
    assert len(await rows(core, Delivery)) == 1


async def test_default_wiring_reads_revealed_team_config_and_placement(gw: dict[str, Any], sqlite_url: str,
                                                                       tmp_path: Path, root: Path) -> None:
    """make_slack_dispatch (what the sandbox-slack actor runs): the config service's effective config
    with the bot token and API key revealed, and the engine's placement for a shared team."""
    from actors.sandbox.slack_actor import make_slack_dispatch

    # A traversable workspace root, as in production (tmp_path's parents are 0700).
    wired = make_slack_dispatch(settings_for(sqlite_url, tmp_path).model_copy(update={"sandbox_root": root}))
    try:
        cfg = await wired.team_config("acme", "payments")
        assert cfg["integrations"]["slack"]["bot_token"] == "xoxb-payments"
        assert cfg["llm"]["api_key"] == "sk-team-secret"
        assert wired.scheduling_for(cfg, "acme", "payments") == {"resources": {"shared": 0.001}}
        problem = await wired.problem(cfg)   # the node's real isolation: none, or a clear reason
        assert problem is None or problem.startswith("Sandbox isolation is unavailable on this node")
        search = await wired.team_config("acme", "search")
        assert "`llm`" in (await wired.problem(search) or "")
    finally:
        await wired.close()


class DiesBeforeHandOff:
    """The sandbox runner of a gateway replica that dies after recording a delivery and before
    handing it off: ``submit`` never returns (until the test lets it fail)."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def submit(self, *, delivery_pk: int) -> None:
        self.reached.set()
        await self.release.wait()
        raise ConnectionError("the replica is gone")


async def test_an_open_recorded_but_never_handed_off_is_redriven_by_the_sweep(gw: dict[str, Any],
                                                                             sqlite_url: str) -> None:
    core, server, slack, sandbox = gw["core"], gw["server"], gw["slack"], gw["sandbox"]
    server.add(Reply([Text("Recovered answer.")]))
    dying = DiesBeforeHandOff()
    replica = make_core(sqlite_url, routes=StaticRoutes(ROUTES), sandbox=dying)
    try:
        body = command("sandbox what survived?", trigger_id="111.777.lost")
        async with client_for(replica) as c:
            r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
        assert r.status_code == 200 and r.json()["outcome"] == "sandbox_opened"
        await dying.reached.wait()
        # Recorded, never handed off: no session, nothing in Slack, the row waits for a sweep.
        (row,) = await rows(core, Delivery)
        assert (row.outcome, row.dispatched_at, row.dispatch_attempts) == ("sandbox_opened", None, 0)
        assert await rows(core, SandboxSessionRow) == [] and slack.calls == []
        # A sweep without the sandbox side (the agent API's) leaves it to one that has it.
        assert await deliveries.sweep(core.sessions, core.runner, grace_s=0) == []

        assert await deliveries.sweep(core.sessions, core.runner, sandbox=sandbox, grace_s=0) == [row.id]
        await gw["drain"]()
        (session,) = await rows(core, SandboxSessionRow)
        assert (session.org_id, session.team_id, session.slack_channel) == ("acme", "payments", "C111")
        assert user_texts(await gw["store"].list_messages(session_id=session.id)) == ["what survived?"]
        assert slack.calls[0][:3] == ("post", "C111", None) and "what survived?" in slack.calls[0][3]
        (row,) = await rows(core, Delivery)
        assert row.dispatched_at is not None and row.dispatch_error is None

        # Handed off again (a lost mark, a racing redrive): the sandbox side's claim makes it a no-op.
        async with core.sessions() as s:
            await s.execute(update(Delivery).where(Delivery.id == row.id).values(dispatch_attempts=1))
            await s.commit()
        await sandbox.submit(delivery_pk=row.id)
        assert await deliveries.sweep(core.sessions, core.runner, sandbox=sandbox, grace_s=0) == []
        await gw["drain"]()
        assert len(await rows(core, SandboxSessionRow)) == 1 and len(server.requests) == 1
    finally:
        dying.release.set()
        await replica.drain()
        await replica.engine.dispose()
