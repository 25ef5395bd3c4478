"""Slack → sandbox sessions, on the sandbox side: open a session for ``/incidentfox sandbox …``, run
a turn for a reply in its thread.

The gateway verifies, parses, routes and records each delivery once (``serve_apps.deliveries``:
outcome ``sandbox_opened`` / ``sandbox_continued``), then hands the recorded delivery's id to
:meth:`SlackDispatchCore.submit` (in production through the ``sandbox-slack`` actor,
:mod:`actors.sandbox.slack_actor`). Everything it needs is in the delivery row.

Contract:

* **Once per delivery.** :meth:`~SlackDispatchCore.submit` claims the row first (compare-and-set
  ``dispatched_at IS NULL`` → now): a delivery handed off twice (the gateway's dispatch and a sweep
  or redrive racing it, or a re-submit after a lost mark) is acted on once; a later submit is a
  no-op. An undispatched delivery (a gateway replica died after the commit, the hand-off failed)
  is re-submitted by the gateway's sweep and by ``incidentfox deliveries redrive``.
* **Answer fast.** ``submit`` returns once claimed; opening (team config, a root message in the
  channel that becomes the session's thread, ``create_session``) and the turn (an event stream
  drained here while the host mirrors progress into the thread, throttled) run as tasks here.
* **Order.** Turns of one session run one after another, in arrival order, behind a FIFO lock per
  Slack thread, taken by the opener before the session row exists (a reply is only recognised once
  the row exists), so the first question and a quick reply reach the session in order; a turn
  still running elsewhere (``turn_in_progress``, e.g. over the API) is retried every
  ``busy_retry_s`` for up to ``busy_wait_s``.
* **Failures are said in the thread.** No ``llm`` section, sandbox isolation unavailable, a host
  that cannot be placed, an expired session: a clear message is posted in the thread and the
  delivery's ``dispatch_error`` records it. Without a Slack bot token nothing can be posted; that
  is logged and recorded only.

* **Who.** Only the team's ``access.sandbox_users`` (Slack users or user groups; nobody when the
  list is empty, :mod:`actors.sandbox.access`) open sessions and send turns: anyone else gets an
  ephemeral refusal and nothing is opened or continued. A reply ``approve <id>`` / ``deny <id>`` in
  a session's thread decides a pending MCP approval instead of starting a turn, if its author is
  in ``access.approvers``; it bypasses the thread's turn order (the turn it unblocks holds it).

Known limit: between its claim and ``create_session`` an open lives in this process; if it dies
there (the actor restarts), that open is lost and the delivery keeps the claim (no session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from actors.sandbox.access import GroupMembers, SandboxAccess, SlackIds, slack_group_members
from actors.sandbox.approvals import parse_decision
from actors.sandbox.client import SandboxBackend
from actors.sandbox.config import parse_llm_config, parse_team_sandbox
from actors.sandbox.errors import TurnInProgress
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.mirror import Reporter
from actors.sandbox.store import active_session_by_thread
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import DeliveryOutcome, Trigger
from incidentfox.db import utcnow
from incidentfox.errors import IncidentFoxError
from incidentfox.runs.models import Delivery
from incidentfox.sqlite_writer import retry_locked, write_lock

log = logging.getLogger("incidentfox.sandbox.slack")

SLACK_CALL_TIMEOUT_S = 15.0
CONFIG_TIMEOUT_S = 15.0
CREATE_TIMEOUT_S = 90.0
TURN_TIMEOUT_S = 3600.0

TeamConfigFn = Callable[[str, str], Awaitable[dict[str, Any]]]
SchedulingFn = Callable[[dict[str, Any], str, str], dict[str, Any]]
_SANDBOX_OUTCOMES = [o.value for o in DeliveryOutcome if o.sandbox]


REFUSED_DRIVE = ("You are not allowed to use this team's sandbox sessions from Slack: an admin lists "
                 "who may in the team's config (`access.sandbox_users`). Nothing was opened or sent.")
REFUSED_APPROVE = ("You are not an approver for this team's sandbox tool calls (`access.approvers`); "
                   "the call is still waiting for an approver.")


class NoBotToken(Exception):
    """The team has no ``integrations.slack.bot_token``: nothing can be posted in Slack."""


class ThreadLocks:
    """A FIFO lock per Slack thread (= one session), forgotten when its last holder or waiter leaves."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class SlackDispatchCore:
    """Sandbox traffic from Slack (see module doc). ``sessions``: this process's database (the claim,
    the failure notes, the thread's session). ``backend`` is a :class:`SandboxBackend` or an async
    factory of one (built on the first delivery). ``team_config(org, team)`` returns the team's
    effective config with secrets revealed; ``reporter_for(bot_token)`` a Slack poster;
    ``isolation()`` (blocking, run in a thread) the node's sandbox isolation status."""

    sessions: async_sessionmaker[AsyncSession]
    backend: SandboxBackend | Callable[[], Awaitable[SandboxBackend]]
    team_config: TeamConfigFn
    reporter_for: Callable[[str], Reporter]
    scheduling_for: SchedulingFn
    isolation: Callable[[], IsolationStatus]
    busy_wait_s: float = 900.0
    busy_retry_s: float = 2.0
    slack_api_url: str = "https://slack.com/api/"
    # (bot token) → a user-group resolver; (bot token, channel, user, text) → an ephemeral message.
    group_members: Callable[[str], GroupMembers] | None = None
    ephemeral: Callable[[str, str, str, str], Awaitable[None]] | None = None
    engine: AsyncEngine | None = None          # disposed by close() when this core owns it
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    _threads: ThreadLocks = field(default_factory=ThreadLocks)
    _backend: SandboxBackend | None = None
    _backend_lock: asyncio.Lock | None = None

    # -- hand-off --------------------------------------------------------------------------------

    async def submit(self, *, delivery_pk: int) -> None:
        """Claim the recorded sandbox delivery ``delivery_pk`` and start its open or turn (a no-op
        when it was claimed before or is not a sandbox delivery). Returns once started."""
        row = await retry_locked(lambda: self._claim(delivery_pk))
        if row is None:
            return
        trigger = Trigger.model_validate(row.trigger)
        if DeliveryOutcome(row.outcome) is DeliveryOutcome.SANDBOX_OPENED:
            self._tasks.spawn(self._open(trigger, org_id=row.org_id, team_id=row.team_id, delivery_pk=row.id))
        else:
            self._tasks.spawn(self._continue(trigger, org_id=row.org_id, team_id=row.team_id, delivery_pk=row.id))

    async def _claim(self, delivery_pk: int) -> Delivery | None:
        async with write_lock(self.sessions), self.sessions() as s:
            res = await s.execute(update(Delivery)
                                  .where(Delivery.id == delivery_pk, Delivery.dispatched_at.is_(None),
                                         Delivery.outcome.in_(_SANDBOX_OUTCOMES))
                                  .values(dispatched_at=utcnow(), dispatch_error=None)
                                  .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                await s.rollback()
                return None
            row = await s.scalar(select(Delivery).where(Delivery.id == delivery_pk))
            await s.commit()
            return row

    # -- background work -------------------------------------------------------------------------

    async def _open(self, trigger: Trigger, *, org_id: str, team_id: str, delivery_pk: int) -> None:
        channel = trigger.thread.channel if trigger.thread else ""
        reporter: Reporter | None = None
        thread_ts: str | None = None
        try:
            cfg, token = await self._config(org_id, team_id)
            if not await self._allowed(SandboxAccess.from_config(cfg).sandbox_users, token, trigger.actor):
                await self._refuse(delivery_pk, token, channel, trigger.actor, REFUSED_DRIVE)
                return
            reporter = self.reporter_for(token)
            who = f"<@{trigger.actor}>" if trigger.actor else "someone"
            thread_ts = await self._post(reporter, channel, None,
                                         f"🧪 Sandbox session requested by {who}: {trigger.text[:500]}")
            # Held before the session row exists (a reply is recognised as soon as the row is
            # written, before create_session returns): the first question always goes first.
            async with self._threads.hold((channel, thread_ts)):
                problem = await self.problem(cfg)
                if problem:
                    await self._fail(delivery_pk, problem, reporter, channel, thread_ts)
                    return
                backend = await self._get_backend()
                async with asyncio.timeout(CREATE_TIMEOUT_S):
                    created = await backend.create_session(
                        org_id=org_id, team_id=team_id, created_by=f"slack:{trigger.actor or 'unknown'}"[:128],
                        title=trigger.title[:200], sandbox=dict(cfg.get("sandbox") or {}),
                        scheduling=self.scheduling_for(cfg, org_id, team_id),
                        slack={"channel": channel, "thread_ts": thread_ts})
                await self._turn(created["session_id"], trigger.text, cfg=cfg, token=token, channel=channel,
                                 thread_ts=thread_ts, reporter=reporter, delivery_pk=delivery_pk)
        except NoBotToken as exc:
            await self._fail(delivery_pk, str(exc), None, channel, None)
        except IncidentFoxError as exc:
            await self._fail(delivery_pk, f"Could not open a sandbox session: {exc.message}", reporter,
                             channel, thread_ts)
        except Exception as exc:
            log.exception("sandbox open failed")
            await self._fail(delivery_pk, f"Could not open a sandbox session ({type(exc).__name__}).",
                             reporter, channel, thread_ts)

    async def _continue(self, trigger: Trigger, *, org_id: str, team_id: str, delivery_pk: int) -> None:
        channel, thread_ts = trigger.thread.channel, trigger.thread.ts  # type: ignore[union-attr]
        reporter: Reporter | None = None
        try:
            decision = parse_decision(trigger.text)
            if decision is not None:   # not behind the thread's lock: the waiting turn holds it
                await self._decide(trigger, decision, org_id=org_id, team_id=team_id, delivery_pk=delivery_pk)
                return
            async with self._threads.hold((channel, thread_ts or "")):
                cfg, token = await self._config(org_id, team_id)   # the session's team (set at intake)
                if not await self._allowed(SandboxAccess.from_config(cfg).sandbox_users, token, trigger.actor):
                    await self._refuse(delivery_pk, token, channel, trigger.actor, REFUSED_DRIVE)
                    return
                reporter = self.reporter_for(token)
                async with self.sessions() as s:
                    found = await active_session_by_thread(s, channel=channel, thread_ts=thread_ts or "")
                if found is None or (found.org_id, found.team_id) != (org_id, team_id):
                    await self._fail(delivery_pk, "This sandbox session has ended; start a new one with "
                                     "`/incidentfox sandbox <question>`.", reporter, channel, thread_ts)
                    return
                problem = await self.problem(cfg)
                if problem:
                    await self._fail(delivery_pk, problem, reporter, channel, thread_ts)
                    return
                await self._turn(found.id, trigger.text, cfg=cfg, token=token, channel=channel,
                                 thread_ts=thread_ts, reporter=reporter, delivery_pk=delivery_pk)
        except NoBotToken as exc:
            await self._fail(delivery_pk, str(exc), None, channel, None)
        except IncidentFoxError as exc:
            await self._fail(delivery_pk, f"Could not continue the sandbox session: {exc.message}",
                             reporter, channel, thread_ts)
        except Exception as exc:
            log.exception("sandbox continue failed")
            await self._fail(delivery_pk, f"Could not continue the sandbox session ({type(exc).__name__}).",
                             reporter, channel, thread_ts)

    async def _decide(self, trigger: Trigger, decision: tuple[bool, str], *, org_id: str, team_id: str,
                      delivery_pk: int) -> None:
        """An ``approve``/``deny`` reply: decide the session's pending MCP approval, if allowed."""
        channel, thread_ts = trigger.thread.channel, trigger.thread.ts or ""  # type: ignore[union-attr]
        cfg, token = await self._config(org_id, team_id)
        if not await self._allowed(SandboxAccess.from_config(cfg).approvers, token, trigger.actor):
            await self._refuse(delivery_pk, token, channel, trigger.actor, REFUSED_APPROVE)
            return
        approve, approval_id = decision
        async with self.sessions() as s:
            found = await active_session_by_thread(s, channel=channel, thread_ts=thread_ts)
        backend = await self._get_backend()
        done = found is not None and (found.org_id, found.team_id) == (org_id, team_id) and \
            await backend.decide_approval(found.id, approval_id, approve=approve, by=f"slack:{trigger.actor}")
        reporter = self.reporter_for(token)
        if not done:
            await self._fail(delivery_pk, f"No pending approval `{approval_id}` in this session.", reporter,
                             channel, thread_ts)
            return
        await self._post(reporter, channel, thread_ts,
                         f"{'✅ Approved' if approve else '🚫 Denied'} `{approval_id}` by <@{trigger.actor}>.")

    async def _allowed(self, ids: SlackIds, token: str, user: str | None) -> bool:
        if ids.listed(user or ""):
            return True
        members = None
        if ids.groups:
            members = (self.group_members or (lambda t: slack_group_members(bot_token=t, base_url=self.slack_api_url)))(token)
        return await ids.allows(user or "", members)

    async def _refuse(self, delivery_pk: int, token: str, channel: str, user: str | None, text: str) -> None:
        """Tell ``user`` alone (an ephemeral message) and record why nothing happened."""
        post = self.ephemeral or self._post_ephemeral
        try:
            async with asyncio.timeout(SLACK_CALL_TIMEOUT_S):
                await post(token, channel, user or "", text)
        except Exception as exc:  # noqa: BLE001 - the delivery row keeps the reason
            log.warning("sandbox from Slack: the ephemeral refusal failed: %s", type(exc).__name__)
        await self._fail(delivery_pk, text, None, channel, None)

    async def _post_ephemeral(self, token: str, channel: str, user: str, text: str) -> None:
        from actors.slack.client import slack_client

        async with slack_client(token=token, base_url=self.slack_api_url, rate_limit_retries=0) as client:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)

    async def _turn(self, session_id: str, text: str, *, cfg: dict[str, Any], token: str, channel: str,
                    thread_ts: str | None, reporter: Reporter, delivery_pk: int) -> None:
        """Send ``text`` and drain the event stream (the host mirrors it into the thread)."""
        backend = await self._get_backend()
        slack = {"channel": channel, "thread_ts": thread_ts, "bot_token": token}
        deadline = time.monotonic() + self.busy_wait_s
        while True:
            try:
                async with asyncio.timeout(TURN_TIMEOUT_S):
                    async for _ev in backend.send_message(session_id, text=text, llm=dict(cfg.get("llm") or {}),
                                                          sandbox=dict(cfg.get("sandbox") or {}), slack=slack):
                        pass   # progress reaches Slack through the host's mirror, throttled
                return
            except TurnInProgress:
                # A turn started elsewhere (over the API) is still running.
                if time.monotonic() >= deadline:
                    await self._fail(delivery_pk, "The sandbox session is still busy with an earlier "
                                     "message; send this one again when it has answered.",
                                     reporter, channel, thread_ts)
                    return
                await asyncio.sleep(self.busy_retry_s)

    async def _config(self, org_id: str, team_id: str) -> tuple[dict[str, Any], str]:
        async with asyncio.timeout(CONFIG_TIMEOUT_S):
            cfg = await self.team_config(org_id, team_id)
        token = ((cfg.get("integrations") or {}).get("slack") or {}).get("bot_token")
        if not isinstance(token, str) or not token or token == "***":
            raise NoBotToken(f"team {org_id}/{team_id} has no integrations.slack.bot_token; "
                             "a sandbox session cannot be mirrored into Slack")
        return cfg, token

    async def problem(self, cfg: dict[str, Any]) -> str | None:
        """Why a turn cannot run for this team here, in words for the thread; None if it can."""
        try:
            parse_llm_config(cfg.get("llm"))
        except IncidentFoxError as exc:
            return (f"This team has no usable `llm` config for the sandbox agent ({exc.message}). "
                    "An admin sets `llm` (provider anthropic, model, api_key) in the team's config.")
        try:
            parse_team_sandbox(cfg.get("sandbox"))
        except IncidentFoxError as exc:
            return f"This team's `sandbox` config is invalid: {exc.message}."
        status = await asyncio.to_thread(self.isolation)
        if not status.available:
            return (f"Sandbox isolation is unavailable on this node ({status.reason}), so no command "
                    "could run safely. An operator installs bubblewrap, or opts into "
                    "INCIDENTFOX_SANDBOX_ALLOW_RLIMIT_ONLY.")
        return None

    async def _fail(self, delivery_pk: int, message: str, reporter: Reporter | None, channel: str,
                    thread_ts: str | None) -> None:
        log.warning("sandbox from Slack: %s", message)
        if reporter is not None and channel:
            try:
                await self._post(reporter, channel, thread_ts, "⚠️ " + message)
            except Exception as exc:  # noqa: BLE001 - Slack is down too: the delivery row keeps the reason
                log.warning("sandbox from Slack: posting the failure failed: %s", type(exc).__name__)

        async def note() -> None:
            async with write_lock(self.sessions), self.sessions() as s:
                await s.execute(update(Delivery).where(Delivery.id == delivery_pk)
                                .values(dispatch_error=message[:2000]).execution_options(synchronize_session=False))
                await s.commit()

        await retry_locked(note)

    @staticmethod
    async def _post(reporter: Reporter, channel: str, thread_ts: str | None, text: str) -> str:
        async with asyncio.timeout(SLACK_CALL_TIMEOUT_S):
            return await reporter.post(channel, thread_ts, text, None)

    async def _get_backend(self) -> SandboxBackend:
        if self._backend is None:
            if not callable(self.backend) or hasattr(self.backend, "send_message"):
                self._backend = self.backend  # type: ignore[assignment]
            else:
                if self._backend_lock is None:
                    self._backend_lock = asyncio.Lock()
                async with self._backend_lock:
                    if self._backend is None:
                        self._backend = await self.backend()
        return self._backend  # type: ignore[return-value]

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Wait for the opens and turns under way here (tests; graceful shutdown)."""
        await self._tasks.drain(timeout_s)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
