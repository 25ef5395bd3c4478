"""Deciding what is due, and claiming each ``(schedule, fire time)`` exactly once.

Catch-up policy (team config ``scheduler.catch_up``, default ``latest``): after downtime, fire times
between a schedule's cursor and now that are older than the grace period are *missed*.

* ``latest``: run at most one catch-up per schedule, for the most recent missed fire time, provided
  it is no older than ``scheduler.max_catch_up_s`` (default 86,400 s); the rest are skipped.
* ``none``: skip every missed fire time.

A fire time inside the grace period (``2 × tick``) is on time and always runs. A schedule seen for
the first time starts from now minus the grace period: history is never backfilled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from actors.scheduler.cron import fire_times
from actors.scheduler.models import ScheduleClaim, ScheduleCursor
from config_service import schedule_channel
from incidentfox.db import utcnow

KINDS = ("health_report", "investigation", "digest")


@dataclass(frozen=True)
class Schedule:
    org_id: str
    team_id: str
    id: str
    cron: str
    timezone: str
    kind: str
    channel: str
    prompt: str = ""
    catch_up: str = "latest"
    max_catch_up_s: float = 86_400.0

    @property
    def key(self) -> str:
        return f"{self.org_id}:{self.team_id}:{self.id}"


@dataclass(frozen=True)
class DueJob:
    schedule: Schedule
    scheduled_for: datetime
    catch_up: bool


def schedules_from_config(org_id: str, team_id: str, config: dict[str, Any]) -> list[Schedule]:
    """The team's valid schedules from its effective config (invalid entries are the config
    service's to reject; here they are skipped rather than stopping every other team's jobs)."""
    policy = (config.get("scheduler") or {})
    out = []
    for raw in config.get("schedules") or []:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            continue
        channel, _ = schedule_channel(raw, config)   # whether the team may post there: execute.py
        try:
            out.append(Schedule(org_id=org_id, team_id=team_id, id=str(raw["id"]), cron=str(raw["cron"]),
                                timezone=str(raw.get("timezone") or "UTC"), kind=raw["kind"], channel=channel,
                                prompt=str(raw.get("prompt") or ""),
                                catch_up=str(policy.get("catch_up", "latest")),
                                max_catch_up_s=float(policy.get("max_catch_up_s", 86_400))))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def due_jobs(schedule: Schedule, *, cursor: datetime | None, now: datetime, grace_s: float) -> list[DueJob]:
    """Fire times to run now for one schedule, applying the catch-up policy."""
    grace = timedelta(seconds=grace_s)
    start = cursor if cursor is not None else now - grace
    fires = fire_times(schedule.cron, schedule.timezone, after=start, until=now)
    on_time = [f for f in fires if now - f <= grace]
    missed = [f for f in fires if now - f > grace]
    jobs = [DueJob(schedule, f, False) for f in on_time]
    if missed and schedule.catch_up == "latest":
        latest = missed[-1]
        if (now - latest).total_seconds() <= schedule.max_catch_up_s:
            jobs.insert(0, DueJob(schedule, latest, True))
    return jobs


async def get_cursor(session: AsyncSession, key: str) -> datetime | None:
    row = await session.get(ScheduleCursor, key)
    return row.considered_until if row else None


async def advance_cursor(session: AsyncSession, key: str, until: datetime) -> None:
    row = await session.get(ScheduleCursor, key, with_for_update=session.bind.dialect.name != "sqlite")
    if row is None:
        session.add(ScheduleCursor(schedule_key=key, considered_until=until))
    elif until > row.considered_until:
        row.considered_until = until
    await session.flush()


async def try_claim(session: AsyncSession, job: DueJob, *, owner: str) -> int | None:
    """Insert the claim row; return its id, or None when another scheduler already holds it.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` on the UNIQUE(schedule_key, scheduled_for)
    constraint: atomic on PostgreSQL and SQLite alike, no lock held past the statement.
    """
    s = job.schedule
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = (insert(ScheduleClaim)
            .values(schedule_key=s.key, org_id=s.org_id, team_id=s.team_id, schedule_id=s.id, kind=s.kind,
                    scheduled_for=job.scheduled_for, catch_up=job.catch_up, claimed_by=owner,
                    claimed_at=utcnow(), status="claimed")
            .on_conflict_do_nothing(index_elements=["schedule_key", "scheduled_for"])
            .returning(ScheduleClaim.id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def finish_claim(session: AsyncSession, claim_id: int, *, status: str, report_id: str | None = None,
                       run_id: str | None = None, error: str | None = None) -> None:
    claim = await session.get(ScheduleClaim, claim_id)
    claim.status, claim.finished_at = status, utcnow()
    claim.report_id, claim.run_id, claim.error = report_id, run_id, error
    await session.flush()


async def claims_for(session: AsyncSession, key: str) -> list[ScheduleClaim]:
    q = select(ScheduleClaim).where(ScheduleClaim.schedule_key == key).order_by(ScheduleClaim.scheduled_for)
    return list((await session.scalars(q)).all())
