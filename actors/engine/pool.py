"""The InvestigationPool: the supervisor of the named async actors that each host many runs.

Shape (one group per placement key, see :mod:`actors.engine.placement`):

* ``InvestigationPool`` (named ``<name>-investigation-pool``, detached, restarts): admits submitted
  runs (:mod:`actors.engine.admission`) into per-team queues (:class:`actors.engine.team_queue.FairQueue`:
  at most the team's ``quotas.max_concurrent_runs`` dispatched at once, teams served in turn),
  dispatches each to the actor :func:`actors.engine.scaling.pick` chooses, and runs the maintenance
  loop: recovery (:mod:`actors.engine.recovery`), scaling down (:func:`actors.engine.scaling.idle_to_stop`)
  and healing (:mod:`actors.engine.healing`);
* ``InvestigationActor`` ×N (:mod:`actors.engine.investigation_actor`): hosts the runs, renews their
  leases (:mod:`actors.engine.leases`), notices cancel requests;
* ``SubAgentWorker`` ×K and ``ToolExecutor`` ×M: the sub-agent and tool-call fan-out.

All are ``num_cpus=0`` (the work is I/O) and carry the team's scheduling constraint.

**No run stuck in ``running``.** An actor renews its runs' leases every ``lease_s/3``; the pool's
maintenance loop sweeps every ``lease_s/3``: a run whose lease lapsed (its actor died) is requeued
once and re-dispatched, or failed with the reason after its second attempt; queued runs nobody
dispatched (a lost submit) are submitted again.

:class:`actors.engine.runner.InvestigationRunner` is the gateway's way in; :func:`get_pool` names
and creates this actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.engine.admission import AdmissionRefused, admit, fail_queued
from actors.engine.healing import heal, start_helpers
from actors.engine.investigation_actor import start_investigation_actor
from actors.engine.placement import check_available
from actors.engine.pool_config import CALL_TIMEOUT_S, NAMESPACE, PoolConfig, make_config_loader
from actors.engine.recovery import sweep
from actors.engine.scaling import Member, idle_to_stop, pick
from actors.engine.team_queue import FairQueue
from actors.ray_util import is_actor_gone
from incidentfox import logs
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.settings import get_settings

log = logging.getLogger(__name__)

WARMUP_TIMEOUT_S = 120.0


@dataclass
class _Group:
    """The actors and the queue of one placement key."""

    key: str
    members: list[Member] = field(default_factory=list)
    workers: list[Any] = field(default_factory=list)
    executors: list[Any] = field(default_factory=list)
    queue: FairQueue[tuple[str, str, str]] = field(default_factory=FairQueue)   # per-team quotas
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: asyncio.Task[None] | None = None
    serial: int = 0


@ray.remote(num_cpus=0, max_concurrency=10_000, max_restarts=-1)
class InvestigationPool:
    """The supervisor (see the module docstring)."""

    def __init__(self, cfg: PoolConfig) -> None:
        logs.configure_process_logging()
        self.cfg = cfg
        self._engine = make_async_engine(cfg.database_url)
        self._sessions = session_factory(self._engine)
        self._load_config = make_config_loader(cfg, self._sessions)
        self._groups: dict[str, _Group] = {}
        self._where: dict[str, Member] = {}           # run id → hosting actor
        self._known: set[str] = set()                  # queued in the pool or running on an actor
        self._maintenance: asyncio.Task[None] | None = None
        self.stats_counters = {"submitted": 0, "dispatched": 0, "finished": 0, "recovered": 0, "failed_lost": 0}

    def _start_maintenance(self) -> None:
        if self._maintenance is None or self._maintenance.done():
            self._maintenance = asyncio.create_task(self._maintenance_loop())

    # ------------------------------------------------------------------ API used by the runner
    async def submit(self, run_id: str, org_id: str, team_id: str) -> bool:
        """Queue ``run_id`` for dispatch. Idempotent: a run already known is not queued twice."""
        self._start_maintenance()
        if run_id in self._known:
            return False
        self._known.add(run_id)
        self.stats_counters["submitted"] += 1
        try:
            admission = await admit(self._load_config, org_id=org_id, team_id=team_id, known_keys=self._groups)
        except AdmissionRefused as exc:
            self._known.discard(run_id)
            await fail_queued(self._sessions, run_id=run_id, reason=exc.reason)
            return False
        group = self._group(admission.key)
        group.queue.push((run_id, org_id, team_id), team=(org_id, team_id), limit=admission.limit)
        group.wake.set()
        return True

    async def cancel(self, run_id: str) -> bool:
        member = self._where.get(run_id)
        if member is None:
            return False
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await member.handle.cancel.remote(run_id)
        except Exception as exc:
            if is_actor_gone(exc):
                return False
            raise

    async def attach(self, run_id: str, entry: dict[str, Any]) -> bool:
        """Give a hosted run added context. A run not yet started reads it from ``runs.absorbed``."""
        member = self._where.get(run_id)
        if member is None:
            return False
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return await member.handle.attach.remote(run_id, entry)

    async def stats(self) -> dict[str, Any]:
        return {
            **self.stats_counters,
            "groups": {k: {"actors": [m.name for m in g.members], "loads": [m.load for m in g.members],
                           "queued": len(g.queue), "workers": len(g.workers), "executors": len(g.executors),
                           "teams": g.queue.snapshot()}
                       for k, g in self._groups.items()},
            "running": len(self._where),
        }

    async def warmup(self, key: str = "shared") -> dict[str, int]:
        """Create the actors of placement ``key`` and wait until every one has started (imports
        done), so the first run does not pay for process start-up. ``up`` and tests call it.
        Also starts the maintenance loop, so a restarted pool recovers lapsed leases before any submit."""
        self._start_maintenance()
        check_available(key, await asyncio.to_thread(ray.cluster_resources))
        group = self._group(key)
        refs = [m.handle.ping.remote() for m in group.members]
        refs += [w.ping.remote() for w in group.workers] + [e.ping.remote() for e in group.executors]
        async with asyncio.timeout(WARMUP_TIMEOUT_S):
            await asyncio.gather(*refs)
        return {"actors": len(group.members), "workers": len(group.workers), "executors": len(group.executors)}

    async def shutdown(self) -> None:
        """Stop the loops and kill every actor this pool created (the caller then kills the pool)."""
        if self._maintenance is not None:
            self._maintenance.cancel()
        for group in self._groups.values():
            if group.dispatcher is not None:
                group.dispatcher.cancel()
            for handle in [*(m.handle for m in group.members), *group.workers, *group.executors]:
                ray.kill(handle, no_restart=True)
        self._groups.clear()

    # ------------------------------------------------------------------ dispatch
    def _group(self, key: str) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key=key)
            group.workers, group.executors = start_helpers(self.cfg, key)
            for _ in range(self.cfg.min_actors):
                self._spawn(group)
            group.dispatcher = asyncio.create_task(self._dispatch_loop(group))
        return group

    def _spawn(self, group: _Group) -> Member:
        group.serial += 1
        name, handle = start_investigation_actor(self.cfg, group.key, group.serial)
        member = Member(name=name, handle=handle)
        group.members.append(member)
        return member

    def _pick(self, group: _Group) -> Member | None:
        choice = pick(group.members, max_concurrency=self.cfg.actor_max_concurrency,
                      max_actors=self.cfg.max_actors)
        return self._spawn(group) if choice.grow else choice.member

    async def _dispatch_loop(self, group: _Group) -> None:
        while True:
            await group.wake.wait()
            group.wake.clear()
            # Teams take turns; a team at its quota waits in its own queue (a finishing run sets `wake`).
            while group.queue.ready():
                member = self._pick(group)
                if member is None:
                    break   # every actor is full: a finishing run sets `wake`
                run_id, org_id, team_id = group.queue.pop()
                member.load += 1
                self._where[run_id] = member
                self.stats_counters["dispatched"] += 1
                ref = member.handle.run.remote(run_id, org_id, team_id, group.workers, group.executors)
                asyncio.create_task(self._track(group, member, run_id, ref, (org_id, team_id)))

    async def _track(self, group: _Group, member: Member, run_id: str, ref: Any, team: tuple[str, str]) -> None:
        try:
            await ref
        except Exception as exc:  # noqa: BLE001 - whatever ended the run, its slot and lease are released
            if is_actor_gone(exc):
                log.warning("actor %s died while hosting %s; its lease will be recovered", member.name, run_id)
                if member in group.members:
                    group.members.remove(member)
            else:
                log.warning("run %s ended with an error in its actor: %s", run_id, type(exc).__name__)
        finally:
            member.load -= 1
            group.queue.release(team)
            if member.load == 0:
                member.idle_since = time.monotonic()
            self._where.pop(run_id, None)
            self._known.discard(run_id)
            self.stats_counters["finished"] += 1
            group.wake.set()

    # ------------------------------------------------------------------ maintenance
    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.period_s)   # a maintenance period, not synchronisation
            try:
                await self._recover()
                self._shrink()
                for group in self._groups.values():
                    await heal(self.cfg, group.key, workers=group.workers, executors=group.executors)
            except Exception as exc:  # noqa: BLE001 - keep the loop alive; the next period retries
                log.warning("pool maintenance failed: %s: %s", type(exc).__name__, exc)

    async def _recover(self) -> None:
        found = await sweep(self._sessions, now=utcnow())
        self.stats_counters["recovered"] += len(found.requeued)
        self.stats_counters["failed_lost"] += len(found.failed)
        for run_id in found.requeued:
            self._known.discard(run_id)
            self._where.pop(run_id, None)
        for run_id, org_id, team_id in found.queued:
            if run_id not in self._known:
                await self.submit(run_id, org_id, team_id)

    def _shrink(self) -> None:
        now = time.monotonic()
        for group in self._groups.values():
            for member in idle_to_stop(group.members, now=now, idle_s=self.cfg.idle_s,
                                       min_actors=self.cfg.min_actors):
                group.members.remove(member)
                ray.kill(member.handle, no_restart=True)


def pool_actor_name(cfg: PoolConfig) -> str:
    return f"{cfg.name}-investigation-pool"


def get_pool(cfg: PoolConfig | None = None) -> Any:
    """The named pool actor, created on first use (Ray must be initialised)."""
    cfg = cfg or PoolConfig.from_settings(get_settings())
    return InvestigationPool.options(name=pool_actor_name(cfg), namespace=NAMESPACE, get_if_exists=True,
                                     lifetime="detached").remote(cfg)
