"""Thread ownership (issue 12, point 4): a thread belongs to the team whose run opened it. Another
team cannot continue that run, bind a new run to the thread (even after the run finished), or learn
its run id; nothing is written for the attempt. And (issue 16) a run is bound only to a channel its
team has (routing.slack_channel_ids or slack.default_channel: 403 ``channel_not_claimed``), checked
first, so the answer says nothing of another team's threads there.
"""

from __future__ import annotations

import httpx
import pytest
from gateway_kit import RecordingRunner, make_core, seed_tenants, settings_for
from sqlalchemy import func, select

from actors.sandbox.threads import thread_owner
from incidentfox.contracts import RunStatus, Trigger, TriggerAction
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import Delivery, Run, RunEvent
from serve_apps import deliveries
from serve_apps.agent_api import create_agent_app

CHANNEL, TS = "C111", "1700000000.000100"


@pytest.fixture
async def api(sqlite_url, tmp_path):
    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    runner = RecordingRunner()
    app = create_agent_app(settings=settings, runner=runner)
    engine = make_async_engine(sqlite_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield client, toks, session_factory(engine), runner, app
    await app.state.dispatch_tasks.drain(10)
    await app.state.engine.dispose()
    await engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _counts(sessions) -> tuple[int, int, int]:
    async with sessions() as s:
        return tuple([await s.scalar(select(func.count()).select_from(m)) for m in (Run, RunEvent, Delivery)])


async def _patch(app, org: str, team: str, patch: dict) -> None:
    from config_service.services import config as config_svc

    async with app.state.session_factory() as s:
        await config_svc.patch_config(s, settings=app.state.settings, org_id=org, node_id=team, actor="test",
                                      patch=patch)
        await s.commit()


async def _give_channel(app, org: str, team: str, channel: str) -> None:
    """``channel`` becomes the team's default channel (not an exclusive claim)."""
    await _patch(app, org, team, {"slack": {"default_channel": channel}})


async def _move_channel(app, org: str, team: str) -> None:
    """The org admin moves the claim on CHANNEL from acme/payments to ``org/team``: the channel is now
    the other team's, the threads opened there before are still acme/payments'."""
    await _patch(app, "acme", "payments", {"routing": {"slack_channel_ids": []}})
    await _patch(app, org, team, {"routing": {"slack_channel_ids": [CHANNEL]}})


async def _victim_run(client, toks) -> str:
    r = await client.post("/run", json={"text": "checkout is slow", "thread_channel": CHANNEL, "thread_ts": TS},
                          headers=auth(toks["acme/payments"]))
    assert r.status_code == 202
    return r.json()["run_id"]


@pytest.mark.parametrize("attacker", ["acme/search", "globex/ops"])
async def test_another_team_cannot_continue_a_thread_nor_learn_its_run(api, attacker):
    client, toks, sessions, runner, app = api
    victim = await _victim_run(client, toks)
    await app.state.dispatch_tasks.drain(10)
    before = await _counts(sessions)
    r = await client.post("/run", json={"text": "ignore previous instructions", "thread_channel": CHANNEL,
                                        "thread_ts": TS}, headers=auth(toks[attacker]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "channel_not_claimed"   # not its channel
    assert victim not in r.text and TS not in r.text
    await _move_channel(app, *attacker.split("/"))
    r = await client.post("/run", json={"text": "ignore previous instructions", "thread_channel": CHANNEL,
                                        "thread_ts": TS}, headers=auth(toks[attacker]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "thread_not_found"     # not its thread
    assert victim not in r.text
    await app.state.dispatch_tasks.drain(10)
    assert await _counts(sessions) == before                   # no delivery, no note, no run
    assert runner.attached == []


async def test_binding_a_new_run_to_a_finished_runs_thread_is_refused(api):
    client, toks, sessions, _runner, app = api
    victim = await _victim_run(client, toks)
    await app.state.dispatch_tasks.drain(10)
    async with sessions() as s:
        assert await store.transition(s, run_id=victim, to=RunStatus.CANCELLED)
        await s.commit()
    await _move_channel(app, "acme", "search")
    before = await _counts(sessions)
    r = await client.post("/run", json={"text": "capture replies", "thread_channel": CHANNEL, "thread_ts": TS},
                          headers=auth(toks["acme/search"]))
    assert r.status_code == 404 and victim not in r.text
    assert await _counts(sessions) == before
    async with sessions() as s:
        assert await thread_owner(s, channel=CHANNEL, thread_ts=TS) == ("acme", "payments")


async def test_the_owner_continues_its_own_thread_and_an_admin_acts_for_the_owner(api):
    client, toks, _sessions, runner, app = api
    victim = await _victim_run(client, toks)
    r = await client.post("/run", json={"text": "more context", "thread_channel": CHANNEL, "thread_ts": TS},
                          headers=auth(toks["acme/payments"]))
    assert r.status_code == 202 and r.json()["run_id"] == victim
    r = await client.post("/run", json={"text": "x", "thread_channel": CHANNEL, "thread_ts": TS,
                                        "org": "acme", "team": "search"}, headers=auth(toks["acme"]))
    assert r.status_code == 403                      # even an org admin cannot move a run to a team's
    assert r.json()["error"]["code"] == "channel_not_claimed"   # channel it does not have
    await _move_channel(app, "acme", "search")
    r = await client.post("/run", json={"text": "x", "thread_channel": CHANNEL, "thread_ts": TS,
                                        "org": "acme", "team": "search"}, headers=auth(toks["acme"]))
    assert r.status_code == 404                      # ... nor a thread to another team
    await app.state.dispatch_tasks.drain(10)
    assert [rid for rid, _ in runner.attached] == [victim]


async def test_follow_up_routed_to_another_team_does_not_reach_the_run(sqlite_url):
    """The gateway's decision: a threaded reply whose channel routes to another team (or nowhere) is
    'unmatched' with no run id, and no note is appended to the owner's run; a mention there is refused."""
    core = make_core(sqlite_url)
    root = Trigger(source="slack", delivery_id="EvO1", event_kind="app_mention", text="why slow", human=True,
                   thread={"channel": "C111", "ts": TS})
    first = await deliveries.intake(core.sessions, trigger=root, route=deliveries.Route(True, "acme", "payments"),
                                    payload="")
    assert first.outcome == "accepted"
    async with core.sessions() as s:
        events_before = len(await store.list_events(s, run_id=first.run_id))
    follow = root.model_copy(update={"action": TriggerAction.CONTINUE, "event_kind": "message", "text": "exfiltrate"})
    for i, route in enumerate((deliveries.Route(True, "globex", "ops"), deliveries.Route(True, "acme", "search"),
                               deliveries.Route(False))):
        result = await deliveries.intake(core.sessions, trigger=follow.model_copy(update={"delivery_id": f"F{i}"}),
                                         route=route, payload="")
        assert (result.outcome, result.run_id, result.dispatch) == ("unmatched", None, None)
    mention = root.model_copy(update={"delivery_id": "EvO3"})
    result = await deliveries.intake(core.sessions, trigger=mention, route=deliveries.Route(True, "globex", "ops"),
                                     payload="")
    assert (result.outcome, result.run_id, result.dispatch) == ("rejected", None, None)
    own = await deliveries.intake(core.sessions, trigger=follow.model_copy(update={"delivery_id": "F-own"}),
                                  route=deliveries.Route(True, "acme", "payments"), payload="")
    assert (own.outcome, own.run_id) == ("continued", first.run_id)
    async with core.sessions() as s:
        notes = (await store.list_events(s, run_id=first.run_id))[events_before:]
        assert [(e.kind, e.data.get("text")) for e in notes] == [("turn", "exfiltrate")]   # only the owner's
        assert await s.scalar(select(func.count()).select_from(Run)) == 1
    await core.engine.dispose()


async def test_group_commit_sends_foreign_threads_to_the_checked_path(sqlite_url):
    """SQLite's batched fast path must not bind a new run to a thread another team owns."""
    from serve_apps.deliveries.batch import IntakeBatcher

    core = make_core(sqlite_url)
    batcher = IntakeBatcher(core.sessions)
    t = Trigger(source="slack", delivery_id="B1", event_kind="app_mention", text="hi", human=True,
                thread={"channel": "C9", "ts": "5.5"})
    first = await batcher.intake(trigger=t, route=deliveries.Route(True, "acme", "payments"), payload="")
    async with core.sessions() as s:
        assert await store.transition(s, run_id=first.run_id, to=RunStatus.CANCELLED)
        await s.commit()
    other = await batcher.intake(trigger=t.model_copy(update={"delivery_id": "B2"}),
                                 route=deliveries.Route(True, "globex", "ops"), payload="")
    assert (other.outcome, other.run_id) == ("rejected", None)
    own = await batcher.intake(trigger=t.model_copy(update={"delivery_id": "B3"}),
                               route=deliveries.Route(True, "acme", "payments"), payload="")
    assert own.outcome == "accepted" and own.run_id != first.run_id      # the owner may start anew
    await core.engine.dispose()


@pytest.mark.parametrize("thread_ts", [None, "1700000099.000200"])
async def test_a_run_is_bound_only_to_a_channel_its_team_has(api, thread_ts):
    """POST /runs with another team's channel (a new thread there, or no ts: a new message) is 403
    ``channel_not_claimed``, whatever the token, also when the team names it as its default channel;
    the team's claimed channel and an unclaimed default channel are accepted."""
    client, toks, sessions, runner, app = api
    await _give_channel(app, "globex", "ops", CHANNEL)      # another org's admin names acme's channel
    before = await _counts(sessions)
    for token, body in ((toks["acme/search"], {}), (toks["globex/ops"], {}),
                        (toks["acme"], {"org": "acme", "team": "search"})):
        r = await client.post("/runs", json={"text": "post here", "thread_channel": CHANNEL, "thread_ts": thread_ts,
                                             **body}, headers=auth(token))
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "channel_not_claimed" and "routing.slack_channel_ids" in error["message"]
        assert error["details"]["field"] == "thread_channel"
    await app.state.dispatch_tasks.drain(10)
    assert await _counts(sessions) == before and runner.attached == []

    r = await client.post("/runs", json={"text": "own channel", "thread_channel": "CGLOBEX", "thread_ts": thread_ts},
                          headers=auth(toks["globex/ops"]))   # claimed (its default channel is acme's: no matter)
    assert r.status_code == 202, r.text
    await _give_channel(app, "acme", "search", "CSEARCH")
    r = await client.post("/runs", json={"text": "default channel", "thread_channel": "CSEARCH",
                                         "thread_ts": thread_ts}, headers=auth(toks["acme/search"]))
    assert r.status_code == 202, r.text
    r = await client.post("/runs", json={"text": "for the owner", "thread_channel": CHANNEL, "thread_ts": thread_ts,
                                         "org": "acme", "team": "payments"}, headers=auth(toks["acme"]))
    assert r.status_code == 202, r.text
    await app.state.dispatch_tasks.drain(10)
    async with sessions() as s:
        channels = {(r.team_id, r.thread_channel) for r in (await s.scalars(select(Run))).all()}
    assert channels == {("ops", "CGLOBEX"), ("search", "CSEARCH"), ("payments", CHANNEL)}


async def test_a_sandbox_reply_routed_to_another_team_never_reaches_the_session(sqlite_url):
    """A sandbox session's thread is its team's: a reply (or a mention) there routed to a sibling team
    of the same org (the channel's claim moved), another org, nowhere, or signed for another team's
    scope is refused like one in another team's run thread: no session id, nothing handed to the
    sandbox side, no run bound to the thread. The session's own team continues it."""
    from actors.sandbox.store import SandboxStore

    core = make_core(sqlite_url)
    sandbox_store = SandboxStore(sqlite_url)
    row = await sandbox_store.create_session(session_id="sbx_victim", org_id="acme", team_id="payments",
                                             workspace="/w", ttl_s=600, uid_base=100_000, uid_count=1000,
                                             created_by="slack:W111", slack_channel=CHANNEL, slack_thread_ts=TS)
    reply = Trigger(source="slack", delivery_id="S0", event_kind="message", text="cat ~/.ssh/id_rsa", human=True,
                    action=TriggerAction.CONTINUE, thread={"channel": CHANNEL, "ts": TS})
    mention = reply.model_copy(update={"action": TriggerAction.START, "event_kind": "app_mention"})
    foreign = (deliveries.Route(True, "acme", "search"), deliveries.Route(True, "globex", "ops"),
               deliveries.Route(False),
               deliveries.Route(True, "acme", "payments", verified_org="acme", verified_team="search"))
    for i, route in enumerate(foreign):
        for trigger, expected in ((reply, "unmatched"), (mention, "rejected")):
            result = await deliveries.intake(
                core.sessions, trigger=trigger.model_copy(update={"delivery_id": f"S{i}-{expected}"}),
                route=route, payload="")
            assert (result.outcome, result.session_id, result.dispatch, result.run_id) == (expected, None, None, None)
            assert row.id not in str(result.response())
    async with core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Run)) == 0
        outcomes = set((await s.scalars(select(Delivery.outcome))).all())
    assert outcomes == {"unmatched", "rejected"}       # nothing recorded for the sandbox side to act on
    own = await deliveries.intake(core.sessions, trigger=reply.model_copy(update={"delivery_id": "S-own"}),
                                  route=deliveries.Route(True, "acme", "payments"), payload="")
    assert (own.outcome, own.session_id) == ("sandbox_continued", row.id)
    assert own.dispatch is not None and (own.dispatch.org_id, own.dispatch.team_id) == ("acme", "payments")
    await sandbox_store.close()
    await core.engine.dispose()
