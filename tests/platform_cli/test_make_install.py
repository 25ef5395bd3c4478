"""`make install` on a fresh machine plans every optional system package it promises in README.md:
a dry run (``make -n``) against an empty venv folder lists the bubblewrap and Chromium steps and the
console build. (A make variable used in a rule's prerequisites before it is defined expands to
nothing, which once silently dropped Chromium from a fresh install.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_fresh_install_plans_bubblewrap_chromium_and_the_console(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    plan = subprocess.run(["make", "-n", "install", f"VENV={venv}", "CONSOLE_STAMP=" + str(tmp_path / "stamp")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    for stamp in (".installed", ".system-packages", ".system-chromium"):
        assert f"touch {venv}/{stamp}" in plan, f"`make install` on a fresh venv never makes {stamp}"
    for step in ("installing bubblewrap", "installing chromium", "building the web console"):
        assert step in plan, f"`make install` on a fresh venv does not plan: {step}"
