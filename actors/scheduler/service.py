"""The scheduler: wake, claim due fire times exactly once, fan each minute's jobs out as one batch.

Where it runs (documented in ``docs/operations.md``): a detached named Ray actor
``incidentfox-scheduler`` (``num_cpus=0``) started by ``incidentfox up``; on KubeRay the RayCronJob
runs ``incidentfox report run-due`` (one :meth:`SchedulerService.tick`) instead. Any number of either
may run at once: claims are unique rows, so a fire time runs once.

A batch is one Ray task per job, all named ``schedule-batch-<minute>/<kind>/<org>/<team>`` so the
batch shows as a group in the Ray dashboard. Each task carries its team's scheduling constraint
(shared or dedicated resource) and each team runs at most ``quotas.max_concurrent_runs`` jobs of a
batch at once, so one team with many schedules cannot starve the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.scheduler.claims import (
    DueJob,
    advance_cursor,
    due_jobs,
    get_cursor,
    schedules_from_config,
    try_claim,
)
from actors.scheduler.cron import ScheduleError
from config_service import DEFAULT_MAX_CONCURRENT_RUNS, max_concurrent_runs
from incidentfox.db import make_async_engine, session_factory, utcnow

log = logging.getLogger("incidentfox.scheduler")

TeamConfigs = Callable[[], Awaitable[list[tuple[str, str, dict[str, Any]]]]]


@dataclass(frozen=True)
class ClaimedJob:
    claim_id: int
    job: DueJob
    config: dict[str, Any]


class SchedulerService:
    def __init__(self, *, database_url: str, team_configs: TeamConfigs, tick_s: float = 30.0,
                 owner: str | None = None) -> None:
        self.database_url = database_url
        self.team_configs = team_configs
        self.tick_s = tick_s
        self.grace_s = 2 * tick_s
        self.owner = owner or f"scheduler@{socket.gethostname()}:{os.getpid()}"
        self._engine = make_async_engine(database_url)
        self._sessions = session_factory(self._engine)

    async def tick(self, now: datetime | None = None) -> list[ClaimedJob]:
        """Claim every job due at ``now``; returns what this scheduler won."""
        now = now or utcnow()
        won: list[ClaimedJob] = []
        for org_id, team_id, config in await self.team_configs():
            for sch in schedules_from_config(org_id, team_id, config):
                async with self._sessions() as s:
                    try:
                        jobs = due_jobs(sch, cursor=await get_cursor(s, sch.key), now=now, grace_s=self.grace_s)
                    except ScheduleError as exc:
                        log.warning("schedule %s skipped: %s", sch.key, exc)
                        continue
                    for job in jobs:
                        claim_id = await try_claim(s, job, owner=self.owner)
                        if claim_id is not None:
                            won.append(ClaimedJob(claim_id, job, config))
                    await advance_cursor(s, sch.key, now)
                    await s.commit()
        return won

    async def close(self) -> None:
        await self._engine.dispose()


def batch_task_name(batch_id: str, job: DueJob) -> str:
    s = job.schedule
    return f"schedule-batch-{batch_id}/{s.kind}/{s.org_id}/{s.team_id}"


def team_quota(config: dict[str, Any], default: int = DEFAULT_MAX_CONCURRENT_RUNS) -> int:
    """The team's ``quotas.max_concurrent_runs`` (the same reader the investigation pool uses)."""
    return max_concurrent_runs(config, default)


async def run_batch(claimed: list[ClaimedJob], *, submit: Callable[[ClaimedJob, str], Awaitable[Any]],
                    batch_id: str | None = None) -> list[Any]:
    """Run one batch: every job concurrently, at most the team's quota per team at a time."""
    if not claimed:
        return []
    batch_id = batch_id or utcnow().strftime("%Y%m%dT%H%M")
    sems: dict[tuple[str, str], asyncio.Semaphore] = {}
    for c in claimed:
        key = (c.job.schedule.org_id, c.job.schedule.team_id)
        sems.setdefault(key, asyncio.Semaphore(team_quota(c.config)))

    async def one(c: ClaimedJob) -> Any:
        async with sems[(c.job.schedule.org_id, c.job.schedule.team_id)]:
            return await submit(c, batch_task_name(batch_id, c.job))

    return await asyncio.gather(*(one(c) for c in claimed), return_exceptions=True)


def by_team(claimed: list[ClaimedJob]) -> dict[tuple[str, str], list[ClaimedJob]]:
    out: dict[tuple[str, str], list[ClaimedJob]] = defaultdict(list)
    for c in claimed:
        out[(c.job.schedule.org_id, c.job.schedule.team_id)].append(c)
    return out
