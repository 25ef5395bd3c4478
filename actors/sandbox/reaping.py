"""The processes of one sandbox command: waiting for its exit, reaping it, and killing everything it
started (through the session UID, the session cgroup and the process group), so nothing a command
started outlives it. Used by :mod:`actors.sandbox.isolation`; the tests use :func:`uid_processes`."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:   # annotations only: cgroups itself uses kill_until_gone
    from actors.sandbox.cgroups import SessionCgroup


async def reap(proc: asyncio.subprocess.Process, reader: asyncio.Future | None) -> None:
    """Drain what is left in the pipe (a paused pipe never sees EOF) and let asyncio record the exit,
    so the transport closes. Everything that could write has been killed by now."""
    assert proc.stdout is not None
    if reader is not None:
        if not reader.done():
            reader.cancel()
        await asyncio.wait({reader})  # one reader at a time on a StreamReader
    try:
        async with asyncio.timeout(5):
            while await proc.stdout.read(65536):
                pass
            await proc.wait()
    except TimeoutError:
        pass


async def exited(proc: asyncio.subprocess.Process) -> None:
    """Return when ``proc`` has exited (whether or not its pipes are still open)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel) or already reaped
        await proc.wait()
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def kill_all(proc: asyncio.subprocess.Process, uid: int | None, cgroup: SessionCgroup | None = None,
                    *, outer_bwrap: bool) -> None:
    """Kill everything the command started and reap it.

    Under bubblewrap the sandboxed processes live in another session, out of ``killpg``'s reach, so
    they are killed through the session UID (and the session cgroup) first while the outer ``bwrap``
    (our child) is spared: it then reaps its own child and exits, leaving no orphan zombie for the
    node's init. The process group and a last sweep of the UID and the cgroup catch the rest."""
    spare = frozenset({proc.pid}) if outer_bwrap else frozenset()
    if uid is not None:
        await asyncio.to_thread(kill_uid_processes, uid, exclude=spare)
    if cgroup is not None:
        await asyncio.to_thread(cgroup.kill, exclude=spare)
    if proc.returncode is None:
        try:
            async with asyncio.timeout(1):
                await proc.wait()
        except TimeoutError:
            pass
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            pass
    if uid is not None:
        await asyncio.to_thread(kill_uid_processes, uid)
    if cgroup is not None:
        await asyncio.to_thread(cgroup.kill)
        await asyncio.to_thread(cgroup.settle)


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) pids whose real UID is ``uid``."""
    pids = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids, status = proc.info["uids"], proc.info["status"]
        if uids is not None and uids.real == uid and status not in (None, psutil.STATUS_ZOMBIE):
            pids.append(proc.pid)
    return pids


def kill_uid_processes(uid: int, *, exclude: set[int] | frozenset[int] = frozenset(), passes: int = 200) -> int:
    """SIGKILL every process of ``uid`` until none is left (a fork bomb is bounded by NPROC, so this
    converges). Returns how many processes were signalled. Never used on uid 0."""
    if uid <= 0:
        raise ValueError("refusing to sweep uid 0")
    return kill_until_gone(lambda: uid_processes(uid), exclude=exclude, passes=passes)


def kill_until_gone(list_pids: Callable[[], list[int]], *, exclude: Collection[int] = frozenset(),
                    passes: int = 200) -> int:
    """SIGKILL what ``list_pids()`` names (bar ``exclude``) until it names nothing or ``passes`` run
    out; a fork bomb is bounded by its process limit, so this converges. Returns how many were signalled."""
    signalled = 0
    for _ in range(passes):
        pids = [p for p in list_pids() if p not in exclude]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                signalled += 1
            except ProcessLookupError:
                pass
    return signalled
