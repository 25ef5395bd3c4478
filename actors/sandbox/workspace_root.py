"""The workspace root: the directory holding every session's workspace on a node, and whether the
session UIDs can reach it.

A command runs as its session's unprivileged UID, and bubblewrap resolves the workspace by *path*
as that UID (``--bind-fd N`` becomes ``realpath("/proc/self/fd/N")`` and a bind mount of the
result), so every directory from ``/`` down to the root must be searchable by "others": the session
UIDs are in no group (``setpriv --clear-groups``, GID = UID), so the "other" execute bit is the one
that counts. A data directory under ``/root`` (0700) or under pytest's 0700 temporary folders fails
that, with ``bwrap: Can't find source path /proc/self/fd/N: Permission denied`` on every command.

Binding before the UID switch (bwrap as root, then dropping privileges inside) is not an option:
the setuid-free chain ``setpriv → prlimit → bwrap`` is what keeps bwrap and everything it starts
unprivileged. So the workspaces live where the session UIDs can traverse:

* the root itself is the platform's: created root-owned and mode 0711 (others traverse it, nobody
  but root lists it); each workspace in it is 0700 and owned by its session UID, so a session can
  neither list the others nor enter one whose name it guesses;
* ``INCIDENTFOX_SANDBOX_ROOT`` sets it; unset, it is ``<home>/sandboxes`` when that is reachable,
  else ``/var/lib/incidentfox/sandboxes/<digest of the data dir>`` (one per data dir, so two
  platforms on a node never collect each other's workspaces);
* an ancestor that others may write (without the sticky bit) is refused too: a session UID could
  rename it and swap the path under the root-owned code that creates and chowns workspaces.

:func:`root_problem` prepares the root and says, naming the directory and the fix, why the session
UIDs cannot reach it (``sandbox_isolation_status`` turns that into ``unavailable``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

FALLBACK_BASE = Path("/var/lib/incidentfox/sandboxes")  # where a default root goes when <home> is private
ROOT_MODE = 0o711
PARENT_MODE = 0o755


def blocking_ancestor(path: Path) -> str | None:
    """Why a session UID could not safely reach ``path``, judged from the mode bits of every existing
    directory from ``/`` down to ``path`` (missing ones will be created traversable), or None.
    ``path`` itself is not judged: :func:`prepare_root` makes it 0711."""
    path = Path(os.path.realpath(path))   # bubblewrap walks the resolved path, so judge that one
    for directory in reversed(path.parents):   # "/" first
        try:
            st = os.stat(directory)
        except FileNotFoundError:
            return None   # the rest is created by prepare_root, traversable
        except OSError as exc:
            return f"{directory} cannot be inspected: {exc.strerror}"
        if not stat.S_ISDIR(st.st_mode):
            return f"{directory} is not a directory"
        mode = stat.S_IMODE(st.st_mode)
        if not mode & stat.S_IXOTH:
            return (f"{directory} is mode {mode:04o}: other users (the session UIDs) cannot traverse it "
                    f"(`chmod o+x {directory}`)")
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            return (f"{directory} is mode {mode:04o}: other users (the session UIDs) may rename what is in it "
                    f"(`chmod o-w {directory}`)")
    return None


def default_root(home: Path, *, as_root: bool | None = None) -> Path:
    """``<home>/sandboxes`` unless the session UIDs could not reach it (only matters when the platform
    runs as root and switches UIDs); then a folder of :data:`FALLBACK_BASE` named after ``home``."""
    preferred = Path(os.path.realpath(Path(home) / "sandboxes"))
    as_root = os.geteuid() == 0 if as_root is None else as_root
    if not as_root or blocking_ancestor(preferred) is None:
        return preferred
    digest = hashlib.sha256(os.path.realpath(home).encode()).hexdigest()[:16]
    return FALLBACK_BASE / digest


def workspace_root(settings: Any) -> Path:
    """The workspace root these settings give: ``sandbox_root`` as set, else :func:`default_root`."""
    if settings.sandbox_root is not None:
        return Path(os.path.realpath(settings.sandbox_root))
    return default_root(settings.home)


def prepare_root(root: Path) -> None:
    """Create ``root`` (0711) and its missing parents (0755), whatever the umask, and make an existing
    ``root`` 0711. Existing parents are left alone: they are not the platform's to change."""
    root = Path(root)
    missing = [p for p in (root, *root.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PARENT_MODE)
        except FileExistsError:
            continue   # another host on this node made it meanwhile
        os.chmod(directory, PARENT_MODE)
    if root.is_symlink() or not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    os.chmod(root, ROOT_MODE)


def root_problem(root: Path) -> str | None:
    """Prepare ``root`` and say why the session UIDs cannot reach a workspace in it, or None. The
    reason names the directory at fault and the two fixes."""
    fix = ("set INCIDENTFOX_SANDBOX_ROOT to a directory whose parents every user may traverse "
           f"(e.g. {FALLBACK_BASE})")
    try:
        prepare_root(root)
    except OSError as exc:
        return f"the sandbox workspace root {root} cannot be prepared: {exc}; {fix}"
    blocked = blocking_ancestor(root)
    if blocked is None:
        return None
    return f"the sandbox workspace root {root} is not reachable by the session UIDs: {blocked}; or {fix}"
