"""SandboxManager: the named actor that creates, finds and expires sandbox sessions.

* **Create**: parse the team's ``sandbox`` section, insert the session row with a unique
  unprivileged UID, pick a host for the team's scheduling constraint (hosts are grouped by their
  Ray options and filled one after another up to ``sessions_per_host``; a spare is started when the
  group's free room drops to a quarter of a host, so creates never wait for an actor to boot), and
  have the host make the workspace.
* **Locate**: which host serves a session. A session not in memory (manager restarted, or its host
  died and was reported with :meth:`host_failed`) is assigned a host again, which reloads it from
  the database: history survives, no turn is lost.
* **Expire**: a sweep every ``sweep_interval_s`` ends sessions whose ``expires_at`` (last activity +
  TTL) has passed (compare-and-set, so activity in between wins), removes their workspaces, their
  workspace snapshots and their pods (pod backend), and keeps their transcripts. Messages to an
  expired session get ``410 session_expired``.

:class:`SandboxManagerCore` is plain Python over a *spawner* (how hosts are created and called):
:class:`RaySpawner` in production, :class:`LocalSpawner` in-process for tests and Ray-less use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ray

from actors.engine.placement import SHARED_RESOURCE, options_for_key
from actors.sandbox.backends import CommandBackend, command_backend
from actors.sandbox.config import SandboxRuntime, check_scheduling, parse_team_sandbox
from actors.sandbox.errors import HostUnavailable, SessionExpired, SessionLimitReached, SessionNotFound
from actors.sandbox.host import SandboxHost, SandboxHostCore, rss_bytes
from actors.sandbox.mirror import Reporter
from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.snapshot import snapshot_key
from actors.sandbox.store import CREATE_FAILED, SandboxStore, keyed_session_id, new_session_id
from incidentfox.db import utcnow
from incidentfox.errors import IdempotencyKeyReused
from incidentfox.logs import with_process_logging

log = logging.getLogger("incidentfox.sandbox.manager")
MANAGER_NAME = "sandbox-manager"
HOST_CALL_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0


@dataclass
class HostInfo:
    name: str
    key: str
    handle: Any
    serial: int = 0
    sessions: set[str] = field(default_factory=set)


class LocalSpawner:
    """Hosts as in-process objects (no Ray)."""

    def __init__(self, runtime: SandboxRuntime, reporter: Reporter | None = None) -> None:
        self.runtime, self.reporter = runtime, reporter

    def spawn(self, name: str, scheduling: dict[str, Any]) -> Any:
        return SandboxHostCore(self.runtime, name=name, reporter=self.reporter)

    async def call(self, handle: Any, method: str, **kwargs: Any) -> Any:
        return await getattr(handle, method)(**kwargs)

    def kill(self, handle: Any) -> None:
        pass


class RaySpawner:
    """Hosts as named async Ray actors with the team's scheduling options."""

    def __init__(self, runtime: SandboxRuntime, reporter: Reporter | None = None) -> None:
        self.runtime, self.reporter = runtime, reporter

    def spawn(self, name: str, scheduling: dict[str, Any]) -> Any:
        return SandboxHost.options(name=name, namespace=self.runtime.namespace, get_if_exists=True,
                                   num_cpus=0, max_concurrency=self.runtime.host_max_concurrency,
                                   **scheduling).remote(self.runtime, name=name, reporter=self.reporter)

    async def call(self, handle: Any, method: str, **kwargs: Any) -> Any:
        async with asyncio.timeout(HOST_CALL_TIMEOUT_S):
            return await getattr(handle, method).remote(**kwargs)

    def kill(self, handle: Any) -> None:
        try:
            ray.kill(handle, no_restart=True)
        except ValueError:
            pass  # already gone


def scheduling_key(scheduling: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scheduling, sort_keys=True, default=str).encode()).hexdigest()[:10]


class SandboxManagerCore:
    def __init__(self, runtime: SandboxRuntime, *, spawner: Any = None, reporter: Reporter | None = None,
                 prewarm: list[dict[str, Any]] | None = None) -> None:
        self.runtime = runtime
        self.spawner = spawner or RaySpawner(runtime, reporter)
        self.store = SandboxStore(runtime.db_url)
        self.hosts: dict[str, HostInfo] = {}
        self.by_session: dict[str, str] = {}
        self._prewarm = [check_scheduling(p) for p in (prewarm or [])]
        self._serial = 0
        self._lock = asyncio.Lock()
        self._team_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._backend: CommandBackend | None = None
        self._objects = runtime.object_store.build() if runtime.object_store is not None else None

    # -- lifecycle -------------------------------------------------------------------------------

    def _ensure_sweeper(self) -> None:
        # Also called from create/locate: after Ray restarts this actor nobody calls start() again.
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_loop())

    async def start(self) -> dict[str, Any]:
        """Start the expiry sweep and the prewarmed hosts (idempotent); returns once they answer."""
        self._ensure_sweeper()
        async with self._lock:
            for sched in self._prewarm:
                if not any(h.key == scheduling_key(sched) for h in self.hosts.values()):
                    self._spawn(scheduling_key(sched), sched)
        # Bounded: a host whose placement no node offers would pend forever.
        pings = {asyncio.ensure_future(self.spawner.call(h.handle, "ping")): h.name for h in self.hosts.values()}
        done, pending = await asyncio.wait(pings, timeout=START_TIMEOUT_S) if pings else (set(), set())
        for task in pending:
            task.cancel()
            log.warning("sandbox host %s did not start within %.0fs (is its placement offered?)",
                        pings[task], START_TIMEOUT_S)
        ready = sorted(pings[t] for t in done if not t.cancelled() and t.exception() is None)
        return {"hosts": sorted(self.hosts), "ready": ready}

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    def _spawn(self, key: str, scheduling: dict[str, Any]) -> HostInfo:
        self._serial += 1
        name = f"sandbox-host-{key}-{self._serial}"
        info = HostInfo(name=name, key=key, handle=self.spawner.spawn(name, scheduling), serial=self._serial)
        self.hosts[name] = info
        return info

    async def _assign(self, session_id: str, scheduling: dict[str, Any]) -> HostInfo:
        """The least-loaded host of this scheduling group with room; a new one if none has."""
        key = scheduling_key(scheduling)
        cap = self.runtime.sessions_per_host
        async with self._lock:
            current = self.hosts.get(self.by_session.get(session_id, ""))
            if current is not None:  # a concurrent locate got here first
                return current
            group = [h for h in self.hosts.values() if h.key == key]
            room = [h for h in group if len(h.sessions) < cap]
            # Pack: the fullest host with room, oldest first, so a spare (possibly still booting)
            # takes sessions only once the others are full.
            host = max(room, key=lambda h: (len(h.sessions), -h.serial)) if room else self._spawn(key, scheduling)
            host.sessions.add(session_id)
            self.by_session[session_id] = host.name
            group = [h for h in self.hosts.values() if h.key == key]
            if sum(cap - len(h.sessions) for h in group) <= cap // 4:
                self._spawn(key, scheduling)  # a spare, booting while this one fills up
            return host

    def _forget(self, session_id: str) -> HostInfo | None:
        name = self.by_session.pop(session_id, None)
        host = self.hosts.get(name) if name else None
        if host is not None:
            host.sessions.discard(session_id)
        return host

    # -- sessions --------------------------------------------------------------------------------

    async def create_session(self, *, org_id: str, team_id: str, created_by: str = "", title: str = "",
                             sandbox: dict[str, Any] | None = None, scheduling: dict[str, Any] | None = None,
                             slack: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
        """Open a session; with an Idempotency-Key ``key``, a retry answers the session the first
        request opened (``duplicate: True``, whatever its state now; one whose opening failed is
        opened again), and the same key with another title or Slack thread is ``422
        idempotency_key_reused``."""
        self._ensure_sweeper()
        team = parse_team_sandbox(sandbox)
        sched = check_scheduling(scheduling)
        if self.runtime.backend == "pod":
            # The session's commands run in its own restricted pod; the host only relays them and
            # needs the platform's Kubernetes identity, which a dedicated team's worker group (a
            # token-less team account) does not carry. So pod-backend hosts live on shared workers.
            sched = options_for_key(SHARED_RESOURCE)
        session_id = keyed_session_id(org_id=org_id, team_id=team_id, key=key) if key else new_session_id()
        # Count and insert under the team's lock: this actor is the only creator, so two concurrent
        # creates cannot both take the last place, nor a retry open a second session.
        async with self._team_locks.setdefault((org_id, team_id), asyncio.Lock()):
            first = await self.store.get_session(session_id=session_id) if key else None
            if first is not None and not (first.end_reason == CREATE_FAILED
                                          and await self.store.forget_failed_create(session_id=session_id)):
                return _again(first, title=title, slack=slack)
            open_now = await self.store.count_active(org_id=org_id, team_id=team_id)
            if open_now >= team.max_open_sessions:
                raise SessionLimitReached(
                    f"team {team_id} already has {open_now} open sandbox sessions (sandbox.max_open_sessions = "
                    f"{team.max_open_sessions}); end one (DELETE it, or let its TTL pass) and try again",
                    details={"limit": "sandbox.max_open_sessions", "max": team.max_open_sessions,
                             "open": open_now})
            row = await self.store.create_session(
                session_id=session_id, org_id=org_id, team_id=team_id,
                workspace=str(self.runtime.root / session_id), ttl_s=team.ttl_s or self.runtime.ttl_s,
                uid_base=self.runtime.uid_base, uid_count=self.runtime.uid_count, created_by=created_by,
                title=title, config={"mcp_servers": team.mcp_servers,
                                     "network": team.network and self.runtime.allow_network,
                                     "wall_s": self.runtime.limits.session_wall_s},
                scheduling=sched, slack_channel=(slack or {}).get("channel"),
                slack_thread_ts=(slack or {}).get("thread_ts"))
        host = await self._assign(session_id, sched)
        try:
            await self._open(host, session_id, new=True)
        except BaseException:
            self._forget(session_id)
            await self.store.end_session(session_id=session_id, status="deleted", reason=CREATE_FAILED)
            raise
        await self.store.set_host(session_id=session_id, host=host.name)
        return {"session_id": session_id, "host": host.name, "expires_at": row.expires_at.isoformat(),
                "ttl_s": row.ttl_s}

    async def locate(self, session_id: str) -> str:
        """The name of the host serving ``session_id`` (assigning one if needed)."""
        self._ensure_sweeper()
        name = self.by_session.get(session_id)
        if name is not None and name in self.hosts:
            return name
        row = await self.store.get_session(session_id=session_id)
        if row is None or row.status == "deleted":
            raise SessionNotFound(f"sandbox session {session_id} does not exist")
        if row.status != "active":
            raise SessionExpired(f"sandbox session {session_id} has expired; its transcript is kept")
        host = await self._assign(session_id, row.scheduling or {})
        try:
            await self._open(host, session_id)
        except BaseException:
            self._forget(session_id)
            raise
        await self.store.set_host(session_id=session_id, host=host.name)
        return host.name

    async def _open(self, host: HostInfo, session_id: str, *, new: bool = False) -> None:
        try:
            await self.spawner.call(host.handle, "open_session", session_id=session_id, new=new)
        except TimeoutError:
            raise HostUnavailable(f"no sandbox host answered within {HOST_CALL_TIMEOUT_S:.0f}s; is the team's "
                                  "placement offered by a node?") from None

    def where(self, session_id: str) -> str | None:
        """The host currently holding ``session_id`` in memory, if any (never assigns one)."""
        name = self.by_session.get(session_id)
        return name if name in self.hosts else None

    def host_handle(self, name: str) -> Any:
        return self.hosts[name].handle

    async def host_failed(self, name: str) -> list[str]:
        """A caller saw ``name`` die: drop it; its sessions move to other hosts on next use."""
        async with self._lock:
            host = self.hosts.pop(name, None)
        if host is None:
            return []
        for sid in host.sessions:
            self.by_session.pop(sid, None)
        self.spawner.kill(host.handle)
        log.warning("sandbox host %s failed; %d sessions will resume elsewhere", name, len(host.sessions))
        return sorted(host.sessions)

    async def delete_session(self, session_id: str) -> bool:
        ended = await self.store.end_session(session_id=session_id, status="deleted", reason="deleted")
        await self._close_everywhere(session_id)
        return ended

    async def _close_everywhere(self, session_id: str) -> None:
        try:
            await self._close_local(session_id)
        finally:
            await self._destroy(session_id)

    async def _close_local(self, session_id: str) -> None:
        host = self._forget(session_id)
        if host is not None:
            try:
                await self.spawner.call(host.handle, "close_session", session_id=session_id)
                return
            except Exception as exc:  # noqa: BLE001 - a dead host cannot clean up; we do it below
                log.warning("sandbox host %s could not close %s: %s", host.name, session_id, type(exc).__name__)
        # No live host holds it: remove the workspace from here (same node in single-node setups;
        # copies on other nodes are collected by their hosts, host.gc_workspaces).
        await asyncio.to_thread(_rmtree, self.runtime.root / session_id)

    async def _destroy(self, session_id: str) -> None:
        """What an ended session holds outside any host: its snapshot and its pod. Failures are
        logged (the pod has a deadline; a snapshot left over is only storage)."""
        if self._backend is None:
            self._backend = command_backend(self.runtime)
        try:
            await self._backend.destroy(session_id)
        except Exception as exc:  # noqa: BLE001 - the sweep must go on
            log.warning("sandbox session %s: backend cleanup failed: %s", session_id, type(exc).__name__)
        if self._objects is not None:
            try:
                await self._objects.delete(snapshot_key(session_id))
            except Exception as exc:  # noqa: BLE001
                log.warning("sandbox session %s: snapshot delete failed: %s", session_id, type(exc).__name__)

    async def sweep(self, now: datetime | None = None) -> list[str]:
        """End every session whose TTL passed by ``now``; returns their ids."""
        now = now or utcnow()
        expired = []
        for row in await self.store.list_expired(now=now):
            if await self.store.end_session(session_id=row.id, status="expired", reason="ttl", expired_by=now):
                await self._close_everywhere(row.id)
                expired.append(row.id)
        return expired

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.sweep_interval_s)
            try:
                ids = await self.sweep()
                if ids:
                    log.info("sandbox sweep expired %d sessions", len(ids))
            except Exception:
                log.exception("sandbox sweep failed")

    async def stats(self) -> dict[str, Any]:
        hosts = await asyncio.gather(*(self.spawner.call(h.handle, "stats") for h in self.hosts.values()),
                                     return_exceptions=True)
        return {"hosts": [h for h in hosts if isinstance(h, dict)],
                "sessions": sum(len(h.sessions) for h in self.hosts.values()),
                "manager": {"pid": os.getpid(), "rss_bytes": rss_bytes()}}


def _again(first: SandboxSessionRow, *, title: str, slack: dict[str, Any] | None) -> dict[str, Any]:
    """The answer to a retried create: the session the first request opened, or 422 when the retry
    asks for another title or Slack thread."""
    slack = slack or {}
    if (first.title, first.slack_channel, first.slack_thread_ts) != (title[:200], slack.get("channel"),
                                                                     slack.get("thread_ts")):
        raise IdempotencyKeyReused("sandbox session")
    expires = first.expires_at if first.expires_at.tzinfo else first.expires_at.replace(tzinfo=UTC)
    return {"session_id": first.id, "host": first.host, "expires_at": expires.isoformat(),
            "ttl_s": first.ttl_s, "duplicate": True}


def _rmtree(path: Any) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


SandboxManager = ray.remote(num_cpus=0)(with_process_logging(SandboxManagerCore))


def get_or_create_manager(runtime: SandboxRuntime, *, reporter: Reporter | None = None,
                          prewarm: list[dict[str, Any]] | None = None, detached: bool = True,
                          name: str = MANAGER_NAME) -> Any:
    """The named manager actor in ``runtime.namespace`` (created on first call). Callers then
    ``await manager.start.remote()`` once; it is idempotent."""
    # max_restarts: a crashed manager comes back under the same handle; its maps start empty and
    # sessions are reassigned from the database on their next message (its hosts died with it).
    opts: dict[str, Any] = {"name": name, "namespace": runtime.namespace, "get_if_exists": True,
                            "num_cpus": 0, "max_concurrency": 1000, "max_restarts": -1}
    if detached:
        opts["lifetime"] = "detached"
    return SandboxManager.options(**opts).remote(runtime, reporter=reporter, prewarm=prewarm)
