"""Who owns a Slack thread: the one rule for runs and sandbox sessions.

Two things bind a Slack thread ``(channel, thread_ts)`` to a team: a run (``runs.thread_channel`` /
``thread_ts``: it posts its messages and Approve buttons there and takes the replies as turns) and a
sandbox session (``sandbox_sessions.slack_channel`` / ``slack_thread_ts``: it mirrors its progress
there and the replies drive it). The thread belongs to the team of its **first** binding, run or
session, whatever that binding's state now: a finished run or an ended session still owns its
thread, so nothing moves a thread to another team afterwards (its RCA or transcript stays there,
and a later binder would be posting into it and taking its replies).

Every binder asks :func:`thread_owner` before binding, and to any other team the thread does not
exist: the agent API (``POST /runs``, ``404 thread_not_found``), the sandbox API (``POST /sessions``
with ``slack_thread_ts``, the same 404, :func:`serve_apps.thread_binding.check_thread_owner`), and
the gateway's intake (:mod:`serve_apps.deliveries.decide`: a follow-up or mention bound to another
team's thread is ``unmatched`` / ``rejected``; a sandbox reply reaches a session only in a thread
its team owns; SQLite's group commit sends every bound thread, :func:`bound_sandbox_threads`
included, to that checked path).

Two first bindings at once (two mentions in a fresh thread, or a run and a session) would each find
no owner and both bind: every binder holds the thread's lock (:func:`lock_thread`) from reading the
owner to its insert, so the second waits and then finds the first (PostgreSQL; SQLite's one write
lock does the same). The gateway's intake takes it in :func:`serve_apps.deliveries.decide.decide`,
a session's insert in :func:`claim_thread`.

It lives here, not in :mod:`incidentfox.runs.store`, because it reads both tables, and the sandbox
is the lowest layer that sees both (docs/architecture.md, "Packages and the import rule").
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from actors.sandbox.models import SandboxSessionRow
from incidentfox.errors import NotFound
from incidentfox.runs.locks import lock_names, thread_lock_name
from incidentfox.runs.models import Run


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def thread_owner(session: AsyncSession, *, channel: str, thread_ts: str) -> tuple[str, str] | None:
    """``(org_id, team_id)`` of the team that owns the Slack thread ``(channel, thread_ts)``: the team
    of the oldest run or sandbox session (any status) bound to it; None when nothing is. A run and a
    session bound at the same instant: the run's team. In the caller's transaction."""
    run = (await session.execute(
        select(Run.org_id, Run.team_id, Run.created_at)
        .where(Run.thread_channel == channel, Run.thread_ts == thread_ts)
        .order_by(Run.created_at, Run.id).limit(1))).first()
    sbx = (await session.execute(
        select(SandboxSessionRow.org_id, SandboxSessionRow.team_id, SandboxSessionRow.created_at)
        .where(SandboxSessionRow.slack_channel == channel, SandboxSessionRow.slack_thread_ts == thread_ts)
        .order_by(SandboxSessionRow.created_at, SandboxSessionRow.id).limit(1))).first()
    bound = [b for b in (run, sbx) if b is not None]
    if not bound:
        return None
    first = min(bound, key=lambda b: _utc(b.created_at))   # stable: the run wins a tie
    return first.org_id, first.team_id


def thread_not_found() -> NotFound:
    """Another team's thread does not exist for this one: no run or session id, no owner, the same
    answer as an unknown run."""
    return NotFound("thread not found", code="thread_not_found")


async def lock_thread(session: AsyncSession, *, channel: str, thread_ts: str) -> None:
    """Hold the thread's binding lock until ``session``'s transaction ends (taken before any
    correlation or row lock: :mod:`incidentfox.runs.locks`)."""
    await lock_names(session, [thread_lock_name(channel=channel, thread_ts=thread_ts)])


async def claim_thread(session: AsyncSession, *, org_id: str, team_id: str, channel: str,
                       thread_ts: str) -> None:
    """Bind the thread to the team in this transaction, whose session row is already added and
    flushed: lock the thread, then raise :func:`thread_not_found` when any other team's run or
    session is bound to it. Inserting first takes SQLite's write lock before the read, so the check
    and the insert are one step there too; on PostgreSQL the second claimer waits for the first's
    commit and then sees its binding. Of two claims at once, one wins, whatever their timestamps."""
    await lock_thread(session, channel=channel, thread_ts=thread_ts)
    for model, channel_col, ts_col in ((Run, Run.thread_channel, Run.thread_ts),
                                       (SandboxSessionRow, SandboxSessionRow.slack_channel,
                                        SandboxSessionRow.slack_thread_ts)):
        other_team = (await session.execute(select(model.id).where(
            channel_col == channel, ts_col == thread_ts,
            tuple_(model.org_id, model.team_id) != (org_id, team_id)).limit(1))).first()
        if other_team is not None:
            raise thread_not_found()


async def bound_sandbox_threads(session: AsyncSession, *,
                                threads: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``threads`` (channel, thread ts) a sandbox session of any status is bound to: one
    query for a batch (the group commit's fast path reads run threads itself)."""
    if not threads:
        return set()
    rows = (await session.execute(
        select(SandboxSessionRow.slack_channel, SandboxSessionRow.slack_thread_ts).distinct()
        .where(tuple_(SandboxSessionRow.slack_channel, SandboxSessionRow.slack_thread_ts).in_(threads)))).all()
    return {(r.slack_channel, r.slack_thread_ts) for r in rows}


__all__ = ["bound_sandbox_threads", "claim_thread", "lock_thread", "thread_not_found", "thread_owner"]
