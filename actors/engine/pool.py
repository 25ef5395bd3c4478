"""The InvestigationPool: named async actors that each host many concurrent runs.

Shape (one set per placement key, see :mod:`actors.engine.placement`):

* ``InvestigationPool`` (named ``<name>-investigation-pool``, detached, restarts): admits
  submitted runs into per-team queues (:class:`actors.engine.team_queue.FairQueue`: at most the team's
  ``quotas.max_concurrent_runs`` dispatched at once, teams served in turn), dispatches each to the
  least-loaded ``InvestigationActor`` with a free slot, grows
  the actor set when all are busy and shrinks it when actors sit idle (within
  ``pool_min_actors..pool_max_actors``), and runs the recovery loop;
* ``InvestigationActor`` ×N (``<name>-investigation-<key>-<n>``): hosts up to ``actor_max_concurrency``
  runs on one event loop, renews their leases, notices cancel requests;
* ``SubAgentWorker`` ×K and ``ToolExecutor`` ×M: the sub-agent and tool-call fan-out.

All are ``num_cpus=0`` (the work is I/O) and carry the team's scheduling constraint.

**No run stuck in ``running``.** An actor renews its runs' leases every ``lease_s/3``; the pool's
recovery loop calls :func:`incidentfox.runs.store.recover_expired` every ``lease_s/3``: a run whose
lease lapsed (its actor died) is requeued once and re-dispatched, or failed with the reason after
its second attempt. The same loop re-submits queued runs nobody dispatched (a lost submit).

:class:`InvestigationRunner` is the :class:`incidentfox.runs.runner.Runner` the gateway uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ray
from sqlalchemy import select

from actors.db_retry import retry_locked
from actors.engine.investigation import EngineContext, LiveRun, investigate
from actors.engine.placement import PlacementUnavailable, check_available, options_for_key, placement_key
from actors.ray_util import is_actor_gone
from actors.engine.run_writer import RunWriter
from actors.engine.subagent_worker import SubAgentWorker
from actors.team_config import TeamConfig, max_concurrent_runs
from actors.engine.team_queue import FairQueue
from actors.engine.tool_executor import ToolExecutor
from incidentfox import logs, metrics
from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.settings import Settings, get_settings

log = logging.getLogger(__name__)

NAMESPACE = "incidentfox"
CONTROL_SLOTS = 64           # actor concurrency kept free for cancel/attach/ping while full of runs
CALL_TIMEOUT_S = 30.0
LOST_SUBMIT_AFTER_S = 10.0   # a queued run this old that the pool never saw is re-submitted


@dataclass
class PoolConfig:
    """Everything the pool's actors need, passed once at creation (pickled with its secrets)."""

    database_url: str
    settings: Settings
    name: str = "incidentfox"   # prefix of every actor name (the pool is ``<name>-investigation-pool``)
    min_actors: int = 1
    max_actors: int = 4
    actor_max_concurrency: int = 200
    lease_s: float = 30.0
    subagent_workers: int = 1
    tool_executors: int = 1
    idle_s: float = 30.0
    slack_api_url: str = "https://slack.com/api/"
    # Tests and benchmarks: a fixed effective config instead of the config service's.
    static_config: dict[str, Any] | None = field(default=None, repr=False)
    # …and per team ("org/team" → doc, merged over ``static_config`` key by key): teams may differ
    # in deployment mode and quotas without a config service.
    static_team_configs: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PoolConfig:
        return cls(database_url=settings.resolved_database_url(), settings=settings,
                   min_actors=settings.pool_min_actors, max_actors=settings.pool_max_actors,
                   actor_max_concurrency=settings.actor_max_concurrency, lease_s=settings.lease_s,
                   subagent_workers=settings.subagent_workers, tool_executors=settings.tool_executors,
                   slack_api_url=settings.slack_api_url, **overrides)


def make_config_loader(cfg: PoolConfig, sessions: Any):
    """``async (org, team) -> effective config`` (decrypted), from the config service's store."""
    if cfg.static_config is not None or cfg.static_team_configs is not None:
        base = cfg.static_config or {}
        per_team = cfg.static_team_configs or {}

        async def static(org_id: str, team_id: str) -> dict[str, Any]:
            return {**base, **per_team.get(f"{org_id}/{team_id}", {})}
        return static

    async def load(org_id: str, team_id: str) -> dict[str, Any]:
        from config_service.services.config import get_effective_config

        async with asyncio.timeout(CALL_TIMEOUT_S):
            async with sessions() as s:
                return await get_effective_config(s, org_id=org_id, node_id=team_id, reveal_secrets=True,
                                                  settings=cfg.settings)
    return load


def _preimport() -> None:
    """Import what runs use now: an import inside a run would block the actor's event loop (and
    its lease heartbeat) for seconds on a busy node."""
    import agents  # noqa: F401
    import aiohttp  # noqa: F401

    import actors.engine.agents.planner_agent
    import actors.engine.agents.providers
    import actors.engine.agents.subagent_factory
    import actors.engine.agents.toolset
    import actors.tools.registry
    try:
        import actors.ranking.rca  # noqa: F401
        import config_service.services.config  # noqa: F401
    except ImportError as exc:   # optional until those packages exist; the run reports it
        log.warning("preimport skipped: %s", exc)


# --------------------------------------------------------------------------------------------- actor
@ray.remote(num_cpus=0)
class InvestigationActor:
    """Hosts many runs; see the module docstring. Created only by :class:`InvestigationPool`."""

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
        self._heartbeat: asyncio.Task[None] | None = None

    async def _context(self) -> EngineContext:
        if self._ctx is None:
            import aiohttp

            self._ctx = EngineContext(sessions=self._sessions, writer=self._writer,
                                      load_config=make_config_loader(self.cfg, self._sessions),
                                      slack_api_url=self.cfg.slack_api_url,
                                      http_session=aiohttp.ClientSession())
            self._heartbeat = asyncio.create_task(self._heartbeat_loop())
        return self._ctx

    async def run(self, run_id: str, org_id: str, team_id: str, workers: list[Any], executors: list[Any]) -> str:
        """Claim and execute ``run_id``; returns its final status (``not_claimed`` if another took it)."""
        ctx = await self._context()

        async def claim() -> bool:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                async with self._sessions() as s:
                    claimed = await store.claim(s, run_id=run_id, owner=self.owner, lease_s=self.cfg.lease_s)
                    if claimed:
                        await store.append_event(s, run_id=run_id, kind="status",
                                                 data={"status": "running", "actor": self.name})
                    await s.commit()
                    return claimed
        if not await retry_locked(claim):
            return "not_claimed"
        live = LiveRun(run_id=run_id, owner=self.owner)
        live.task = asyncio.current_task()
        self._runs[run_id] = live
        metrics.set_gauge("incidentfox_runs_active", len(self._runs))
        token = logs.bind(run_id=run_id, org_id=org_id, team_id=team_id)   # this task's log lines
        try:
            return await investigate(ctx, live, org_id=org_id, team_id=team_id, workers=workers,
                                     executors=executors)
        finally:
            self._runs.pop(run_id, None)
            metrics.set_gauge("incidentfox_runs_active", len(self._runs))
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
        period = max(0.2, self.cfg.lease_s / 3)
        while True:
            await asyncio.sleep(period)   # a heartbeat period, not synchronisation
            ids = list(self._runs)
            if not ids:
                continue
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    async with self._sessions() as s:
                        await store.renew_lease(s, run_ids=ids, owner=self.owner, lease_s=self.cfg.lease_s)
                        rows = (await s.execute(select(Run.id, Run.cancel_requested, Run.lease_owner, Run.status)
                                                .where(Run.id.in_(ids)))).all()
                        await s.commit()
            except Exception as exc:  # a transient DB error: the next beat retries; the lease has slack
                log.warning("%s heartbeat failed: %s", self.name, type(exc).__name__)
                continue
            for run_id, cancel_requested, owner, status in rows:
                live = self._runs.get(run_id)
                if live is None or live.task is None or live.finished:
                    continue   # finished here: the status is ours, only the final Slack edit is left
                if owner != self.owner or status != RunStatus.RUNNING.value:
                    live.abandoned = True
                    live.task.cancel()
                elif cancel_requested:
                    live.task.cancel()


# ---------------------------------------------------------------------------------------------- pool
@dataclass
class _Member:
    name: str
    handle: Any
    load: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    draining: bool = False


@dataclass
class _Group:
    """The actors of one placement key."""

    key: str
    members: list[_Member] = field(default_factory=list)
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
        self._where: dict[str, _Member] = {}          # run id → hosting actor
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
            doc = await self._load_config(org_id, team_id)
            key = placement_key(TeamConfig(doc, org_id=org_id, team_id=team_id), org_id=org_id, team_id=team_id)
            if key not in self._groups:
                check_available(key, await asyncio.to_thread(ray.cluster_resources))
        except PlacementUnavailable as exc:
            await self._fail_queued(run_id, str(exc))
            return False
        except Exception as exc:
            await self._fail_queued(run_id, f"could not load the team's config: {type(exc).__name__}: {exc}")
            return False
        group = self._group(key)
        group.queue.push((run_id, org_id, team_id), team=(org_id, team_id), limit=max_concurrent_runs(doc))
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
        Also starts the recovery loop, so a restarted pool recovers lapsed leases before any submit."""
        self._start_maintenance()
        check_available(key, await asyncio.to_thread(ray.cluster_resources))
        group = self._group(key)
        refs = [m.handle.ping.remote() for m in group.members]
        refs += [w.ping.remote() for w in group.workers] + [e.ping.remote() for e in group.executors]
        async with asyncio.timeout(120):
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

    async def recover_now(self) -> dict[str, list[str]]:
        """One recovery sweep (the maintenance loop does this every ``lease_s/3``)."""
        return await self._recover()

    # ------------------------------------------------------------------ dispatch
    def _group(self, key: str) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key=key)
            opts = options_for_key(key)
            safe = key.replace("_", "-")
            group.workers = [SubAgentWorker.options(name=f"{self.cfg.name}-subagents-{safe}-{i}", namespace=NAMESPACE,
                                                    get_if_exists=True, **opts).remote()
                             for i in range(self.cfg.subagent_workers)]
            group.executors = [ToolExecutor.options(name=f"{self.cfg.name}-tools-{safe}-{i}", namespace=NAMESPACE,
                                                    get_if_exists=True, **opts)
                               .remote(self.cfg.database_url, self.cfg.slack_api_url)
                               for i in range(self.cfg.tool_executors)]
            for _ in range(self.cfg.min_actors):
                self._spawn(group)
            group.dispatcher = asyncio.create_task(self._dispatch_loop(group))
        return group

    def _spawn(self, group: _Group) -> _Member:
        group.serial += 1
        name = f"{self.cfg.name}-investigation-{group.key.replace('_', '-')}-{group.serial}"
        handle = InvestigationActor.options(
            name=name, namespace=NAMESPACE, max_concurrency=self.cfg.actor_max_concurrency + CONTROL_SLOTS,
            **options_for_key(group.key)).remote(name, self.cfg)
        member = _Member(name=name, handle=handle)
        group.members.append(member)
        return member

    def _pick(self, group: _Group) -> _Member | None:
        live = [m for m in group.members if not m.draining]
        free = [m for m in live if m.load < self.cfg.actor_max_concurrency]
        if free:
            best = min(free, key=lambda m: m.load)
            # Grow before the least-loaded actor is more than half full, while within bounds.
            if best.load >= self.cfg.actor_max_concurrency // 2 and len(live) < self.cfg.max_actors:
                return self._spawn(group)
            return best
        if len(live) < self.cfg.max_actors:
            return self._spawn(group)
        return None

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

    async def _track(self, group: _Group, member: _Member, run_id: str, ref: Any, team: tuple[str, str]) -> None:
        try:
            await ref
        except Exception as exc:
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

    async def _fail_queued(self, run_id: str, reason: str) -> None:
        self._known.discard(run_id)

        async def txn() -> None:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                async with self._sessions() as s:
                    if await store.transition(s, run_id=run_id, to=RunStatus.FAILED, from_=[RunStatus.QUEUED],
                                              error=reason):
                        await store.append_event(s, run_id=run_id, kind="status",
                                                 data={"status": "failed", "reason": reason})
                    await s.commit()
        await retry_locked(txn)

    # ------------------------------------------------------------------ maintenance
    async def _maintenance_loop(self) -> None:
        period = max(0.2, self.cfg.lease_s / 3)
        while True:
            await asyncio.sleep(period)   # a maintenance period, not synchronisation
            try:
                await self._recover()
                self._shrink()
                await self._heal()
            except Exception as exc:  # keep the loop alive; the next period retries
                log.warning("pool maintenance failed: %s: %s", type(exc).__name__, exc)

    async def _recover(self) -> dict[str, list[str]]:
        now = utcnow()
        async with asyncio.timeout(CALL_TIMEOUT_S):
            async with self._sessions() as s:
                requeued, failed = await store.recover_expired(s, now=now)
                lost = (await s.execute(
                    select(Run.id, Run.org_id, Run.team_id).where(
                        Run.status == RunStatus.QUEUED.value, Run.kind == "investigation",
                        Run.created_at < now - timedelta(seconds=LOST_SUBMIT_AFTER_S)).limit(500))).all()
                await s.commit()
        self.stats_counters["recovered"] += len(requeued)
        self.stats_counters["failed_lost"] += len(failed)
        for run_id in requeued:
            self._known.discard(run_id)
            self._where.pop(run_id, None)
        resubmit = [(r, o, t) for r, o, t in lost if r not in self._known]
        for run_id, org_id, team_id in resubmit:
            await self.submit(run_id, org_id, team_id)
        return {"requeued": requeued, "failed": failed, "resubmitted": [r for r, _, _ in resubmit]}

    async def _heal(self) -> None:
        """Replace sub-agent workers and tool executors that died (a run retries on a live one)."""
        for group in self._groups.values():
            opts = options_for_key(group.key)
            safe = group.key.replace("_", "-")
            for kind, handles in (("subagents", group.workers), ("tools", group.executors)):
                for i, handle in enumerate(handles):
                    try:
                        async with asyncio.timeout(CALL_TIMEOUT_S):
                            await handle.ping.remote()
                    except Exception as exc:
                        if not is_actor_gone(exc):
                            continue
                        name = f"{self.cfg.name}-{kind}-{safe}-{i}"
                        cls = SubAgentWorker if kind == "subagents" else ToolExecutor
                        args = () if kind == "subagents" else (self.cfg.database_url, self.cfg.slack_api_url)
                        handles[i] = cls.options(name=name, namespace=NAMESPACE, get_if_exists=True,
                                                 **opts).remote(*args)
                        log.warning("replaced dead actor %s", name)

    def _shrink(self) -> None:
        now = time.monotonic()
        for group in self._groups.values():
            idle = [m for m in group.members if m.load == 0 and now - m.idle_since > self.cfg.idle_s]
            while idle and len(group.members) > self.cfg.min_actors:
                member = idle.pop()
                group.members.remove(member)
                ray.kill(member.handle, no_restart=True)


# ------------------------------------------------------------------------------------------- runner
def pool_actor_name(cfg: PoolConfig) -> str:
    return f"{cfg.name}-investigation-pool"


def get_pool(cfg: PoolConfig | None = None) -> Any:
    """The named pool actor, created on first use (Ray must be initialised)."""
    cfg = cfg or PoolConfig.from_settings(get_settings())
    return InvestigationPool.options(name=pool_actor_name(cfg), namespace=NAMESPACE, get_if_exists=True,
                                     lifetime="detached").remote(cfg)


class InvestigationRunner:
    """The gateway's :class:`incidentfox.runs.runner.Runner`: hands runs to the pool actor."""

    def __init__(self, database_url: str, *, pool_config: PoolConfig | None = None) -> None:
        settings = get_settings()
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
        self._cfg = pool_config or PoolConfig.from_settings(settings)
        self._pool: Any | None = None
        if pool_config is None and ray.is_initialized():
            # Built inside a Serve replica at deploy time: start the pool's actors now, so the first
            # investigation does not wait for process start-up (fire and forget; a failure such as
            # a missing `shared` resource is reported again by the first submit).
            self._warm = self._handle().warmup.remote("shared")

    def _handle(self) -> Any:
        if self._pool is None:
            if not ray.is_initialized():
                ray.init(address="auto", namespace=NAMESPACE, log_to_driver=False)
            self._pool = get_pool(self._cfg)
        return self._pool

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().submit.remote(run_id, org_id, team_id)

    async def cancel(self, *, run_id: str) -> None:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().cancel.remote(run_id)

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        entry = {"source": trigger.source, "delivery_id": trigger.delivery_id, "title": trigger.title,
                 "fingerprint": trigger.fingerprint, "services": trigger.services}
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().attach.remote(run_id, entry)

    async def stats(self) -> dict[str, Any]:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return await self._handle().stats.remote()
