"""Exactly-once intake: record a verified delivery and decide what it does, in one transaction.

Contract (issue 3, "Exactly once"):

* :func:`intake` inserts the delivery under ``UNIQUE(source, delivery_id)`` and, in the SAME
  transaction, allocates the run it starts (or finds the run it joins). A redelivery or a concurrent
  copy loses the insert, and gets ``duplicate=True`` with the first delivery's ``run_id``.
* What must happen after the commit (``runner.submit`` / ``attach`` / ``cancel``) is returned as a
  :class:`Dispatch`. A delivery that needs one keeps ``dispatched_at`` NULL until :func:`dispatch`
  succeeds; one that needs none (unrouted, recorded, updated, feedback) is written dispatched.
* A crash between commit and dispatch loses nothing: :func:`sweep` re-dispatches deliveries still
  undispatched after a grace period. Each attempt is claimed by compare-and-set on
  ``dispatch_attempts``, so two sweeping replicas never dispatch one delivery twice at once.
  After ``max_attempts`` failures a delivery is "failed": :func:`list_failed` shows it and
  :func:`redrive` dispatches it again on an operator's word.

Outcomes (``webhook_deliveries.outcome``): ``accepted`` (started a run), ``correlated`` (alert
absorbed into an active run), ``continued`` (thread follow-up handed to its run), ``updated``
(ack/resolve recorded on a run), ``unmatched`` (an update or follow-up with no run to apply to),
``recorded`` (a change event - GitHub push / pull_request - stored here, in this table, for later
correlation: ``trigger.identifiers`` carries the repo and ``received_at`` the time), ``unrouted``
(no team claims it), ``interaction`` (a Slack button acted on a run), ``rejected`` (a button that
names no run we know).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.contracts import RunStatus, Trigger, TriggerAction
from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Delivery, Run, RunEvent
from incidentfox.runs.runner import Runner

DispatchKind = Literal["submit", "attach", "cancel"]
DEFAULT_CORRELATION_WINDOW_S = 600.0
SWEEP_GRACE_S = 5.0
MAX_DISPATCH_ATTEMPTS = 5
DISPATCH_TIMEOUT_S = 15.0
_ERROR_MAX = 2000


@dataclass(frozen=True)
class Route:
    """Where a trigger goes. ``stale`` means it came from the router's last good table while the
    config service was unreachable."""

    found: bool
    org_id: str | None = None
    team_id: str | None = None
    matched_by: str | None = None
    matched_value: str | None = None
    stale: bool = False


@dataclass(frozen=True)
class Dispatch:
    kind: DispatchKind
    run_id: str
    org_id: str
    team_id: str


@dataclass(frozen=True)
class IntakeResult:
    delivery_pk: int
    outcome: str
    run_id: str | None
    duplicate: bool = False
    dispatch: Dispatch | None = None
    detail: str = ""

    def response(self) -> dict[str, Any]:
        """The sender's 200 body."""
        body: dict[str, Any] = {"ok": True, "run_id": self.run_id, "outcome": self.outcome}
        if self.duplicate:
            body["duplicate"] = True
        return body


_WRITE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def write_lock(sessions: async_sessionmaker[AsyncSession]) -> contextlib.AbstractAsyncContextManager[Any]:
    """Serialise this process's write transactions on SQLite (one writer per database): waiting on an
    in-process asyncio lock is FIFO and costs nothing, while contending connections spin in SQLite's
    busy handler (sleeps of up to 100 ms) and can fail with "database is locked". No-op elsewhere."""
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return contextlib.nullcontext()
    loop = asyncio.get_running_loop()
    entry = _WRITE_LOCKS.get(sessions)
    if entry is None or entry[0] is not loop:   # an asyncio.Lock belongs to one loop
        entry = _WRITE_LOCKS[sessions] = (loop, asyncio.Lock())
    return entry[1]


def _correlation_key(trigger: Trigger) -> str | None:
    # Service first: an alert storm on one service has many fingerprints but one service.
    if trigger.services:
        return f"service:{trigger.services[0].lower()}"
    if trigger.fingerprint:
        return f"fp:{trigger.fingerprint}"
    return None


def _correlation_keys(trigger: Trigger) -> list[str]:
    keys = [f"service:{s.lower()}" for s in trigger.services if s]
    if trigger.fingerprint:
        keys.append(f"fp:{trigger.fingerprint}")
    return keys


async def _existing(session: AsyncSession, *, source: str, delivery_id: str) -> Delivery | None:
    q = select(Delivery).where(Delivery.source == source, Delivery.delivery_id == delivery_id)
    return (await session.scalars(q.execution_options(populate_existing=True))).first()


async def intake(sessions: async_sessionmaker[AsyncSession], *, trigger: Trigger, route: Route,
                 payload: str, correlation_window_s: float = DEFAULT_CORRELATION_WINDOW_S,
                 now: datetime | None = None) -> IntakeResult:
    """Record ``trigger`` once and allocate what it starts, in one transaction (see module doc).

    Only verified deliveries reach here. ``route`` is the router's answer for the trigger.
    """
    now = now or utcnow()
    async with write_lock(sessions), sessions() as session:
        try:
            _, result = await record_and_decide(session, trigger=trigger, route=route, payload=payload,
                                                window_s=correlation_window_s, now=now)
        except IntegrityError:
            await session.rollback()
            first = await _existing(session, source=trigger.source, delivery_id=trigger.delivery_id)
            if first is None:  # the other insert rolled back after all; the sender will retry
                raise
            return IntakeResult(delivery_pk=first.id, outcome=first.outcome, run_id=first.run_id,
                                duplicate=True)
        await session.commit()
        return result


async def record_and_decide(session: AsyncSession, *, trigger: Trigger, route: Route, payload: str,
                            window_s: float, now: datetime) -> tuple[Delivery, IntakeResult]:
    """Insert the delivery row (raises ``IntegrityError`` for a duplicate) and decide what it does,
    in the caller's transaction (which the caller commits)."""
    row = Delivery(source=trigger.source, delivery_id=trigger.delivery_id, received_at=now,
                   event_kind=trigger.event_kind[:128], action=trigger.action.value,
                   outcome="pending", org_id=route.org_id, team_id=route.team_id,
                   route_stale=route.stale, trigger=trigger.model_dump(mode="json"),
                   payload=payload, dispatch_attempts=0)
    session.add(row)
    await session.flush()
    outcome, run_id, dispatch, detail = await _decide(session, trigger=trigger, route=route,
                                                      window_s=window_s, now=now)
    row.outcome, row.run_id = outcome, run_id
    if dispatch is None:
        row.dispatched_at = now
    return row, IntakeResult(delivery_pk=row.id, outcome=outcome, run_id=run_id, dispatch=dispatch,
                             detail=detail)


async def _decide(session: AsyncSession, *, trigger: Trigger, route: Route, window_s: float,
                  now: datetime) -> tuple[str, str | None, Dispatch | None, str]:
    action = trigger.action
    if action is TriggerAction.INTERACTION:
        return await _interaction(session, trigger=trigger, route=route, now=now)
    if action is TriggerAction.CONTINUE or (action is TriggerAction.START and trigger.human
                                           and trigger.thread and trigger.thread.ts):
        run, foreign = await _thread_run(session, trigger=trigger, route=route)
        if foreign:
            # Another team's thread: no note, no attach, no new run bound to it, no id in the answer.
            if action is TriggerAction.CONTINUE:
                return "unmatched", None, None, "no active run in this thread"
            return "rejected", None, None, "the thread belongs to another team"
        if run is not None and not RunStatus(run.status).terminal:
            await store.append_event(session, run_id=run.id, kind="note",
                                     data={"follow_up": trigger.text[:2000], "actor": trigger.actor})
            return "continued", run.id, Dispatch("attach", run.id, run.org_id, run.team_id), ""
        if action is TriggerAction.CONTINUE:
            return "unmatched", run.id if run else None, None, "no active run in this thread"
    if action is TriggerAction.RECORD:
        return "recorded", None, None, ""
    if not route.found or not route.org_id or not route.team_id:
        return "unrouted", None, None, "no team claims this event's identifiers"
    if action is TriggerAction.UPDATE:
        return await _update(session, trigger=trigger, route=route, now=now)
    # START
    if trigger.is_alert and not trigger.human:
        run = await store.find_correlated(session, org_id=route.org_id, team_id=route.team_id,
                                          keys=_correlation_keys(trigger), window_s=window_s, now=now)
        if run is not None:
            await store.absorb(session, run_id=run.id, trigger=trigger)
            return "correlated", run.id, Dispatch("attach", run.id, run.org_id, run.team_id), ""
    run = await store.create_run(session, org_id=route.org_id, team_id=route.team_id, trigger=trigger,
                                 correlation_key=_correlation_key(trigger) if trigger.is_alert else None)
    # A run created in this transaction has no events yet: its first is seq 1 (no max(seq) read).
    session.add(RunEvent(run_id=run.id, seq=1, kind="status", at=now,
                         data={"status": "queued", "source": trigger.source,
                               "route": {"matched_by": route.matched_by, "stale": route.stale}}))
    return "accepted", run.id, Dispatch("submit", run.id, run.org_id, run.team_id), ""


async def _thread_run(session: AsyncSession, *, trigger: Trigger, route: Route) -> tuple[Run | None, bool]:
    """``(the routed team's latest run in the trigger's thread, foreign)``. ``foreign`` when the thread
    belongs to another team (``store.thread_owner``), or to anyone while the route names no team:
    an unrouted follow-up cannot show it comes from the owner."""
    if trigger.thread is None or not trigger.thread.ts:
        return None, False
    owner = await store.thread_owner(session, channel=trigger.thread.channel, thread_ts=trigger.thread.ts)
    if owner is None:
        return None, False
    if not route.found or (route.org_id, route.team_id) != owner:
        return None, True
    return await store.find_by_thread(session, channel=trigger.thread.channel, thread_ts=trigger.thread.ts,
                                      org_id=owner[0], team_id=owner[1]), False


async def _find_by_fingerprint(session: AsyncSession, *, org_id: str, team_id: str,
                               fingerprint: str) -> Run | None:
    """The team's most recent run started by (or absorbing) the alert ``fingerprint``.

    Bounded: only the team's 200 most recent runs are examined (ack/resolve follow their trigger
    within hours, and the (org, team, created_at) index serves this query)."""
    runs = await store.list_runs(session, org_id=org_id, team_id=team_id, limit=200)
    for run in runs:
        if (run.trigger or {}).get("fingerprint") == fingerprint:
            return run
        if any(a.get("fingerprint") == fingerprint for a in (run.absorbed or [])):
            return run
    return None


async def _update(session: AsyncSession, *, trigger: Trigger, route: Route,
                  now: datetime) -> tuple[str, str | None, Dispatch | None, str]:
    if not trigger.fingerprint:
        return "unmatched", None, None, "update carries no fingerprint"
    run = await _find_by_fingerprint(session, org_id=route.org_id, team_id=route.team_id,
                                     fingerprint=trigger.fingerprint)
    if run is None:
        return "unmatched", None, None, "no run for this fingerprint"
    kind = trigger.event_kind.lower()
    field = "resolved_at" if "resolve" in kind else "acknowledged_at"
    await session.execute(update(Run).where(Run.id == run.id, getattr(Run, field).is_(None))
                          .values({field: trigger.occurred_at or now})
                          .execution_options(synchronize_session=False))
    await store.append_event(session, run_id=run.id, kind="note",
                             data={"update": trigger.event_kind, "source": trigger.source})
    return "updated", run.id, None, field


async def _interaction(session: AsyncSession, *, trigger: Trigger, route: Route,
                       now: datetime) -> tuple[str, str | None, Dispatch | None, str]:
    # Shape from serve_apps.webhooks.slack.parse_interaction: action (the bare verb of our
    # "incidentfox_<verb>" action_id), value, user, run_id, data.
    spec = trigger.interaction or {}
    kind = str(spec.get("action") or spec.get("action_id") or "")
    extra = spec.get("data") if isinstance(spec.get("data"), dict) else {}
    run_id = str(spec.get("run_id") or "")
    run = await store.get_run(session, run_id) if run_id else None
    if run is None:
        return "rejected", None, None, "the button names no known run"
    if route.found and route.org_id and run.org_id != route.org_id:
        # A button pressed in one org's channel may not act on another org's run.
        return "rejected", None, None, "the run belongs to another org"
    user = str(spec.get("user") or trigger.actor or "unknown")[:128]
    if kind == "rerun":
        new = await store.create_run(session, org_id=run.org_id, team_id=run.team_id,
                                     trigger=Trigger.model_validate(run.trigger), kind=run.kind)
        await store.append_event(session, run_id=new.id, kind="status",
                                 data={"status": "queued", "rerun_of": run.id, "by": user})
        return "interaction", new.id, Dispatch("submit", new.id, new.org_id, new.team_id), "rerun"
    if kind == "cancel":
        status = await store.request_cancel(session, run_id=run.id)
        await store.append_event(session, run_id=run.id, kind="note", data={"cancel_requested_by": user})
        if RunStatus(status) is RunStatus.RUNNING:
            return "interaction", run.id, Dispatch("cancel", run.id, run.org_id, run.team_id), "cancel"
        return "interaction", run.id, None, "cancel"
    if kind in ("feedback_up", "feedback_down"):
        await store.record_feedback(session, run_id=run.id, user=user, value=1 if kind == "feedback_up" else -1)
        return "interaction", run.id, None, "feedback"
    if kind in ("approve", "deny"):
        from actors.engine.approvals import authorize_slack, decide

        approval_id = str(extra.get("approval_id") or "")
        if not await authorize_slack(session, run=run, approval_id=approval_id, user=user, decision=kind,
                                     channel=trigger.thread.channel if trigger.thread else None):
            return "rejected", run.id, None, "not an approver (team config access.approvers)"
        if not await decide(session, run_id=run.id, approval_id=approval_id, approve=kind == "approve",
                            by=f"slack:{user}"):
            return "rejected", run.id, None, "no pending approval with that id"
        return "interaction", run.id, None, kind
    return "rejected", run.id, None, f"unknown interaction {kind!r}"


# --- dispatch, sweep, redrive ---------------------------------------------------------------------

class DispatchMarks:
    """Batches the "dispatched" marks of successful dispatches: one ``UPDATE … WHERE id IN (…)`` per
    ``interval_s`` instead of one transaction per webhook (SQLite has one writer; this halves the
    gateway's writes). A mark lost in a crash only means the sweep re-submits that run, which runners
    accept (``submit`` is idempotent per run id)."""

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
                   marks: DispatchMarks | None = None) -> bool:
    """Run ``plan`` against ``runner`` (bounded by ``DISPATCH_TIMEOUT_S``) and record the attempt
    (counted here unless the caller already claimed it; successes through ``marks`` when given).
    Returns True when it was handed off."""
    error: str | None = None
    try:
        async with asyncio.timeout(DISPATCH_TIMEOUT_S):
            await _hand_off(runner, plan, trigger)
    except Exception as exc:  # noqa: BLE001 - any runner failure is recorded for the sweep/redrive
        error = f"{type(exc).__name__}: {exc}"[:_ERROR_MAX]
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


async def _hand_off(runner: Runner, plan: Dispatch, trigger: Trigger | None) -> None:
    if plan.kind == "submit":
        await runner.submit(run_id=plan.run_id, org_id=plan.org_id, team_id=plan.team_id)
    elif plan.kind == "attach":
        if trigger is None:
            raise ValueError("attach needs the trigger")
        await runner.attach(run_id=plan.run_id, trigger=trigger)
    else:
        await runner.cancel(run_id=plan.run_id)


async def _plan_for(session: AsyncSession, row: Delivery) -> tuple[Dispatch | None, Trigger | None]:
    """Re-derive what an undispatched delivery still needs from the database."""
    if not row.run_id:
        return None, None
    run = await store.get_run(session, row.run_id)
    if run is None:
        return None, None
    trigger = Trigger.model_validate(row.trigger) if row.trigger else None
    status = RunStatus(run.status)
    if row.outcome in ("accepted",) or (row.outcome == "interaction" and status is RunStatus.QUEUED):
        if status is RunStatus.QUEUED:
            return Dispatch("submit", run.id, run.org_id, run.team_id), trigger
        return None, None   # it started (or ended) after all: the runner has it
    if row.outcome in ("correlated", "continued") and not status.terminal:
        return Dispatch("attach", run.id, run.org_id, run.team_id), trigger
    if row.outcome == "interaction" and status is RunStatus.RUNNING and run.cancel_requested:
        return Dispatch("cancel", run.id, run.org_id, run.team_id), trigger
    return None, None


async def _claim_attempt(session: AsyncSession, row: Delivery) -> bool:
    res = await session.execute(
        update(Delivery).where(Delivery.id == row.id, Delivery.dispatched_at.is_(None),
                               Delivery.dispatch_attempts == row.dispatch_attempts)
        .values(dispatch_attempts=row.dispatch_attempts + 1)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1


async def _redispatch(sessions: async_sessionmaker[AsyncSession], runner: Runner,
                      rows: Sequence[Delivery]) -> list[int]:
    done: list[int] = []
    for row in rows:
        async with write_lock(sessions), sessions() as session:
            if not await _claim_attempt(session, row):
                await session.commit()
                continue   # another replica's sweep took this attempt
            plan, trigger = await _plan_for(session, row)
            if plan is None:
                await session.execute(update(Delivery).where(Delivery.id == row.id)
                                      .values(dispatched_at=utcnow(), dispatch_error=None)
                                      .execution_options(synchronize_session=False))
                await session.commit()
                done.append(row.id)
                continue
            await session.commit()
        if await dispatch(sessions, runner, delivery_pk=row.id, plan=plan, trigger=trigger,
                          attempt_claimed=True):
            done.append(row.id)
    return done


async def sweep(sessions: async_sessionmaker[AsyncSession], runner: Runner, *,
                grace_s: float = SWEEP_GRACE_S, max_attempts: int = MAX_DISPATCH_ATTEMPTS,
                limit: int = 200, now: datetime | None = None) -> list[int]:
    """Re-dispatch deliveries recorded but never dispatched (older than ``grace_s``, fewer than
    ``max_attempts`` tries). Returns the delivery row ids now dispatched."""
    cutoff = (now or utcnow()) - timedelta(seconds=grace_s)
    async with sessions() as session:
        rows = list((await session.scalars(
            select(Delivery).where(Delivery.dispatched_at.is_(None), Delivery.received_at < cutoff,
                                   Delivery.dispatch_attempts < max_attempts)
            .order_by(Delivery.received_at).limit(limit))).all())
    return await _redispatch(sessions, runner, rows)


async def list_deliveries(session: AsyncSession, *, outcome: str | None = None, failed: bool = False,
                          source: str | None = None, org_id: str | None = None,
                          max_attempts: int = MAX_DISPATCH_ATTEMPTS, limit: int = 50,
                          offset: int = 0) -> list[Delivery]:
    """Deliveries, newest first. ``failed`` selects those still undispatched after at least one
    failed attempt (``dispatch_error`` set) or with every attempt used."""
    q = select(Delivery).order_by(Delivery.received_at.desc(), Delivery.id.desc()).limit(limit).offset(offset)
    if outcome:
        q = q.where(Delivery.outcome == outcome)
    if source:
        q = q.where(Delivery.source == source)
    if org_id:
        q = q.where(Delivery.org_id == org_id)
    if failed:
        q = q.where(Delivery.dispatched_at.is_(None),
                    (Delivery.dispatch_error.is_not(None)) | (Delivery.dispatch_attempts >= max_attempts))
    return list((await session.scalars(q)).all())


async def redrive(sessions: async_sessionmaker[AsyncSession], runner: Runner, *,
                  delivery_pks: Sequence[int] | None = None, limit: int = 200) -> list[int]:
    """Dispatch failed deliveries again now (all failed ones when ``delivery_pks`` is None).
    Returns the ids dispatched. Already-dispatched ids are skipped."""
    async with sessions() as session:
        q = select(Delivery).where(Delivery.dispatched_at.is_(None))
        if delivery_pks is not None:
            q = q.where(Delivery.id.in_(list(delivery_pks)))
        else:
            q = q.where((Delivery.dispatch_error.is_not(None))
                        | (Delivery.dispatch_attempts >= MAX_DISPATCH_ATTEMPTS))
        rows = list((await session.scalars(q.order_by(Delivery.id).limit(limit))).all())
    return await _redispatch(sessions, runner, rows)


def delivery_view(row: Delivery) -> dict[str, Any]:
    """The API representation of a delivery (the raw payload is not included)."""
    return {
        "id": row.id, "source": row.source, "delivery_id": row.delivery_id,
        "received_at": row.received_at.isoformat() if row.received_at else None,
        "event_kind": row.event_kind, "action": row.action, "outcome": row.outcome,
        "org_id": row.org_id, "team_id": row.team_id, "run_id": row.run_id,
        "route_stale": row.route_stale,
        "dispatched_at": row.dispatched_at.isoformat() if row.dispatched_at else None,
        "dispatch_attempts": row.dispatch_attempts, "dispatch_error": row.dispatch_error,
    }


def new_delivery_id(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
