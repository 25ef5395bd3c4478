"""The workspace root must be reachable by the session UIDs: a data directory under a private (0700)
folder, as pytest's temporary folders and anything under /root are, used to make every Bash command
fail with ``bwrap: Can't find source path /proc/self/fd/N: Permission denied``. Now the default root
moves where the session UIDs can traverse, and an explicit root they cannot reach makes the
isolation ``unavailable`` (health and Bash say which directory and the fix)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.sandbox import workspace_root
from actors.sandbox.backends.bwrap import BwrapBackend
from actors.sandbox.config import SandboxLimits, SandboxRuntime
from actors.sandbox.errors import IsolationUnavailable
from actors.sandbox.isolation import IsolationStatus, run_command, sandbox_isolation_status
from actors.sandbox.tools import Toolbox
from actors.sandbox.workspace import Workspace
from actors.sandbox.workspace_root import blocking_ancestor, default_root, prepare_root
from incidentfox.settings import Settings
from tests.sandbox_helpers import make_root, needs_bwrap, needs_root, random_uid, remove_root

LIMITS = SandboxLimits(fsize_bytes=20 << 20, nproc=48, cpu_s=30, memory_bytes=1 << 30)


@pytest.fixture
def private() -> Iterator[Path]:
    """A folder only its owner may traverse, like /root, in an otherwise traversable path (pytest's
    own tmp_path is under 0700 folders too, which would be named first)."""
    base = make_root()
    p = base / "private"
    p.mkdir()
    os.chmod(p, 0o700)
    yield p
    remove_root(base)


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fallback base (``/var/lib/incidentfox/sandboxes`` in production) under /tmp for the test."""
    base = make_root()
    monkeypatch.setattr(workspace_root, "FALLBACK_BASE", base / "sandboxes")
    yield base / "sandboxes"
    remove_root(base)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- pure checks (any user) ------------------------------------------------------------------------


def test_a_private_ancestor_is_named_with_its_fix(private: Path) -> None:
    reason = blocking_ancestor(private / "data" / "sandboxes")
    assert reason == (f"{private} is mode 0700: other users (the session UIDs) cannot traverse it "
                      f"(`chmod o+x {private}`)")
    os.chmod(private, 0o711)
    assert blocking_ancestor(private / "data" / "sandboxes") is None


def test_an_ancestor_others_may_write_is_refused_unless_sticky() -> None:
    shared = make_root()
    try:
        os.chmod(shared, 0o777)
        assert "may rename what is in it" in (blocking_ancestor(shared / "ws") or "")
        os.chmod(shared, 0o1777)   # like /tmp: others cannot rename what they do not own
        assert blocking_ancestor(shared / "ws") is None
    finally:
        remove_root(shared)


def test_the_default_root_moves_only_when_home_is_private(private: Path, fallback: Path) -> None:
    home = private / "data"
    assert default_root(home, as_root=False) == home / "sandboxes"   # no UID switch: nothing to reach
    moved = default_root(home, as_root=True)
    assert moved.parent == fallback and len(moved.name) == 16
    assert default_root(private / "data", as_root=True) == moved           # stable across restarts
    assert default_root(private / "other", as_root=True) != moved         # one root per data dir
    os.chmod(private, 0o755)
    assert default_root(home, as_root=True) == home / "sandboxes"


def test_prepare_root_makes_parents_traversable_whatever_the_umask(fallback: Path) -> None:
    old = os.umask(0o077)
    try:
        prepare_root(fallback / "abc")
    finally:
        os.umask(old)
    assert mode(fallback) == 0o755 and mode(fallback / "abc") == 0o711


# -- the real chain: setpriv -> prlimit -> bwrap as the session UID --------------------------------


@needs_bwrap
async def test_bash_works_when_the_data_dir_is_under_a_private_folder(private: Path, fallback: Path,
                                                                       sqlite_url: str) -> None:
    home = private / "data"
    # The failure: a workspace under <home>/sandboxes, which the session UID cannot traverse to.
    plain = sandbox_isolation_status(False)
    assert plain.mode == "bwrap", plain.reason
    old = Workspace.ensure(home / "sandboxes", "old", uid=random_uid())
    res = await run_command("echo unreachable", workspace=old, limits=LIMITS, status=plain, timeout_s=20)
    assert res.exit_code != 0 and "Permission denied" in res.output and "unreachable" not in res.output

    # The fix: the platform's default root for this data dir is one the session UIDs can traverse.
    runtime = SandboxRuntime.from_settings(Settings(home=home, database_url=sqlite_url))
    assert runtime.root.parent == fallback
    status = await BwrapBackend(runtime).status()
    assert status.mode == "bwrap" and status.root == runtime.root, status.reason
    w = Workspace.ensure(runtime.root, "s1", uid=random_uid())
    res = await run_command("id -u; pwd; echo hello from the sandbox > f.txt; cat f.txt",
                            workspace=w, limits=LIMITS, status=status, timeout_s=20)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [str(w.uid), "/workspace", "hello from the sandbox"]
    out = await Toolbox(w, LIMITS, status).execute("Bash", {"command": "cat /workspace/f.txt"})
    assert not out.is_error and out.content == "hello from the sandbox"
    # Isolation is unchanged: the root lists nothing to others, each workspace is its UID's alone.
    root_st, ws_st = os.stat(runtime.root), os.stat(w.path)
    assert (root_st.st_uid, mode(runtime.root)) == (0, 0o711)
    assert (ws_st.st_uid, mode(w.path)) == (w.uid, 0o700)


# -- an explicit root the session UIDs cannot reach ------------------------------------------------


@needs_root
async def test_an_unreachable_root_is_unavailable_and_bash_says_why(private: Path, tmp_path: Path,
                                                                    sqlite_url: str) -> None:
    from actors.sandbox.backends import isolation_status

    root = private / "workspaces"
    settings = Settings(home=tmp_path, database_url=sqlite_url, sandbox_root=root)
    status = isolation_status(settings)    # what /api/v1/sandbox/health reports
    assert status.mode == "unavailable" and not status.available
    assert status.reason == (
        f"the sandbox workspace root {root} is not reachable by the session UIDs: {private} is mode 0700: "
        f"other users (the session UIDs) cannot traverse it (`chmod o+x {private}`); or set "
        "INCIDENTFOX_SANDBOX_ROOT to a directory whose parents every user may traverse "
        "(e.g. /var/lib/incidentfox/sandboxes)")
    assert status.to_dict()["workspace_root"] == str(root)
    # Not even the opted-in weaker mode: it switches to the session UID just the same.
    assert sandbox_isolation_status(True, root=root).mode == "unavailable"

    host_status = await BwrapBackend(SandboxRuntime.from_settings(settings)).status()
    assert host_status.reason == status.reason
    w = Workspace.ensure(root, "s1", uid=random_uid())
    with pytest.raises(IsolationUnavailable, match="not reachable by the session UIDs"):
        await run_command("echo hi", workspace=w, limits=LIMITS, status=host_status, timeout_s=20)
    out = await Toolbox(w, LIMITS, host_status).execute("Bash", {"command": "echo hi"})
    assert out.is_error and out.content.startswith(f"Bash is disabled on this node: the sandbox workspace root {root}")


@needs_root
def test_a_root_that_cannot_be_prepared_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    status: IsolationStatus = sandbox_isolation_status(False, root=blocker / "sandboxes")
    assert status.mode == "unavailable"
    assert status.reason.startswith(f"the sandbox workspace root {blocker / 'sandboxes'} cannot be prepared: ")
    assert "INCIDENTFOX_SANDBOX_ROOT" in status.reason


def test_a_symlinked_root_is_judged_by_where_it_leads(private: Path) -> None:
    link = private.parent / "link"
    link.symlink_to(private / "inner")
    (private / "inner").mkdir()
    assert f"{private} is mode 0700" in (blocking_ancestor(link / "ws") or "")
