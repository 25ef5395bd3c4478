"""Bash escape attempts, each refused or contained: host files, env secrets, other sessions, fork
bomb, a 10 GB write, an infinite loop, network; plus interrupt and the unavailable/weak modes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors.sandbox.config import SandboxLimits
from actors.sandbox.errors import IsolationUnavailable
from actors.sandbox.isolation import (
    IsolationStatus,
    forget_probes,
    run_command,
    sandbox_isolation_status,
)
from actors.sandbox.reaping import uid_processes
from actors.sandbox.tools import Toolbox
from actors.sandbox.workspace import Workspace
from tests.sandbox_helpers import needs_root, random_uid

pytestmark = needs_root
LIMITS = SandboxLimits(fsize_bytes=20 << 20, nproc=48, cpu_s=30, memory_bytes=1 << 30)


@pytest.fixture(scope="module")
def bwrap() -> IsolationStatus:
    status = sandbox_isolation_status(False)
    if status.mode != "bwrap":
        pytest.skip(f"bubblewrap unavailable here: {status.reason}")
    return status


def ws(root: Path, name: str) -> Workspace:
    return Workspace.ensure(root, name, uid=random_uid())


async def sh(w: Workspace, status: IsolationStatus, command: str, *, timeout_s: float = 20,
             limits: SandboxLimits = LIMITS):
    return await run_command(command, workspace=w, limits=limits, status=status, timeout_s=timeout_s)


async def test_runs_as_session_uid_in_workspace(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "s1")
    res = await sh(w, bwrap, "id -u; pwd; echo data > f.txt; ls -ln f.txt; ls /; ls /proc | grep -c '^[0-9]'")
    lines = res.output.splitlines()
    assert res.exit_code == 0, res.output
    assert lines[0] == str(w.uid) and lines[1] == "/workspace"
    assert (w.path / "f.txt").read_text() == "data\n" and (w.path / "f.txt").stat().st_uid == w.uid
    assert "workspace" in lines and "home" not in lines and "root" not in lines and "work" not in lines
    assert int(lines[-1]) <= 3  # a fresh /proc: only this command's processes


async def test_host_files_and_platform_repo_are_invisible(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "s1")
    repo = Path(__file__).resolve().parents[2]
    res = await sh(w, bwrap, f"cat /etc/shadow; cat ../../etc/hostname; ls {repo}; ls {root}; "
                             f"ls {repo}/.incidentfox; cat /etc/passwd; touch /usr/x /etc/x /x; echo done")
    assert "No such file or directory" in res.output
    assert "README.md" not in res.output and "s1" not in res.output.split("/etc/passwd")[0]
    assert "sandbox:x:" in res.output and "Read-only file system" in res.output
    assert not Path("/usr/x").exists() and not Path("/etc/x").exists()


async def test_platform_env_secrets_are_invisible(bwrap: IsolationStatus, root: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENTFOX_FAKE_SECRET", "sk-test-do-not-leak-4242")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-do-not-leak-4242")
    w = ws(root, "s1")
    res = await sh(w, bwrap, "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
                             "cat /proc/1/cmdline | tr '\\0' ' '")
    assert "do-not-leak" not in res.output
    assert "HOME=/workspace" in res.output and "PATH=" in res.output
    env_lines = {line.split("=", 1)[0] for line in res.output.splitlines() if "=" in line}
    assert env_lines <= {"PATH", "HOME", "LANG", "TMPDIR", "PWD", "SHLVL", "_"}, env_lines


async def test_one_session_cannot_read_another(bwrap: IsolationStatus, root: Path) -> None:
    a, b = ws(root, "sbx_a"), ws(root, "sbx_b")
    (a.path / "secret.txt").write_text("alpha-secret")
    res = await sh(b, bwrap, f"cat {a.path}/secret.txt; cat ../sbx_a/secret.txt; ls /workspace/..; "
                             "ls -a /workspace")
    assert "alpha-secret" not in res.output
    box = Toolbox(b, LIMITS, bwrap)
    out = await box.execute("Read", {"file_path": "../sbx_a/secret.txt"})
    assert out.is_error and "alpha-secret" not in out.content


async def test_no_network(bwrap: IsolationStatus, root: Path) -> None:
    res = await sh(ws(root, "s1"), bwrap, "cat < /dev/tcp/127.0.0.1/5432 && echo connected; ls /sys/class/net")
    assert "connected" not in res.output


async def test_fork_bomb_is_contained(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "bomb")
    res = await sh(w, bwrap, "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", timeout_s=15)
    assert "Resource temporarily unavailable" in res.output or "retry" in res.output, res.output[:500]
    assert uid_processes(w.uid) == []
    again = await sh(w, bwrap, "echo still-works")  # the session and the host are fine afterwards
    assert again.output.strip() == "still-works"


async def test_ten_gigabyte_write_is_capped(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "big")
    res = await sh(w, bwrap, "head -c 10G /dev/zero > big.bin; echo rc=$?")
    assert "File size limit exceeded" in res.output and "rc=153" in res.output
    assert (w.path / "big.bin").stat().st_size <= LIMITS.fsize_bytes
    res = await sh(w, bwrap, "head -c 10G /dev/zero > /tmp/big.bin; echo rc=$?")
    assert "rc=0" not in res.output  # /tmp is a small tmpfs, also under the file size limit


async def test_infinite_loop_hits_wall_timeout(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "loop")
    res = await sh(w, bwrap, "while :; do :; done", timeout_s=1.5)
    assert res.timed_out and res.killed == "timeout" and res.duration_s < 5
    assert "timed out" in res.for_model()
    assert uid_processes(w.uid) == []


async def test_infinite_loop_hits_cpu_limit(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "cpu")
    res = await sh(w, bwrap, "bash -c 'while :; do :; done'; echo rc=$?", timeout_s=30,
                   limits=LIMITS.model_copy(update={"cpu_s": 1}))
    assert "rc=152" in res.output or "rc=137" in res.output  # SIGXCPU at the soft, SIGKILL at the hard limit
    assert not res.timed_out and res.duration_s < 20


async def test_output_is_capped_and_flood_is_killed(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "out")
    limits = LIMITS.model_copy(update={"output_cap_chars": 1000, "output_hard_bytes": 1 << 20})
    res = await sh(w, bwrap, "head -c 100000 /dev/zero | tr '\\0' x", limits=limits)
    assert res.truncated and len(res.output) == 1000 and res.killed is None
    res = await sh(w, bwrap, "yes", limits=limits)
    assert res.killed == "output_limit" and uid_processes(w.uid) == []


async def test_background_processes_do_not_outlive_the_command(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "bg")
    res = await sh(w, bwrap, "(sleep 60 &) ; setsid sleep 60 & echo started")
    assert res.output.strip() == "started"
    assert uid_processes(w.uid) == []


async def test_cancel_kills_the_process_group(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "intr")
    task = asyncio.create_task(sh(w, bwrap, "sleep 300 & sleep 300; echo never", timeout_s=600))
    while len(uid_processes(w.uid)) < 3:  # bwrap + bash + sleeps are up
        await asyncio.sleep(0.02)
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert uid_processes(w.uid) == []


async def test_unavailable_isolation_refuses_bash(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        status = sandbox_isolation_status(False, probe_uid=199_990)
        weak = sandbox_isolation_status(True, probe_uid=199_990)
    finally:
        forget_probes()
    assert status.mode == "unavailable" and "not installed" in status.reason
    assert weak.mode == "rlimit_only" and "opted in" in weak.reason
    w = ws(root, "s1")
    with pytest.raises(IsolationUnavailable):
        await sh(w, status, "echo hi")
    out = await Toolbox(w, LIMITS, status).execute("Bash", {"command": "echo hi"})
    assert out.is_error and "Bash is disabled on this node: bubblewrap is not installed" in out.content


async def test_rlimit_only_mode_still_separates_sessions(root: Path) -> None:
    weak = IsolationStatus("rlimit_only", "test")
    a, b = ws(root, "sbx_a"), ws(root, "sbx_b")
    (a.path / "secret.txt").write_text("alpha-secret")
    res = await sh(b, weak, f"id -u; cat {a.path}/secret.txt; echo x > {root}/escape")
    assert res.output.splitlines()[0] == str(b.uid)
    assert "alpha-secret" not in res.output and "Permission denied" in res.output
    assert not (root / "escape").exists()
    bomb = await sh(b, weak, "bomb() { bomb | bomb & }; bomb; sleep 1", timeout_s=10)
    assert bomb.exit_code is not None or bomb.killed
    assert uid_processes(b.uid) == []


async def test_symlink_made_inside_the_sandbox_cannot_be_read_through(bwrap: IsolationStatus, root: Path) -> None:
    w = ws(root, "links")
    res = await sh(w, bwrap, "ln -s /etc/passwd passwd && ln -s ../../.. up && ln -s / rootdir && echo made")
    assert res.output.strip() == "made"
    box = Toolbox(w, LIMITS, bwrap)
    for path in ("passwd", "up/etc/passwd", "rootdir/etc/shadow", "/workspace/rootdir/etc/passwd"):
        out = await box.execute("Read", {"file_path": path})
        assert out.is_error and out.content.startswith("Refused:") and "root:x" not in out.content, (path, out)
    out = await box.execute("Write", {"file_path": "rootdir/tmp/pwned", "content": "x"})
    assert out.is_error and not Path("/tmp/pwned").exists()


def test_an_unavailable_probe_is_tried_again_after_a_while_and_an_available_one_is_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A transient failure (a spawn timing out on a saturated node) must not disable sandbox Bash, or
    report it disabled, until the process restarts."""
    import actors.sandbox.isolation as iso

    answers = [IsolationStatus("unavailable", "bubblewrap could not start: timed out"),
               IsolationStatus("bwrap", "bubblewrap with per-session UIDs", "/usr/bin/bwrap")]
    calls: list[int] = []
    clock = [1000.0]

    def probe(allow: bool, uid: int, root: Path | None) -> IsolationStatus:
        calls.append(uid)
        return answers[min(len(calls) - 1, 1)]

    monkeypatch.setattr(iso, "_bwrap_status", probe)
    monkeypatch.setattr(iso.time, "monotonic", lambda: clock[0])
    forget_probes()
    try:
        assert not sandbox_isolation_status(False, probe_uid=199_980).available
        clock[0] += iso.UNAVAILABLE_RETRY_S - 1
        assert not sandbox_isolation_status(False, probe_uid=199_980).available and len(calls) == 1
        clock[0] += 2
        assert sandbox_isolation_status(False, probe_uid=199_980).mode == "bwrap" and len(calls) == 2
        clock[0] += 10 * iso.UNAVAILABLE_RETRY_S
        assert sandbox_isolation_status(False, probe_uid=199_980).available and len(calls) == 2
    finally:
        forget_probes()


async def test_the_bwrap_backend_asks_again_while_unavailable_and_keeps_an_available_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import actors.sandbox.backends.bwrap as backend_module
    from actors.sandbox.backends.bwrap import BwrapBackend
    from actors.sandbox.config import SandboxRuntime

    answers = iter([IsolationStatus("unavailable", "bubblewrap could not start: timed out"),
                    IsolationStatus("bwrap", "ok", "/usr/bin/bwrap"),
                    IsolationStatus("unavailable", "never asked")])
    monkeypatch.setattr(backend_module, "sandbox_isolation_status", lambda *a, **kw: next(answers))
    backend = BwrapBackend(SandboxRuntime(root=tmp_path, db_url="sqlite://", uid_base=390_000, uid_count=100))
    assert not (await backend.status()).available
    assert (await backend.status()).available
    assert (await backend.status()).available       # kept: the third answer is never asked for


async def test_a_host_asks_again_while_unavailable_and_sweeps_once_it_is_available(
        tmp_path: Path, sqlite_url: str) -> None:
    from actors.sandbox.config import SandboxRuntime
    from actors.sandbox.host import SandboxHostCore

    class Scripted:
        def __init__(self) -> None:
            self.answers = [IsolationStatus("unavailable", "bubblewrap could not start: timed out"),
                            IsolationStatus("unavailable", "still"),
                            IsolationStatus("bwrap", "ok", "/usr/bin/bwrap")]
            self.asked = 0

        async def status(self) -> IsolationStatus:
            self.asked += 1
            return self.answers[min(self.asked - 1, 2)]

    host = SandboxHostCore(SandboxRuntime(root=tmp_path, db_url=sqlite_url, uid_base=391_000, uid_count=100),
                           name="h")
    host.backend = Scripted()  # type: ignore[assignment]
    swept: list[str] = []

    async def sweep(status: IsolationStatus) -> None:
        swept.append(status.mode)

    host._sweep_cgroups = sweep  # type: ignore[method-assign]
    assert not (await host.isolation()).available and swept == ["unavailable"]      # the first status
    assert not (await host.isolation()).available and swept == ["unavailable"]      # asked again, no sweep
    assert (await host.isolation()).mode == "bwrap" and swept == ["unavailable", "bwrap"]
    assert (await host.isolation()).available and host.backend.asked == 3           # kept


def test_one_failed_probe_start_is_tried_again_and_a_confirmed_failure_is_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import actors.sandbox.isolation as iso

    outcomes: list[str | None] = []
    monkeypatch.setattr(iso, "_probe_bwrap", lambda bwrap, uid, root=None: outcomes.pop(0))
    monkeypatch.setattr(iso.shutil, "which", lambda name: "/usr/bin/bwrap")
    forget_probes()
    try:
        outcomes[:] = ["bubblewrap could not start: timed out", None]
        assert sandbox_isolation_status(False, probe_uid=199_970).mode == "bwrap" and outcomes == []
        assert "unavailable" not in caplog.text
        outcomes[:] = ["bubblewrap failed (exit 1): no permissions", "bubblewrap failed (exit 1): no permissions"]
        status = sandbox_isolation_status(False, probe_uid=199_971)
        assert status.mode == "unavailable" and outcomes == []
        assert "sandbox Bash is unavailable on this node" in caplog.text and "no permissions" in caplog.text
    finally:
        forget_probes()
