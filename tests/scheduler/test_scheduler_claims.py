"""Exactly-once claims (two concurrent schedulers on PostgreSQL) and the catch-up policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from actors.scheduler.claims import (
    DueJob,
    Schedule,
    advance_cursor,
    claims_for,
    due_jobs,
    get_cursor,
    schedules_from_config,
    try_claim,
)
from incidentfox.db import make_async_engine, session_factory

HOURLY = Schedule(org_id="acme", team_id="payments", id="hourly", cron="0 * * * *", timezone="UTC",
                  kind="health_report", channel="C1")


def test_first_sight_does_not_backfill():
    now = datetime(2026, 5, 1, 12, 0, 20, tzinfo=UTC)
    jobs = due_jobs(HOURLY, cursor=None, now=now, grace_s=60)
    assert [(j.scheduled_for, j.catch_up) for j in jobs] == [(now.replace(second=0), False)]
    assert due_jobs(HOURLY, cursor=None, now=now + timedelta(minutes=5), grace_s=60) == []


def test_downtime_runs_one_catch_up_for_the_latest_missed_fire():
    # Down from 08:30 to 12:30: 09:00, 10:00, 11:00 and 12:00 were missed.
    now = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    jobs = due_jobs(HOURLY, cursor=datetime(2026, 5, 1, 8, 30, tzinfo=UTC), now=now, grace_s=60)
    assert [(j.scheduled_for.hour, j.catch_up) for j in jobs] == [(12, True)]


def test_catch_up_none_and_max_age():
    now = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    cursor = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    none = Schedule(**{**HOURLY.__dict__, "catch_up": "none"})
    assert due_jobs(none, cursor=cursor, now=now, grace_s=60) == []
    too_old = Schedule(**{**HOURLY.__dict__, "max_catch_up_s": 600})
    assert due_jobs(too_old, cursor=cursor, now=now, grace_s=60) == []
    # An on-time fire always runs, next to a catch-up.
    on_time_now = datetime(2026, 5, 1, 13, 0, 30, tzinfo=UTC)
    got = due_jobs(HOURLY, cursor=cursor, now=on_time_now, grace_s=60)
    assert [(j.scheduled_for.hour, j.catch_up) for j in got] == [(12, True), (13, False)]


def test_schedules_from_config_skips_invalid_entries():
    cfg = {"slack": {"default_channel": "CDEF"}, "scheduler": {"catch_up": "none"},
           "schedules": [{"id": "weekly", "cron": "0 9 * * 1", "timezone": "Europe/Berlin",
                          "kind": "health_report", "destination": {"slack_channel": "C9"}},
                         {"id": "eb", "cron": "0 * * * *", "kind": "investigation",
                          "prompt": "check error budgets"},
                         {"id": "bad", "cron": "0 * * * *", "kind": "launch_rockets"}, "junk"]}
    got = schedules_from_config("acme", "payments", cfg)
    assert [(s.id, s.channel, s.catch_up) for s in got] == [("weekly", "C9", "none"), ("eb", "CDEF", "none")]


@pytest.fixture
async def sessions(db_url):
    engine = make_async_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_concurrent_schedulers_claim_each_fire_exactly_once(sessions):
    fire = datetime(2026, 5, 1, 12, tzinfo=UTC)
    jobs = [DueJob(Schedule(**{**HOURLY.__dict__, "team_id": f"team-{i}"}), fire, False) for i in range(20)]

    async def scheduler(name: str) -> list[str]:
        won = []
        for job in jobs:
            async with sessions() as s:
                if await try_claim(s, job, owner=name) is not None:
                    won.append(job.schedule.key)
                await s.commit()
        return won

    a, b, c = await asyncio.gather(scheduler("sched-a"), scheduler("sched-b"), scheduler("sched-c"))
    assert sorted(a + b + c) == sorted(j.schedule.key for j in jobs), "a fire ran twice or not at all"
    async with sessions() as s:
        rows = await claims_for(s, jobs[0].schedule.key)
        assert len(rows) == 1 and rows[0].scheduled_for == fire


async def test_cursor_only_moves_forward(sessions):
    async with sessions() as s:
        assert await get_cursor(s, HOURLY.key) is None
        t1 = datetime(2026, 5, 1, 12, tzinfo=UTC)
        await advance_cursor(s, HOURLY.key, t1)
        await advance_cursor(s, HOURLY.key, t1 - timedelta(hours=1))
        await s.commit()
        assert await get_cursor(s, HOURLY.key) == t1
