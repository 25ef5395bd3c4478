"""Group commit for webhook intake on SQLite.

SQLite has one writer, so per-webhook transactions serialise on the write lock, and each costs a
BEGIN, a COMMIT and a session's worth of overhead (measured ~10 ms under load on 2 cores, capping
the gateway near 100 requests/s). :class:`IntakeBatcher` records everything that arrived while the
previous batch was being written in ONE transaction, with the same semantics as
:func:`serve_apps.deliveries.intake`, and used when :func:`incidentfox.sqlite_writer.single_writer`
says the database has one writer:

* duplicates are found first (one ``SELECT`` for the batch's keys) and within the batch (the first
  copy wins; later copies get its ``run_id`` with ``duplicate=True``);
* each new delivery is inserted and decided (:func:`~serve_apps.deliveries.record_and_decide`) in order, so an
  alert later in the batch correlates with a run started earlier in it;
* if the batch fails for any reason - e.g. another process inserted one of its keys between the
  ``SELECT`` and the insert (``IntegrityError``) - nothing of it is committed and every item is
  retried alone through :func:`~serve_apps.deliveries.intake`, so one bad item fails only itself.

There is no artificial wait: a batch is whatever queued while the last one was written, so a lone
webhook is written at once. PostgreSQL needs none of this (concurrent writers); the gateway uses the
batcher only on SQLite, and the batcher refuses any other database: there a delivery's transaction
takes locks (:mod:`serve_apps.deliveries.decide`: correlation keys, then run rows) in an order that
holds within one delivery, not across a batch of them, so batches could deadlock one another. On
SQLite those locks are no-ops, and the batch's transaction holds the one write lock throughout.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.sandbox.threads import bound_sandbox_threads, thread_owner
from incidentfox.contracts import DeliveryOutcome, Trigger, TriggerAction
from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Delivery, Run, RunEvent
from incidentfox.sqlite_writer import single_writer, write_lock
from serve_apps.deliveries.decide import is_sandbox_command
from serve_apps.deliveries.intake import DEFAULT_CORRELATION_WINDOW_S, duplicate_of, intake, record_and_decide
from serve_apps.deliveries.model import Dispatch, DispatchKind, IntakeResult, Route

log = logging.getLogger("incidentfox.intake")


@dataclass
class _Item:
    trigger: Trigger
    route: Route
    payload: str
    window_s: float
    now: datetime
    future: asyncio.Future


class IntakeBatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, max_batch: int = 128) -> None:
        if not single_writer(sessions):
            raise ValueError("IntakeBatcher is SQLite's group commit; other databases take intake() per delivery")
        self._sessions, self._max = sessions, max_batch
        self._queue: list[_Item] = []
        self._worker: asyncio.Task | None = None
        self.batches = 0
        self.fallbacks = 0

    async def intake(self, *, trigger: Trigger, route: Route, payload: str,
                     correlation_window_s: float = DEFAULT_CORRELATION_WINDOW_S) -> IntakeResult:
        loop = asyncio.get_running_loop()
        item = _Item(trigger, route, payload, correlation_window_s, utcnow(), loop.create_future())
        self._queue.append(item)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        # shield: a sender hanging up must not cancel the batch other senders wait on.
        return await asyncio.shield(item.future)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max:]
            try:
                results = await self._write(batch)
            except Exception:
                log.info("intake batch of %d failed; retrying items one by one", len(batch), exc_info=True)
                self.fallbacks += 1
                await self._one_by_one(batch)
                continue
            self.batches += 1
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    async def _one_by_one(self, batch: list[_Item]) -> None:
        for item in batch:
            try:
                result = await intake(self._sessions, trigger=item.trigger, route=item.route,
                                      payload=item.payload, correlation_window_s=item.window_s, now=item.now)
            except Exception as exc:  # noqa: BLE001 - handed to that item's caller
                if not item.future.done():
                    item.future.set_exception(exc)
                continue
            if not item.future.done():
                item.future.set_result(result)

    async def _write(self, batch: list[_Item]) -> list[IntakeResult]:
        keys = list({(i.trigger.source, i.trigger.delivery_id) for i in batch})
        async with write_lock(self._sessions), self._sessions() as session:
            existing = {
                (d.source, d.delivery_id): d
                for d in (await session.scalars(
                    select(Delivery).where(tuple_(Delivery.source, Delivery.delivery_id).in_(keys)))).all()
            }
            fast = _FastWrites(session)
            await fast.load_active_threads([i for i in batch if _eligible(i)])
            firsts: dict[tuple[str, str], IntakeResult | None] = {}
            results: list[IntakeResult | None] = []
            pending_dups: list[tuple[int, tuple[str, str]]] = []
            for item in batch:
                key = (item.trigger.source, item.trigger.delivery_id)
                if key in existing:
                    results.append(await duplicate_of(session, existing[key]))
                    continue
                if key in firsts:
                    pending_dups.append((len(results), key))
                    results.append(None)
                    continue
                if _eligible(item) and await fast.start(item, index=len(results)):
                    firsts[key] = None
                    results.append(None)
                    continue
                await fast.write()   # the general path's queries must see this batch's rows
                _, result = await record_and_decide(
                    session, trigger=item.trigger, route=item.route, payload=item.payload,
                    window_s=item.window_s, now=item.now)
                firsts[key] = result
                results.append(result)
            await fast.write()
            for index, key, result in fast.results:
                results[index] = firsts[key] = result
            await session.commit()
        for index, key in pending_dups:
            results[index] = firsts[key].as_duplicate()
        return [r for r in results if r is not None]


def _eligible(item: _Item) -> bool:
    """The common case the fast path takes: a routed human request that starts a run (not a sandbox
    command; one in a sandbox session's thread is sent to the general path by :class:`_FastWrites`)."""
    t, route = item.trigger, item.route
    return (t.action is TriggerAction.START and t.human and not t.is_alert and route.found
            and bool(route.org_id) and bool(route.team_id) and not is_sandbox_command(t))


class _FastWrites:
    """Runs for eligible items, written as three multi-row statements per batch (runs, their first
    events, the deliveries with ``RETURNING id``) instead of several statements per webhook.

    Same decision as :func:`serve_apps.deliveries.intake`: a human START in a thread that already has
    a run (it may continue it, or the thread may belong to another team), or in a sandbox session's
    thread (active or ended: it owns the thread), goes to the general path, which decides. Bound
    threads are read once per batch; after any general-path item (which may create runs) run threads
    are checked one by one (sandbox sessions are created by the sandbox side, never by intake, so the
    batch's first read of them holds)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._active: set[tuple[str, str]] | None = None
        self._sandbox: set[tuple[str, str]] = set()
        self._new_threads: set[tuple[str, str]] = set()
        self._events: list[dict] = []
        self._deliveries: list[dict] = []
        self._pending: list[tuple[int, tuple[str, str], Dispatch]] = []
        self.results: list[tuple[int, tuple[str, str], IntakeResult]] = []

    async def load_active_threads(self, items: list[_Item]) -> None:
        threads = list({(i.trigger.thread.channel, i.trigger.thread.ts) for i in items
                        if i.trigger.thread is not None and i.trigger.thread.ts})
        rows = (await self._session.execute(
            select(Run.thread_channel, Run.thread_ts)
            .where(tuple_(Run.thread_channel, Run.thread_ts).in_(threads))
        )).all() if threads else []
        self._active = {(r.thread_channel, r.thread_ts) for r in rows}
        self._sandbox = await bound_sandbox_threads(self._session, threads=threads)

    async def _thread_active(self, thread: tuple[str, str]) -> bool:
        if thread in self._new_threads or thread in self._sandbox:
            return True
        if self._active is not None:
            return thread in self._active
        return await thread_owner(self._session, channel=thread[0], thread_ts=thread[1]) is not None

    async def start(self, item: _Item, *, index: int) -> bool:
        t, route = item.trigger, item.route
        thread = (t.thread.channel, t.thread.ts) if t.thread is not None and t.thread.ts else None
        if thread is not None and await self._thread_active(thread):
            return False
        run = await store.create_run(self._session, org_id=route.org_id, team_id=route.team_id, trigger=t,
                                     flush=False)
        if thread is not None:
            self._new_threads.add(thread)
        self._events.append({"run_id": run.id, "seq": 1, "kind": "status", "at": item.now,
                             "data": {"status": "queued", "source": t.source,
                                      "route": {"matched_by": route.matched_by, "stale": route.stale}}})
        self._deliveries.append({
            "source": t.source, "delivery_id": t.delivery_id, "received_at": item.now,
            "event_kind": t.event_kind[:128], "action": t.action.value,
            "outcome": DeliveryOutcome.ACCEPTED.value,
            "org_id": route.org_id, "team_id": route.team_id, "run_id": run.id, "route_stale": route.stale,
            "trigger": t.model_dump(mode="json"), "payload": item.payload, "dispatched_at": None,
            "dispatch_attempts": 0, "dispatch_error": None})
        self._pending.append((index, (t.source, t.delivery_id),
                              Dispatch(DispatchKind.SUBMIT, run.id, route.org_id, route.team_id)))
        return True

    async def write(self) -> None:
        """Write what is pending; afterwards threads are checked one by one (see class doc)."""
        if not self._pending:
            self._active = None
            return
        await self._session.flush()   # the runs (ORM, one executemany)
        await self._session.execute(insert(RunEvent).values(self._events))
        ids = {(r.source, r.delivery_id): r.id for r in (await self._session.execute(
            insert(Delivery).values(self._deliveries)
            .returning(Delivery.id, Delivery.source, Delivery.delivery_id))).all()}
        for index, key, plan in self._pending:
            self.results.append((index, key, IntakeResult(delivery_pk=ids[key], outcome=DeliveryOutcome.ACCEPTED,
                                                          run_id=plan.run_id, dispatch=plan)))
        self._events, self._deliveries, self._pending = [], [], []
        self._active = None
