"""The architecture rule of docs/architecture.md, enforced: import-linter's contracts in pyproject.toml
(layers only point down; outside config_service only its library face is imported; production code
never imports a test fake)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency (pyproject.toml [dev]); `make install` installs it"
    # --no-cache: a stale cache from another checkout must never hide a broken contract.
    proc = subprocess.run([exe, "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.lower().split("contracts:")[-1].replace("0 broken", "")


def test_no_import_by_string_reaches_up() -> None:
    """importlib strings hide upward imports from the linter: the ground floor has none."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "incidentfox").rglob("*.py")
                 if "import_module(" in p.read_text()]
    assert offenders == []


PRODUCTION = ("incidentfox", "config_service", "actors", "serve_apps", "cluster", "cli", "evaluation")
MAX_MODULE_LINES = 450


def test_no_production_module_is_a_god_module() -> None:
    """Modules are about one thing: none over 450 lines (docs/architecture.md, "Modules")."""
    long = {str(p.relative_to(ROOT)): n for pkg in PRODUCTION for p in (ROOT / pkg).rglob("*.py")
            if "alembic/versions" not in p.as_posix()
            and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
