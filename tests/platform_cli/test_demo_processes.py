"""The demo finds the platform's leftover processes by their INCIDENTFOX_HOME (psutil: Linux and macOS)."""

from __future__ import annotations

import json
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


def test_what_started_the_demo_is_never_a_leftover(tmp_path: Path) -> None:
    """`INCIDENTFOX_HOME=… make demo`: make (an ancestor) carries the variable; the demo must not count
    it, or it waits out its grace period and then kills make."""
    home = tmp_path / "home"
    child = ("import json, sys; from pathlib import Path; from cli.demo.flow import leftover_processes; "
             "print(json.dumps(leftover_processes(Path(sys.argv[1]))))")
    # A shell (the "make") with the variable runs the demo's check as its child, plus one platform process.
    script = (f"{sys.executable} -c 'import time; time.sleep(120)' & P=$!; "
              f"{sys.executable} -c \"{child}\" {home}; echo parent=$$ platform=$P; kill $P")
    out = subprocess.run(["/bin/sh", "-c", script], env={**os.environ, "INCIDENTFOX_HOME": str(home)},
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
                         check=False)
    assert out.returncode == 0, out.stderr
    found_line, ids_line = out.stdout.strip().splitlines()[-2:]
    ids = dict(part.split("=") for part in ids_line.split())
    found = json.loads(found_line)
    assert int(ids["platform"]) in found and int(ids["parent"]) not in found


def test_own_process_is_listed_by_uid_and_has_a_resident_size() -> None:
    assert os.getpid() in uid_processes(os.getuid())
    assert rss_bytes() > 1_000_000
