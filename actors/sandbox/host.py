"""SandboxHost: an async actor hosting many sandbox sessions on one node.

Why many per actor: a session at rest is a few hundred KB of Python objects (transcript, one
workspace handle) while a Ray actor process costs ~100+ MB, so one host holds up to
``sessions_per_host`` sessions (64 by default; see docs/sandbox.md for the measurement). Commands
run as separate sandboxed processes; the host only supervises them, so ``num_cpus=0``.

:class:`SandboxHostCore` is plain Python (used in-process by the local backend and in unit tests);
:data:`SandboxHost` is the same class as a Ray actor. Methods take/return plain data (dicts), and
``send_message`` is an async generator (a Ray streaming generator when remote).

Commands run through the runtime's command backend (:mod:`actors.sandbox.backends`: bubblewrap on
this node, or a pod per session). Workspaces are restored from their snapshot when a session is
loaded here, and :meth:`SandboxHostCore.gc_workspaces` (at start and every ``GC_INTERVAL_S``)
removes local copies of sessions that ended or moved to a host elsewhere: each copy carries an
owner marker (``<root>/.owners/<session_id>``, the host that last loaded it), and a copy whose owner
is no longer the session's host is stale.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import ray

from actors.sandbox import agent
from actors.sandbox.backends import command_backend
from actors.sandbox.cgroups import SessionCgroup
from actors.sandbox.config import SandboxRuntime, parse_llm_config, parse_team_sandbox
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.limits import cgroup_name, platform_cgroups, sweep_cgroups
from actors.sandbox.mcp import cipher_from_settings, select_servers
from actors.sandbox.mirror import Reporter, SlackWebReporter
from actors.sandbox.session import SandboxSession
from actors.sandbox.snapshot import Snapshots
from actors.sandbox.store import SandboxStore
from incidentfox import metrics
from incidentfox.logs import with_process_logging

log = logging.getLogger("incidentfox.sandbox.host")
GC_INTERVAL_S = 300.0
GC_GRACE_S = 600.0       # a copy younger than this is never collected (a load may be under way)
OWNERS_DIR = ".owners"


def rss_bytes() -> int:
    """Resident set size of this process."""
    return psutil.Process().memory_info().rss


class SandboxHostCore:
    def __init__(self, runtime: SandboxRuntime, *, name: str, reporter: Reporter | None = None) -> None:
        self.runtime = runtime
        self.name = name
        self.reporter = reporter
        self.store = SandboxStore(runtime.db_url)
        self.sessions: dict[str, SandboxSession] = {}
        self._isolation: IsolationStatus | None = None
        self._loading: dict[str, asyncio.Task[SandboxSession]] = {}
        self.backend = command_backend(runtime)
        self.snapshots = (Snapshots(runtime.object_store.build(), scratch=runtime.root,
                                    max_bytes=runtime.snapshot_max_bytes)
                          if runtime.object_store is not None else None)
        self._gc: asyncio.Task[None] | None = None
        agent.preload()   # the model SDK, before the first turn rather than during it

    async def isolation(self) -> IsolationStatus:
        """The backend's status; kept once available, asked again while not (a transient probe
        failure must not disable Bash on this host for good). The first status, and the first available
        one after an unavailable one, sweep the node's leftover session cgroups."""
        seen = self._isolation
        if seen is not None and seen.available:
            return seen
        status = await self.backend.status()
        if self._isolation is seen:         # else a concurrent caller has just set (and swept) it
            self._isolation = status
            if seen is None or status.available:
                await self._sweep_cgroups(status)
        return self._isolation

    async def _sweep_cgroups(self, status: IsolationStatus) -> None:
        """Once per host: remove this platform's session cgroups left on this node by sessions that
        have ended (a host that died cannot remove its own). Other platforms' are not ours to judge."""
        if not status.cgroups.available or status.cgroups.memory_parent is None:
            return
        platform = self.runtime.platform_tag
        keep = set()
        for session_id in await asyncio.to_thread(platform_cgroups, status.cgroups, platform):
            row = await self.store.get_session(session_id=session_id)
            if row is not None and row.status == "active":
                keep.add(session_id)
        await asyncio.to_thread(sweep_cgroups, status.cgroups, platform=platform, keep=keep)

    async def _session(self, session_id: str, *, new: bool = False) -> SandboxSession:
        """The in-memory session, loading it from the database (history included) on first use."""
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        task = self._loading.get(session_id)
        if task is None:
            task = asyncio.ensure_future(self._load(session_id, new=new))
            self._loading[session_id] = task
        try:
            session = await task
        finally:
            self._loading.pop(session_id, None)
        self.sessions[session_id] = session
        metrics.SANDBOX_SESSIONS_ACTIVE.set(len(self.sessions))
        return session

    async def _load(self, session_id: str, *, new: bool) -> SandboxSession:
        self._ensure_gc()
        # A session being created has no snapshot yet: skip the store round trip on create.
        session = await SandboxSession.load(session_id=session_id, runtime=self.runtime, store=self.store,
                                            isolation=await self.isolation(), isolation_now=self.isolation,
                                            backend=self.backend, snapshots=self.snapshots, restore=not new)
        await asyncio.to_thread(self._mark_owner, session_id)
        return session

    def _mark_owner(self, session_id: str) -> None:
        owners = Path(self.runtime.root) / OWNERS_DIR
        owners.mkdir(mode=0o700, exist_ok=True)
        (owners / session_id).write_text(self.name)

    async def open_session(self, session_id: str, new: bool = False) -> dict[str, Any]:
        session = await self._session(session_id, new=new)
        return {"session_id": session_id, "host": self.name, "messages": len(session.messages)}

    async def send_message(self, session_id: str, text: str, llm: dict[str, Any],
                           sandbox: dict[str, Any] | None = None,
                           slack: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Run one turn. ``llm`` and ``sandbox`` are the team's current config sections (the API
        key travels per message and is never stored); MCP names resolve against the allow-list now."""
        llm_cfg = parse_llm_config(llm)
        team = parse_team_sandbox(sandbox)
        session = await self._session(session_id)
        entries: list[dict[str, Any]] = []
        if team.mcp_servers:
            allow = {r.name: {"name": r.name, "transport": r.transport, "command": r.command, "url": r.url,
                              "env": r.env, "tool_timeout_s": r.tool_timeout_s}
                     for r in await self.store.get_allowlist()}
            entries = select_servers(team.mcp_servers, allow)
        reporter = self.reporter
        if reporter is None and slack and slack.get("bot_token"):
            reporter = SlackWebReporter(slack["bot_token"], base_url=self.runtime.slack_api_url)
        cipher = cipher_from_settings() if any(e.get("env") for e in entries) else None
        async for ev in session.send(text, llm=llm_cfg, mcp_entries=entries, cipher=cipher,
                                     reporter=reporter, slack=slack, mcp_read_only=team.mcp_read_only):
            yield ev

    async def decide_approval(self, session_id: str, approval_id: str, approve: bool, by: str) -> bool:
        """Resolve a pending MCP approval of a session on this host (who may is the caller's check)."""
        session = self.sessions.get(session_id)
        return session is not None and session.approvals.decide(approval_id, approve=approve, by=by)

    async def pending_approvals(self, session_id: str) -> list[dict[str, Any]]:
        session = self.sessions.get(session_id)
        return session.approvals.pending() if session is not None else []

    async def interrupt(self, session_id: str) -> bool:
        session = self.sessions.get(session_id)
        return await session.interrupt() if session is not None else False

    async def close_session(self, session_id: str, *, remove_workspace: bool = True) -> bool:
        """Stop the session's turn, forget it, and remove its workspace directory."""
        session = self.sessions.pop(session_id, None)
        await self.backend.release(session_id)
        if self.snapshots is not None:
            self.snapshots.forget(session_id)
        if remove_workspace:
            await asyncio.to_thread((Path(self.runtime.root) / OWNERS_DIR / session_id).unlink, True)
        if session is not None:
            metrics.SANDBOX_SESSIONS_ACTIVE.set(len(self.sessions))
            await session.close(remove_workspace=remove_workspace)
            return True
        if remove_workspace:
            path = self.runtime.root / session_id
            await asyncio.to_thread(_rmtree, path)
        leftover = SessionCgroup.named((await self.isolation()).cgroups,
                                       cgroup_name(session_id, self.runtime.platform_tag))
        if leftover is not None:   # e.g. left by a host that died on this node
            await asyncio.to_thread(leftover.remove)
        return False

    # -- stale local copies ----------------------------------------------------------------------

    def _ensure_gc(self) -> None:
        if self._gc is None or self._gc.done():
            self._gc = asyncio.create_task(self._gc_loop())

    async def _gc_loop(self) -> None:
        while True:
            try:
                removed = await self.gc_workspaces()
                if removed:
                    log.info("sandbox host %s removed %d stale workspaces", self.name, len(removed))
            except Exception:
                log.exception("sandbox workspace collection failed")
            await asyncio.sleep(GC_INTERVAL_S)

    async def gc_workspaces(self, *, grace_s: float = GC_GRACE_S, now: float | None = None) -> list[str]:
        """Remove local workspace copies that ended or whose session's host is no longer the one that
        loaded them here (it resumed elsewhere), and leftovers of interrupted restores/pulls, once
        older than ``grace_s``. Returns the session ids removed."""
        root = Path(self.runtime.root)
        now = time.time() if now is None else now
        entries = await asyncio.to_thread(_scan, root)
        removed = []
        for name, mtime, owner in entries:
            if now - mtime < grace_s or name in self.sessions or name in self._loading:
                continue
            if name.startswith("."):  # .restore-/.pull-/.snap-/.old- leftovers of a crash
                await asyncio.to_thread(_rmtree, root / name)
                continue
            row = await self.store.get_session(session_id=name)
            if row is None or row.status != "active" or (owner is not None and row.host != owner):
                await asyncio.to_thread(_rmtree, root / name)
                await asyncio.to_thread((root / OWNERS_DIR / name).unlink, True)
                if self.snapshots is not None:
                    self.snapshots.forget(name)
                removed.append(name)
        return removed

    async def stats(self) -> dict[str, Any]:
        return {"name": self.name, "pid": os.getpid(), "sessions": len(self.sessions),
                "busy": sum(1 for s in self.sessions.values() if s.busy), "rss_bytes": rss_bytes(),
                "isolation": (await self.isolation()).to_dict()}

    async def ping(self) -> str:
        """Readiness (the manager awaits it for prewarmed hosts); also builds the shared HTTP client
        and probes isolation so the first session on this host pays neither."""
        from actors.sandbox.agent import shared_http_client

        shared_http_client()
        self._ensure_gc()
        await self.isolation()
        return self.name


def _rmtree(path: Any) -> None:
    p = Path(path)
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    else:
        shutil.rmtree(p, ignore_errors=True)


def _scan(root: Path) -> list[tuple[str, float, str | None]]:
    """(name, mtime, owner host) of every entry of the sandbox root but the owners folder. The
    mtime is the owner marker's when there is one (when the copy was last loaded)."""
    if not root.is_dir():
        return []
    out = []
    for entry in os.scandir(root):
        if entry.name == OWNERS_DIR:
            continue
        marker = root / OWNERS_DIR / entry.name
        try:
            owner: str | None = marker.read_text().strip() or None
            mtime = marker.stat().st_mtime
        except OSError:
            owner, mtime = None, entry.stat(follow_symlinks=False).st_mtime
        out.append((entry.name, mtime, owner))
    return out


SandboxHost = ray.remote(num_cpus=0)(with_process_logging(SandboxHostCore))
