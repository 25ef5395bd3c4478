"""After the commit: hand a recorded delivery off, and repair hand-offs that never happened.

* :func:`dispatch` runs a :class:`Dispatch` against the run's :class:`~incidentfox.runs.runner.Runner`
  (``submit`` / ``attach`` / ``cancel``) or, for sandbox traffic, the
  :class:`~incidentfox.runs.runner.SandboxRunner` (``submit(delivery_pk=)``), bounded by
  ``DISPATCH_TIMEOUT_S``, and records the attempt.
* :func:`sweep` re-dispatches deliveries still undispatched after a grace period (a replica died
  between commit and hand-off, or the hand-off failed). Each attempt is claimed by compare-and-set
  on ``dispatch_attempts``, so two sweeping replicas never dispatch one delivery twice at once.
  After ``max_attempts`` failures a delivery is "failed": :func:`redrive` dispatches it again on an
  operator's word.
* What a delivery still needs is re-derived from the database (:func:`plan_for`), never trusted
  from memory. A sweep or redrive without a sandbox runner (the agent API's) leaves sandbox
  deliveries to one that has it (the gateway's, the CLI's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox import metrics
from incidentfox.contracts import DeliveryOutcome, RunStatus, Trigger
from incidentfox.db import utcnow
from incidentfox.errors import failure_reason
from incidentfox.runs import store
from incidentfox.runs.models import Delivery
from incidentfox.runs.runner import Runner, SandboxRunner
from incidentfox.sqlite_writer import write_lock
from serve_apps.deliveries.model import Dispatch, DispatchKind

SWEEP_GRACE_S = 5.0
MAX_DISPATCH_ATTEMPTS = 5
DISPATCH_TIMEOUT_S = 15.0
_ERROR_MAX = 2000
SANDBOX_OUTCOMES = [o.value for o in DeliveryOutcome if o.sandbox]


class DispatchMarks:
    """Batches the "dispatched" marks of successful dispatches: one ``UPDATE … WHERE id IN (…)`` per
    ``interval_s`` instead of one transaction per webhook (SQLite has one writer; this halves the
    gateway's writes). A mark lost in a crash only means the sweep hands that delivery off again,
    which both runners accept (``submit`` is idempotent per run id and per sandbox delivery)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float = 0.05) -> None:
        self._sessions, self._interval = sessions, interval_s
        self._pending: list[int] = []
        self._task: asyncio.Task | None = None

    def mark(self, delivery_pk: int) -> None:
        self._pending.append(delivery_pk)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def drain(self) -> None:
        """Write what is pending and wait for the batching task to end (tests; graceful shutdown): a
        flush it had already started is finished too, so no write is left in flight when the caller's
        event loop closes."""
        await self.flush()
        if self._task is not None and not self._task.done():
            await self._task

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        async with write_lock(self._sessions), self._sessions() as session:
            await session.execute(
                update(Delivery).where(Delivery.id.in_(batch))
                .values(dispatched_at=utcnow(), dispatch_error=None,
                        dispatch_attempts=Delivery.dispatch_attempts + 1)
                .execution_options(synchronize_session=False))
            await session.commit()


async def dispatch(sessions: async_sessionmaker[AsyncSession], runner: Runner, *, delivery_pk: int,
                   plan: Dispatch, trigger: Trigger | None = None, attempt_claimed: bool = False,
                   marks: DispatchMarks | None = None, sandbox: SandboxRunner | None = None) -> bool:
    """Run ``plan`` against ``runner`` (or ``sandbox``), bounded by ``DISPATCH_TIMEOUT_S``, and record
    the attempt (counted here unless the caller already claimed it; successes through ``marks`` when
    given). Returns True when it was handed off."""
    error: str | None = None
    try:
        async with asyncio.timeout(DISPATCH_TIMEOUT_S):
            if plan.kind is DispatchKind.POSTMORTEM:
                from incidentfox.settings import get_settings
                from serve_apps.postmortem import post_postmortem

                await post_postmortem(sessions, run_id=plan.run_id or "", settings=get_settings())
            elif plan.kind is DispatchKind.REMEMBER:
                await remember_feedback(sessions, run_id=plan.run_id or "")
            else:
                await _hand_off(runner, sandbox, plan, trigger, delivery_pk)
    except Exception as exc:  # noqa: BLE001 - any runner failure is recorded for the sweep/redrive
        error = failure_reason(exc, limit=_ERROR_MAX)   # an org admin reads it: no database host
    metrics.DISPATCH_ATTEMPTS_TOTAL.inc(kind="retry" if attempt_claimed else "first",
                                        result="ok" if error is None else "error")
    if error is None and marks is not None and not attempt_claimed:
        marks.mark(delivery_pk)
        return True
    async with write_lock(sessions), sessions() as session:
        values: dict[str, Any] = {} if attempt_claimed else {"dispatch_attempts": Delivery.dispatch_attempts + 1}
        if error is None:
            values.update(dispatched_at=utcnow(), dispatch_error=None)
        else:
            values.update(dispatch_error=error)
        await session.execute(update(Delivery).where(Delivery.id == delivery_pk).values(**values)
                              .execution_options(synchronize_session=False))
        await session.commit()
    return error is None


async def remember_feedback(sessions: async_sessionmaker[AsyncSession], *, run_id: str) -> None:
    """Rewrite the run's past-incident document with its feedback (only a document written before:
    a team with past incidents off has none). Never raises (:func:`remember_run`)."""
    from actors.engine.knowledge_use import process_knowledge_bases
    from actors.engine.past_incidents import remember_run
    from incidentfox.settings import get_settings

    await remember_run(sessions, process_knowledge_bases(), run_id=run_id, public_url=get_settings().public_url,
                       only_if_present=True)


async def _hand_off(runner: Runner, sandbox: SandboxRunner | None, plan: Dispatch, trigger: Trigger | None,
                    delivery_pk: int) -> None:
    if plan.kind is DispatchKind.SANDBOX:
        if sandbox is None:
            raise RuntimeError("no sandbox runner in this process")
        await sandbox.submit(delivery_pk=delivery_pk)
    elif plan.kind is DispatchKind.SUBMIT:
        await runner.submit(run_id=plan.run_id, org_id=plan.org_id, team_id=plan.team_id)
    elif plan.kind is DispatchKind.ATTACH:
        if trigger is None:
            raise ValueError("attach needs the trigger")
        await runner.attach(run_id=plan.run_id, trigger=trigger)
    else:
        await runner.cancel(run_id=plan.run_id)


async def plan_for(session: AsyncSession, row: Delivery) -> tuple[Dispatch | None, Trigger | None]:
    """Re-derive what an undispatched delivery still needs from the database."""
    outcome = DeliveryOutcome(row.outcome)
    if outcome.sandbox:
        # The sandbox side claims the row before it acts: handing it off again is always safe.
        return Dispatch(DispatchKind.SANDBOX, None, row.org_id or "", row.team_id or ""), None
    if not row.run_id:
        return None, None
    run = await store.get_run(session, row.run_id)
    if run is None:
        return None, None
    trigger = Trigger.model_validate(row.trigger) if row.trigger else None
    status = RunStatus(run.status)
    if outcome is DeliveryOutcome.ACCEPTED or (outcome is DeliveryOutcome.INTERACTION
                                               and status is RunStatus.QUEUED):
        if status is RunStatus.QUEUED:
            return Dispatch(DispatchKind.SUBMIT, run.id, run.org_id, run.team_id), trigger
        return None, None   # it started (or ended) after all: the runner has it
    if outcome in (DeliveryOutcome.CORRELATED, DeliveryOutcome.CONTINUED) and not status.terminal:
        return Dispatch(DispatchKind.ATTACH, run.id, run.org_id, run.team_id), trigger
    if outcome is DeliveryOutcome.INTERACTION and trigger is not None and \
            (trigger.interaction or {}).get("action") in ("feedback_up", "feedback_down"):
        return Dispatch(DispatchKind.REMEMBER, run.id, run.org_id, run.team_id), trigger
    if outcome is DeliveryOutcome.INTERACTION and trigger is not None and \
            (trigger.interaction or {}).get("action") == "postmortem":
        return Dispatch(DispatchKind.POSTMORTEM, run.id, run.org_id, run.team_id), trigger
    if outcome is DeliveryOutcome.INTERACTION and status is RunStatus.RUNNING and run.cancel_requested:
        return Dispatch(DispatchKind.CANCEL, run.id, run.org_id, run.team_id), trigger
    return None, None


async def _claim_attempt(session: AsyncSession, row: Delivery) -> bool:
    res = await session.execute(
        update(Delivery).where(Delivery.id == row.id, Delivery.dispatched_at.is_(None),
                               Delivery.dispatch_attempts == row.dispatch_attempts)
        .values(dispatch_attempts=row.dispatch_attempts + 1)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1


async def _redispatch(sessions: async_sessionmaker[AsyncSession], runner: Runner,
                      rows: Sequence[Delivery], sandbox: SandboxRunner | None) -> list[int]:
    done: list[int] = []
    for row in rows:
        async with write_lock(sessions), sessions() as session:
            if not await _claim_attempt(session, row):
                await session.commit()
                continue   # another replica's sweep took this attempt
            plan, trigger = await plan_for(session, row)
            if plan is None:
                await session.execute(update(Delivery).where(Delivery.id == row.id)
                                      .values(dispatched_at=utcnow(), dispatch_error=None)
                                      .execution_options(synchronize_session=False))
                await session.commit()
                done.append(row.id)
                continue
            await session.commit()
        if await dispatch(sessions, runner, delivery_pk=row.id, plan=plan, trigger=trigger,
                          attempt_claimed=True, sandbox=sandbox):
            done.append(row.id)
    return done


def _dispatchable(q: Select, sandbox: SandboxRunner | None) -> Select:
    return q if sandbox is not None else q.where(Delivery.outcome.not_in(SANDBOX_OUTCOMES))


async def sweep(sessions: async_sessionmaker[AsyncSession], runner: Runner, *,
                sandbox: SandboxRunner | None = None, grace_s: float = SWEEP_GRACE_S,
                max_attempts: int = MAX_DISPATCH_ATTEMPTS, limit: int = 200,
                now: datetime | None = None) -> list[int]:
    """Re-dispatch deliveries recorded but never dispatched (older than ``grace_s``, fewer than
    ``max_attempts`` tries; sandbox ones only given ``sandbox``). Returns the row ids dispatched."""
    cutoff = (now or utcnow()) - timedelta(seconds=grace_s)
    async with sessions() as session:
        q = select(Delivery).where(Delivery.dispatched_at.is_(None), Delivery.received_at < cutoff,
                                   Delivery.dispatch_attempts < max_attempts)
        rows = list((await session.scalars(
            _dispatchable(q, sandbox).order_by(Delivery.received_at).limit(limit))).all())
    metrics.DELIVERIES_UNDISPATCHED.set(len(rows))
    return await _redispatch(sessions, runner, rows, sandbox)


async def redrive(sessions: async_sessionmaker[AsyncSession], runner: Runner, *,
                  delivery_pks: Sequence[int] | None = None, sandbox: SandboxRunner | None = None,
                  limit: int = 200) -> list[int]:
    """Dispatch failed deliveries again now (all failed ones when ``delivery_pks`` is None; sandbox
    ones only given ``sandbox``). Returns the ids dispatched. Already-dispatched ids are skipped."""
    async with sessions() as session:
        q = select(Delivery).where(Delivery.dispatched_at.is_(None))
        if delivery_pks is not None:
            q = q.where(Delivery.id.in_(list(delivery_pks)))
        else:
            q = q.where((Delivery.dispatch_error.is_not(None))
                        | (Delivery.dispatch_attempts >= MAX_DISPATCH_ATTEMPTS))
        rows = list((await session.scalars(_dispatchable(q, sandbox).order_by(Delivery.id).limit(limit))).all())
    return await _redispatch(sessions, runner, rows, sandbox)
