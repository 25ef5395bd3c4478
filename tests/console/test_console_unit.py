"""The console's own unit tests (vitest, console/tests/*.test.ts[x]) and its type check, run from
pytest so `make test` covers them. Skipped, saying why, without Node.js or console/node_modules."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.console_kit import CONSOLE

pytestmark = pytest.mark.slow


def _require_node() -> str:
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        pytest.skip("Node.js/npm is not installed (the console's unit tests need it)")
    if not (CONSOLE / "node_modules" / "vitest").is_dir():
        pytest.skip("console/node_modules is absent (cd console && npm ci)")
    return npx


def test_console_vitest_suite_passes():
    npx = _require_node()
    result = subprocess.run([npx, "--no-install", "vitest", "run", "--reporter=dot"], check=False, cwd=CONSOLE,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_console_typechecks():
    npx = _require_node()
    result = subprocess.run([npx, "--no-install", "tsc", "--noEmit", "-p", "tsconfig.json"], check=False,
                            cwd=CONSOLE,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
