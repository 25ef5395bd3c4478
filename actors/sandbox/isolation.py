"""Run one shell command for a session: bubblewrap + rlimits + a per-session unprivileged UID.

The process chain is ``setpriv`` (switch to the session's UID/GID, no supplementary groups,
``no_new_privs``) → ``prlimit`` (sets RLIMIT_CPU/AS/NPROC/FSIZE/NOFILE/CORE) → ``bwrap`` → ``bash
-c``, started in a new session, so:

* every namespace is new (user, pid, ipc, uts, net, cgroup where possible; net is shared only when
  the platform and the team both allow it), user namespaces are disabled inside;
* the filesystem is a read-only tmpfs root with read-only system binds (``/usr`` and its merged-usr
  symlinks, a few ``/etc`` files, a synthetic ``passwd``/``group``), a fresh ``/proc``, a minimal
  ``/dev``, a size-capped ``/tmp``, and the workspace (bound from an fd) at ``/workspace``: the only
  writable path. Other sessions, the platform's repo, ``.incidentfox`` and host ``/proc`` are absent;
* the environment is exactly ``PATH``, ``HOME=/workspace``, ``LANG`` (and ``TMPDIR``);
* RLIMIT_NPROC counts processes per UID and root ignores it, hence the unprivileged UID per session.

A wall-clock timeout, an interrupt (task cancellation), too much output, a workspace over its disk
quota or the end of the session's wall time kill the whole process group (``killpg``), every
remaining process of the session's UID and everything in the session's cgroup, so nothing outlives
the command. With a :class:`~actors.sandbox.limits.SessionGuard`, the command runs inside the
session's cgroup (total memory and processes of the session, :mod:`actors.sandbox.cgroups`). When bubblewrap cannot work here, :func:`sandbox_isolation_status` says why and Bash is
refused, unless the operator opted into the weaker rlimit-only mode (same UID switch and rlimits,
no namespaces: the command can read world-readable host files).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from actors.sandbox.cgroups import CgroupMode, CgroupSupport, SessionCgroup, cgroup_support
from actors.sandbox.config import SandboxLimits
from actors.sandbox.errors import IsolationUnavailable
from actors.sandbox.limits import SessionGuard
from actors.sandbox.reaping import exited, kill_all, reap
from actors.sandbox.workspace import VIRTUAL_ROOT, Workspace
from actors.sandbox.workspace_root import root_problem

Mode = Literal["bwrap", "rlimit_only", "pod", "unavailable"]  # pod: actors/sandbox/backends/pod.py
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
_ETC_FILES = ("ld.so.cache", "alternatives", "localtime", "ssl", "ca-certificates", "mime.types",
              "inputrc", "bash.bashrc", "profile", "nsswitch.conf", "host.conf")
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
log = logging.getLogger("incidentfox.sandbox.isolation")


UNPROBED = CgroupSupport(CgroupMode.NONE, "not probed")


@dataclass(frozen=True)
class IsolationStatus:
    mode: Mode
    reason: str
    bwrap: str | None = None
    # Whole-session memory/process limits (a cgroup per session), or why only rlimits apply.
    cgroups: CgroupSupport = UNPROBED
    root: Path | None = None   # the workspace root that was checked (None: not checked)

    @property
    def available(self) -> bool:
        return self.mode != "unavailable"

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "available": self.available, "reason": self.reason,
                "workspace_root": str(self.root) if self.root is not None else None,
                "session_limits": self.cgroups.to_dict()}


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool
    killed: str | None          # why: "timeout" | "output_limit" | "disk_quota" | "session_wall_time"
    duration_s: float
    notes: tuple[str, ...] = ()  # session limits the command ran into (OOM kill, refused forks, quota)

    def for_model(self) -> str:
        """What the model reads: the (capped) output and, when it matters, how the command ended."""
        parts = [self.output.rstrip("\n")] if self.output.strip() else []
        if self.truncated:
            parts.append("[output truncated]")
        if self.killed == "timeout":
            parts.append(f"[command timed out after {self.duration_s:.1f}s and was killed]")
        elif self.killed == "output_limit":
            parts.append("[command produced too much output and was killed]")
        elif self.killed == "disk_quota":
            parts.append("[command was killed: the workspace went over its disk quota; remove files]")
        elif self.killed == "session_wall_time":
            parts.append("[command was killed: the session reached its maximum lifetime]")
        elif self.exit_code not in (0, None):
            parts.append(f"[exit code {self.exit_code}]")
        parts.extend(f"[{note}]" for note in self.notes)
        return "\n".join(parts) or "(no output)"


# -- availability ------------------------------------------------------------------------------


def _bwrap_prefix(bwrap: str, *, network: bool) -> list[str]:
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--as-pid-1", "--hostname", "sandbox"]
    if network:
        argv.append("--share-net")
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in _ROOT_LINKS:
        host = f"/{name}"
        if os.path.islink(host):
            argv += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            argv += ["--ro-bind", host, host]
    for name in _ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    if network:
        argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    return argv


def _probe_bwrap(bwrap: str, uid: int, root: Path | None = None) -> str | None:
    """Start a minimal sandbox as ``uid``, binding the workspace root where a workspace would go (the
    same path resolution by the unprivileged UID as a real command); None when it works, else why."""
    argv = _bwrap_prefix(bwrap, network=False)
    if root is not None:
        argv += ["--ro-bind", str(root), VIRTUAL_ROOT]
    argv += ["--remount-ro", "/", "/usr/bin/true"]
    try:
        proc = subprocess.run(argv, user=uid, group=uid, extra_groups=[], cwd="/", env={"PATH": SAFE_PATH},
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not start: {exc}"
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[:300]
        return f"bubblewrap failed (exit {proc.returncode}): {err or 'no message'}"
    return None


# A probe that found isolation unavailable is tried again after this long: a transient failure (a
# spawn timing out on a saturated node, the workspace root being prepared by another process) must
# not disable sandbox Bash, or report it disabled, until the process restarts.
UNAVAILABLE_RETRY_S = 30.0
_probed: dict[tuple[bool, int, Path | None], tuple[IsolationStatus, float]] = {}


def _status(allow_rlimit_only: bool, probe_uid: int, root: Path | None = None) -> IsolationStatus:
    key = (allow_rlimit_only, probe_uid, root)
    cached = _probed.get(key)
    if cached is not None and (cached[0].available or time.monotonic() - cached[1] < UNAVAILABLE_RETRY_S):
        return cached[0]
    status = _bwrap_status(allow_rlimit_only, probe_uid, root)
    status = IsolationStatus(status.mode, status.reason, status.bwrap, cgroups=cgroup_support(), root=root)
    if not status.available:
        log.warning("sandbox Bash is unavailable on this node (asked again in %.0f s): %s",
                    UNAVAILABLE_RETRY_S, status.reason)
    _probed[key] = (status, time.monotonic())
    return status


def forget_probes() -> None:
    """Probe again on the next call (tests that change what the probe sees)."""
    _probed.clear()


def _bwrap_status(allow_rlimit_only: bool, probe_uid: int, root: Path | None) -> IsolationStatus:
    weak = "rlimit-only mode (opted in with INCIDENTFOX_SANDBOX_ALLOW_RLIMIT_ONLY)"
    if os.geteuid() != 0:
        reason = "per-session UIDs need root: the platform does not run as root"
        if allow_rlimit_only:
            return IsolationStatus("rlimit_only", f"{reason}; {weak}, commands run as the platform user")
        return IsolationStatus("unavailable", reason)
    # Both modes switch to the session UID, which must reach its workspace: no weaker fallback here.
    unreachable = root_problem(root) if root is not None else None
    if unreachable is not None:
        return IsolationStatus("unavailable", unreachable)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        reason = "bubblewrap is not installed (Debian package `bubblewrap`)"
    else:
        # A failed start is tried once more before it counts: one spawn can fail on a saturated node.
        failure = _probe_bwrap(bwrap, probe_uid, root) and _probe_bwrap(bwrap, probe_uid, root)
        if failure is None:
            return IsolationStatus("bwrap", "bubblewrap with per-session UIDs", bwrap)
        reason = failure
    if allow_rlimit_only:
        return IsolationStatus("rlimit_only", f"{reason}; {weak}")
    return IsolationStatus("unavailable", reason)


def sandbox_isolation_status(allow_rlimit_only: bool | None = None, *, probe_uid: int = 199_999,
                             root: Path | None = None) -> IsolationStatus:
    """How sandbox Bash would run on this node, and why (``/health`` shows it). With ``root`` (the
    workspace root), it is prepared and must be reachable by the session UIDs
    (:func:`~actors.sandbox.workspace_root.root_problem`), else the mode is ``unavailable`` with why.
    Probed once per process (an unavailable result again after :data:`UNAVAILABLE_RETRY_S`); blocking
    (a ~10 ms spawn), so async callers wrap the call in ``to_thread``."""
    if allow_rlimit_only is None:
        from incidentfox.settings import get_settings

        allow_rlimit_only = get_settings().sandbox_allow_rlimit_only
    return _status(bool(allow_rlimit_only), probe_uid, Path(root) if root is not None else None)


# -- running -----------------------------------------------------------------------------------


def _passwd_fd(text: str) -> int:
    r, w = os.pipe()
    os.write(w, text.encode())  # a few dozen bytes: far below the pipe buffer, never blocks
    os.close(w)
    return r


def build_argv(command: str, *, status: IsolationStatus, limits: SandboxLimits, uid: int, gid: int,
               switch_uid: bool, ws_fd: int | None, data_fds: tuple[int, int] | None,
               network: bool, enter: list[str] | None = None) -> list[str]:
    """The full argv for one command (pure apart from looking at which root links exist). ``enter``
    (a session cgroup's prefix) runs first, as root, so every process is born in the cgroup."""
    argv: list[str] = list(enter or ())
    fsize = min(limits.fsize_bytes, limits.workspace_quota_bytes)
    if switch_uid:
        # setpriv, not Popen(user=...): Ray's event loop (uvloop) has no user/group support.
        argv += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--"]
    argv += ["prlimit", f"--cpu={limits.cpu_s}", f"--as={limits.memory_bytes}",
            f"--nproc={limits.nproc}", f"--fsize={fsize}", f"--nofile={limits.nofile}",
            "--core=0", "--"]
    if status.mode == "bwrap":
        assert status.bwrap and ws_fd is not None and data_fds is not None
        argv += _bwrap_prefix(status.bwrap, network=network)
        argv += ["--ro-bind-data", str(data_fds[0]), "/etc/passwd",
                 "--ro-bind-data", str(data_fds[1]), "/etc/group",
                 "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                 "--bind-fd", str(ws_fd), VIRTUAL_ROOT,
                 "--remount-ro", "/", "--chdir", VIRTUAL_ROOT, "--clearenv"]
        for key, value in _env(VIRTUAL_ROOT).items():
            argv += ["--setenv", key, value]
    argv += ["/usr/bin/bash", "--noprofile", "--norc", "-c", command]
    return argv


def _env(home: str) -> dict[str, str]:
    return {"PATH": SAFE_PATH, "HOME": home, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}


async def run_command(command: str, *, workspace: Workspace, limits: SandboxLimits,
                      status: IsolationStatus, timeout_s: float, network: bool = False,
                      guard: SessionGuard | None = None) -> CommandResult:
    """Run ``command`` in ``workspace``'s sandbox and return its capped output. Cancelling the
    awaiting task kills the command's process group, every process of the session UID and of the
    session's cgroup. ``guard`` adds the whole-session limits (cgroup, disk quota, wall time)."""
    if not status.available:
        raise IsolationUnavailable(f"Bash is disabled on this node: {status.reason}")
    is_root = os.geteuid() == 0
    uid = workspace.uid if is_root else None
    started = time.monotonic()
    wall_clipped = False
    remaining = guard.remaining_s() if guard is not None else None
    if remaining is not None and remaining < timeout_s:
        timeout_s, wall_clipped = max(remaining, 0.0), True
    if guard is not None:
        await asyncio.to_thread(guard.prepare)
    cgroup = guard.cgroup if guard is not None else None
    baseline = await asyncio.to_thread(guard.usage) if guard is not None else 0
    before = await asyncio.to_thread(cgroup.counters) if cgroup is not None else None
    # Spawning is shielded: a cancel that lands while asyncio is still wiring up the pipes would
    # otherwise make asyncio wait for the (never-ending) command with no way to kill it. On cancel
    # we let the spawn finish, kill what it started, and re-raise.
    spawn = asyncio.ensure_future(_spawn(command, workspace=workspace, limits=limits, status=status,
                                         network=network, is_root=is_root,
                                         enter=cgroup.enter_argv() if cgroup is not None else None))
    try:
        proc = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        await asyncio.shield(_abort_spawn(spawn, uid, cgroup, outer_bwrap=status.mode == "bwrap"))
        raise
    res = await _supervise(proc, workspace=workspace, limits=limits, timeout_s=timeout_s,
                           started=started, kill_uid=is_root, status_mode=status.mode, guard=guard,
                           baseline=baseline)
    if res.killed == "timeout" and wall_clipped:
        res = replace(res, killed="session_wall_time")
    if cgroup is not None and before is not None:
        res = replace(res, notes=res.notes + _limit_notes(before, await asyncio.to_thread(cgroup.counters),
                                                          limits))
    return res


def _limit_notes(before: Any, after: Any, limits: SandboxLimits) -> tuple[str, ...]:
    notes = []
    if after.oom_kills > before.oom_kills:
        notes.append(f"a process was killed: the session's memory limit "
                     f"({limits.session_memory_bytes >> 20} MiB in total) was reached")
    if after.pids_max_hits > before.pids_max_hits:
        notes.append(f"process creation was refused: the session's limit of {limits.session_pids} "
                     "processes was reached")
    return tuple(notes)


async def _spawn(command: str, *, workspace: Workspace, limits: SandboxLimits, status: IsolationStatus,
                 network: bool, is_root: bool, enter: list[str] | None) -> asyncio.subprocess.Process:
    ws_fd = os.open(workspace.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    fds: tuple[int, int] | None = None
    try:
        if status.mode == "bwrap":
            fds = (_passwd_fd(f"root:x:0:0:root:/:/usr/sbin/nologin\n"
                              f"sandbox:x:{workspace.uid}:{workspace.gid}:sandbox:{VIRTUAL_ROOT}:/bin/bash\n"),
                   _passwd_fd(f"root:x:0:\nsandbox:x:{workspace.gid}:\n"))
        argv = build_argv(command, status=status, limits=limits, uid=workspace.uid, gid=workspace.gid,
                          switch_uid=is_root, ws_fd=ws_fd, data_fds=fds, network=network, enter=enter)
        return await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=str(workspace.path), env=_env(VIRTUAL_ROOT if status.mode == "bwrap" else str(workspace.path)),
            start_new_session=True, pass_fds=(ws_fd, *(fds or ())))
    finally:
        os.close(ws_fd)
        for fd in fds or ():
            os.close(fd)


async def _abort_spawn(spawn: asyncio.Future, uid: int | None, cgroup: SessionCgroup | None, *,
                       outer_bwrap: bool) -> None:
    try:
        proc = await spawn
    except Exception:  # noqa: BLE001 - the spawn failed: nothing was started, nothing to kill
        return
    await kill_all(proc, uid, cgroup, outer_bwrap=outer_bwrap)
    await reap(proc, None)


class _OutputLimit(Exception):
    pass


class _QuotaExceeded(Exception):
    pass


async def _supervise(proc: asyncio.subprocess.Process, *, workspace: Workspace, limits: SandboxLimits,
                     timeout_s: float, started: float, kill_uid: bool, status_mode: Mode,
                     guard: SessionGuard | None, baseline: int) -> CommandResult:
    buf = bytearray()
    total = 0
    cap = limits.output_cap_chars * 4  # bytes kept; trimmed to characters after decoding

    async def pump() -> None:
        nonlocal total
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            total += len(chunk)
            if len(buf) < cap:
                buf.extend(chunk[: cap - len(buf)])
            if total > limits.output_hard_bytes:
                raise _OutputLimit

    uid = workspace.uid if kill_uid else None
    cgroup = guard.cgroup if guard is not None else None
    outer = status_mode == "bwrap"
    killed: str | None = None
    reader = asyncio.ensure_future(pump())
    quota = asyncio.ensure_future(guard.watch_quota(baseline)) if guard is not None else None
    try:
        async with asyncio.timeout(timeout_s):
            # asyncio's proc.wait() also waits for the pipe to close, which background leftovers
            # (rlimit-only mode) hold open; a pidfd says when the command itself has exited.
            waiter = asyncio.ensure_future(exited(proc))
            watched = {reader, waiter} | ({quota} if quota is not None else set())
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if reader in done and reader.exception() is not None:
                waiter.cancel()
                raise reader.exception()  # type: ignore[misc]
            if quota is not None and quota in done and waiter not in done:
                waiter.cancel()
                raise _QuotaExceeded
            await waiter
            # The command is done; background leftovers holding the pipe die with the UID sweep.
            await kill_all(proc, uid, cgroup, outer_bwrap=outer)
            async with asyncio.timeout(2):
                await reader
    except TimeoutError:
        killed = "timeout"
    except _OutputLimit:
        killed = "output_limit"
    except _QuotaExceeded:
        killed = "disk_quota"
    except asyncio.CancelledError:
        reader.cancel()
        if quota is not None:
            quota.cancel()
        await asyncio.shield(kill_all(proc, uid, cgroup, outer_bwrap=outer))
        await asyncio.shield(reap(proc, reader))
        raise
    finally:
        if not reader.done():
            reader.cancel()
        if quota is not None and not quota.done():
            quota.cancel()
        if killed is not None:
            await kill_all(proc, uid, cgroup, outer_bwrap=outer)
    await reap(proc, reader)
    notes: tuple[str, ...] = ()
    if guard is not None and killed is None:
        # A write in the last poll interval: say so, so the model cleans up before writing more.
        used = await asyncio.to_thread(guard.usage)
        if used > guard.quota_bytes:
            notes = ((f"the workspace is over its disk quota ({used >> 20} MiB > {guard.quota_bytes >> 20} MiB); "
                      "commands that add data will be killed until files are removed"),)
    text = buf.decode("utf-8", errors="replace")
    truncated = total > len(buf) or len(text) > limits.output_cap_chars
    return CommandResult(exit_code=proc.returncode if killed is None else None,
                         output=text[: limits.output_cap_chars], truncated=truncated,
                         timed_out=killed == "timeout", killed=killed,
                         duration_s=time.monotonic() - started, notes=notes)
