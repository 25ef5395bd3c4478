"""Slack → sandbox sessions: ``/incidentfox sandbox <question>`` opens one, a reply in its thread continues it.

Called by the gateway (:class:`serve_apps.gateway.GatewayCore`) after a delivery is verified, parsed
and routed, before the investigation intake. :meth:`SandboxDispatch.handle` returns ``None`` for
anything that is not sandbox traffic (the investigation path then handles it exactly as before), or
the sender's 200 body.

Contract:

* **Which deliveries.** A START trigger with ``event_kind == "sandbox"`` (the slash command) that the
  router maps to a team; a human Slack message (CONTINUE, or a mention inside a thread) whose thread
  is bound to an *active* sandbox session of the routed org (:meth:`SandboxStore.find_by_thread`).
  An unrouted sandbox command goes to the normal path (recorded ``unrouted``, "No team…" answer).
* **Exactly once.** The delivery is inserted into ``webhook_deliveries`` under its
  ``UNIQUE(source, delivery_id)`` (outcome ``sandbox_opened`` / ``sandbox_continued``, no run),
  behind the same SQLite write lock as the intake. Only the copy that wins the insert starts work; a
  Slack retry (same ``trigger_id`` / ``event_id``) gets ``duplicate: true`` and starts nothing.
* **Answer fast.** Nothing of the session runs inside the request: opening (team config, a root
  message in the channel that becomes the session's thread, ``create_session``) and the turn (an
  event stream drained here while the host mirrors progress into the thread, throttled) run in a
  background task on this replica's loop.
* **Order.** Turns of one session are serialised by a lock per Slack thread on this replica (FIFO),
  taken by the opener before the session row exists, so the first question and a quick reply reach
  the session in order; a turn still running elsewhere
  (``turn_in_progress``) is retried every ``busy_retry_s`` for up to ``busy_wait_s``.
* **Failures are said in the thread.** No ``llm`` section, sandbox isolation unavailable on this
  node, a host that cannot be placed, an expired session: a clear message is posted in the thread
  and the delivery's ``dispatch_error`` records it. Without a Slack bot token nothing can be posted;
  that is logged and recorded only.

Known limit: the background task lives on this replica; a replica dying between the insert and
``create_session`` loses that session open (the delivery stays recorded, with no session).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.sandbox.client import SandboxBackend
from actors.sandbox.config import parse_llm_config, parse_team_sandbox
from actors.sandbox.errors import TurnInProgress
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.mirror import Reporter
from actors.sandbox.store import SandboxStore
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.db import utcnow
from incidentfox.errors import IncidentFoxError
from incidentfox.runs.models import Delivery
from serve_apps import deliveries
from serve_apps.deliveries import Route

log = logging.getLogger("incidentfox.gateway.sandbox")

SANDBOX_KIND = "sandbox"
OPENED, CONTINUED = "sandbox_opened", "sandbox_continued"
SLACK_CALL_TIMEOUT_S = 15.0
CONFIG_TIMEOUT_S = 15.0
CREATE_TIMEOUT_S = 90.0
TURN_TIMEOUT_S = 3600.0

TeamConfigFn = Callable[[str, str], Awaitable[dict[str, Any]]]
SchedulingFn = Callable[[dict[str, Any], str, str], dict[str, Any]]


class NoBotToken(Exception):
    """The team has no ``integrations.slack.bot_token``: nothing can be posted in Slack."""


@dataclass
class SandboxDispatch:
    """Slack sandbox traffic for one gateway replica (see module doc).

    ``backend`` is a :class:`SandboxBackend` or an async factory of one (the Serve replica builds the
    Ray backend lazily, on the first sandbox command). ``team_config(org, team)`` returns the team's
    effective config with secrets revealed; ``reporter_for(bot_token)`` a Slack poster;
    ``isolation()`` (blocking, run in a thread) the node's sandbox isolation status."""

    sessions: async_sessionmaker[AsyncSession]
    store: SandboxStore
    backend: SandboxBackend | Callable[[], Awaitable[SandboxBackend]]
    team_config: TeamConfigFn
    reporter_for: Callable[[str], Reporter]
    scheduling_for: SchedulingFn
    isolation: Callable[[], IsolationStatus]
    busy_wait_s: float = 900.0
    busy_retry_s: float = 2.0
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _backend: SandboxBackend | None = None
    _backend_lock: asyncio.Lock | None = None

    # -- the request path ------------------------------------------------------------------------

    async def handle(self, *, trigger: Trigger, route: Route, payload: str) -> dict[str, Any] | None:
        """The sender's answer for sandbox traffic (work started in the background), else None."""
        if trigger.action is TriggerAction.START and trigger.event_kind == SANDBOX_KIND:
            if not route.found or not route.org_id or not route.team_id or trigger.thread is None:
                return None   # the normal path records it as unrouted and says so
            row, duplicate = await self._record(trigger, org_id=route.org_id, team_id=route.team_id,
                                                route_stale=route.stale, payload=payload, outcome=OPENED)
            if not duplicate:
                self._spawn(self._open(trigger, org_id=route.org_id, team_id=route.team_id, delivery_pk=row.id))
            text = ("🧪 Sandbox session opened for: " + trigger.title[:200]
                    + ". Its progress follows in a thread in this channel; reply there to continue it.")
            body: dict[str, Any] = {"response_type": "ephemeral", "text": text, "ok": True, "run_id": None,
                                    "outcome": row.outcome}
            if duplicate:
                body["duplicate"] = True
            return body
        thread = trigger.thread
        if (trigger.source != "slack" or not trigger.human or thread is None or not thread.ts
                or trigger.action not in (TriggerAction.CONTINUE, TriggerAction.START)):
            return None
        session = await self.store.find_by_thread(channel=thread.channel, thread_ts=thread.ts)
        # A channel now routed to another org never feeds that org's traffic into this session.
        if session is None or not route.found or route.org_id != session.org_id:
            return None
        row, duplicate = await self._record(trigger, org_id=session.org_id, team_id=session.team_id,
                                            route_stale=route.stale, payload=payload, outcome=CONTINUED)
        if not duplicate:
            self._spawn(self._continue(trigger, session_id=session.id, org_id=session.org_id,
                                       team_id=session.team_id, delivery_pk=row.id))
        body = {"ok": True, "run_id": None, "outcome": row.outcome, "session_id": session.id}
        if duplicate:
            body["duplicate"] = True
        return body

    async def _record(self, trigger: Trigger, *, org_id: str, team_id: str, route_stale: bool, payload: str,
                      outcome: str) -> tuple[Delivery, bool]:
        """Insert the delivery once; ``(row, True)`` with the first copy's row for a redelivery."""
        now = utcnow()
        row = Delivery(source=trigger.source, delivery_id=trigger.delivery_id, received_at=now,
                       event_kind=trigger.event_kind[:128], action=trigger.action.value, outcome=outcome,
                       org_id=org_id, team_id=team_id, run_id=None, route_stale=route_stale,
                       trigger=trigger.model_dump(mode="json"), payload=payload,
                       # Handed to this replica's task now: the sweep has nothing to redo for it.
                       dispatched_at=now, dispatch_attempts=1)
        async with deliveries.write_lock(self.sessions), self.sessions() as s:
            s.add(row)
            try:
                await s.commit()
                return row, False
            except IntegrityError:
                await s.rollback()
                first = await s.scalar(select(Delivery).where(Delivery.source == trigger.source,
                                                              Delivery.delivery_id == trigger.delivery_id))
                if first is None:   # the other insert rolled back after all; the sender retries
                    raise
                return first, True

    # -- background work -------------------------------------------------------------------------

    async def _open(self, trigger: Trigger, *, org_id: str, team_id: str, delivery_pk: int) -> None:
        channel = trigger.thread.channel if trigger.thread else ""
        reporter: Reporter | None = None
        thread_ts: str | None = None
        try:
            cfg, token = await self._config(org_id, team_id)
            reporter = self.reporter_for(token)
            who = f"<@{trigger.actor}>" if trigger.actor else "someone"
            thread_ts = await self._post(reporter, channel, None,
                                         f"🧪 Sandbox session requested by {who}: {trigger.text[:500]}")
            key = (channel, thread_ts)
            try:
                # Taken before the session row exists (a reply finds the thread as soon as the row is
                # written, before create_session returns): the first question always goes first.
                async with self._lock(key):
                    problem = await self._problem(cfg)
                    if problem:
                        await self._fail(delivery_pk, problem, reporter, channel, thread_ts)
                        return
                    backend = await self._get_backend()
                    async with asyncio.timeout(CREATE_TIMEOUT_S):
                        created = await backend.create_session(
                            org_id=org_id, team_id=team_id,
                            created_by=f"slack:{trigger.actor or 'unknown'}"[:128],
                            title=trigger.title[:200], sandbox=dict(cfg.get("sandbox") or {}),
                            scheduling=self.scheduling_for(cfg, org_id, team_id),
                            slack={"channel": channel, "thread_ts": thread_ts})
                    await self._turn(created["session_id"], trigger.text, cfg=cfg, token=token,
                                     channel=channel, thread_ts=thread_ts, reporter=reporter,
                                     delivery_pk=delivery_pk)
            finally:
                self._release(key)
        except NoBotToken as exc:
            await self._fail(delivery_pk, str(exc), None, channel, None)
        except IncidentFoxError as exc:
            await self._fail(delivery_pk, f"Could not open a sandbox session: {exc.message}", reporter,
                             channel, thread_ts)
        except Exception as exc:
            log.exception("sandbox open failed")
            await self._fail(delivery_pk, f"Could not open a sandbox session ({type(exc).__name__}).",
                             reporter, channel, thread_ts)

    async def _continue(self, trigger: Trigger, *, session_id: str, org_id: str, team_id: str,
                        delivery_pk: int) -> None:
        channel, thread_ts = trigger.thread.channel, trigger.thread.ts  # type: ignore[union-attr]
        reporter: Reporter | None = None
        key = (channel, thread_ts or "")
        try:
            async with self._lock(key):
                cfg, token = await self._config(org_id, team_id)
                reporter = self.reporter_for(token)
                problem = await self._problem(cfg)
                if problem:
                    await self._fail(delivery_pk, problem, reporter, channel, thread_ts)
                    return
                await self._turn(session_id, trigger.text, cfg=cfg, token=token, channel=channel,
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
        finally:
            self._release(key)

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
                # A turn started on another replica (or over the API) is still running.
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

    async def _problem(self, cfg: dict[str, Any]) -> str | None:
        """Why a turn cannot run for this team on this node, in words for the thread; None if it can."""
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
        async with deliveries.write_lock(self.sessions), self.sessions() as s:
            await s.execute(update(Delivery).where(Delivery.id == delivery_pk)
                            .values(dispatch_error=message[:2000]).execution_options(synchronize_session=False))
            await s.commit()

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

    def _lock(self, thread: tuple[str, str]) -> asyncio.Lock:
        """The FIFO lock of one Slack thread (= one session): its turns run one after another."""
        return self._locks.setdefault(thread, asyncio.Lock())

    def _release(self, thread: tuple[str, str]) -> None:
        lock = self._locks.get(thread)
        if lock is not None and not lock.locked() and not lock._waiters:
            self._locks.pop(thread, None)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        self._tasks.spawn(coro)

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Wait for the background opens and turns of this replica (tests; graceful shutdown)."""
        await self._tasks.drain(timeout_s)


def make_sandbox_dispatch(sessions: async_sessionmaker[AsyncSession], *, settings: Any,
                          namespace: str = "incidentfox") -> SandboxDispatch:
    """The Serve gateway's wiring: the config service's reader (secrets revealed), the engine's
    placement, the Ray backend over the named ``sandbox-manager`` (created on first use)."""
    from actors.engine.placement import scheduling_options
    from actors.sandbox.isolation import sandbox_isolation_status
    from actors.sandbox.mirror import SlackWebReporter
    from config_service import TeamConfigReader

    team_config = TeamConfigReader(sessions, settings=settings, timeout_s=CONFIG_TIMEOUT_S).read_doc

    async def ray_backend() -> SandboxBackend:
        from actors.sandbox.client import RaySandboxBackend
        from actors.sandbox.config import SandboxRuntime
        from actors.sandbox.manager import get_or_create_manager

        # The same manager (and prewarm) the SandboxAPI replicas use; get_if_exists may ask the GCS.
        manager = await asyncio.to_thread(get_or_create_manager,
                                          SandboxRuntime.from_settings(settings, namespace=namespace),
                                          prewarm=[{"resources": {"shared": 0.001}}])
        async with asyncio.timeout(CREATE_TIMEOUT_S):
            await manager.start.remote()
        return RaySandboxBackend(manager, namespace=namespace)

    return SandboxDispatch(
        sessions=sessions, store=SandboxStore(settings.resolved_database_url()), backend=ray_backend,
        team_config=team_config,
        reporter_for=lambda token: SlackWebReporter(token, base_url=settings.slack_api_url),
        scheduling_for=lambda cfg, org, team: scheduling_options(cfg, org_id=org, team_id=team),
        isolation=lambda: sandbox_isolation_status(settings.sandbox_allow_rlimit_only))
