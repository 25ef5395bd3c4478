"""Insert a verified delivery once and decide what it does, in one transaction.

:func:`record_and_decide` is the one place a ``webhook_deliveries`` row is written (the gateway,
the agent API, the SQLite group commit in :mod:`serve_apps.deliveries.batch`, sandbox opens and
turns alike); :func:`intake` wraps it in its own transaction and turns a lost
``UNIQUE(source, delivery_id)`` race into the first copy's answer (:func:`duplicate_of`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.sandbox.store import active_session_by_thread
from config_service import DEFAULT_CORRELATION_WINDOW_S
from incidentfox.contracts import DeliveryOutcome, Trigger
from incidentfox.db import utcnow
from incidentfox.runs.models import Delivery
from incidentfox.sqlite_writer import write_lock
from serve_apps.deliveries.decide import decide
from serve_apps.deliveries.model import IntakeResult, Route


async def existing(session: AsyncSession, *, source: str, delivery_id: str) -> Delivery | None:
    q = select(Delivery).where(Delivery.source == source, Delivery.delivery_id == delivery_id)
    return (await session.scalars(q.execution_options(populate_existing=True))).first()


async def duplicate_of(session: AsyncSession, first: Delivery) -> IntakeResult:
    """The answer to a later copy of the recorded delivery ``first`` (nothing is dispatched again)."""
    outcome = DeliveryOutcome(first.outcome)
    session_id = None
    if outcome is DeliveryOutcome.SANDBOX_CONTINUED:
        thread = Trigger.model_validate(first.trigger).thread if first.trigger else None
        if thread is not None and thread.ts:
            found = await active_session_by_thread(session, channel=thread.channel, thread_ts=thread.ts)
            session_id = found.id if found is not None else None
    return IntakeResult(delivery_pk=first.id, outcome=outcome, run_id=first.run_id, duplicate=True,
                        session_id=session_id)


async def intake(sessions: async_sessionmaker[AsyncSession], *, trigger: Trigger, route: Route,
                 payload: str, correlation_window_s: float = DEFAULT_CORRELATION_WINDOW_S,
                 now: datetime | None = None) -> IntakeResult:
    """Record ``trigger`` once and allocate what it starts, in one transaction (see package doc).

    Only verified deliveries reach here. ``route`` is the router's answer for the trigger.
    """
    now = now or utcnow()
    async with write_lock(sessions), sessions() as session:
        try:
            _, result = await record_and_decide(session, trigger=trigger, route=route, payload=payload,
                                                window_s=correlation_window_s, now=now)
        except IntegrityError:
            await session.rollback()
            first = await existing(session, source=trigger.source, delivery_id=trigger.delivery_id)
            if first is None:  # the other insert rolled back after all; the sender will retry
                raise
            return await duplicate_of(session, first)
        await session.commit()
        return result


async def record_and_decide(session: AsyncSession, *, trigger: Trigger, route: Route, payload: str,
                            window_s: float, now: datetime) -> tuple[Delivery, IntakeResult]:
    """Insert the delivery row (raises ``IntegrityError`` for a duplicate) and decide what it does,
    in the caller's transaction (which the caller commits). A delivery with something to dispatch
    keeps ``dispatched_at`` NULL (the sweep's mark); one with nothing is written dispatched."""
    row = Delivery(source=trigger.source, delivery_id=trigger.delivery_id, received_at=now,
                   event_kind=trigger.event_kind[:128], action=trigger.action.value,
                   outcome=DeliveryOutcome.PENDING.value, org_id=route.org_id, team_id=route.team_id,
                   route_stale=route.stale, trigger=trigger.model_dump(mode="json"),
                   payload=payload, dispatch_attempts=0)
    session.add(row)
    await session.flush()
    decision = await decide(session, trigger=trigger, route=route, window_s=window_s, now=now)
    row.outcome, row.run_id = decision.outcome.value, decision.run_id
    if decision.team_id:
        row.team_id = decision.team_id
    if decision.dispatch is None:
        row.dispatched_at = now
    return row, IntakeResult(delivery_pk=row.id, outcome=decision.outcome, run_id=decision.run_id,
                             dispatch=decision.dispatch, detail=decision.detail,
                             session_id=decision.session_id, action_id=decision.action_id)
