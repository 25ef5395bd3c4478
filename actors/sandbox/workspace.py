"""Path confinement for one session's workspace directory.

The model sees its workspace as ``/workspace`` (that is where Bash's bubblewrap mounts it). Every
path a file tool receives goes through :meth:`Workspace.resolve`: relative paths are taken from the
workspace, absolute ones must lie under ``/workspace``; the result is ``realpath``-ed and must still
be inside the workspace (``os.path.commonpath``), so ``..`` and symlinks that point out are refused
with a :class:`PathEscape` that says which it was.

Checking a path and then opening it is racy (a command could swap a directory for a symlink in
between), so :meth:`Workspace.open` re-walks the resolved path one component at a time from a
directory fd with ``O_NOFOLLOW``: if any component became a symlink, the open fails instead of
following it. Files and directories the tools create are chowned to the session's UID so the
session's Bash can change them.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from actors.sandbox.errors import PathEscape
from actors.sandbox.workspace_root import prepare_root

VIRTUAL_ROOT = "/workspace"


class Workspace:
    """One session's directory on this node, owned by ``uid``:``gid`` with mode 0700."""

    def __init__(self, path: Path | str, *, uid: int, gid: int) -> None:
        self.path = Path(os.path.realpath(path))
        self.uid = uid
        self.gid = gid

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def ensure(cls, root: Path, session_id: str, *, uid: int, gid: int | None = None) -> Workspace:
        """Create (or adopt) ``root/<session_id>``, mode 0700, owned by the session UID. ``root`` is
        prepared by :func:`~actors.sandbox.workspace_root.prepare_root` (mode 0711: others may
        traverse it, as bubblewrap running as the session UID must, but not list it)."""
        gid = uid if gid is None else gid
        if not session_id or "/" in session_id or session_id in (".", ".."):
            raise ValueError(f"bad session id {session_id!r}")
        root = Path(root)
        prepare_root(root)
        path = root / session_id
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise ValueError(f"workspace path for {session_id} is not a directory") from None
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, 0o700)
        return cls(path, uid=uid, gid=gid)

    def remove(self) -> None:
        """Delete the workspace directory and everything in it (never follows symlinks out)."""
        shutil.rmtree(self.path, ignore_errors=True)

    # -- resolution --------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """Map a model-supplied path to a real path inside the workspace, or raise PathEscape."""
        if not isinstance(path, str) or not path.strip():
            raise PathEscape("a path is required")
        if "\x00" in path:
            raise PathEscape("path contains a NUL byte")
        root = str(self.path)
        if os.path.isabs(path):
            norm = os.path.normpath(path)
            if norm == VIRTUAL_ROOT or norm.startswith(VIRTUAL_ROOT + "/"):
                rel = os.path.relpath(norm, VIRTUAL_ROOT)
            elif norm == root or norm.startswith(root + "/"):
                rel = os.path.relpath(norm, root)
            else:
                raise PathEscape(f"{path} is outside the workspace; paths must be under {VIRTUAL_ROOT}",
                                 details={"path": path, "reason": "absolute_outside"})
        else:
            rel = path
        joined = os.path.join(root, rel)
        if not _inside(os.path.normpath(joined), root):
            raise PathEscape(f"{path} leaves the workspace through '..'",
                             details={"path": path, "reason": "dotdot"})
        real = os.path.realpath(joined)
        if not _inside(real, root):
            raise PathEscape(f"{path} goes through a symlink that points outside the workspace",
                             details={"path": path, "reason": "symlink"})
        return Path(real)

    def virtual(self, real: Path | str) -> str:
        """The path the model knows for a real path inside the workspace."""
        rel = os.path.relpath(real, self.path)
        return VIRTUAL_ROOT if rel == "." else f"{VIRTUAL_ROOT}/{rel}"

    def relative(self, real: Path | str) -> str:
        return os.path.relpath(real, self.path)

    # -- race-free access ------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644, *, create_parents: bool = False) -> int:
        """Open ``path`` (resolved as above) without following any symlink on the way. Returns an
        fd the caller closes. Newly created files/directories are chowned to the session UID."""
        real = self.resolve(path)
        parts = [p for p in self.relative(real).split(os.sep) if p not in ("", ".")]
        dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if not parts:  # the workspace itself
                return os.dup(dir_fd) if flags & os.O_DIRECTORY else _raise_is_dir(path)
            for part in parts[:-1]:
                nxt = self._step(dir_fd, part, path, create=create_parents)
                os.close(dir_fd)
                dir_fd = nxt
            creating = bool(flags & os.O_CREAT)
            existed = creating and _exists_at(parts[-1], dir_fd)
            try:
                fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PathEscape(f"{path} is a symlink; open its target instead",
                                     details={"path": path, "reason": "symlink"}) from None
                raise
            if creating and not existed:
                self._chown_fd(fd)
            return fd
        finally:
            os.close(dir_fd)

    def _step(self, dir_fd: int, part: str, path: str, *, create: bool) -> int:
        """Open the directory ``part`` under ``dir_fd`` without following a symlink."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(part, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PathEscape(f"a component of {path} changed into a symlink or file",
                                 details={"path": path, "reason": "symlink"}) from None
            raise
        os.mkdir(part, 0o755, dir_fd=dir_fd)
        nxt = os.open(part, flags, dir_fd=dir_fd)
        self._chown_fd(nxt)
        return nxt

    def _chown_fd(self, fd: int) -> None:
        if os.geteuid() == 0:
            os.fchown(fd, self.uid, self.gid)

    def walk_files(self, start: Path) -> Iterator[Path]:
        """Regular files under ``start`` (a resolved path), never descending through symlinks and
        skipping symlinked files whose target is outside the workspace."""
        root = str(self.path)
        if start.is_file():
            yield start
            return
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    target = os.path.realpath(full)
                    if not _inside(target, root) or not os.path.isfile(target):
                        continue
                yield Path(full)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _exists_at(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _raise_is_dir(path: str) -> int:
    raise IsADirectoryError(errno.EISDIR, f"{path} is a directory", path)


def check_regular(fd: int, path: str) -> os.stat_result:
    """The stat of an open fd that must be a regular, singly-linked file. A hard link (nlink > 1)
    could alias a file outside the workspace, and the file tools run with the platform's rights."""
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory", path)
    if not stat.S_ISREG(st.st_mode):
        raise PathEscape(f"{path} is not a regular file", details={"path": path, "reason": "not_regular"})
    if st.st_nlink > 1:
        raise PathEscape(f"{path} has other hard links; file tools refuse hard-linked files",
                         details={"path": path, "reason": "hardlink"})
    return st
