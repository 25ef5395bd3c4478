"""The durable record of where a run's RCA was answered besides Slack (``run_answers``).

One row per ``(run_id, destination)``. :func:`claim_answer` decides, in the caller's transaction,
whether this caller may write to the destination now; :func:`record_answer` stores how it ended.
The first claim inserts the row; a later one finds it ``posted`` (nothing to do), finds a fresh
``pending`` row (another attempt is writing: ``busy``), or takes over a ``failed`` row or a
``pending`` one older than ``stale_s`` (its writer died) by compare-and-set on ``attempts`` (one
winner). A takeover is told that an earlier attempt may already have reached the destination, so
the writer looks there first.
Keyword-only, commits nothing (like :mod:`incidentfox.runs.store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.db import utcnow
from incidentfox.runs.models import RunAnswer

AnswerStatus = Literal["pending", "posted", "failed"]
MAX_ATTEMPTS = 5
STALE_S = 300.0     # a pending row this old lost its writer (the engine bounds an answer at 120 s)
ERROR_CHARS = 500


@dataclass(frozen=True)
class AnswerClaim:
    """What :func:`claim_answer` decided. ``claimed``: write now. ``first``: no earlier attempt, so
    nothing can be on the destination yet. ``external_id``: what an earlier attempt posted (when
    ``posted``). ``reason``: why not claimed (``posted``, ``busy``, ``attempts_exhausted``)."""

    claimed: bool
    first: bool = False
    attempts: int = 0
    external_id: str | None = None
    reason: str = ""


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def claim_answer(session: AsyncSession, *, run_id: str, destination: str,
                       now: datetime | None = None, max_attempts: int = MAX_ATTEMPTS,
                       stale_s: float = STALE_S) -> AnswerClaim:
    """Claim the right to answer ``run_id`` at ``destination`` (see the module docstring)."""
    now = now or utcnow()
    stmt = _insert(session)(RunAnswer).values(
        run_id=run_id, destination=destination, status="pending", attempts=1, created_at=now,
        updated_at=now).on_conflict_do_nothing(index_elements=["run_id", "destination"]).returning(RunAnswer.id)
    if (await session.execute(stmt)).scalar_one_or_none() is not None:   # rowcount is not portable here
        return AnswerClaim(claimed=True, first=True, attempts=1)
    row = (await session.scalars(select(RunAnswer).where(
        RunAnswer.run_id == run_id, RunAnswer.destination == destination)
        .execution_options(populate_existing=True))).one()
    if row.status == "posted":
        return AnswerClaim(claimed=False, attempts=row.attempts, external_id=row.external_id, reason="posted")
    if row.status == "pending" and row.updated_at > now - timedelta(seconds=stale_s):
        return AnswerClaim(claimed=False, attempts=row.attempts, reason="busy")
    if row.attempts >= max_attempts:
        return AnswerClaim(claimed=False, attempts=row.attempts, reason="attempts_exhausted")
    won = await session.execute(
        update(RunAnswer)
        .where(RunAnswer.id == row.id, RunAnswer.attempts == row.attempts, RunAnswer.status != "posted")
        .values(attempts=row.attempts + 1, status="pending", updated_at=now)
        .execution_options(synchronize_session=False))
    if won.rowcount != 1:
        return AnswerClaim(claimed=False, attempts=row.attempts, reason="busy")
    return AnswerClaim(claimed=True, first=False, attempts=row.attempts + 1)


async def record_answer(session: AsyncSession, *, run_id: str, destination: str, status: AnswerStatus,
                        external_id: str | None = None, error: str | None = None,
                        now: datetime | None = None) -> None:
    """Store how the claimed attempt ended (``error`` is cut to one bounded line)."""
    values: dict[str, object] = {"status": status, "updated_at": now or utcnow(),
                                 "error": (error or "").splitlines()[0][:ERROR_CHARS] if error else None}
    if external_id is not None:
        values["external_id"] = external_id[:255]
    await session.execute(update(RunAnswer)
                          .where(RunAnswer.run_id == run_id, RunAnswer.destination == destination)
                          .values(**values).execution_options(synchronize_session=False))


async def answers_of(session: AsyncSession, run_id: str) -> list[RunAnswer]:
    """The run's answers, oldest first."""
    q = (select(RunAnswer).where(RunAnswer.run_id == run_id).order_by(RunAnswer.id)
         .execution_options(populate_existing=True))
    return list(await session.scalars(q))


__all__ = ["AnswerClaim", "answers_of", "claim_answer", "record_answer"]
