"""Whole-session limits on the local (bubblewrap / rlimit-only) backend: memory and processes
(a cgroup per session, :mod:`actors.sandbox.cgroups`), disk (a workspace quota, accounted here) and
wall time (a session's whole life).

**Disk.** There is no per-directory quota without special filesystems (ext4 project quotas need
the ``prjquota`` mount option; a loop-mounted image per session costs a mount and an image file
each), so the workspace is *accounted*: :func:`workspace_usage` sums the allocated blocks of every
entry (each file or directory counts at least one 4 KiB block, so a million empty files count too),
never following symlinks. It is enforced three ways:

* ``Write``/``Edit`` refuse a change that would take the workspace past the quota (exact: they run
  in the host and measure before writing);
* a running command is measured every ``quota_poll_s`` (or 4× the time one measurement takes, if
  longer) and killed once the workspace is over quota *and* larger than when it started, so a
  command that only deletes survives (that is how an over-quota workspace is cleaned up);
* RLIMIT_FSIZE (``min(fsize_bytes, quota)``) bounds any single file, whatever the timing.

The honest limit: between two measurements a command can write at disk speed, so the overshoot is
at most (write rate × poll interval), and one file never exceeds the quota. The pod backend uses an
``ephemeral-storage`` limit instead (the kubelet evicts the pod).

**Wall time.** ``session_wall_s`` bounds a session's life from its creation, however active: a
command is killed when it is reached (its timeout is clipped to what is left), later messages get
``410 session_expired``, and the sweep ends the session (``expires_at`` never passes it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from actors.sandbox.cgroups import CgroupSupport, SessionCgroup

MIN_ENTRY_BYTES = 4096


def workspace_usage(path: Path | str) -> int:
    """Bytes the tree under ``path`` occupies on disk (allocated blocks, at least 4 KiB per entry),
    never following symlinks. Entries that vanish during the walk are skipped."""
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            it = os.scandir(current)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(st.st_blocks * 512, MIN_ENTRY_BYTES)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return total


@dataclass
class SessionGuard:
    """A session's whole-session limits, held by its :class:`~actors.sandbox.session.SandboxSession`
    and consulted by the tools. ``cgroup`` is None when :attr:`cgroups` says why not."""

    workspace: Path
    quota_bytes: int
    cgroups: CgroupSupport
    cgroup: SessionCgroup | None = None
    deadline: float | None = None          # time.monotonic() at which the session's wall time ends
    poll_s: float = 0.5
    memory_bytes: int = 0
    pids: int = 0

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def prepare(self) -> None:
        """Before each command (blocking): re-make the cgroup if something removed it (a host that
        swept leftovers on this node), so a command never runs outside it."""
        if self.cgroup is not None:
            self.cgroup = SessionCgroup.create(self.cgroups, self.cgroup.name, memory_bytes=self.memory_bytes,
                                               pids=self.pids)

    def usage(self) -> int:
        return workspace_usage(self.workspace)

    def quota_refusal(self, *, adding: int) -> str | None:
        """Why writing ``adding`` more bytes would exceed the quota (blocking; a tree walk)."""
        if adding <= 0:
            return None
        used = self.usage()
        if used + adding > self.quota_bytes:
            return (f"the workspace disk quota would be exceeded ({_mib(used)} used + {_mib(adding)} "
                    f"> {_mib(self.quota_bytes)}); remove files first")
        return None

    async def watch_quota(self, baseline: int) -> int:
        """Return the usage once the workspace is over quota and above ``baseline``; until then,
        measure every :attr:`poll_s` (slower when a measurement itself is slow)."""
        while True:
            started = time.monotonic()
            used = await asyncio.to_thread(self.usage)
            if used > self.quota_bytes and used > baseline:
                return used
            spent = time.monotonic() - started
            await asyncio.sleep(max(self.poll_s, 4 * spent))   # a poll: the kernel gives no event

    def close(self) -> None:
        """Kill anything left in the session's cgroup and remove it (blocking)."""
        if self.cgroup is not None:
            self.cgroup.remove()


def platform_tag(db_url: str) -> str:
    """Which platform a session belongs to, on a node that may run several: a digest of the
    platform's database, which every host of one platform shares and which is all a sweep may judge
    sessions by (:attr:`~actors.sandbox.config.SandboxRuntime.platform_tag`)."""
    return hashlib.sha256(db_url.encode()).hexdigest()[:12]


def cgroup_name(session_id: str, platform: str) -> str:
    """The name of a session's cgroup on its node: the session id, then its platform's tag
    (:attr:`~actors.sandbox.config.SandboxRuntime.platform_tag`). Every platform on a node (a test
    run's, a demo's, another install's) makes its sessions' cgroups under one parent, and a host's
    sweep of leftovers must only ever touch its own platform's: another's live sessions are not in
    its database, and the sweep would kill their commands."""
    return f"{session_id}-{platform}"


def make_guard(*, workspace: Path, cgroup_name: str, quota_bytes: int, memory_bytes: int, pids: int,
               remaining_s: float | None, poll_s: float, cgroups: CgroupSupport) -> SessionGuard:
    """Build a session's guard, creating its cgroup (named ``cgroup_name``, :func:`cgroup_name`)
    when the node supports it (blocking)."""
    cgroup = None
    if cgroups.available:
        cgroup = SessionCgroup.create(cgroups, cgroup_name, memory_bytes=memory_bytes, pids=pids)
    deadline = None if remaining_s is None else time.monotonic() + remaining_s
    return SessionGuard(workspace=workspace, quota_bytes=quota_bytes, cgroups=cgroups, cgroup=cgroup,
                        deadline=deadline, poll_s=poll_s, memory_bytes=memory_bytes, pids=pids)


def sweep_cgroups(cgroups: CgroupSupport, *, platform: str, keep: set[str]) -> list[str]:
    """Remove this platform's session cgroups on this node whose session is not in ``keep`` (session
    ids; blocking) and return their names. Other platforms' are never looked at. Populated ones
    cannot be removed (rmdir fails) and stay; a live session re-makes its own before a command."""
    if not cgroups.available or cgroups.memory_parent is None:
        return []
    removed = []
    for session_id, entry in platform_cgroups(cgroups, platform).items():
        if session_id in keep:
            continue
        cg = SessionCgroup.named(cgroups, entry)
        if cg is not None and not cg.pids() and cg.remove():
            removed.append(entry)
    return removed


def platform_cgroups(cgroups: CgroupSupport, platform: str) -> dict[str, str]:
    """This platform's session cgroups on this node: session id → cgroup name (blocking)."""
    if not cgroups.available or cgroups.memory_parent is None:
        return {}
    suffix = f"-{platform}"
    return {entry[:-len(suffix)]: entry for entry in sorted(os.listdir(cgroups.memory_parent))
            if entry.startswith("sbx_") and entry.endswith(suffix)}


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
