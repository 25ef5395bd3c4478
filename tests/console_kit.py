"""Shared pieces of the web console's browser tests (tests/console/): the platform under test, its
seeded tenants, the browser, and the checks every page gets (CSP violations, axe-core, screenshots).

The fixtures in ``tests/console/conftest.py`` wrap these; other console tests use the fixtures, not
this module, except for the plain helpers :func:`check_axe`, :func:`screenshot` and
:func:`csp_violations`.

Nothing here downloads a browser: Playwright drives Debian's Chromium at :data:`CHROMIUM`
(``apt-get install chromium``; ``make install`` and ``.ci/run`` try to install it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from incidentfox.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = ROOT / "console"
CONSOLE_OUT = CONSOLE / "out"
AXE = CONSOLE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("INCIDENTFOX_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "docs" / "console"
# Screenshots land in docs/console/ only when asked (they change on every run otherwise).
WRITE_SCREENSHOTS = os.environ.get("INCIDENTFOX_SCREENSHOTS") == "1"


def browser_skip_reason() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; never `playwright install`)"
    if shutil.which("node") is None:
        return "Node.js is not installed (needed to build the console)"
    if not (CONSOLE_OUT / "index.html").is_file() or not (CONSOLE_OUT / "csp.json").is_file():
        return "the console is not built (make install, or: cd console && npm ci && npm run build)"
    return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Platform:
    """One running ``incidentfox up``: its base URL and the global admin token."""

    base_url: str
    admin_token: str
    home: Path
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def ui(self) -> str:
        return f"{self.base_url}/ui/"

    def api(self, token: str | None = None) -> httpx.Client:
        """An API client with ``token`` (default: the global admin's)."""
        return httpx.Client(base_url=self.base_url, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.admin_token}"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_platform(workdir: Path, *, runner: str = "complete", env: dict[str, str] | None = None) -> Platform:
    """``incidentfox up`` on free ports in a subprocess (its own Ray), returned once it serves."""
    port, dash = free_port(), free_port()
    penv = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENTFOX_", "RAY_ADDRESS"))}
    penv.update(INCIDENTFOX_HOME=str(workdir / ".incidentfox"), RAY_USAGE_STATS_ENABLED="0",
                INCIDENTFOX_EGRESS_ALLOW="127.0.0.1", **(env or {}))
    penv["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log_path = workdir / "up.log"
    with open(log_path, "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port), "--runner", runner,
                                 "--dashboard-port", str(dash), "--no-access-log"],
                                cwd=workdir, env=penv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    platform = Platform(base_url=f"http://127.0.0.1:{port}", admin_token="", home=workdir / ".incidentfox",
                        log_path=log_path, proc=proc)
    try:
        wait_for(lambda: proc.poll() is not None or "Press Ctrl-C" in platform.log(), 300, "incidentfox up")
        if proc.poll() is not None:
            raise AssertionError(f"incidentfox up exited:\n{platform.log()[-4000:]}")
        platform.admin_token = (platform.home / "admin_token").read_text().strip()
    except BaseException:
        stop_platform(platform)
        raise
    return platform


def stop_platform(platform: Platform) -> None:
    proc = platform.proc
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    _remove_fallback_root(platform.home)


def _remove_fallback_root(home: Path) -> None:
    """A platform run as root with its data dir in a 0700 test folder keeps its sandbox workspaces
    under /var/lib/incidentfox/sandboxes/<digest> (actors/sandbox/workspace_root.py): remove them."""
    from actors.sandbox.workspace_root import FALLBACK_BASE, default_root

    root = default_root(home)
    if root.parent == FALLBACK_BASE:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Tenants:
    """Seeded orgs, teams and tokens (kind → token) the console tests sign in with.

    ``acme`` (unit ``eng`` with teams ``payments`` and ``ledger``) and ``globex`` (team ``storefront``); tokens:
    ``global_admin``, ``org_admin`` (acme), ``team`` (acme/payments), ``other_team`` (acme/ledger),
    ``other_org_team`` (globex/storefront)."""

    tokens: dict[str, str] = field(default_factory=dict)
    org: str = "acme"
    team: str = "payments"
    other_team: str = "ledger"   # ids no page would print by chance (cross-tenant checks grep the text)
    other_org: str = "globex"
    other_org_team: str = "storefront"


def seed_tenants(platform: Platform, tenants: Tenants | None = None) -> Tenants:
    """Create ``tenants``' orgs, teams and tokens (default: acme/globex) on ``platform``: a module
    that needs tenants of its own on the shared platform passes other ids."""
    t = tenants or Tenants()
    t.tokens["global_admin"] = platform.admin_token

    def ok(r: httpx.Response) -> dict[str, Any]:
        assert r.status_code in (200, 201), r.text
        return r.json()

    with platform.api() as c:
        for org in (t.org, t.other_org):
            ok(c.post("/api/v1/orgs", json={"org_id": org, "name": org.title()}))
        ok(c.post(f"/api/v1/orgs/{t.org}/nodes", json={"node_id": "eng", "kind": "unit", "name": "Engineering"}))
        for team in (t.team, t.other_team):
            ok(c.post(f"/api/v1/orgs/{t.org}/nodes", json={"node_id": team, "kind": "team", "parent_id": "eng",
                                                          "name": team.title()}))
        ok(c.post(f"/api/v1/orgs/{t.other_org}/nodes", json={"node_id": t.other_org_team, "kind": "team"}))
        t.tokens["org_admin"] = ok(c.post(f"/api/v1/orgs/{t.org}/tokens", json={"label": "console-tests"}))["token"]
        for kind, org, team in (("team", t.org, t.team), ("other_team", t.org, t.other_team),
                                ("other_org_team", t.other_org, t.other_org_team)):
            t.tokens[kind] = ok(c.post(f"/api/v1/orgs/{org}/teams/{team}/tokens", json={"label": kind}))["token"]
    return t


# --- browser-side checks --------------------------------------------------------------------------

CSP_WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""


def watch_csp(context: Any, sink: list[str]) -> None:
    """Record every CSP violation of pages in ``context``: the DOM event (an init script, which runs
    before the page's own scripts and is not subject to its CSP) and Chromium's console message."""
    context.add_init_script(CSP_WATCH_SCRIPT)

    def on_page(page: Any) -> None:
        page.on("console", lambda msg: sink.append(msg.text)
                if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text else None)

    context.on("page", on_page)


def csp_violations(page: Any) -> list[dict[str, Any]]:
    """The violations the page's document has reported so far (see :func:`watch_csp`)."""
    return page.evaluate("() => window.__cspViolations || []")


def check_axe(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core (console/node_modules/axe-core) on the page and fail on violations of ``impacts``.

    The page's context must be created with ``bypass_csp=True`` (the ``axe_page`` fixture does so):
    injecting axe is exactly what the console's CSP forbids. Returns all violations, for reporting."""
    if not AXE.is_file():
        import pytest
        pytest.skip(f"axe-core is not installed at {AXE} (cd console && npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    bad = [v for v in result if v["impact"] in impacts]
    assert not bad, "axe-core violations:\n" + "\n".join(f"  {v['impact']} {v['id']}: {v['help']} {v['nodes']}"
                                                         for v in bad)
    return result


def screenshot(page: Any, name: str, tmp_dir: Path | None = None) -> Path:
    """Save a full-page PNG as docs/console/<name>.png when INCIDENTFOX_SCREENSHOTS=1 (the docs'
    screenshots are taken by the tests), else under ``tmp_dir`` (still proving the page renders)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"screenshot name must be a simple slug: {name!r}")
    target_dir = SCREENSHOTS if WRITE_SCREENSHOTS or tmp_dir is None else tmp_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
