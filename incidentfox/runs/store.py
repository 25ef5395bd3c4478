"""Run persistence and the run state machine.

Every status change is a compare-and-set ``UPDATE … WHERE status IN (allowed predecessors)``, so two
processes racing on one run (a cancel and a finish, two recovery sweeps) can never both win, and a
terminal run never changes again. Recovery also requires the lease it read to be the one still held
and still lapsed (:func:`recover_lease`), so a lease renewed or re-claimed meanwhile is never taken.
Functions take an ``AsyncSession`` and keyword-only arguments, and commit nothing: the caller owns
the transaction (the gateway allocates a run in the same transaction as its delivery record).

A read-modify-write of a run's JSON lists (``absorbed``, ``turns``) reads the row locked
(``get_run(for_update=True)``: ``SELECT … FOR UPDATE`` on PostgreSQL), so concurrent writers append
one after another instead of each overwriting the other's entry; the lock is held until the caller's
transaction ends. SQLite ignores ``FOR UPDATE``: a transaction there that has written (intake
inserts its delivery row first) holds the database's one write lock, so what it reads is current.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.contracts import ALLOWED_TRANSITIONS, RunStatus, Trigger
from incidentfox.db import utcnow
from incidentfox.pagination import Page, PageRequest, fetch_page
from incidentfox.runs.models import Run, RunEvent, RunFeedback, ToolCall

ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex


def _predecessors(to: RunStatus) -> list[str]:
    return [s.value for s, nxt in ALLOWED_TRANSITIONS.items() if to in nxt]


async def create_run(session: AsyncSession, *, org_id: str, team_id: str, trigger: Trigger | dict[str, Any],
                     kind: str = "investigation", run_id: str | None = None,
                     correlation_key: str | None = None, deadline_s: float | None = None,
                     parent_run_id: str | None = None, flush: bool = True) -> Run:
    """Insert a queued run (flushed unless ``flush=False``, not committed). ``parent_run_id``: the
    run this one follows up (a reply in its thread after it ended; :mod:`incidentfox.runs.turns`)."""
    t = trigger if isinstance(trigger, Trigger) else Trigger.model_validate(trigger)
    run = Run(
        id=run_id or new_run_id(), org_id=org_id, team_id=team_id, status=RunStatus.QUEUED.value,
        kind=kind, source=t.source, trigger=t.model_dump(mode="json"), correlation_key=correlation_key,
        thread_channel=t.thread.channel if t.thread else None,
        thread_ts=t.thread.ts if t.thread else None, deadline_s=deadline_s, created_at=utcnow(),
        absorbed=[], turns=[], parent_run_id=parent_run_id,
    )
    session.add(run)
    if flush:
        await session.flush()
    return run


async def get_run(session: AsyncSession, run_id: str, *, for_update: bool = False) -> Run | None:
    """The run, re-read; ``for_update``: row-locked until the transaction ends (see module doc)."""
    return await session.get(Run, run_id, populate_existing=True, with_for_update=for_update)


async def run_evidence(session: AsyncSession, run_id: str) -> dict[str, Any] | None:
    """The evidence a finished run kept for its follow-ups (``runs.evidence``, deferred on the row)."""
    return await session.scalar(select(Run.evidence).where(Run.id == run_id))


def _runs_query(org_id: str | None, team_id: str | None, status: str | None, source: str | None = None,
                since: datetime | None = None, until: datetime | None = None) -> Any:
    q = select(Run).execution_options(populate_existing=True)
    if org_id is not None:
        q = q.where(Run.org_id == org_id)
    if team_id is not None:
        q = q.where(Run.team_id == team_id)
    if status is not None:
        q = q.where(Run.status == status)
    if source is not None:
        q = q.where(Run.source == source)
    if since is not None:
        q = q.where(Run.created_at >= since)
    if until is not None:
        q = q.where(Run.created_at < until)
    return q


# Newest first; the id breaks ties, so pages neither overlap nor skip.
RUN_ORDER = ((Run.created_at, True), (Run.id, False))


async def list_runs(session: AsyncSession, *, org_id: str | None = None, team_id: str | None = None,
                    status: str | None = None, limit: int = 50, offset: int = 0) -> list[Run]:
    q = _runs_query(org_id, team_id, status).order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)
    return list((await session.scalars(q)).all())


async def page_runs(session: AsyncSession, *, page: PageRequest, org_id: str | None = None,
                    team_id: str | None = None, status: str | None = None, source: str | None = None,
                    since: datetime | None = None, until: datetime | None = None, offset: int = 0) -> Page[Run]:
    """:func:`list_runs` one cursor page at a time (``offset``, the older parameter, skips after the
    cursor), optionally narrowed to a ``source`` and to ``since <= created_at < until``."""
    q = _runs_query(org_id, team_id, status, source, since, until)
    return await fetch_page(session, q, order=RUN_ORDER, page=page, offset=offset)


async def transition(session: AsyncSession, *, run_id: str, to: RunStatus,
                     from_: Iterable[RunStatus] | None = None, owner: str | None = None,
                     lease_lapsed_by: datetime | None = None, **fields: Any) -> bool:
    """Move ``run_id`` to ``to`` if its current status allows it (optionally narrowed by ``from_``).

    Returns True when this call made the change, False when the run was already elsewhere (lost a
    race, or already terminal). Timestamps are set here so every caller agrees on them. With
    ``owner``, the change also requires that ``owner`` still holds the run's lease (an actor whose
    lease lapsed and whose run was re-claimed elsewhere cannot finish it). With ``lease_lapsed_by``,
    the lease must also have expired before that time (recovery never takes a lease renewed since).
    """
    allowed = _predecessors(to)
    if from_ is not None:
        allowed = [s for s in allowed if s in {f.value for f in from_}]
    now = utcnow()
    values: dict[str, Any] = {"status": to.value, **fields}
    if to is RunStatus.RUNNING:
        values.setdefault("started_at", now)
    if to.terminal:
        values.setdefault("finished_at", now)
        values.setdefault("lease_owner", None)
        values.setdefault("lease_expires_at", None)
    where = [Run.id == run_id, Run.status.in_(allowed)]
    if owner is not None:
        where.append(Run.lease_owner == owner)
    if lease_lapsed_by is not None:
        where.append(Run.lease_expires_at < lease_lapsed_by)
    res = await session.execute(
        update(Run).where(*where).values(**values).execution_options(synchronize_session=False)
    )
    return res.rowcount == 1


async def claim(session: AsyncSession, *, run_id: str, owner: str, lease_s: float) -> bool:
    """queued → running under a lease held by ``owner``; counts the attempt."""
    now = utcnow()
    res = await session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED.value,
                          Run.cancel_requested.is_(False))
        .values(status=RunStatus.RUNNING.value, lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s), attempts=Run.attempts + 1,
                started_at=func.coalesce(Run.started_at, now))
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1


async def renew_lease(session: AsyncSession, *, run_ids: Iterable[str], owner: str, lease_s: float) -> int:
    """Extend the leases ``owner`` still holds; returns how many were renewed."""
    ids = list(run_ids)
    if not ids:
        return 0
    res = await session.execute(
        update(Run).where(Run.id.in_(ids), Run.lease_owner == owner, Run.status == RunStatus.RUNNING.value)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return res.rowcount


async def recover_expired(session: AsyncSession, *, now: datetime | None = None,
                          max_attempts: int = 2) -> tuple[list[str], list[str]]:
    """Runs whose lease lapsed (their actor died): retry once, else fail with the reason.

    Returns ``(requeued_ids, failed_ids)``. Safe to run from several processes, and while actors
    renew or claim: each row moves once, and only from the lease that was read (:func:`recover_lease`).
    """
    now = now or utcnow()
    requeued, failed = [], []
    for run in await expired_leases(session, now=now):
        moved = await recover_lease(session, run=run, now=now, max_attempts=max_attempts)
        if moved is RunStatus.QUEUED:
            requeued.append(run.id)
        elif moved is RunStatus.FAILED:
            failed.append(run.id)
    return requeued, failed


async def expired_leases(session: AsyncSession, *, now: datetime) -> list[Run]:
    """Running runs whose lease expired before ``now``, as read now (see :func:`recover_lease`)."""
    return list((await session.scalars(
        select(Run).where(Run.status == RunStatus.RUNNING.value, Run.lease_expires_at < now)
        .execution_options(populate_existing=True)
    )).all())


async def recover_lease(session: AsyncSession, *, run: Run, now: datetime,
                        max_attempts: int = 2) -> RunStatus | None:
    """Requeue ``run`` (read by :func:`expired_leases`), or fail it after ``max_attempts``; returns
    the status it moved to, or None when it was no longer recoverable.

    The read and this update are not atomic: between them the owner's late heartbeat may renew the
    lease, or another sweep may requeue the run and another actor claim it. So the update also
    requires the lease still to be held by the owner that was read and still lapsed at ``now``;
    otherwise the run is left to whoever holds it (two actors never execute one run).
    """
    lease = {"from_": [RunStatus.RUNNING], "owner": run.lease_owner, "lease_lapsed_by": now}
    if run.attempts < max_attempts and not run.cancel_requested:
        if not await transition(session, run_id=run.id, to=RunStatus.QUEUED, lease_owner=None,
                                lease_expires_at=None, **lease):
            return None
        await append_event(session, run_id=run.id, kind="status",
                           data={"status": "queued", "reason": "lease_expired_retry",
                                 "previous_owner": run.lease_owner})
        return RunStatus.QUEUED
    reason = (f"run lost its worker (lease held by {run.lease_owner} expired) "
              f"after {run.attempts} attempt(s)")
    if not await transition(session, run_id=run.id, to=RunStatus.FAILED, error=reason, **lease):
        return None
    await append_event(session, run_id=run.id, kind="status", data={"status": "failed", "reason": reason})
    return RunStatus.FAILED


async def request_cancel(session: AsyncSession, *, run_id: str) -> str:
    """Mark a run for cancellation. A queued run is cancelled at once; a running one is flagged for
    its actor (which the caller also signals). Returns the run's status after the call."""
    run = await get_run(session, run_id)
    if run is None:
        raise KeyError(run_id)
    if RunStatus(run.status).terminal:
        return run.status
    if await transition(session, run_id=run_id, to=RunStatus.CANCELLED, from_=[RunStatus.QUEUED],
                        cancel_requested=True, error="cancelled before start"):
        return RunStatus.CANCELLED.value
    await session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True)
                          .execution_options(synchronize_session=False))
    return (await get_run(session, run_id)).status


async def append_event(session: AsyncSession, *, run_id: str, kind: str, data: dict[str, Any]) -> RunEvent:
    """Append a phase/progress event with the next per-run sequence number.

    One writer (the run's actor, or the gateway before dispatch) appends per run at a time; the
    UNIQUE(run_id, seq) constraint turns a violated assumption into an error, not a silent dup.
    """
    seq = (await session.scalar(select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id))) or 0
    ev = RunEvent(run_id=run_id, seq=seq + 1, kind=kind, data=data, at=utcnow())
    session.add(ev)
    await session.flush()
    return ev


async def list_events(session: AsyncSession, *, run_id: str, after_seq: int = 0,
                      limit: int = 500) -> list[RunEvent]:
    q = (select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
         .order_by(RunEvent.seq).limit(limit))
    return list((await session.scalars(q)).all())


async def list_tool_calls(session: AsyncSession, *, run_id: str) -> list[ToolCall]:
    q = select(ToolCall).where(ToolCall.run_id == run_id).order_by(ToolCall.started_at, ToolCall.id)
    return list((await session.scalars(q)).all())


async def find_correlated(session: AsyncSession, *, org_id: str, team_id: str, keys: Iterable[str],
                          window_s: float, now: datetime | None = None) -> Run | None:
    """The team's active run for any of ``keys`` (service or alert fingerprint) created inside the
    correlation window, oldest first."""
    keys = [k for k in keys if k]
    if not keys:
        return None
    since = (now or utcnow()) - timedelta(seconds=window_s)
    q = (select(Run).where(Run.org_id == org_id, Run.team_id == team_id, Run.status.in_(ACTIVE),
                           Run.correlation_key.in_(keys), Run.created_at >= since)
         .order_by(Run.created_at).limit(1).execution_options(populate_existing=True))
    return (await session.scalars(q)).first()


async def absorb(session: AsyncSession, *, run_id: str, trigger: Trigger) -> bool:
    """Attach a correlated alert trigger to an active run as added context; False (nothing written)
    when the run is no longer active once locked (it ended meanwhile: the alert is not absorbed).

    Reads the run locked (module doc): alerts absorbed at once are all kept."""
    run = await get_run(session, run_id, for_update=True)
    if run is None or run.status not in ACTIVE:
        return False
    entry = {"source": trigger.source, "delivery_id": trigger.delivery_id, "title": trigger.title,
             "fingerprint": trigger.fingerprint, "services": trigger.services,
             "at": utcnow().isoformat()}
    run.absorbed = [*(run.absorbed or []), entry]
    await append_event(session, run_id=run_id, kind="absorbed", data=entry)
    await session.flush()
    return True


async def add_turn(session: AsyncSession, *, run_id: str, entry: dict[str, Any]) -> None:
    """Record a thread turn on ``run_id`` (:mod:`incidentfox.runs.turns`) and a ``turn`` event; the
    list is bounded (the event still records every turn). Reads the run locked (module doc):
    replies recorded at once are all kept."""
    from incidentfox.runs.turns import MAX_TURNS

    run = await get_run(session, run_id, for_update=True)
    if len(run.turns or []) < MAX_TURNS:
        run.turns = [*(run.turns or []), entry]
    await append_event(session, run_id=run_id, kind="turn", data=entry)
    await session.flush()


async def find_by_thread(session: AsyncSession, *, channel: str, thread_ts: str, org_id: str,
                         team_id: str) -> Run | None:
    """The team's most recent run whose Slack thread is ``(channel, thread_ts)``. Scoped: another
    team's run in that thread is never returned. Who owns the thread (its first run or sandbox
    session) is ``actors.sandbox.threads.thread_owner``, which reads both tables. A run started by
    an alert gets its thread when the engine posts its first message (it sets
    ``thread_channel/thread_ts``)."""
    q = (select(Run).where(Run.thread_channel == channel, Run.thread_ts == thread_ts,
                           Run.org_id == org_id, Run.team_id == team_id)
         .order_by(Run.created_at.desc()).limit(1).execution_options(populate_existing=True))
    return (await session.scalars(q)).first()


async def record_feedback(session: AsyncSession, *, run_id: str, user: str, value: int) -> None:
    existing = (await session.scalars(
        select(RunFeedback).where(RunFeedback.run_id == run_id, RunFeedback.user == user))).first()
    if existing:
        existing.value, existing.at = value, utcnow()
    else:
        session.add(RunFeedback(run_id=run_id, user=user, value=value, at=utcnow()))
    await session.flush()


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def run_view(run: Run, *, include_result: bool = True) -> dict[str, Any]:
    """The API representation of a run (``GET /api/v1/agent/runs/{id}``)."""
    view: dict[str, Any] = {
        "run_id": run.id, "status": run.status, "org": run.org_id, "team": run.team_id,
        "kind": run.kind, "source": run.source, "trigger": run.trigger,
        "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at), "attempts": run.attempts,
        "absorbed": run.absorbed or [], "error": run.error,
        "parent_run_id": run.parent_run_id, "turns": run.turns or [],
    }
    if include_result and run.result is not None:
        view["result"] = run.result
    return view
