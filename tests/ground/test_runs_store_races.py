"""Concurrent appends to a run's JSON lists (``absorbed``, ``turns``), driven step by step: the
second writer waits on the first's row lock (no timing). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from incidentfox.contracts import RunStatus, ThreadRef, Trigger
from incidentfox.runs import store


def _trigger(delivery_id: str, **kw) -> Trigger:
    base = {"source": "api", "delivery_id": delivery_id, "event_kind": "x", "title": "t"}
    return Trigger(**{**base, **kw})


async def _writing(session, delivery_id: str) -> None:
    """Intake's order: a transaction writes (its delivery row) before it reads a run; on SQLite that
    takes the database's one write lock, under which what it reads next is current."""
    await store.create_run(session, org_id="acme", team_id="other", trigger=_trigger(delivery_id))


async def _until_blocked(sessions, db_url: str, task: asyncio.Task) -> None:
    """PostgreSQL: until ``task``'s transaction waits on a lock (the row lock, with the fix; the
    update of the same row, without). SQLite: nothing to wait for (its writer waits in SQLite)."""
    if not db_url.startswith("postgres"):
        return
    deadline = asyncio.get_running_loop().time() + 30
    async with sessions() as observer:
        while True:
            waiting = (await observer.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))).scalar_one()
            await observer.rollback()
            if waiting:
                return
            assert not task.done(), task
            assert asyncio.get_running_loop().time() < deadline, "the second writer never waited"
            await asyncio.sleep(0.02)


async def _append(session, kind: str, run_id: str, i: int) -> None:
    if kind == "absorb":
        assert await store.absorb(session, run_id=run_id, trigger=_trigger(f"alert{i}", fingerprint=f"fp{i}"))
    else:
        await store.add_turn(session, run_id=run_id, entry={"mode": "redirect", "text": f"hint {i}"})


@pytest.mark.parametrize("kind", ["absorb", "add_turn"])
async def test_appends_at_once_to_a_run_are_all_kept(sessions, db_url, kind):
    """The second writer reads the run only after the first committed (``FOR UPDATE``), so it appends
    to the first's entry instead of overwriting it."""
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments",
                                     trigger=_trigger("root", thread=ThreadRef(channel="C1", ts="1.0")))
        await s.commit()
    async with sessions() as first, sessions() as second:
        await _writing(first, "w1")
        await _append(first, kind, run.id, 1)

        async def then_second() -> None:
            await _writing(second, "w2")
            await _append(second, kind, run.id, 2)
            await second.commit()

        task = asyncio.create_task(then_second())
        await _until_blocked(sessions, db_url, task)
        await first.commit()
        await task
    async with sessions() as s:
        got = await store.get_run(s, run.id)
        entries = got.absorbed if kind == "absorb" else got.turns
        assert len(entries) == 2, entries
        assert [e.kind for e in await store.list_events(s, run_id=run.id)] == [
            "absorbed" if kind == "absorb" else "turn"] * 2


async def test_an_alert_is_not_absorbed_into_a_run_that_ended(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=_trigger("root"))
        assert await store.transition(s, run_id=run.id, to=RunStatus.CANCELLED)
        assert not await store.absorb(s, run_id=run.id, trigger=_trigger("late", fingerprint="fp"))
        await s.commit()
        assert (await store.get_run(s, run.id)).absorbed == []
        assert await store.list_events(s, run_id=run.id) == []
