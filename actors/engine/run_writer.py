"""Batched persistence for what runs record: tool calls and phase events (group commit).

Under an alert storm a node runs hundreds of investigations at once, each making a dozen tool calls
and a dozen phase events. One transaction per row would make the database the bottleneck (SQLite
serialises writers), so rows are queued and one background task writes whatever has accumulated in
one transaction: at once when it is idle, and rows arriving during a write go into the next one.
:meth:`RunWriter.tool_call` returns a future resolved when its row is committed, so a tool result
can be returned only once its record is durable; :meth:`RunWriter.flush` forces a write.

Events get their per-run ``seq`` inside the writing transaction (``max(seq) + 1``), so events
appended by another process (the gateway absorbing an alert into the run) interleave correctly; the
``UNIQUE(run_id, seq)`` constraint turns a race into a retried batch, never a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying

from incidentfox.db import utcnow
from incidentfox.retry import backoff
from incidentfox.runs.models import RunEvent, ToolCall
from incidentfox.sqlite_writer import retry_locked

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 150.0
MAX_ATTEMPTS = 5
# A transient database error (or a write past WRITE_TIMEOUT_S) backs off; a concurrent event writer
# that took our seq (IntegrityError) is retried at once: the next attempt recomputes the seqs.
_WRITE_RETRY = backoff(retry_on=lambda exc: isinstance(exc, OperationalError | IntegrityError | TimeoutError),
                       attempts=MAX_ATTEMPTS, first_s=0.05, max_s=1.0,
                       wait_hint=lambda exc: 0.0 if isinstance(exc, IntegrityError) else None)


class RunWriter:
    """Queues ``ToolCall`` rows and ``RunEvent`` rows; one background task writes them in batches."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._tool_calls: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._events: list[tuple[str, str, dict[str, Any], Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())

    def tool_call(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """Queue a finished tool call (keys of :class:`ToolCall`; arguments already masked); the
        returned future resolves once the row is committed."""
        self._tool_calls.append(row)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())   # nobody may await it
        self._waiters.append(fut)
        self._poke()
        return fut

    def event(self, run_id: str, kind: str, data: dict[str, Any]) -> None:
        self._events.append((run_id, kind, data, utcnow()))
        self._poke()

    def _poke(self) -> None:
        self._ensure_task()
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._tool_calls or self._events:
                try:
                    await self.flush()
                except (OperationalError, IntegrityError, TimeoutError) as exc:
                    log.warning("run writer batch failed, will retry: %s", type(exc).__name__)

    async def flush(self) -> None:
        """Write everything queued so far (retrying a lost seq race or a locked database)."""
        async with self._write_lock:
            calls, self._tool_calls = self._tool_calls, []
            events, self._events = self._events, []
            waiters, self._waiters = self._waiters, []
            if not calls and not events:
                return
            try:
                await AsyncRetrying(**_WRITE_RETRY)(self._write_within_timeout, calls, events)
            except BaseException as exc:
                log.error("dropped %d tool-call and %d event rows: %s", len(calls), len(events),
                          type(exc).__name__)
                for fut in waiters:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                raise
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _write_within_timeout(self, calls: list[dict[str, Any]],
                                    events: list[tuple[str, str, dict[str, Any], Any]]) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await retry_locked(lambda: self._write(calls, events))

    async def _write(self, calls: list[dict[str, Any]], events: list[tuple[str, str, dict[str, Any], Any]]) -> None:
        # Core executemany inserts, not ORM objects: the rows are write-only here, and the unit of work
        # cost ~4× the CPU per row (measured), paid for every tool call and event of every run.
        async with self._sessions() as s:
            if calls:
                await s.execute(insert(ToolCall), calls)
            if events:
                by_run: dict[str, list[tuple[str, dict[str, Any], Any]]] = defaultdict(list)
                for run_id, kind, data, at in events:
                    by_run[run_id].append((kind, data, at))
                rows = await s.execute(select(RunEvent.run_id, func.max(RunEvent.seq))
                                       .where(RunEvent.run_id.in_(list(by_run))).group_by(RunEvent.run_id))
                last = {r: m or 0 for r, m in rows.all()}
                values = []
                for run_id, items in by_run.items():
                    seq = last.get(run_id, 0)
                    for kind, data, at in items:
                        seq += 1
                        values.append({"run_id": run_id, "seq": seq, "kind": kind, "data": data, "at": at})
                await s.execute(insert(RunEvent), values)
            await s.commit()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()
