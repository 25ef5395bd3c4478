"""Report content, computed from the runs database (health report and incident digest).

Pure aggregation over a team's runs, tool calls and feedback in a period; no Slack, no Ray. The
definitions an operator reads on the report:

* **MTTA** per trigger source: mean of ``acknowledged_at − created_at`` over runs acknowledged in
  the source system (PagerDuty acknowledge, etc.). **MTTR**: mean of ``resolved_at − created_at``.
  **Time to first message**: mean of ``first_message_at − created_at`` (how fast IncidentFox spoke).
* **Noisiest alerts**: alert titles by how many triggers they produced (a run plus every alert it
  absorbed). **Noisiest services**: services named by those triggers.
* **Failed integrations**: tool calls that ended ``error`` or ``timeout``, grouped by tool.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.runs.models import Run, RunFeedback, ToolCall


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def _mean(values: list[float]) -> float | None:
    return round(mean(values), 1) if values else None


async def _team_runs(session: AsyncSession, org_id: str, team_id: str, start: datetime, end: datetime) -> list[Run]:
    q = (select(Run).where(Run.org_id == org_id, Run.team_id == team_id, Run.created_at >= start,
                           Run.created_at < end).order_by(Run.created_at))
    return list((await session.scalars(q)).all())


async def health_report(session: AsyncSession, *, org_id: str, team_id: str, start: datetime,
                        end: datetime) -> dict[str, Any]:
    runs = await _team_runs(session, org_id, team_id, start, end)
    ids = [r.id for r in runs]
    outcomes = Counter(r.status for r in runs)

    by_source: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"ack": [], "resolve": [], "first": [],
                                                                        "count": []})
    alerts: Counter[str] = Counter()
    services: Counter[str] = Counter()
    for r in runs:
        bucket = by_source[r.source]
        bucket["count"].append(1)
        for key, value in (("ack", _secs(r.created_at, r.acknowledged_at)),
                           ("resolve", _secs(r.created_at, r.resolved_at)),
                           ("first", _secs(r.created_at, r.first_message_at))):
            if value is not None and value >= 0:
                bucket[key].append(value)
        trig = r.trigger or {}
        triggers = [trig, *(r.absorbed or [])]
        if trig.get("is_alert") or r.absorbed:
            for t in triggers:
                if t.get("title"):
                    alerts[t["title"]] += 1
                for svc in t.get("services") or []:
                    services[svc] += 1

    failed_tools: Counter[str] = Counter()
    feedback = {"up": 0, "down": 0}
    if ids:
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start:chunk_start + 500]
            calls = (await session.scalars(select(ToolCall).where(ToolCall.run_id.in_(chunk),
                                                                   ToolCall.status.in_(("error", "timeout"))))).all()
            failed_tools.update(c.tool for c in calls)
            for fb in (await session.scalars(select(RunFeedback).where(RunFeedback.run_id.in_(chunk)))).all():
                feedback["up" if fb.value > 0 else "down"] += 1

    days: dict[str, Counter[str]] = {}
    day = start.date()
    while day < end.date() or (day == end.date() and end.time() != datetime.min.time()):
        days[day.isoformat()] = Counter()
        day += timedelta(days=1)
    for r in runs:
        days.setdefault(r.created_at.date().isoformat(), Counter())[r.status] += 1

    return {
        "kind": "health_report",
        "org_id": org_id, "team_id": team_id,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "runs": {"total": len(runs), "outcomes": dict(sorted(outcomes.items()))},
        "by_source": {src: {"runs": len(v["count"]), "mtta_s": _mean(v["ack"]), "mttr_s": _mean(v["resolve"]),
                            "time_to_first_message_s": _mean(v["first"])}
                      for src, v in sorted(by_source.items())},
        "noisiest_alerts": [{"title": t, "count": n} for t, n in alerts.most_common(5)],
        "noisiest_services": [{"service": s, "count": n} for s, n in services.most_common(5)],
        "failed_integrations": [{"tool": t, "failures": n} for t, n in failed_tools.most_common()],
        "feedback": feedback,
        "daily": [{"day": d, **dict(c)} for d, c in sorted(days.items())],
    }


async def digest(session: AsyncSession, *, org_id: str, team_id: str, start: datetime,
                 end: datetime) -> dict[str, Any]:
    """Last period's incidents: each run with its outcome and headline root cause."""
    runs = await _team_runs(session, org_id, team_id, start, end)
    items = []
    for r in runs:
        result = r.result or {}
        causes = result.get("root_causes") or []
        items.append({"run_id": r.id, "status": r.status, "source": r.source,
                      "title": (r.trigger or {}).get("title") or (r.trigger or {}).get("text", "")[:120],
                      "root_cause": causes[0].get("entity") if causes else None,
                      "summary": result.get("summary"), "created_at": r.created_at.isoformat()})
    return {"kind": "digest", "org_id": org_id, "team_id": team_id,
            "period": {"start": start.isoformat(), "end": end.isoformat()}, "incidents": items}
