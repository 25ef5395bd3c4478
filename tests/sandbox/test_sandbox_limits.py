"""Whole-session limits, each tried by exceeding it: a fork bomb and a memory hog against the
session's cgroup, writes past the workspace quota, a command outliving the session's wall time,
session creation in a loop against the team's cap (429). After each, another session still works.

The cgroup tests run real commands in a real cgroup (rlimit-only mode: no bubblewrap needed) and
skip with the reason where this node has no writable cgroups."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.sandbox.cgroups import CgroupMode, SessionCgroup, cgroup_support, detect
from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxLimits, SandboxRuntime
from actors.sandbox.errors import SessionExpired, SessionLimitReached
from actors.sandbox.isolation import IsolationStatus, run_command
from actors.sandbox.limits import SessionGuard, make_guard, workspace_usage
from actors.sandbox.tools import Toolbox
from actors.sandbox.workspace import Workspace
from incidentfox.contracts import Principal
from incidentfox.settings import Settings
from serve_apps.sandbox.api import create_sandbox_app
from tests.sandbox_helpers import needs_root, random_uid

MiB = 1 << 20
LIMITS = SandboxLimits(session_memory_bytes=64 * MiB, session_pids=24, workspace_quota_bytes=8 * MiB,
                       quota_poll_s=0.02, memory_bytes=1 << 30, nproc=200, cpu_s=30)
CGROUPS = cgroup_support()
needs_cgroups = pytest.mark.skipif(not CGROUPS.available, reason=f"no session cgroups here: {CGROUPS.reason}")


def status() -> IsolationStatus:
    return IsolationStatus("rlimit_only", "test: commands without namespaces", cgroups=CGROUPS)


@pytest.fixture
def sessions(root: Path) -> AsyncIterator[list[tuple[Workspace, SessionGuard]]]:
    made: list[tuple[Workspace, SessionGuard]] = []

    def make(name: str, *, remaining_s: float | None = None) -> tuple[Workspace, SessionGuard]:
        ws = Workspace.ensure(root, name, uid=random_uid())
        guard = make_guard(workspace=ws.path, cgroup_name=f"test-{name}-{os.getpid()}",
                           quota_bytes=LIMITS.workspace_quota_bytes, memory_bytes=LIMITS.session_memory_bytes,
                           pids=LIMITS.session_pids, remaining_s=remaining_s, poll_s=LIMITS.quota_poll_s,
                           cgroups=CGROUPS)
        made.append((ws, guard))
        return ws, guard

    yield make  # type: ignore[misc]
    for _, guard in made:
        guard.close()


async def sh(ws: Workspace, guard: SessionGuard, command: str, timeout_s: float = 30):
    return await run_command(command, workspace=ws, limits=LIMITS, status=status(), timeout_s=timeout_s,
                             guard=guard)


async def other_session_still_works(make: Any) -> None:
    ws, guard = make("bystander")
    res = await sh(ws, guard, "echo alive; id -u")
    assert res.exit_code == 0 and res.output.split()[0] == "alive", res.output


# -- memory and processes (the session's cgroup) ---------------------------------------------------


@needs_root
@needs_cgroups
async def test_fork_bomb_is_contained_by_the_session_cgroup(sessions: Any) -> None:
    ws, guard = sessions("bomb")
    # The classic bomb, then a loop that must hit the limit whatever the bomb reached before it.
    spawn = "import os, time\nfor i in range(60):\n    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)"
    res = await sh(ws, guard, f":(){{ :|:& }};: ; python3 -c '{spawn}'; echo survived", timeout_s=30)
    assert "session's limit of 24 processes was reached" in res.for_model()
    assert guard.cgroup is not None and guard.cgroup.pids() == []     # nothing outlived the command
    again = await sh(ws, guard, "echo fine")
    assert again.exit_code == 0 and again.output == "fine\n"          # the session itself recovers
    await other_session_still_works(sessions)


@needs_root
@needs_cgroups
async def test_memory_hog_is_killed_at_the_session_memory_limit(sessions: Any) -> None:
    ws, guard = sessions("hog")
    # Four processes of 30 MiB each: every one is under the per-process limit, together they are not.
    res = await sh(ws, guard, "for i in 1 2 3 4; do python3 -c 'import time; b=bytearray(30<<20); "
                              "b[::4096]=b\"x\"*len(b[::4096]); time.sleep(5)' & done; wait; echo done")
    assert "session's memory limit (64 MiB in total) was reached" in res.for_model(), res.for_model()
    assert guard.cgroup is not None and guard.cgroup.memory_usage() < LIMITS.session_memory_bytes
    await other_session_still_works(sessions)


@needs_root
@needs_cgroups
async def test_session_cgroup_is_removed_with_the_session(sessions: Any) -> None:
    _ws, guard = sessions("gone")
    assert guard.cgroup is not None and all(d.is_dir() for d in guard.cgroup.dirs)
    guard.close()
    assert not any(d.exists() for d in guard.cgroup.dirs)


# -- disk ----------------------------------------------------------------------------------------------


async def test_command_writing_past_the_quota_is_killed(sessions: Any) -> None:
    ws, guard = sessions("disk")
    res = await sh(ws, guard, "i=0; while true; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); done")
    assert res.killed == "disk_quota" and "over its disk quota" in res.for_model()
    # Deleting is allowed while over quota; adding is not.
    assert (await sh(ws, guard, "rm -f f*; echo cleaned")).output == "cleaned\n"
    assert workspace_usage(ws.path) < LIMITS.workspace_quota_bytes
    one = await sh(ws, guard, "head -c 20000000 /dev/zero > big; ls -l big | awk '{print $5}'")
    assert int(one.output.split()[-1]) <= LIMITS.workspace_quota_bytes   # RLIMIT_FSIZE = the quota
    await other_session_still_works(sessions)


async def test_write_and_edit_past_the_quota_are_refused(sessions: Any) -> None:
    ws, guard = sessions("tools")
    tb = Toolbox(ws, LIMITS, status(), guard=guard)
    ok = await tb.execute("Write", {"file_path": "a.txt", "content": "x" * (4 * MiB) + "END"})
    assert not ok.is_error
    res = await tb.execute("Write", {"file_path": "b.txt", "content": "y" * (5 * MiB)})
    assert res.is_error and "disk quota would be exceeded" in res.content and not (ws.path / "b.txt").exists()
    res = await tb.execute("Edit", {"file_path": "a.txt", "old_string": "END", "new_string": "z" * (5 * MiB)})
    assert res.is_error and "disk quota" in res.content
    # Replacing a file counts only the difference.
    assert not (await tb.execute("Write", {"file_path": "a.txt", "content": "x" * (5 * MiB)})).is_error


# -- wall time ---------------------------------------------------------------------------------------


async def test_command_is_killed_at_the_session_wall_time(sessions: Any) -> None:
    ws, guard = sessions("wall", remaining_s=0.5)
    res = await sh(ws, guard, "sleep 60", timeout_s=60)
    assert res.killed == "session_wall_time" and "maximum lifetime" in res.for_model()
    tb = Toolbox(ws, LIMITS, status(), guard=guard)
    refused = await tb.execute("Bash", {"command": "echo hi"})
    assert refused.is_error and "maximum lifetime" in refused.content
    await other_session_still_works(sessions)


def _runtime(db: str, root: Path, **limits: Any) -> SandboxRuntime:
    return SandboxRuntime(root=root, db_url=db, uid_base=340_000, uid_count=10_000, sweep_interval_s=3600,
                          limits=SandboxLimits(**limits))


@needs_root
async def test_session_ends_at_its_wall_time_however_active(sqlite_url: str, root: Path) -> None:
    b = LocalSandboxBackend(_runtime(sqlite_url, root, session_wall_s=600))
    await b.start()
    try:
        created = await b.create_session(org_id="acme", team_id="sre", sandbox={"ttl_s": 3600})
        sid = created["session_id"]
        row = await b.manager.store.get_session(session_id=sid)
        assert (row.expires_at - row.created_at) == timedelta(seconds=600)   # min(TTL, wall)
        await b.manager.store.touch(session_id=sid)                           # activity never extends it
        row = await b.manager.store.get_session(session_id=sid)
        assert (row.expires_at - row.created_at) <= timedelta(seconds=600)
        assert await b.manager.sweep(now=row.created_at + timedelta(seconds=601)) == [sid]
        with pytest.raises(SessionExpired):
            await b.send_message(sid, text="hi", llm={"provider": "anthropic", "model": "m"}).__anext__()
    finally:
        await b.manager.stop()


@needs_root
async def test_loaded_session_past_wall_time_refuses_messages(sqlite_url: str, root: Path) -> None:
    b = LocalSandboxBackend(_runtime(sqlite_url, root, session_wall_s=0.001))
    await b.start()
    try:
        sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
        with pytest.raises(SessionExpired) as err:
            await b.send_message(sid, text="hi", llm={"provider": "anthropic", "model": "m"}).__anext__()
        assert err.value.details["limit"] == "session_wall_s"
    finally:
        await b.manager.stop()


# -- sessions per team ---------------------------------------------------------------------------------


@needs_root
async def test_team_open_session_cap_in_a_loop(sqlite_url: str, root: Path) -> None:
    b = LocalSandboxBackend(_runtime(sqlite_url, root))
    await b.start()
    try:
        cap = {"max_open_sessions": 3}
        made = []
        for i in range(5):
            try:
                made.append((await b.create_session(org_id="acme", team_id="sre", sandbox=cap))["session_id"])
            except SessionLimitReached as exc:
                assert i >= 3 and exc.status == 429
                assert exc.details == {"limit": "sandbox.max_open_sessions", "max": 3, "open": 3}
        assert len(made) == 3
        other = await b.create_session(org_id="acme", team_id="payments", sandbox=cap)   # other teams unaffected
        assert other["session_id"]
        await b.delete_session(made[0])
        assert (await b.create_session(org_id="acme", team_id="sre", sandbox=cap))["session_id"]
    finally:
        await b.manager.stop()


@needs_root
async def test_api_answers_429_naming_the_limit(sqlite_url: str, root: Path) -> None:
    b = LocalSandboxBackend(_runtime(sqlite_url, root))
    await b.start()
    principal = Principal(auth_kind="team", org_id="acme", team_node_id="sre", subject="token:t")

    async def authenticate(token: str | None) -> Principal:
        return principal

    async def team_config(p: Principal) -> dict[str, Any]:
        return {"llm": {"provider": "anthropic", "model": "m"}, "sandbox": {"max_open_sessions": 2}}

    app = create_sandbox_app(backend=b, settings=Settings(database_url=sqlite_url), store=b.manager.store,
                             authenticate=authenticate, team_config=team_config,
                             scheduling_for=lambda cfg, org, team: {})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            codes = [(await c.post("/sessions", json={}, headers={"Authorization": "Bearer t"})) for _ in range(3)]
        assert [r.status_code for r in codes] == [201, 201, 429]
        err = codes[-1].json()["error"]
        assert err["code"] == "sandbox_session_limit" and err["details"]["limit"] == "sandbox.max_open_sessions"
        assert "max_open_sessions = 2" in err["message"]
    finally:
        await b.manager.stop()


# -- detection -------------------------------------------------------------------------------------------


def test_cgroup_detection_reports_why_not() -> None:
    assert "need root" in detect(mounts="", self_cgroup="0::/", is_root=False).reason
    none = detect(mounts="proc /proc proc rw 0 0\n", self_cgroup="0::/", is_root=True)
    assert none.mode is CgroupMode.NONE and "no cgroup memory and pids" in none.reason
    assert IsolationStatus("rlimit_only", "x", cgroups=none).to_dict()["session_limits"] == {
        "mode": "none", "available": False, "reason": none.reason}


def test_cgroup_v2_layout_writes_the_limits(tmp_path: Path) -> None:
    """The v2 path against a directory laid out like cgroupfs (the kernel's own checks aside)."""
    own = tmp_path / "system.slice" / "ifx.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    support = detect(mounts=f"cgroup2 {tmp_path} cgroup2 rw 0 0\n", self_cgroup="0::/system.slice/ifx.service\n",
                     is_root=True)
    assert support.mode is CgroupMode.V2, support.reason
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    parent = own / "incidentfox-sandbox"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    cg = SessionCgroup.create(support, "sbx_1", memory_bytes=64 * MiB, pids=24)
    assert (parent / "sbx_1" / "memory.max").read_text() == str(64 * MiB)
    assert (parent / "sbx_1" / "pids.max").read_text() == "24"
    assert cg.enter_argv()[:2] == ["/bin/sh", "-c"] and str(parent / "sbx_1" / "cgroup.procs") in cg.enter_argv()[2]


@needs_cgroups
async def test_a_hosts_sweep_removes_its_platforms_ended_sessions_and_never_another_platforms(
        sqlite_url: str, root: Path) -> None:
    """Every platform on a node shares the cgroups' parent: a host started by one (a test, a demo)
    must not sweep the idle cgroup of another's live session, which its next command is joining."""
    import secrets

    from actors.sandbox.host import SandboxHostCore
    from actors.sandbox.limits import cgroup_name

    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=392_000, uid_count=100)
    theirs = SandboxRuntime(root=root, db_url=sqlite_url + "?another-platform", uid_base=392_000,
                            uid_count=100).platform_tag
    assert theirs != runtime.platform_tag
    host = SandboxHostCore(runtime, name="h")
    ids = {k: f"sbx_{secrets.token_hex(6)}" for k in ("live", "ended", "theirs")}
    for key in ("live", "ended"):
        await host.store.create_session(session_id=ids[key], org_id="acme", team_id="sre", workspace=str(root),
                                        ttl_s=600, uid_base=392_000, uid_count=100)
    await host.store.end_session(session_id=ids["ended"], status="expired", reason="ttl")
    names = {"live": cgroup_name(ids["live"], runtime.platform_tag),
             "ended": cgroup_name(ids["ended"], runtime.platform_tag),
             "theirs": cgroup_name(ids["theirs"], theirs)}
    made = {k: SessionCgroup.create(CGROUPS, n, memory_bytes=64 * MiB, pids=24) for k, n in names.items()}
    try:
        await host._sweep_cgroups(IsolationStatus("bwrap", "test", "/usr/bin/bwrap", cgroups=CGROUPS))
        assert {k: cg.memory_dir.exists() for k, cg in made.items()} == {"live": True, "ended": False,
                                                                          "theirs": True}
    finally:
        for cg in made.values():
            cg.remove()
        await host.store.close()
