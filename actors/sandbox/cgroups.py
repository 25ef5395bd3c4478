"""One cgroup per sandbox session: total memory and process count of everything the session runs,
and a kill that reaches every process of it at once.

Two layouts are supported, detected from ``/proc/self/mounts`` and ``/proc/self/cgroup``:

* **v2** (a unified hierarchy with the ``memory`` and ``pids`` controllers): the session's cgroup is
  ``<own cgroup>/incidentfox-sandbox/<session>`` with ``memory.max``, ``memory.swap.max = 0`` and
  ``pids.max``; killing writes ``cgroup.kill``. The controllers must be enabled in our own cgroup's
  ``subtree_control``, which the kernel refuses while our cgroup holds processes and is not the
  root (the "no internal processes" rule): then the status says so, and the operator delegates a
  cgroup (systemd ``Delegate=yes``) or relies on the other limits.
* **v1** (hybrid hosts: ``memory`` and ``pids`` as separate v1 hierarchies): one directory in each
  (``memory.limit_in_bytes`` and, with swap accounting, ``memory.memsw.limit_in_bytes``;
  ``pids.max``) under our own cgroup of that hierarchy, so the session stays inside whatever limits
  the platform itself runs under. If the unified hierarchy is mounted too (systemd's hybrid mode,
  ``/sys/fs/cgroup/unified``), a third directory there gives ``cgroup.kill``; otherwise the kill is a
  sweep over ``cgroup.procs`` (bounded by ``pids.max``, so it converges).

A command joins the session's cgroups before anything else runs: its argv starts with a root
``sh`` that writes its own pid into each ``cgroup.procs`` and then ``exec``s the rest (setpriv →
prlimit → bwrap → bash), so every descendant is born inside. Needs root; without it, or without the
controllers, :func:`cgroup_support` says why and the sandbox falls back to per-process rlimits.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import psutil

from actors.sandbox.reaping import kill_until_gone

log = logging.getLogger("incidentfox.sandbox.cgroups")
PARENT = "incidentfox-sandbox"
_KILL_PASSES = 200


class CgroupMode(StrEnum):
    V2 = "v2"
    V1 = "v1"
    NONE = "none"


@dataclass(frozen=True)
class CgroupSupport:
    """Where session cgroups are made on this node (the parents exist), or why they cannot be."""

    mode: CgroupMode
    reason: str
    memory_parent: Path | None = None   # v2: the one parent; v1: in the memory hierarchy
    pids_parent: Path | None = None     # v1 only
    kill_parent: Path | None = None     # a v2 parent whose children have cgroup.kill (v2, or hybrid)

    @property
    def available(self) -> bool:
        return self.mode is not CgroupMode.NONE

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode.value, "available": self.available, "reason": self.reason}


# -- detection (pure parsing + a probe that creates the parents) --------------------------------


def parse_mounts(text: str) -> tuple[Path | None, dict[str, Path]]:
    """(the cgroup2 mount point, {v1 controller: its mount point}) from ``/proc/self/mounts``."""
    unified: Path | None = None
    v1: dict[str, Path] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point, fstype, opts = fields[1].replace("\\040", " "), fields[2], fields[3].split(",")
        if fstype == "cgroup2" and unified is None:
            unified = Path(point)
        elif fstype == "cgroup":
            for opt in opts:
                if opt in ("memory", "pids"):
                    v1[opt] = Path(point)
    return unified, v1


def parse_self_cgroup(text: str) -> tuple[str, dict[str, str]]:
    """(our v2 path, {v1 controller: our path}) from ``/proc/self/cgroup``."""
    v2 = "/"
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path or "/"
        for c in controllers.split(","):
            if c in ("memory", "pids"):
                v1[c] = path or "/"
    return v2, v1


def _under(mount: Path, own: str) -> Path:
    return mount / own.lstrip("/") / PARENT


def _controllers(path: Path) -> set[str]:
    try:
        return set((path / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def detect(*, mounts: str, self_cgroup: str, is_root: bool) -> CgroupSupport:
    """Choose the layout and create the parent cgroups (idempotent); never raises."""
    if not is_root:
        return CgroupSupport(CgroupMode.NONE, "session cgroups need root: the platform does not run as root")
    unified, v1_mounts = parse_mounts(mounts)
    own_v2, own_v1 = parse_self_cgroup(self_cgroup)
    try:
        if unified is not None and {"memory", "pids"} <= _controllers(unified / own_v2.lstrip("/")):
            return _setup_v2(unified, own_v2)
        if "memory" in v1_mounts and "pids" in v1_mounts:
            memory = _under(v1_mounts["memory"], own_v1.get("memory", "/"))
            pids = _under(v1_mounts["pids"], own_v1.get("pids", "/"))
            memory.mkdir(exist_ok=True)
            pids.mkdir(exist_ok=True)
            kill = None
            if unified is not None:
                candidate = _under(unified, own_v2)
                try:
                    candidate.mkdir(exist_ok=True)
                    probe = candidate / "ifx-probe"
                    probe.mkdir(exist_ok=True)
                    if (probe / "cgroup.kill").exists():
                        kill = candidate
                    probe.rmdir()
                except OSError:
                    kill = None
            how = "cgroup.kill" if kill else "a sweep of cgroup.procs"
            return CgroupSupport(CgroupMode.V1, f"cgroup v1 memory and pids controllers (kill by {how})",
                                 memory_parent=memory, pids_parent=pids, kill_parent=kill)
    except OSError as exc:
        return CgroupSupport(CgroupMode.NONE, f"cannot create session cgroups: {exc.strerror or exc}")
    if unified is not None:
        return CgroupSupport(CgroupMode.NONE, "cgroup v2 without the memory and pids controllers in our cgroup "
                                              f"({own_v2}); delegate them (systemd Delegate=yes)")
    return CgroupSupport(CgroupMode.NONE, "no cgroup memory and pids controllers are mounted")


def _setup_v2(unified: Path, own: str) -> CgroupSupport:
    own_dir = unified / own.lstrip("/")
    parent = own_dir / PARENT
    try:
        enabled = set((own_dir / "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= enabled:
            (own_dir / "cgroup.subtree_control").write_text("+memory +pids")
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError as exc:
        why = ("our cgroup holds processes, so the kernel will not enable controllers below it"
               if exc.errno == errno.EBUSY else exc.strerror or str(exc))
        return CgroupSupport(CgroupMode.NONE, f"cgroup v2: cannot enable memory and pids below {own}: {why}; "
                                              "delegate a cgroup to the platform (systemd Delegate=yes)")
    return CgroupSupport(CgroupMode.V2, "cgroup v2 memory and pids controllers",
                         memory_parent=parent, kill_parent=parent)


@lru_cache(maxsize=1)
def cgroup_support() -> CgroupSupport:
    """This node's support, probed once per process (a few mkdirs)."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError as exc:
        return CgroupSupport(CgroupMode.NONE, f"cannot read the cgroup layout: {exc}")
    return detect(mounts=mounts, self_cgroup=own, is_root=os.geteuid() == 0)


# -- one session --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CgroupCounters:
    """Events counted since the cgroup was made: OOM kills and refused forks."""

    oom_kills: int = 0
    pids_max_hits: int = 0


@dataclass(frozen=True)
class SessionCgroup:
    name: str
    mode: CgroupMode
    memory_dir: Path
    pids_dir: Path | None = None
    kill_dir: Path | None = None

    @property
    def dirs(self) -> list[Path]:
        return [d for d in (self.memory_dir, self.pids_dir, self.kill_dir) if d is not None]

    @classmethod
    def named(cls, support: CgroupSupport, name: str) -> SessionCgroup | None:
        """The handle of session ``name``'s cgroups (whether or not they exist), without making them."""
        if not support.available or support.memory_parent is None or not name or "/" in name:
            return None
        return cls(name=name, mode=support.mode, memory_dir=support.memory_parent / name,
                   pids_dir=support.pids_parent / name if support.pids_parent else None,
                   kill_dir=(support.kill_parent / name
                             if support.kill_parent and support.kill_parent != support.memory_parent else None))

    @classmethod
    def create(cls, support: CgroupSupport, name: str, *, memory_bytes: int, pids: int) -> SessionCgroup:
        """Make (or adopt) the session's cgroups and write their limits."""
        if not support.available or support.memory_parent is None:
            raise OSError(errno.ENOTSUP, f"session cgroups unavailable: {support.reason}")
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bad cgroup name {name!r}")
        cg = cls.named(support, name)
        assert cg is not None
        for d in cg.dirs:
            d.mkdir(exist_ok=True)
        if cg.mode is CgroupMode.V2:
            _write(cg.memory_dir / "memory.max", str(memory_bytes))
            _write(cg.memory_dir / "memory.swap.max", "0", optional=True)
            _write(cg.memory_dir / "pids.max", str(pids))
        else:
            _write(cg.memory_dir / "memory.limit_in_bytes", str(memory_bytes))
            _write(cg.memory_dir / "memory.memsw.limit_in_bytes", str(memory_bytes), optional=True)
            assert cg.pids_dir is not None
            _write(cg.pids_dir / "pids.max", str(pids))
        return cg

    def enter_argv(self) -> list[str]:
        """The argv prefix that moves the command into this cgroup before it execs the rest."""
        script = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["/bin/sh", "-c", script + ' && exec "$@"', "sandbox-cgroup"]

    def pids(self) -> list[int]:
        """Live (non-zombie) processes in the session's cgroups."""
        found: set[int] = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return sorted(p for p in found if not _zombie(p))

    def memory_usage(self) -> int:
        name = "memory.current" if self.mode is CgroupMode.V2 else "memory.usage_in_bytes"
        return _read_int(self.memory_dir / name)

    def counters(self) -> CgroupCounters:
        mem = self.memory_dir / ("memory.events" if self.mode is CgroupMode.V2 else "memory.oom_control")
        pids = (self.memory_dir if self.mode is CgroupMode.V2 else self.pids_dir) / "pids.events"  # type: ignore[operator]
        return CgroupCounters(oom_kills=_keyed(mem, "oom_kill"), pids_max_hits=_keyed(pids, "max"))

    def kill(self, *, exclude: frozenset[int] = frozenset()) -> int:
        """SIGKILL every process in the session's cgroups (all at once with ``cgroup.kill`` when no
        pid is spared); returns how many were signalled by the sweep. Blocking; call in a thread."""
        v2_kill = (self.kill_dir or (self.memory_dir if self.mode is CgroupMode.V2 else None))
        if v2_kill is not None and not exclude:
            try:
                _write(v2_kill / "cgroup.kill", "1")
            except OSError:
                pass
        return kill_until_gone(self.pids, exclude=exclude, passes=_KILL_PASSES)

    def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait (blocking, bounded) until no process, zombies included, is left in the cgroup: the
        killed ones are reaped by whoever inherited them, and until then they count in pids.max."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not any(_raw_procs(d) for d in self.dirs):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)   # in a worker thread; the kernel offers no cheaper wait in v1

    def remove(self) -> bool:
        """Kill what is left and remove the directories; False if one is still busy (a zombie not
        yet reaped by its parent): it is adopted again by the same name, or removed next time."""
        self.kill()
        self.settle()
        ok = True
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                ok = False
                log.warning("could not remove cgroup %s: %s", d, exc.strerror)
        return ok


def _raw_procs(d: Path) -> bool:
    try:
        return bool((d / "cgroup.procs").read_text().strip())
    except OSError:
        return False


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True   # gone


def _write(path: Path, value: str, *, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        if not optional:
            raise
    except OSError as exc:
        if not optional or exc.errno not in (errno.EINVAL, errno.EACCES, errno.EPERM):
            raise


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
    except (OSError, ValueError):
        pass
    return 0
