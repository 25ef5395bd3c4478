"""What a team's schedules are, what they did, and running one now: the reads and the one write
behind ``/api/v1/reports`` (:mod:`serve_apps.schedules_api`) and the console's reports page.

* :func:`team_schedules`: a team's valid schedules (from its effective config) with the last
  outcome of each (its newest claim).
* :func:`page_reports` / :func:`page_outcomes`: stored reports and claim rows (scheduled, caught up
  or run by hand), newest first, one cursor page at a time, narrowed to an org/team.
* :func:`claim_now`: a manual fire time for a schedule, claimed like a scheduled one (the same
  ``UNIQUE(schedule_key, scheduled_for)`` row, ``claimed_by = "manual:<who>"``), so its outcome is
  recorded on the claim by :func:`actors.scheduler.execute.execute_claimed` and listed with the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from actors.scheduler.claims import DueJob, Schedule, schedules_from_config, try_claim
from actors.scheduler.models import Report, ScheduleClaim
from actors.scheduler.service import ClaimedJob
from incidentfox.db import utcnow
from incidentfox.pagination import Page, PageRequest, fetch_page

REPORT_ORDER = ((Report.created_at, True), (Report.id, True))
CLAIM_ORDER = ((ScheduleClaim.claimed_at, True), (ScheduleClaim.id, True))


class ScheduleNotFound(LookupError):
    """The team has no (valid) schedule with that id."""


class ClaimTaken(RuntimeError):
    """That fire time is already claimed (two run-now clicks in the same microsecond)."""


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def outcome_view(claim: ScheduleClaim) -> dict[str, Any]:
    return {"id": claim.id, "org": claim.org_id, "team": claim.team_id, "schedule_id": claim.schedule_id,
            "kind": claim.kind, "scheduled_for": _iso(claim.scheduled_for), "catch_up": claim.catch_up,
            "manual": claim.claimed_by.startswith("manual:"), "claimed_at": _iso(claim.claimed_at),
            "status": claim.status, "finished_at": _iso(claim.finished_at), "report_id": claim.report_id,
            "run_id": claim.run_id, "error": claim.error}


def schedule_view(sch: Schedule, last: ScheduleClaim | None) -> dict[str, Any]:
    return {"org": sch.org_id, "team": sch.team_id, "schedule_id": sch.id, "kind": sch.kind, "cron": sch.cron,
            "timezone": sch.timezone, "channel": sch.channel or None, "prompt": sch.prompt or None,
            "last_outcome": outcome_view(last) if last is not None else None}


async def team_schedules(session: AsyncSession, *, org_id: str, team_id: str,
                         config: dict[str, Any]) -> list[dict[str, Any]]:
    """The team's schedules (in config order), each with its newest claim as ``last_outcome``."""
    schedules = schedules_from_config(org_id, team_id, config)
    if not schedules:
        return []
    keys = [s.key for s in schedules]
    newest = (select(ScheduleClaim.schedule_key, func.max(ScheduleClaim.id).label("id"))
              .where(ScheduleClaim.schedule_key.in_(keys)).group_by(ScheduleClaim.schedule_key))
    ids = [row.id for row in (await session.execute(newest)).all()]
    claims = {c.schedule_key: c for c in (await session.scalars(
        select(ScheduleClaim).where(ScheduleClaim.id.in_(ids)))).all()} if ids else {}
    return [schedule_view(s, claims.get(s.key)) for s in schedules]


def _narrow(q: Any, model: Any, org_id: str | None, team_id: str | None) -> Any:
    if org_id is not None:
        q = q.where(model.org_id == org_id)
    if team_id is not None:
        q = q.where(model.team_id == team_id)
    return q


async def page_reports(session: AsyncSession, *, page: PageRequest, org_id: str | None = None,
                       team_id: str | None = None, kind: str | None = None) -> Page[Report]:
    q = _narrow(select(Report), Report, org_id, team_id)
    if kind is not None:
        q = q.where(Report.kind == kind)
    return await fetch_page(session, q, order=REPORT_ORDER, page=page)


async def page_outcomes(session: AsyncSession, *, page: PageRequest, org_id: str | None = None,
                        team_id: str | None = None, schedule_id: str | None = None) -> Page[ScheduleClaim]:
    q = _narrow(select(ScheduleClaim), ScheduleClaim, org_id, team_id)
    if schedule_id is not None:
        q = q.where(ScheduleClaim.schedule_id == schedule_id)
    return await fetch_page(session, q, order=CLAIM_ORDER, page=page)


async def claim_now(session: AsyncSession, *, org_id: str, team_id: str, schedule_id: str,
                    config: dict[str, Any], by: str, now: datetime | None = None) -> ClaimedJob:
    """Claim a manual fire time of the schedule at ``now`` (flushed, not committed).

    Raises :class:`ScheduleNotFound` when the team has no valid schedule ``schedule_id``, and
    :class:`ClaimTaken` when that instant is already claimed."""
    sch = next((s for s in schedules_from_config(org_id, team_id, config) if s.id == schedule_id), None)
    if sch is None:
        raise ScheduleNotFound(schedule_id)
    job = DueJob(sch, now or utcnow(), False)
    claim_id = await try_claim(session, job, owner=f"manual:{by}"[:128])
    if claim_id is None:
        raise ClaimTaken(sch.key)
    return ClaimedJob(claim_id, job, config)
