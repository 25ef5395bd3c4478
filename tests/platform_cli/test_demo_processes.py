"""The demo finds the platform's leftover processes by their INCIDENTFOX_HOME (psutil: Linux and macOS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from actors.sandbox.host import rss_bytes
from actors.sandbox.reaping import uid_processes
from cli.demo.flow import leftover_processes


def test_leftover_processes_are_those_started_with_this_home(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    code = "import sys; sys.stdin.read()"   # lives until its stdin closes
    ours = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            env={**os.environ, "INCIDENTFOX_HOME": str(home)})
    theirs = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              env={**os.environ, "INCIDENTFOX_HOME": str(other)})
    try:
        found = leftover_processes(home)
        assert ours.pid in found and theirs.pid not in found and os.getpid() not in found
    finally:
        for proc in (ours, theirs):
            proc.communicate(b"", timeout=30)
    assert ours.pid not in leftover_processes(home)


def test_own_process_is_listed_by_uid_and_has_a_resident_size() -> None:
    assert os.getpid() in uid_processes(os.getuid())
    assert rss_bytes() > 1_000_000
