"""Tools that cannot hang a host: a catastrophic Grep pattern ends with a clear tool error while
other coroutines keep working, and file tools refuse FIFOs, sockets and devices without blocking."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from actors.sandbox.config import SandboxLimits
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.tools import Toolbox
from actors.sandbox.workspace import Workspace

CATASTROPHIC = r"(a+)+$"          # exponential backtracking on "aaaa…b"


def toolbox(tmp_path: Path, **limits: float) -> Toolbox:
    ws = Workspace.ensure(tmp_path / "root", "s1", uid=os.getuid())
    return Toolbox(ws, SandboxLimits(**limits), IsolationStatus("unavailable", "not needed here"))


async def test_catastrophic_pattern_ends_with_a_tool_error_while_the_loop_keeps_going(tmp_path: Path) -> None:
    tb = toolbox(tmp_path, search_time_limit_s=1.0)
    (tb.workspace.path / "big.log").write_text("a" * 50_000 + "b\n")
    ticks = 0
    enough = asyncio.Event()

    async def other_session() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks == 200:
                enough.set()
            await asyncio.sleep(0)

    other = asyncio.create_task(other_session())
    grep = asyncio.create_task(tb.execute("Grep", {"pattern": CATASTROPHIC, "output_mode": "content"}))
    # With `re` the search holds the interpreter lock until it ends (never, here), so the other
    # coroutine could not run at all; with `regex` it keeps going while the search is cut off.
    await enough.wait()
    assert not grep.done()
    out = await grep
    other.cancel()
    assert out.is_error and "stopped: matching took longer than 1s" in out.content
    assert "nested quantifiers" in out.content
    for mode in ("files_with_matches", "count"):
        res = await tb.execute("Grep", {"pattern": CATASTROPHIC, "output_mode": mode})
        assert res.is_error and "Grep stopped" in res.content
    ok = await tb.execute("Grep", {"pattern": "a+b", "output_mode": "count"})
    assert not ok.is_error and ok.content == "/workspace/big.log:1"


async def test_catastrophic_glob_is_cut_off(tmp_path: Path) -> None:
    tb = toolbox(tmp_path, search_time_limit_s=0.5)
    (tb.workspace.path / ("a" * 120)).write_text("x")
    res = await tb.execute("Glob", {"pattern": "{a,aa}" * 60 + "b"})   # (a|aa)(a|aa)…b: exponential
    assert res.is_error and "Glob stopped" in res.content
    assert (await tb.execute("Glob", {"pattern": "a*"})).content == "/workspace/" + "a" * 120


@pytest.fixture
def specials(tmp_path: Path) -> Toolbox:
    tb = toolbox(tmp_path)
    root = tb.workspace.path
    os.mkfifo(root / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    os.symlink("/dev/zero", root / "zero")
    os.symlink("pipe", root / "to-pipe")          # inside the workspace, to the FIFO
    return tb


@pytest.mark.parametrize("target", ["pipe", "sock", "to-pipe"])
@pytest.mark.parametrize("tool,args", [
    ("Read", {}), ("Write", {"content": "x"}), ("Edit", {"old_string": "a", "new_string": "b"})])
async def test_file_tools_refuse_fifos_and_sockets_without_blocking(specials: Toolbox, tool: str,
                                                                   args: dict, target: str) -> None:
    # Each call runs in a pool thread: if it blocked on the FIFO, this await would never return.
    res = await specials.execute(tool, {"file_path": target, **args})
    assert res.is_error
    assert ("FIFO" in res.content or "socket" in res.content or "not a regular file" in res.content
            or "symlink" in res.content), res.content


@pytest.mark.parametrize("tool,args", [
    ("Read", {}), ("Write", {"content": "x"}), ("Edit", {"old_string": "a", "new_string": "b"})])
async def test_symlinks_to_devices_are_refused(specials: Toolbox, tool: str, args: dict) -> None:
    res = await specials.execute(tool, {"file_path": "zero", **args})
    assert res.is_error and "points outside the workspace" in res.content
    res = await specials.execute(tool, {"file_path": "/dev/zero", **args})
    assert res.is_error and "outside the workspace" in res.content


async def test_grep_skips_or_refuses_special_files(specials: Toolbox) -> None:
    (specials.workspace.path / "real.txt").write_text("needle\n")
    res = await specials.execute("Grep", {"pattern": "needle"})
    assert not res.is_error and res.content == "/workspace/real.txt"
    for target in ("pipe", "sock"):
        res = await specials.execute("Grep", {"pattern": "x", "path": target})
        assert res.is_error and ("FIFO" in res.content or "socket" in res.content)
    res = await specials.execute("Grep", {"pattern": "x", "path": "zero"})
    assert res.is_error and "outside the workspace" in res.content
    glob = await specials.execute("Glob", {"pattern": "*"})
    assert not glob.is_error and "/workspace/real.txt" in glob.content
