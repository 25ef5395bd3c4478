"""InvestigationActor: one async Ray actor hosting many concurrent runs of one placement key.

Created only by the pool (:mod:`actors.engine.pool`) through :func:`start_investigation_actor`,
named ``<name>-investigation-<key>-<n>``. It hosts up to ``actor_max_concurrency`` runs on one event
loop; :data:`CONTROL_SLOTS` more calls stay free for ``cancel`` / ``attach`` / ``ping`` while it is
full of runs.

**Leases.** :meth:`InvestigationActor.run` claims the run (``queued → running`` under a lease held
by this actor incarnation) and then runs :func:`actors.engine.investigation.investigate`. A
heartbeat renews the leases of every hosted run every ``lease_s/3`` and acts on what it learns
(:func:`actors.engine.leases.lease_actions`): a requested cancel cancels the run's task, a lease
that is no longer ours abandons the run without touching it (the recovery sweep gave it away).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import ray

from actors.engine.investigation import investigate
from actors.engine.leases import LeaseAction, claim_run, lease_actions, renew_leases
from actors.engine.outcomes import RunOutcome
from actors.engine.placement import options_for_key
from actors.engine.pool_config import NAMESPACE, PoolConfig, make_config_loader
from actors.engine.run_state import EngineContext, LiveRun
from actors.engine.run_writer import RunWriter
from incidentfox import logs, metrics
from incidentfox.db import make_async_engine, session_factory

log = logging.getLogger(__name__)

CONTROL_SLOTS = 64           # actor concurrency kept free for cancel/attach/ping while full of runs


def _preimport() -> None:
    """Import what runs use now: an import inside a run would block the actor's event loop (and
    its lease heartbeat) for seconds on a busy node."""
    import agents  # noqa: F401
    import aiohttp  # noqa: F401

    import config_service.reader  # noqa: F401 - the reader and, through it, the config store


@ray.remote(num_cpus=0)
class InvestigationActor:
    """Hosts many runs; see the module docstring. Created only by the pool."""

    def __init__(self, name: str, cfg: PoolConfig) -> None:
        logs.configure_process_logging()
        _preimport()

        self.name = name
        self.owner = f"{name}:{uuid.uuid4().hex[:8]}"
        self.cfg = cfg
        self._engine = make_async_engine(cfg.database_url)
        self._sessions = session_factory(self._engine)
        self._writer = RunWriter(self._sessions)
        self._runs: dict[str, LiveRun] = {}
        self._ctx: EngineContext | None = None
        self._heartbeat: asyncio.Task[None] | None = None   # held so the task is not collected

    async def _context(self) -> EngineContext:
        if self._ctx is None:
            import aiohttp

            from actors.engine.knowledge_use import process_knowledge_bases
            from incidentfox.object_store import object_store_config

            self._ctx = EngineContext(sessions=self._sessions, writer=self._writer,
                                      load_config=make_config_loader(self.cfg, self._sessions),
                                      slack_api_url=self.cfg.slack_api_url,
                                      public_url=self.cfg.settings.public_url,
                                      http_session=aiohttp.ClientSession(),
                                      knowledge=process_knowledge_bases(object_store_config(self.cfg.settings)))
            self._heartbeat = asyncio.create_task(self._heartbeat_loop())
        return self._ctx

    async def run(self, run_id: str, org_id: str, team_id: str, workers: list[Any],
                  executors: list[Any]) -> RunOutcome:
        """Claim and execute ``run_id``; returns how it ended (``not_claimed`` if it was not claimable)."""
        ctx = await self._context()
        if not await claim_run(self._sessions, run_id=run_id, owner=self.owner, actor_name=self.name,
                               lease_s=self.cfg.lease_s):
            return RunOutcome.NOT_CLAIMED
        live = LiveRun(run_id=run_id, owner=self.owner)
        live.task = asyncio.current_task()
        self._runs[run_id] = live
        metrics.RUNS_ACTIVE.set(len(self._runs))
        token = logs.bind(run_id=run_id, org_id=org_id, team_id=team_id)   # this task's log lines
        try:
            return await investigate(ctx, live, org_id=org_id, team_id=team_id, workers=workers,
                                     executors=executors)
        finally:
            self._runs.pop(run_id, None)
            metrics.RUNS_ACTIVE.set(len(self._runs))
            logs.unbind(token)

    async def cancel(self, run_id: str) -> bool:
        live = self._runs.get(run_id)
        if live is None or live.task is None or live.finished:
            return False   # a finished run's final Slack edit is not cancelled
        live.task.cancel()
        return True

    async def attach(self, run_id: str, entry: dict[str, Any]) -> bool:
        live = self._runs.get(run_id)
        if live is None:
            return False
        live.absorb(entry)
        return True

    async def load(self) -> int:
        return len(self._runs)

    async def ping(self) -> str:
        return self.owner

    async def _heartbeat_loop(self) -> None:
        """Renew leases; cancel runs whose cancel was requested; drop runs whose lease we lost."""
        while True:
            await asyncio.sleep(self.cfg.period_s)   # a heartbeat period, not synchronisation
            ids = list(self._runs)
            if not ids:
                continue
            try:
                rows = await renew_leases(self._sessions, run_ids=ids, owner=self.owner, lease_s=self.cfg.lease_s)
            except Exception as exc:  # noqa: BLE001 - a transient DB error: the next beat retries; the lease has slack
                log.warning("%s heartbeat failed: %s", self.name, type(exc).__name__)
                continue
            for run_id, action in lease_actions(rows, owner=self.owner).items():
                live = self._runs.get(run_id)
                if live is None or live.task is None or live.finished:
                    continue   # finished here: the status is ours, only the final Slack edit is left
                if action is LeaseAction.ABANDON:
                    live.abandoned = True
                    live.task.cancel()
                elif action is LeaseAction.CANCEL:
                    live.task.cancel()


def start_investigation_actor(cfg: PoolConfig, key: str, serial: int) -> tuple[str, Any]:
    """Start the ``serial``-th investigation actor of placement ``key``; returns its name and handle."""
    name = f"{cfg.name}-investigation-{key.replace('_', '-')}-{serial}"
    handle = InvestigationActor.options(
        name=name, namespace=NAMESPACE, max_concurrency=cfg.actor_max_concurrency + CONTROL_SLOTS,
        **options_for_key(key)).remote(name, cfg)
    return name, handle
