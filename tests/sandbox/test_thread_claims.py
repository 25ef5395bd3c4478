"""Two first bindings of one fresh Slack thread at once find one owner (:func:`actors.sandbox.threads.
claim_thread`, the intake's thread lock in :mod:`serve_apps.deliveries.decide`).

Before, each binder read "no owner yet" and bound: two mentions at once in a thread with no run
started two runs, and a run and a session (or two sessions) of two teams could both bind it, so one
team's output went into the other's thread. On PostgreSQL the binders are concurrent transactions
(serialised by the thread's advisory lock); on SQLite by its one write lock. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest
from gateway_kit import make_core
from sqlalchemy import func, select

from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.store import SandboxStore
from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.errors import NotFound
from incidentfox.runs.models import Run
from serve_apps import deliveries

CHANNEL, THREAD = "CSHARED", "1700000009.000900"


@pytest.fixture
async def core(db_url):
    core = make_core(db_url)
    yield core
    await core.drain()
    await core.engine.dispose()


def _mention(delivery_id: str, *, ts: str, user: str = "U1", action: TriggerAction = TriggerAction.START,
             text: str = "@incidentfox why is checkout slow?") -> Trigger:
    """A human Slack message in the thread THREAD; ``ts`` is the message's own ts."""
    return Trigger(source="slack", delivery_id=delivery_id, event_kind="app_mention", action=action, text=text,
                   human=True, actor=user, external_ref=ts, thread={"channel": CHANNEL, "ts": THREAD})


def _route(team: str) -> deliveries.Route:
    return deliveries.Route(True, "acme", team)


async def _session(store: SandboxStore, sid: str, team: str, uid: int) -> SandboxSessionRow:
    return await store.create_session(session_id=sid, org_id="acme", team_id=team, workspace="/w", ttl_s=600,
                                      uid_base=uid, uid_count=1, slack_channel=CHANNEL, slack_thread_ts=THREAD)


async def _bound_teams(core) -> set[str]:
    async with core.sessions() as s:
        runs = (await s.scalars(select(Run.team_id).where(Run.thread_ts == THREAD))).all()
        sbx = (await s.scalars(select(SandboxSessionRow.team_id)
                               .where(SandboxSessionRow.slack_thread_ts == THREAD))).all()
    return {*runs, *sbx}


async def test_two_first_mentions_at_once_start_one_run(core):
    """Two people mention the bot at once in a thread with no run: one run, the other message is a
    turn of it, as if they had come one after the other."""
    answers = await asyncio.gather(*[
        deliveries.intake(core.sessions, trigger=_mention(f"FM{i}", ts=f"1700000009.00091{i}", user=f"U{i}",
                                                          text=f"@incidentfox look at {i}"),
                          route=_route("payments"), payload="") for i in range(4)])
    assert sorted(a.outcome.value for a in answers) == ["accepted", "continued", "continued", "continued"]
    async with core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Run)) == 1
        run = (await s.scalars(select(Run))).one()
    assert {a.run_id for a in answers} == {run.id}
    assert len(run.turns) == 3 and [t["mode"] for t in run.turns] == ["redirect"] * 3
    assert {t["text"] for t in run.turns} | {run.trigger["text"]} == {f"@incidentfox look at {i}" for i in range(4)}


async def test_the_mention_that_started_a_run_delivered_again_is_not_its_turn(core):
    """Slack's second copy of the message that opened the thread's run (another event id): the run's
    own answer, not a turn of the run it started."""
    first = await deliveries.intake(core.sessions, trigger=_mention("CP1", ts="1700000009.000901"),
                                    route=_route("payments"), payload="")
    assert first.outcome == "accepted"
    copy = _mention("CP2", ts="1700000009.000901", action=TriggerAction.CONTINUE)
    again = await deliveries.intake(core.sessions, trigger=copy.model_copy(update={"event_kind": "message"}),
                                    route=_route("payments"), payload="")
    assert (again.run_id, again.dispatch) == (first.run_id, None)
    async with core.sessions() as s:
        run = (await s.scalars(select(Run))).one()
    assert run.turns == []


async def test_two_teams_sessions_at_once_bind_the_thread_for_one_team(core, db_url):
    stores = [SandboxStore(db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*[_session(st, f"sbx_claim{i}", ("payments", "search")[i % 2], 470_000 + i)
                                         for i, st in enumerate(stores)], return_exceptions=True)
    finally:
        for st in stores:
            await st.close()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, NotFound) and r.code == "thread_not_found" for r in refused), refused
    teams = await _bound_teams(core)
    assert len(teams) == 1
    assert len(refused) == 2          # the other team's two
    assert {r.team_id for r in results if not isinstance(r, BaseException)} == teams


async def test_a_run_and_another_teams_session_at_once_bind_the_thread_for_one_team(core, db_url):
    store = SandboxStore(db_url)
    try:
        run, sbx = await asyncio.gather(
            deliveries.intake(core.sessions, trigger=_mention("RS1", ts="1700000009.000931"),
                              route=_route("payments"), payload=""),
            _session(store, "sbx_rs", "search", 480_000), return_exceptions=True)
    finally:
        await store.close()
    teams = await _bound_teams(core)
    assert len(teams) == 1
    if teams == {"payments"}:
        assert run.outcome == "accepted" and isinstance(sbx, NotFound) and sbx.code == "thread_not_found"
    else:
        assert run.outcome == "rejected" and run.run_id is None and sbx.team_id == "search"


async def test_a_session_in_another_teams_run_thread_is_refused_by_the_store(core, db_url):
    """The claim holds without the API's early check: nothing is stored for the other team."""
    first = await deliveries.intake(core.sessions, trigger=_mention("ST1", ts="1700000009.000941"),
                                    route=_route("payments"), payload="")
    assert first.outcome == "accepted"
    store = SandboxStore(db_url)
    try:
        with pytest.raises(NotFound) as refused:
            await _session(store, "sbx_late", "search", 490_000)
        assert refused.value.code == "thread_not_found" and first.run_id not in str(refused.value)
        assert (await _session(store, "sbx_own", "payments", 490_001)).team_id == "payments"
    finally:
        await store.close()
    assert await _bound_teams(core) == {"payments"}


async def test_one_reply_under_two_event_ids_is_one_sandbox_turn(core, db_url):
    """Slack's two copies of one reply in a session's thread (``message`` and ``app_mention``), at once
    and later: the session gets the turn once; another message is a turn of its own."""
    store = SandboxStore(db_url)
    try:
        await _session(store, "sbx_turns", "payments", 495_000)
    finally:
        await store.close()
    reply = _mention("SB1", ts="1700000009.000951", action=TriggerAction.CONTINUE, text="and the db?")
    copies = [reply.model_copy(update={"event_kind": "message"}),
              reply.model_copy(update={"delivery_id": "SB2"})]
    answers = await asyncio.gather(*[deliveries.intake(core.sessions, trigger=c, route=_route("payments"), payload="")
                                     for c in copies])
    assert [a.outcome.value for a in answers] == ["sandbox_continued"] * 2
    assert {a.session_id for a in answers} == {"sbx_turns"}
    assert sum(a.dispatch is not None for a in answers) == 1
    late = await deliveries.intake(core.sessions, trigger=reply.model_copy(update={"delivery_id": "SB3"}),
                                   route=_route("payments"), payload="")
    assert (late.outcome.value, late.dispatch) == ("sandbox_continued", None)
    other = await deliveries.intake(core.sessions, trigger=_mention("SB4", ts="1700000009.000952",
                                                                    action=TriggerAction.CONTINUE, text="and now?"),
                                    route=_route("payments"), payload="")
    assert other.outcome.value == "sandbox_continued" and other.dispatch is not None
