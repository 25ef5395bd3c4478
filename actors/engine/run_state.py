"""A hosted run's state and how it ends: what a pool actor gives every run (:class:`EngineContext`),
the run's in-memory state (:class:`LiveRun`), and its terminal transition (:func:`finish`,
:func:`finish_succeeded`): a compare-and-set from running, only while the actor holds the lease,
with the status event, and for a succeeded run its proposed fixes' approval rows, in one transaction.
The lifecycle that calls them is :mod:`actors.engine.investigation`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.answerback.http import Outbound
from actors.engine.actions import add_proposals
from actors.engine.run_writer import RunWriter
from incidentfox import metrics
from incidentfox.contracts import RCA, RunStatus
from incidentfox.errors import failure_reason
from incidentfox.runs import store
from incidentfox.runs.turns import is_turn
from incidentfox.sqlite_writer import retry_locked

log = logging.getLogger("actors.engine.investigation")   # the run's log lines keep their logger name

DB_TIMEOUT_S = 30.0
SLACK_TIMEOUT_S = 15.0


@dataclass
class EngineContext:
    """What one pool actor gives every run it hosts."""

    sessions: async_sessionmaker[AsyncSession]
    writer: RunWriter
    load_config: Callable[[str, str], Awaitable[dict[str, Any]]]
    slack_api_url: str
    http_session: Any | None = None      # a shared aiohttp session for Slack clients
    public_url: str = ""                 # the install's public base URL: messages link the run under it
    outbound: Callable[[], Outbound] = Outbound   # answer-back HTTP, one per run: its GitHub App token
                                                  # cache dies with the run (no credential outlives it)
    knowledge: Any = None                # actors.tools.knowledge_bases.KnowledgeBases (None: the process's)


@dataclass
class LiveRun:
    """In-memory state of a hosted run: what the actor's ``attach``/``cancel`` touch."""

    run_id: str
    owner: str | None = None             # the lease owner (the hosting actor's incarnation)
    absorbed: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)   # thread replies (incidentfox.runs.turns)
    turns_read: int = 0                  # how many of ``turns`` the planner has been given
    task: asyncio.Task[Any] | None = None
    first_message_at: float | None = None
    abandoned: bool = False              # the lease was lost: stop without touching the run
    finished: bool = False               # this actor wrote the terminal status; only the final
                                         # Slack edit is left, which nothing may cancel
    finish_fields: dict[str, Any] = field(default_factory=dict)   # run columns written with the final status
    started_at: float = field(default_factory=time.monotonic)      # for incidentfox_run_seconds
    knowledge: Any = None                # the run's KnowledgeStep once its config is read: however the
                                         # run ends, it is remembered as a past incident

    def absorb(self, *entries: dict[str, Any]) -> None:
        """Add correlated triggers and thread turns, once each (the row and the live attach may both
        carry one)."""
        seen = {(e.get("source"), e.get("delivery_id")) for e in (*self.absorbed, *self.turns)}
        for entry in entries:
            key = (entry.get("source"), entry.get("delivery_id"))
            if key not in seen:
                seen.add(key)
                (self.turns if is_turn(entry) else self.absorbed).append(entry)

    def take_turns(self) -> list[dict[str, Any]]:
        """The thread turns the planner has not been given yet."""
        new, self.turns_read = self.turns[self.turns_read:], len(self.turns)
        return new


class RunFailed(Exception):
    """A run ended in error; ``reason`` is the one line stored in ``runs.error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_of(exc: BaseException) -> str:
    """A run's recorded reason for ``exc`` (a Ray error's cause, if it wraps one); see :func:`failure_reason`."""
    return failure_reason(getattr(exc, "cause", None) or exc)


async def finish(ctx: EngineContext, live: LiveRun, to: RunStatus, *,
                  also: Callable[[AsyncSession], Awaitable[Any]] | None = None, **fields: Any) -> bool:
    """Flush queued events, then move the run to a terminal status (CAS from running, and only while
    this actor still holds the lease); ``also`` writes in the same transaction, only if the CAS won."""
    run_id = live.run_id
    await retry_locked(ctx.writer.flush)

    async def txn() -> bool:
        async with asyncio.timeout(DB_TIMEOUT_S):
            async with ctx.sessions() as s:
                ok = await store.transition(s, run_id=run_id, to=to, from_=[RunStatus.RUNNING],
                                            owner=live.owner, **{**live.finish_fields, **fields})
                if ok:
                    data = {"status": to.value}
                    if fields.get("error"):
                        data["reason"] = fields["error"]
                    await store.append_event(s, run_id=run_id, kind="status", data=data)
                    if also is not None:
                        await also(s)
                await s.commit()
                return ok
    ok = await retry_locked(txn)
    if ok:   # only the transition that won the CAS counts the run
        live.finished = True
        log.info("run finished: %s", to.value)   # carries run_id/org_id/team_id bound by the pool actor
        metrics.RUNS_TOTAL.inc(status=to.value)
        metrics.RUN_SECONDS.observe(time.monotonic() - live.started_at)
    return ok


async def finish_succeeded(ctx: EngineContext, live: LiveRun, rca: RCA, result: dict[str, Any]) -> bool:
    """Mark the run succeeded with its RCA and, in the same transaction, make its proposed fixes
    approvable (:func:`actors.engine.actions.add_proposals`): a reader that sees the run succeeded
    sees its approval rows. When the rows cannot be written the RCA stands without them (a note says
    so): the fix is then not offered. ``rca`` loses them too, for the Slack message."""
    if not rca.proposed_actions:
        return await finish(ctx, live, RunStatus.SUCCEEDED, result=result)
    try:
        return await finish(ctx, live, RunStatus.SUCCEEDED, result=result,
                             also=lambda s: add_proposals(s, run_id=live.run_id, rca=rca))
    except Exception as exc:  # noqa: BLE001 - the rows only: the run itself still succeeds below
        ctx.writer.event(live.run_id, "note", {"proposed_actions": "not recorded", "reason": reason_of(exc)})
    rca.proposed_actions = []
    result["proposed_actions"] = []
    return await finish(ctx, live, RunStatus.SUCCEEDED, result=result)


