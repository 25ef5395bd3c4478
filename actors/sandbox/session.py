"""SandboxSession: one workspace and one conversation, hosted in a SandboxHost.

A session's state lives in the database (row + append-only transcript), on the node's disk (the
workspace) and, when workspaces are persisted, in the object store (a snapshot of the workspace
saved at the end of every turn, interrupted ones included: :mod:`actors.sandbox.snapshot`). The
in-memory object is a cache that any host can rebuild with :meth:`load`, which restores the snapshot:
that is how a session whose host died (or whose node went away) resumes with its full history and
its files.

A turn runs as its own task, so it survives the HTTP client going away (the Slack mirror still
sees it through) and so :meth:`interrupt` can cancel it: the model stream is closed or the running
command's processes are killed, the transcript is repaired and persisted, and the caller's stream
ends with ``interrupted``. One turn at a time: a second message while one runs is
:class:`TurnInProgress`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from actors.sandbox import events
from actors.sandbox.agent import DEFAULT_SYSTEM, TurnContext, client_for, run_turn
from actors.sandbox.approvals import SessionApprovals
from actors.sandbox.backends import CommandBackend, SessionRef
from actors.sandbox.cgroups import CgroupMode
from actors.sandbox.config import LLMConfig, SandboxRuntime
from actors.sandbox.errors import (
    SandboxError,
    SessionExpired,
    SessionNotFound,
    TurnInProgress,
    WorkspaceUnavailable,
)
from actors.sandbox.events import SandboxEvent
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.limits import SessionGuard, cgroup_name, make_guard
from actors.sandbox.mcp import open_mcp_tools
from actors.sandbox.mirror import Reporter, ThrottledMessage, TurnMirror
from actors.sandbox.snapshot import SnapshotRejected, Snapshots
from actors.sandbox.store import SandboxStore
from actors.sandbox.tools import Toolbox
from actors.sandbox.transcript import Message, user_text
from actors.sandbox.workspace import Workspace
from incidentfox.db import utcnow
from incidentfox.object_store import ObjectStoreError

log = logging.getLogger("incidentfox.sandbox.session")
MIRROR_DRAIN_S = 15.0
SNAPSHOT_TIMEOUT_S = 300.0


class SandboxSession:
    def __init__(self, *, session_id: str, org_id: str, team_id: str, workspace: Workspace,
                 messages: list[Message], network: bool, runtime: SandboxRuntime, store: SandboxStore,
                 isolation: IsolationStatus, commands: Any = None, snapshots: Snapshots | None = None,
                 guard: SessionGuard | None = None,
                 isolation_now: Callable[[], Awaitable[IsolationStatus]] | None = None) -> None:
        self.id, self.org_id, self.team_id = session_id, org_id, team_id
        self.commands, self.snapshots = commands, snapshots
        self.guard = guard
        self.approvals = SessionApprovals(timeout_s=runtime.approval_timeout_s)
        self.workspace = workspace
        self.messages = messages
        self.network = network
        self.runtime, self.store, self.isolation = runtime, store, isolation
        # Where an unavailable status is asked again (the host's): a probe that failed once, say on a
        # saturated node, must not disable Bash for the whole life of a session opened meanwhile.
        self._isolation_now = isolation_now
        self._persisted = len(messages)
        self._persist_lock = asyncio.Lock()
        self._turn: asyncio.Task[None] | None = None

    @classmethod
    async def load(cls, *, session_id: str, runtime: SandboxRuntime, store: SandboxStore,
                   isolation: IsolationStatus, backend: CommandBackend | None = None,
                   snapshots: Snapshots | None = None, restore: bool = True,
                   isolation_now: Callable[[], Awaitable[IsolationStatus]] | None = None) -> SandboxSession:
        """Rebuild a session from the database, (re)creating its workspace directory if needed and
        restoring its last snapshot (when workspaces are persisted). A store that cannot be read is
        :class:`WorkspaceUnavailable` (retry later: saving over the snapshot would lose it); a snapshot
        that breaks the restore rules is logged and the session goes on with an empty workspace."""
        row = await store.get_session(session_id=session_id)
        if row is None or row.status == "deleted":
            raise SessionNotFound(f"sandbox session {session_id} does not exist")
        if row.status != "active" or row.uid is None:
            raise SessionExpired(f"sandbox session {session_id} has expired; its transcript is kept",
                                 details={"session_id": session_id})
        ws = await asyncio.to_thread(Workspace.ensure, runtime.root, session_id, uid=row.uid)
        if snapshots is not None and restore:
            try:
                async with asyncio.timeout(SNAPSHOT_TIMEOUT_S):
                    await snapshots.restore(session_id, ws.path, uid=ws.uid, gid=ws.gid)
            except SnapshotRejected as exc:
                log.error("workspace snapshot of %s refused (%s); the session continues without it",
                          session_id, exc.message)
            except (ObjectStoreError, OSError, TimeoutError) as exc:
                raise WorkspaceUnavailable(f"the workspace of {session_id} could not be restored; retry "
                                           f"shortly ({type(exc).__name__})") from None
        network = bool((row.config or {}).get("network"))
        commands = None
        if backend is not None:
            commands = backend.bind(SessionRef(session_id=session_id, org_id=row.org_id, team_id=row.team_id,
                                               uid=ws.uid, network=network))
        history = [{"role": m["role"], "content": m["content"]}
                   for m in await store.list_messages(session_id=session_id)]
        guard = await asyncio.to_thread(_guard, runtime, session_id, ws, row.created_at, isolation)
        return cls(session_id=session_id, org_id=row.org_id, team_id=row.team_id, workspace=ws,
                   messages=history, network=network, runtime=runtime, store=store, isolation=isolation,
                   commands=commands, snapshots=snapshots, guard=guard, isolation_now=isolation_now)

    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    async def send(self, text: str, *, llm: LLMConfig, mcp_entries: list[dict[str, Any]],
                   cipher: Any = None, reporter: Reporter | None = None,
                   slack: dict[str, Any] | None = None,
                   mcp_read_only: list[str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Start a turn for ``text`` and yield its events (as dicts) until the terminal one."""
        if self.busy:
            raise TurnInProgress(f"session {self.id} is already running a turn; interrupt it or wait")
        remaining = self.guard.remaining_s() if self.guard is not None else None
        if remaining is not None and remaining <= 0:
            raise SessionExpired(f"sandbox session {self.id} reached its maximum lifetime "
                                 f"({self.runtime.limits.session_wall_s:.0f}s); start a new one",
                                 details={"session_id": self.id, "limit": "session_wall_s"})
        queue: asyncio.Queue[SandboxEvent] = asyncio.Queue()
        mirror = None
        if reporter is not None and slack and slack.get("channel"):
            mirror = TurnMirror(ThrottledMessage(reporter, channel=slack["channel"],
                                                 thread_ts=slack.get("thread_ts")),
                                session_id=self.id, question=text)
        self._turn = asyncio.create_task(self._run(text, llm, mcp_entries, cipher, queue.put_nowait, mirror,
                                                   list(mcp_read_only or [])))
        while True:
            ev = await queue.get()
            yield ev.to_dict()
            if ev.terminal:
                return

    async def interrupt(self) -> bool:
        """Cancel the running turn; returns once it has stopped (transcript persisted)."""
        turn = self._turn
        if turn is None or turn.done():
            return False
        turn.cancel()
        await asyncio.wait({turn}, timeout=15)
        return True

    async def close(self, *, remove_workspace: bool) -> None:
        await self.interrupt()
        if self.guard is not None:
            await asyncio.to_thread(self.guard.close)
        if remove_workspace:
            await asyncio.to_thread(self.workspace.remove)

    async def save_workspace(self) -> None:
        """Snapshot the workspace to the object store (skipped when unchanged). A failure is logged,
        never fails the turn: the previous snapshot stays, and the next turn tries again."""
        if self.snapshots is None:
            return
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT_S):
                result = await self.snapshots.save(self.id, self.workspace.path)
            if result.uploaded:
                log.debug("saved workspace of %s: %d entries, %d bytes in %.3fs", self.id, result.entries,
                          result.bytes, result.duration_s)
        except (ObjectStoreError, OSError, TimeoutError) as exc:
            log.warning("workspace snapshot of %s failed: %s", self.id, type(exc).__name__)

    # -- the turn --------------------------------------------------------------------------------

    async def _persist(self) -> None:
        async with self._persist_lock:
            new = self.messages[self._persisted:]
            if new:
                await self.store.append_messages(session_id=self.id, start_seq=self._persisted, messages=new)
                self._persisted += len(new)

    async def _run(self, text: str, llm: LLMConfig, mcp_entries: list[dict[str, Any]], cipher: Any,
                   emit: Callable[[SandboxEvent], None], mirror: TurnMirror | None,
                   mcp_read_only: list[str]) -> None:
        mirror_q: asyncio.Queue[SandboxEvent | None] = asyncio.Queue()
        mirror_task = asyncio.create_task(self._drain_mirror(mirror, mirror_q)) if mirror else None

        def publish(ev: SandboxEvent) -> None:
            emit(ev)
            if mirror_task is not None:
                mirror_q.put_nowait(ev)

        # The terminal event is published last, after the transcript is persisted and the row is
        # marked idle, so a caller that reacts to it with the next message never sees "busy".
        terminal: SandboxEvent | None = None
        try:
            self.messages.append(user_text(text))
            await self._persist()
            await self.store.touch(session_id=self.id, busy=True)
            async def gate(tool: str, args: dict[str, Any]) -> str | None:
                return (await self.approvals.request(tool, args, publish)).refusal(tool)

            if not self.isolation.available and self._isolation_now is not None:
                self.isolation = await self._isolation_now()
            async with open_mcp_tools(mcp_entries, cipher=cipher, connect_timeout_s=self.runtime.mcp_timeout_s,
                                      read_only=mcp_read_only, gate=gate) as mcp:
                toolbox = Toolbox(self.workspace, self.runtime.limits, self.isolation, network=self.network,
                                  commands=self.commands, extra_specs=mcp.specs, extra=mcp.handlers,
                                  guard=self.guard)
                ctx = TurnContext(
                    client=client_for(llm, timeout_s=self.runtime.model_timeout_s), model=llm.model,
                    max_tokens=llm.max_tokens,
                    system=DEFAULT_SYSTEM + ("\n\n" + llm.system_prompt if llm.system_prompt else ""),
                    tools=toolbox.specs(), execute=toolbox.execute, persist=self._persist,
                    max_steps=self.runtime.max_steps, model_timeout_s=self.runtime.model_timeout_s,
                    tool_timeout_s=self.runtime.tool_timeout_s)
                async for ev in run_turn(ctx, self.messages):
                    if ev.terminal:  # the generator ends right after it
                        terminal = ev
                        continue
                    publish(ev)
                    if ev.type == "tool_end":  # long turns are activity too
                        await self.store.touch(session_id=self.id)
        except asyncio.CancelledError:
            terminal = events.interrupted()
            raise
        except SandboxError as exc:
            terminal = events.error(exc.code, exc.message)
        except Exception as exc:
            log.exception("sandbox turn failed in session %s", self.id)
            terminal = events.error("internal_error", f"the turn failed: {type(exc).__name__}")
        finally:
            try:
                await asyncio.shield(self._finish(mirror_task, mirror_q,
                                                  terminal or events.error("internal_error", "turn ended")))
            finally:
                emit(terminal or events.error("internal_error", "the turn ended without a result"))

    async def _finish(self, mirror_task: asyncio.Task[None] | None, mirror_q: asyncio.Queue,
                      terminal: SandboxEvent) -> None:
        await self._persist()
        # Before the terminal event: once a caller sees the turn end, its files are saved.
        await self.save_workspace()
        await self.store.touch(session_id=self.id, busy=False, turn_done=True)
        if mirror_task is not None:
            mirror_q.put_nowait(terminal)
            mirror_q.put_nowait(None)
            try:
                async with asyncio.timeout(MIRROR_DRAIN_S):
                    await mirror_task
            except TimeoutError:
                mirror_task.cancel()

    @staticmethod
    async def _drain_mirror(mirror: TurnMirror, q: asyncio.Queue[SandboxEvent | None]) -> None:
        """Feed the Slack mirror off the turn's path: Slack latency never slows the turn."""
        while (ev := await q.get()) is not None:
            await mirror.on_event(ev)
        await mirror.message.close()


def _guard(runtime: SandboxRuntime, session_id: str, ws: Workspace, created_at: Any,
           isolation: IsolationStatus) -> SessionGuard:
    """The session's whole-session limits (blocking: makes its cgroup). A cgroup that cannot be made
    leaves the per-process rlimits, as when the node has none (the isolation status says so)."""
    lim = runtime.limits
    if created_at.tzinfo is None:   # SQLite hands datetimes back naive; they are UTC
        created_at = created_at.replace(tzinfo=utcnow().tzinfo)
    remaining = lim.session_wall_s - (utcnow() - created_at).total_seconds()
    kwargs: dict[str, Any] = {"workspace": ws.path, "cgroup_name": cgroup_name(session_id, runtime.platform_tag),
                              "quota_bytes": lim.workspace_quota_bytes, "memory_bytes": lim.session_memory_bytes,
                              "pids": lim.session_pids, "remaining_s": remaining, "poll_s": lim.quota_poll_s}
    try:
        return make_guard(cgroups=isolation.cgroups, **kwargs)
    except OSError as exc:
        log.warning("session %s runs without its cgroup: %s", session_id, exc)
        return make_guard(cgroups=replace(isolation.cgroups, mode=CgroupMode.NONE,
                                          reason=f"cgroup creation failed: {exc}"), **kwargs)
