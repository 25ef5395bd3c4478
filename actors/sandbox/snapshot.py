"""Workspace snapshots: a session's workspace as a tar in the object store, so it survives its node.

* **Save** (:meth:`Snapshots.save`, at the end of every turn and on interrupt): the workspace is
  walked from directory fds, never following a symlink (``O_NOFOLLOW`` on every open, ``scandir``
  on fds), and written as a gzip tar: directories, regular files (content, permission bits, mtime)
  and symlinks (their target text, never what they point to). FIFOs, sockets and devices are
  skipped; a hard-linked file is stored as a plain copy. Owners are not stored (a restore gives
  everything to the session's UID). Unchanged since the last save (same paths, types, modes, sizes,
  mtimes, link targets): nothing is uploaded.
* **Restore** (:meth:`Snapshots.restore`, when a host loads a session): the archive is checked
  member by member while it is extracted into a fresh private staging directory, which then
  replaces the workspace in one rename. Refused (:class:`SnapshotRejected`, nothing replaced): an
  absolute name, a ``..`` component, a member under a symlink, a hard link, a device or FIFO, a
  duplicate, more than ``max_bytes`` of content. Setuid/setgid bits are dropped.
* **Delete** (:meth:`Snapshots.delete`): with the session, at TTL or ``DELETE``.

The object key is ``sandbox/workspaces/<session_id>.tar.gz``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from actors.sandbox.errors import SandboxError
from incidentfox.object_store import ObjectNotFound, ObjectStore

KEY_PREFIX = "sandbox/workspaces/"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MODE_BITS = 0o1777   # permission bits and sticky; setuid/setgid are never restored


class SnapshotRejected(SandboxError):
    status, code = 422, "snapshot_rejected"


@dataclass(frozen=True)
class SnapshotResult:
    key: str
    uploaded: bool          # False: unchanged since the last save, or nothing stored to restore
    bytes: int
    entries: int
    duration_s: float


def snapshot_key(session_id: str) -> str:
    return f"{KEY_PREFIX}{session_id}.tar.gz"


# -- walking without following symlinks ------------------------------------------------------------


def _walk(dir_fd: int, rel: str) -> Any:
    """Yield ``(rel_path, lstat, parent_fd, name)`` for everything under ``dir_fd``, pre-order, sorted.
    Directories are entered through fds opened with ``O_NOFOLLOW``, so a symlink is never entered."""
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        path = f"{rel}/{entry.name}" if rel else entry.name
        yield path, st, dir_fd, entry.name
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                yield from _walk(sub, path)
            finally:
                os.close(sub)


def fingerprint(root: Path) -> str:
    """A digest of the tree's shape (paths, types, modes, sizes, mtimes, link targets)."""
    h = hashlib.sha256()
    fd = os.open(root, _DIR_FLAGS)
    try:
        for path, st, parent, name in _walk(fd, ""):
            link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else ""
            h.update(f"{path}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode(errors="surrogateescape"))
    finally:
        os.close(fd)
    return h.hexdigest()


def pack(root: Path, out: IO[bytes]) -> int:
    """Write ``root``'s tree as a gzip tar to ``out``; returns the number of entries."""
    count = 0
    fd = os.open(root, _DIR_FLAGS)
    try:
        with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as tar:
            for path, st, parent, name in _walk(fd, ""):
                info = tarfile.TarInfo(path)
                info.mode, info.mtime = stat.S_IMODE(st.st_mode) & _MODE_BITS, st.st_mtime
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
                    with os.fdopen(ffd, "rb") as fh:
                        now = os.fstat(fh.fileno())
                        if not stat.S_ISREG(now.st_mode):
                            continue  # swapped since the listing
                        info.size = now.st_size
                        tar.addfile(info, fh)
                else:
                    continue  # FIFO, socket, device: not workspace content
                count += 1
    finally:
        os.close(fd)
    return count


# -- extracting safely -----------------------------------------------------------------------------


def _member_parts(member: tarfile.TarInfo) -> list[str]:
    name = member.name
    if name.startswith("/") or "\x00" in name:
        raise SnapshotRejected(f"snapshot member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SnapshotRejected(f"snapshot member {name!r} leaves the workspace through '..'")
    return parts


def _open_parent(root_fd: int, parts: list[str], name: str) -> int:
    """An fd of the member's parent directory, walked without following symlinks."""
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        try:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            raise SnapshotRejected(f"snapshot member {name!r} is under a symlink or a file "
                                   f"({exc.strerror})") from None
        os.close(fd)
        fd = nxt
    return fd


def unpack(src: IO[bytes], dest: Path, *, uid: int, gid: int, max_bytes: int, skip_special: bool = False) -> int:
    """Extract a snapshot into the existing, empty, private directory ``dest`` (see the module
    docstring for what is refused). With ``skip_special`` (a pull from a session pod), FIFOs, devices
    and hard-link members are skipped rather than refused. Returns the number of entries."""
    chown = os.geteuid() == 0
    root_fd = os.open(dest, _DIR_FLAGS)
    dirs: list[tuple[list[str], int, float]] = []
    total = count = 0
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=src, mode="r|gz") as tar:
            for member in tar:
                parts = _member_parts(member)
                if not parts:
                    continue  # the root itself
                if skip_special and not (member.isdir() or member.isreg() or member.issym()):
                    continue
                key = "/".join(parts)
                if key in seen:
                    raise SnapshotRejected(f"snapshot member {member.name!r} appears twice")
                seen.add(key)
                total += max(member.size, 0)
                if total > max_bytes:
                    raise SnapshotRejected(f"snapshot holds more than {max_bytes} bytes")
                mode = member.mode & _MODE_BITS
                parent = _open_parent(root_fd, parts, member.name)
                try:
                    if member.isdir():
                        os.mkdir(parts[-1], 0o700, dir_fd=parent)
                        dirs.append((parts, mode, member.mtime))
                    elif member.isreg():
                        data = tar.extractfile(member)
                        assert data is not None
                        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o600, dir_fd=parent)
                        with os.fdopen(fd, "wb") as out:
                            shutil.copyfileobj(data, out, 1 << 20)
                            os.fchmod(out.fileno(), mode)
                            if chown:
                                os.fchown(out.fileno(), uid, gid)
                            out.flush()
                            os.utime(out.fileno(), (member.mtime, member.mtime))
                    elif member.issym():
                        os.symlink(member.linkname, parts[-1], dir_fd=parent)
                        if chown:
                            os.chown(parts[-1], uid, gid, dir_fd=parent, follow_symlinks=False)
                        os.utime(parts[-1], (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
                    else:
                        raise SnapshotRejected(f"snapshot member {member.name!r} is not a file, directory "
                                               "or symlink")
                except FileExistsError:
                    raise SnapshotRejected(f"snapshot member {member.name!r} appears twice") from None
                finally:
                    os.close(parent)
                count += 1
        # Directory modes and times last: adding children changed their mtimes, and a read-only
        # directory must stay writable until its content is in.
        for parts, mode, mtime in reversed(dirs):
            parent = _open_parent(root_fd, parts, "/".join(parts))
            try:
                if chown:
                    os.chown(parts[-1], uid, gid, dir_fd=parent, follow_symlinks=False)
                _chmod_dir(parent, parts[-1], mode)
                os.utime(parts[-1], (mtime, mtime), dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)
    except (tarfile.TarError, EOFError) as exc:
        raise SnapshotRejected(f"snapshot is not a readable tar: {exc}") from None
    finally:
        os.close(root_fd)
    return count


def _chmod_dir(parent: int, name: str, mode: int) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


# -- the store side --------------------------------------------------------------------------------


class Snapshots:
    """Save / restore / delete workspace snapshots of sessions in ``store``. Temporary files go to
    ``scratch`` (the sandbox root: same filesystem as the workspaces, so a restore is one rename)."""

    def __init__(self, store: ObjectStore, *, scratch: Path, max_bytes: int) -> None:
        self.store, self.scratch, self.max_bytes = store, Path(scratch), max_bytes
        self._last: dict[str, str] = {}   # session id -> fingerprint of the last saved (or restored) tree

    def forget(self, session_id: str) -> None:
        self._last.pop(session_id, None)

    async def save(self, session_id: str, workspace: Path) -> SnapshotResult:
        started = time.perf_counter()
        key = snapshot_key(session_id)
        fp = await asyncio.to_thread(fingerprint, workspace)
        if self._last.get(session_id) == fp:
            return SnapshotResult(key, False, 0, 0, time.perf_counter() - started)
        fd, tmp = tempfile.mkstemp(prefix=f".snap-{session_id}-", suffix=".tar.gz", dir=self.scratch)
        try:
            with os.fdopen(fd, "wb") as out:
                entries = await asyncio.to_thread(pack, workspace, out)
            size = os.path.getsize(tmp)
            await self.store.put_file(key, Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._last[session_id] = fp
        return SnapshotResult(key, True, size, entries, time.perf_counter() - started)

    async def restore(self, session_id: str, workspace: Path, *, uid: int, gid: int) -> SnapshotResult:
        """Replace ``workspace`` with the stored snapshot; without one, leave it as it is."""
        started = time.perf_counter()
        key = snapshot_key(session_id)
        fd, tmp = tempfile.mkstemp(prefix=f".snap-{session_id}-", suffix=".tar.gz", dir=self.scratch)
        os.close(fd)
        staging = Path(tempfile.mkdtemp(prefix=f".restore-{session_id}-", dir=self.scratch))
        try:
            try:
                await self.store.get_file(key, Path(tmp))
            except ObjectNotFound:
                return SnapshotResult(key, False, 0, 0, time.perf_counter() - started)
            size = os.path.getsize(tmp)

            def extract() -> int:
                with open(tmp, "rb") as fh:
                    n = unpack(fh, staging, uid=uid, gid=gid, max_bytes=self.max_bytes)
                if os.geteuid() == 0:
                    os.chown(staging, uid, gid)
                os.chmod(staging, 0o700)
                _replace_dir(staging, Path(workspace))
                return n

            entries = await asyncio.to_thread(extract)
            self._last[session_id] = await asyncio.to_thread(fingerprint, workspace)
            return SnapshotResult(key, True, size, entries, time.perf_counter() - started)
        finally:
            Path(tmp).unlink(missing_ok=True)
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def delete(self, session_id: str) -> None:
        self.forget(session_id)
        await self.store.delete(snapshot_key(session_id))


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``: the old tree is moved aside in one rename, then removed."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".old-{target.name}-{os.urandom(4).hex()}")
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        if old.is_symlink() or not old.is_dir():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)
