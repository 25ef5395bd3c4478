"""`make lint` holds: ruff (pinned in pyproject.toml's dev extras) finds nothing in the checkout, so a
lint finding fails the suite instead of piling up unseen."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing() -> None:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert exe, "ruff is a dev dependency (pyproject.toml [dev]); `make install` installs it"
    # --no-cache: a cache written by another checkout or ruff version must never hide a finding.
    proc = subprocess.run([exe, "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
