"""A Slack thread has one owner, whether a run or a sandbox session bound it first
(:mod:`actors.sandbox.threads`). acme/payments and acme/search both name the unclaimed channel
CSHARED as their ``slack.default_channel``, so either may post there, but never into the other's
thread: through the real agent and sandbox HTTP apps on one database, in both directions, and
through the gateway's intake (Slack)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_kit import RecordingRunner, make_core, seed_tenants, settings_for
from sqlalchemy import func, select

from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import ScriptedAnthropicServer
from actors.sandbox.threads import thread_owner
from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs.models import Delivery, Run
from serve_apps import deliveries
from serve_apps.agent_api import create_agent_app
from serve_apps.sandbox.api import create_sandbox_app
from tests.sandbox_helpers import FakeSlack, make_root, needs_root, patch_team, remove_root

SHARED = "CSHARED"
RUN_THREAD, SANDBOX_THREAD = "1700000001.000100", "1700000002.000200"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def apps(sqlite_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    root = make_root()
    settings = settings_for(sqlite_url, tmp_path).model_copy(update={"sandbox_root": root})
    toks = await seed_tenants(sqlite_url, settings)
    server = ScriptedAnthropicServer().start()
    llm = {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-team-secret"}
    for team in ("payments", "search"):
        await patch_team(sqlite_url, settings, "acme", team, {"llm": llm, "slack": {"default_channel": SHARED}})
    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=420_000, uid_count=20_000, sweep_interval_s=3600)
    backend = LocalSandboxBackend(runtime, reporter=FakeSlack())
    sandbox = create_sandbox_app(backend=backend, settings=settings, scheduling_for=lambda cfg, org, team: {})
    runner = RecordingRunner()
    agent = create_agent_app(settings=settings, runner=runner)
    engine = make_async_engine(sqlite_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://sandbox") as sc, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=agent), base_url="http://agent") as ac:
        yield {"sandbox": sc, "agent": ac, "toks": toks, "agent_app": agent, "sessions": session_factory(engine),
               "runner": runner}
    await agent.state.dispatch_tasks.drain(10)
    server.stop()
    await agent.state.engine.dispose()
    await sandbox.state.engine.dispose()
    await backend.manager.store.close()
    await engine.dispose()
    remove_root(root)


async def _counts(sessions: Any) -> tuple[int, ...]:
    async with sessions() as s:
        return tuple([await s.scalar(select(func.count()).select_from(m)) for m in (Run, Delivery, SandboxSessionRow)])


def _is_thread_not_found(r: httpx.Response, *hidden: str) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "thread_not_found"
    for value in hidden:   # no hint of whose thread it is, nor of what is in it
        assert value not in r.text


@needs_root
async def test_a_sandbox_session_cannot_be_mirrored_into_another_teams_run_thread(apps: dict[str, Any]) -> None:
    """(a) search's session into payments' incident thread: the sandbox API refuses it exactly as the
    agent API refuses a run there (same status and body), and creates nothing."""
    sc, ac, toks, sessions = apps["sandbox"], apps["agent"], apps["toks"], apps["sessions"]
    r = await ac.post("/runs", json={"text": "db down", "thread_channel": SHARED, "thread_ts": RUN_THREAD},
                      headers=auth(toks["acme/payments"]))
    assert r.status_code == 202, r.text
    victim = r.json()["run_id"]
    await apps["agent_app"].state.dispatch_tasks.drain(10)
    before = await _counts(sessions)
    as_run = await ac.post("/runs", json={"text": "mine", "thread_channel": SHARED, "thread_ts": RUN_THREAD},
                           headers=auth(toks["acme/search"]))
    as_session = await sc.post("/sessions", json={"title": "x", "slack_channel": SHARED, "slack_thread_ts": RUN_THREAD},
                               headers=auth(toks["acme/search"]))
    _is_thread_not_found(as_session, victim, "payments")
    assert as_session.json() == as_run.json()
    assert await _counts(sessions) == before
    own = await sc.post("/sessions", json={"slack_channel": SHARED, "slack_thread_ts": RUN_THREAD},
                        headers=auth(toks["acme/payments"]))
    assert own.status_code == 201, own.text          # the owner may open a session in its own thread


@needs_root
async def test_a_run_cannot_squat_another_teams_sandbox_thread(apps: dict[str, Any]) -> None:
    """(b) search's run into payments' sandbox session thread is 404 and records nothing, so payments
    can still bind its own run there; the thread stays payments' after its session ended."""
    sc, ac, toks, sessions = apps["sandbox"], apps["agent"], apps["toks"], apps["sessions"]
    r = await sc.post("/sessions", json={"slack_channel": SHARED, "slack_thread_ts": SANDBOX_THREAD},
                      headers=auth(toks["acme/payments"]))
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    before = await _counts(sessions)
    r = await ac.post("/runs", json={"text": "mine", "thread_channel": SHARED, "thread_ts": SANDBOX_THREAD},
                      headers=auth(toks["acme/search"]))
    _is_thread_not_found(r, sid, "payments")
    r = await sc.post("/sessions", json={"slack_channel": SHARED, "slack_thread_ts": SANDBOX_THREAD},
                      headers=auth(toks["acme/search"]))
    _is_thread_not_found(r, sid, "payments")
    await apps["agent_app"].state.dispatch_tasks.drain(10)
    assert await _counts(sessions) == before and apps["runner"].submitted == []
    r = await ac.post("/runs", json={"text": "from the sandbox", "thread_channel": SHARED, "thread_ts": SANDBOX_THREAD},
                      headers=auth(toks["acme/payments"]))
    assert r.status_code == 202, r.text               # the owner's own run in its sandbox thread
    assert (await sc.delete(f"/sessions/{sid}", headers=auth(toks["acme/payments"]))).status_code == 200
    r = await ac.post("/runs", json={"text": "now?", "thread_channel": SHARED, "thread_ts": SANDBOX_THREAD},
                      headers=auth(toks["acme/search"]))
    _is_thread_not_found(r, sid)
    async with sessions() as s:
        assert await thread_owner(s, channel=SHARED, thread_ts=SANDBOX_THREAD) == ("acme", "payments")


async def _session(store: SandboxStore, sid: str, *, team: str, thread_ts: str, uid_base: int) -> SandboxSessionRow:
    return await store.create_session(session_id=sid, org_id="acme", team_id=team, workspace="/w", ttl_s=600,
                                      uid_base=uid_base, uid_count=1000, slack_channel=SHARED,
                                      slack_thread_ts=thread_ts)


async def _squat(store: SandboxStore, sid: str, *, team: str, thread_ts: str, uid: int) -> SandboxSessionRow:
    """A session row bound to a thread as a release before the thread claim could have stored it."""
    now = datetime.now(UTC)
    row = SandboxSessionRow(id=sid, org_id="acme", team_id=team, status="active", uid=uid, workspace="/w",
                            ttl_s=600, created_at=now, last_active_at=now, expires_at=now + timedelta(minutes=10),
                            turns=0, busy=False, config={}, scheduling={}, slack_channel=SHARED,
                            slack_thread_ts=thread_ts)
    async with store.sessions() as s:
        s.add(row)
        await s.commit()
    return row


async def test_slack_intake_keeps_an_ended_sandbox_thread_its_teams(sqlite_url: str) -> None:
    """A mention routed to search in payments' ended sandbox session thread (search now routes the
    channel) binds no run there, on the checked path and on SQLite's group commit."""
    from serve_apps.deliveries.batch import IntakeBatcher

    core = make_core(sqlite_url)
    store = SandboxStore(sqlite_url)
    row = await _session(store, "sbx_ended", team="payments", thread_ts=SANDBOX_THREAD, uid_base=430_000)
    assert await store.end_session(session_id=row.id, status="expired", reason="ttl")
    mention = Trigger(source="slack", delivery_id="M1", event_kind="app_mention", text="hi", human=True,
                      thread={"channel": SHARED, "ts": SANDBOX_THREAD})
    search = deliveries.Route(True, "acme", "search")
    result = await deliveries.intake(core.sessions, trigger=mention, route=search, payload="")
    assert (result.outcome, result.run_id) == ("rejected", None)
    batched = await IntakeBatcher(core.sessions).intake(trigger=mention.model_copy(update={"delivery_id": "M2"}),
                                                        route=search, payload="")
    assert (batched.outcome, batched.run_id) == ("rejected", None)
    own = await deliveries.intake(core.sessions, trigger=mention.model_copy(update={"delivery_id": "M3"}),
                                  route=deliveries.Route(True, "acme", "payments"), payload="")
    assert own.outcome == "accepted"
    async with core.sessions() as s:
        assert set((await s.scalars(select(Run.team_id))).all()) == {"payments"}
    await store.close()
    await core.engine.dispose()


async def test_a_session_squatting_a_run_thread_is_not_continued_from_slack(sqlite_url: str) -> None:
    """A search session bound into payments' run thread before this rule (stored directly): a reply
    routed to search does not reach it; payments' reply is a turn of payments' run."""
    core = make_core(sqlite_url)
    root = Trigger(source="slack", delivery_id="R0", event_kind="app_mention", text="db down", human=True,
                   thread={"channel": SHARED, "ts": RUN_THREAD})
    first = await deliveries.intake(core.sessions, trigger=root, route=deliveries.Route(True, "acme", "payments"),
                                    payload="")
    assert first.outcome == "accepted"
    store = SandboxStore(sqlite_url)
    squatter = await _squat(store, "sbx_squat", team="search", thread_ts=RUN_THREAD, uid=440_000)
    reply = root.model_copy(update={"action": TriggerAction.CONTINUE, "event_kind": "message", "text": "rm -rf"})
    theirs = await deliveries.intake(core.sessions, trigger=reply.model_copy(update={"delivery_id": "R1"}),
                                     route=deliveries.Route(True, "acme", "search"), payload="")
    assert (theirs.outcome, theirs.session_id, theirs.dispatch) == ("unmatched", None, None)
    assert squatter.id not in str(theirs.response())
    owner = await deliveries.intake(core.sessions, trigger=reply.model_copy(update={"delivery_id": "R2"}),
                                    route=deliveries.Route(True, "acme", "payments"), payload="")
    assert (owner.outcome, owner.run_id, owner.session_id) == ("continued", first.run_id, None)
    await store.close()
    await core.engine.dispose()
