"""The scheduler's tick over team configs and its batch fan-out with per-team quotas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from actors.scheduler.service import SchedulerService, batch_task_name, run_batch


def _configs(n_teams: int, quota: int = 2):
    async def provider():
        return [("acme", f"team-{i}", {"quotas": {"max_concurrent_runs": quota}, "slack": {"default_channel": "C1"},
                                       "schedules": [{"id": "daily", "cron": "0 9 * * *", "timezone": "UTC",
                                                      "kind": "health_report"},
                                                     {"id": "eb", "cron": "0 9 * * *", "timezone": "UTC",
                                                      "kind": "investigation", "prompt": "check error budgets"},
                                                     {"id": "dig", "cron": "0 9 * * *", "timezone": "UTC",
                                                      "kind": "digest"}]})
                for i in range(n_teams)]
    return provider


async def test_two_schedulers_ticking_together_split_the_work(db_url):
    now = datetime(2026, 5, 1, 9, 0, 10, tzinfo=UTC)
    a = SchedulerService(database_url=db_url, team_configs=_configs(5), owner="a")
    b = SchedulerService(database_url=db_url, team_configs=_configs(5), owner="b")
    try:
        won_a, won_b = await asyncio.gather(a.tick(now), b.tick(now))
        keys = sorted((c.job.schedule.key, c.job.scheduled_for) for c in won_a + won_b)
        assert len(keys) == 15 and len(set(keys)) == 15
        # Ticking again a bit later claims nothing new; the next day's fire is claimed once.
        assert await a.tick(now + timedelta(seconds=30)) == []
        nxt = await b.tick(now + timedelta(days=1))
        assert len(nxt) == 15 and all(not c.job.catch_up for c in nxt)
    finally:
        await a.close()
        await b.close()


async def test_restart_after_downtime_catches_up_once(db_url):
    svc = SchedulerService(database_url=db_url, team_configs=_configs(1), owner="a")
    try:
        await svc.tick(datetime(2026, 5, 1, 9, 0, 10, tzinfo=UTC))
        # Down for three days; back at 12:00 on the 4th: one catch-up per schedule (the 4th's 09:00).
        won = await svc.tick(datetime(2026, 5, 4, 12, tzinfo=UTC))
        assert sorted((c.job.schedule.id, c.job.scheduled_for.day, c.job.catch_up) for c in won) == [
            ("daily", 4, True), ("dig", 4, True), ("eb", 4, True)]
    finally:
        await svc.close()


async def test_batch_respects_each_teams_quota_and_names_tasks(db_url):
    svc = SchedulerService(database_url=db_url, team_configs=_configs(2, quota=1), owner="a")
    try:
        claimed = await svc.tick(datetime(2026, 5, 1, 9, 0, 10, tzinfo=UTC))
    finally:
        await svc.close()
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    names = []
    gate = asyncio.Event()

    async def submit(c, name):
        team = c.job.schedule.team_id
        running[team] = running.get(team, 0) + 1
        peak[team] = max(peak.get(team, 0), running[team])
        names.append(name)
        if len(names) >= 2:
            gate.set()
        await asyncio.wait_for(gate.wait(), 5)
        running[team] -= 1
        return name

    results = await run_batch(claimed, submit=submit, batch_id="20260501T0900")
    assert len(results) == 6 and peak == {"team-0": 1, "team-1": 1}
    assert batch_task_name("20260501T0900", claimed[0].job).startswith("schedule-batch-20260501T0900/")
