"""Retention: purge what runs recorded once it is older than the configured age.

:func:`purge` deletes finished runs (and their events, tool calls, feedback, approvals and answers) that
finished — or, if they never finished, were created — before the cutoff, and blanks the raw body of
webhook deliveries received before it. Delivery rows themselves stay (small, and they keep the
exactly-once record). Active runs (queued, running) are never touched. Work is done in chunks of
:data:`CHUNK` runs, each its own transaction, so a large purge never holds one long write lock.
``incidentfox gc`` runs it; the scheduler runs it periodically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.db import utcnow
from incidentfox.runs.models import Delivery, Run, RunAnswer, RunEvent, RunFeedback, ToolApproval, ToolCall

CHUNK = 500
TERMINAL = ("succeeded", "failed", "cancelled")


async def purge(sessions: async_sessionmaker[AsyncSession], *, older_than: timedelta,
                now: datetime | None = None, dry_run: bool = False,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Purge records older than ``older_than``; returns counts per table (what would go, if dry).
    ``progress(message)``, when given, hears each step (every chunk of runs purged)."""
    say = progress or (lambda _message: None)
    cutoff = (now or utcnow()) - older_than
    old_run = (Run.status.in_(TERMINAL),
               or_(Run.finished_at < cutoff, (Run.finished_at.is_(None)) & (Run.created_at < cutoff)))
    counts = {"runs": 0, "run_events": 0, "tool_calls": 0, "run_feedback": 0, "tool_approvals": 0,
              "run_answers": 0, "delivery_payloads": 0, "cutoff": cutoff.isoformat()}
    if dry_run:
        say("counting what would be purged")
        async with sessions() as s:
            ids = select(Run.id).where(*old_run)
            counts["runs"] = await s.scalar(select(func.count()).select_from(ids.subquery())) or 0
            for key, model in (("run_events", RunEvent), ("tool_calls", ToolCall), ("run_feedback", RunFeedback),
                               ("tool_approvals", ToolApproval), ("run_answers", RunAnswer)):
                counts[key] = await s.scalar(select(func.count()).select_from(model)
                                             .where(model.run_id.in_(ids))) or 0
            counts["delivery_payloads"] = await s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.received_at < cutoff, Delivery.payload != "")) or 0
        return counts
    while True:
        async with sessions() as s:
            ids = list((await s.scalars(select(Run.id).where(*old_run).limit(CHUNK))).all())
            if not ids:
                break
            for key, model in (("run_events", RunEvent), ("tool_calls", ToolCall), ("run_feedback", RunFeedback),
                               ("tool_approvals", ToolApproval), ("run_answers", RunAnswer)):
                res = await s.execute(delete(model).where(model.run_id.in_(ids))
                                      .execution_options(synchronize_session=False))
                counts[key] += res.rowcount or 0
            res = await s.execute(delete(Run).where(Run.id.in_(ids)).execution_options(synchronize_session=False))
            counts["runs"] += res.rowcount or 0
            await s.commit()
        say(f"purged {counts['runs']} runs")
    say("clearing old webhook payloads")
    async with sessions() as s:
        res = await s.execute(update(Delivery).where(Delivery.received_at < cutoff, Delivery.payload != "")
                              .values(payload="").execution_options(synchronize_session=False))
        counts["delivery_payloads"] = res.rowcount or 0
        await s.commit()
    return counts
