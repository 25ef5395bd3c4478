"""Run statistics per team over a window: the console's overview (``GET /api/v1/agent/stats``).

Definitions (the same words the health report uses, :mod:`actors.scheduler.reports`):

* **runs per day**: runs *created* on each UTC day of the window, by final (or current) status;
* **success rate**: ``succeeded / (succeeded + failed)`` over the window's runs; cancelled runs (a
  human stopped them) and active ones are left out; ``null`` when neither happened;
* **time to first message**: ``first_message_at − created_at`` (how fast IncidentFox spoke);
* **time to RCA**: ``finished_at − created_at`` of the runs that *succeeded* (the RCA is posted as
  the run finishes). Both as the median and the mean in seconds, ``null`` without samples.

Counts are grouped in SQL; the two durations are read as three timestamp columns of the window's
runs (never whole rows) and reduced here, which keeps one code path for SQLite and PostgreSQL.
Scope is the caller's: ``org_id``/``team_id`` narrow the query, and the API passes the token's own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from statistics import mean, median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.runs.models import Run

MAX_WINDOW = timedelta(days=92)
STATUSES = ("succeeded", "failed", "cancelled", "queued", "running")


class StatsWindowError(ValueError):
    """``since``/``until`` do not make a window (empty, reversed or longer than :data:`MAX_WINDOW`)."""


def _scope(q: Any, org_id: str | None, team_id: str | None, since: datetime, until: datetime) -> Any:
    q = q.where(Run.created_at >= since, Run.created_at < until)
    if org_id is not None:
        q = q.where(Run.org_id == org_id)
    if team_id is not None:
        q = q.where(Run.team_id == team_id)
    return q


def _days(since: datetime, until: datetime) -> list[str]:
    out, day = [], since.date()
    while datetime.combine(day, datetime.min.time(), tzinfo=since.tzinfo) < until:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def _summary(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "mean": None, "samples": 0}
    return {"p50": round(median(samples), 3), "mean": round(mean(samples), 3), "samples": len(samples)}


def _counts_view(counts: dict[str, int]) -> dict[str, Any]:
    done = counts.get("succeeded", 0) + counts.get("failed", 0)
    view: dict[str, Any] = {"runs": sum(counts.values())}
    view.update({s: counts.get(s, 0) for s in ("succeeded", "failed", "cancelled")})
    view["active"] = counts.get("queued", 0) + counts.get("running", 0)
    view["success_rate"] = round(counts.get("succeeded", 0) / done, 4) if done else None
    return view


def _day_of(session: AsyncSession) -> Any:
    # UTC calendar day; PostgreSQL's date() of a timestamptz would use the session's time zone.
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", Run.created_at))
    return func.date(Run.created_at)


async def run_stats(session: AsyncSession, *, since: datetime, until: datetime, org_id: str | None = None,
                    team_id: str | None = None) -> dict[str, Any]:
    """``{since, until, days, teams: [{org, team, runs, succeeded, failed, cancelled, active,
    success_rate, time_to_first_message_s, time_to_rca_s, daily}], totals}`` (see the module doc)."""
    if until <= since:
        raise StatsWindowError("`since` must be before `until`")
    if until - since > MAX_WINDOW:
        raise StatsWindowError(f"the window is at most {MAX_WINDOW.days} days")
    day = _day_of(session).label("day")
    grouped = _scope(select(Run.org_id, Run.team_id, day, Run.status, func.count().label("n")),
                     org_id, team_id, since, until).group_by(Run.org_id, Run.team_id, day, Run.status)
    daily: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in (await session.execute(grouped)).all():
        daily[(row.org_id, row.team_id)][str(row.day)[:10]][row.status] = row.n

    timing = _scope(select(Run.org_id, Run.team_id, Run.status, Run.created_at, Run.first_message_at,
                           Run.finished_at), org_id, team_id, since, until)
    first: dict[tuple[str, str], list[float]] = defaultdict(list)
    rca: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in (await session.execute(timing)).all():
        key = (row.org_id, row.team_id)
        if row.first_message_at is not None and row.first_message_at >= row.created_at:
            first[key].append((row.first_message_at - row.created_at).total_seconds())
        if row.status == "succeeded" and row.finished_at is not None and row.finished_at >= row.created_at:
            rca[key].append((row.finished_at - row.created_at).total_seconds())

    days = _days(since, until)
    teams, all_counts = [], defaultdict(int)
    for key in sorted(daily):
        counts: dict[str, int] = defaultdict(int)
        for per_status in daily[key].values():
            for status, n in per_status.items():
                counts[status] += n
                all_counts[status] += n
        teams.append({"org": key[0], "team": key[1], **_counts_view(counts),
                      "time_to_first_message_s": _summary(first[key]), "time_to_rca_s": _summary(rca[key]),
                      "daily": [{"day": d, **_counts_view(daily[key].get(d, {}))} for d in days]})
    totals = {**_counts_view(all_counts),
              "time_to_first_message_s": _summary([x for v in first.values() for x in v]),
              "time_to_rca_s": _summary([x for v in rca.values() for x in v])}
    return {"since": since.isoformat(), "until": until.isoformat(), "days": days, "teams": teams,
            "totals": totals}
