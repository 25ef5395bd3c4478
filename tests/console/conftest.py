"""Fixtures of the console's browser tests: ONE ``incidentfox up`` per test session, seeded tenants,
one Chromium (Debian's, never downloaded), and signed-in pages that fail their test on any CSP
violation.

Browser test modules set ``pytestmark = [pytest.mark.platform, pytest.mark.slow]`` so `make test`
runs them on the platform xdist worker (tests/conftest.py). They skip, saying why, without the
playwright package, Chromium, Node.js or a console build (tests/console_kit.py:browser_skip_reason).

* ``console_platform`` -> :class:`tests.console_kit.Platform` (``base_url``, ``ui``, ``admin_token``,
  ``api(token)``: an httpx client);
* ``console_tenants`` -> :class:`tests.console_kit.Tenants` (``tokens[kind]`` for ``global_admin``,
  ``org_admin``, ``team``, ``other_team``, ``other_org_team``; ``org``, ``team``, ...);
* ``console_page(kind, path="/")`` -> a Playwright ``Page`` signed in through the sign-in form with
  that token kind, opened at ``/ui{path}``; the test fails at teardown if any page of it reported a
  CSP violation;
* ``axe_page(kind, path="/")`` -> the same in a context with ``bypass_csp=True``, for
  :func:`tests.console_kit.check_axe` (and never for CSP assertions);
* ``shot(page, name)`` -> :func:`tests.console_kit.screenshot` (docs/console/<name>.png with
  INCIDENTFOX_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_kit import (
    CHROMIUM,
    Platform,
    Tenants,
    browser_skip_reason,
    csp_violations,
    screenshot,
    seed_tenants,
    start_platform,
    stop_platform,
    watch_csp,
)


@pytest.fixture(scope="session")
def console_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    platform = start_platform(tmp_path_factory.mktemp("console-up"), runner="investigation")
    try:
        yield platform
    finally:
        stop_platform(platform)


@pytest.fixture(scope="session")
def console_tenants(console_platform: Platform) -> Tenants:
    return seed_tenants(console_platform)


@pytest.fixture(scope="module")
def console_browser(console_platform: Platform) -> Iterator[Any]:
    """Chromium for one module. Module scope, not session: Playwright's sync API keeps an event loop
    running in the main thread while it is open, so an asyncio test after it in the same process
    (``make test XDIST=``, or another module of the same worker) could not start its own loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Root (CI containers) cannot use Chromium's user-namespace sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, platform: Platform, token: str, path: str = "/") -> Any:
    """Open ``/ui{path}`` and sign in through the form; returns once the shell shows who is signed in."""
    page.goto(platform.ui.rstrip("/") + path)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("auth-kind").wait_for()
    return page


def _page_factory(browser: Any, platform: Platform, tenants: Tenants, *, bypass_csp: bool,
                  violations: list[str]) -> tuple[Callable[..., Any], list[Any]]:
    contexts: list[Any] = []

    def open_page(kind: str, path: str = "/") -> Any:
        if kind not in tenants.tokens:
            raise KeyError(f"no seeded token of kind {kind!r}; have {sorted(tenants.tokens)}")
        context = browser.new_context(bypass_csp=bypass_csp, viewport={"width": 1360, "height": 860})
        contexts.append(context)
        if not bypass_csp:
            watch_csp(context, violations)
        page = context.new_page()
        return sign_in(page, platform, tenants.tokens[kind], path)

    return open_page, contexts


@pytest.fixture
def console_page(console_browser: Any, console_platform: Platform, console_tenants: Tenants) -> Iterator[Callable[..., Any]]:
    violations: list[str] = []
    open_page, contexts = _page_factory(console_browser, console_platform, console_tenants, bypass_csp=False,
                                        violations=violations)
    yield open_page
    for context in contexts:
        for page in context.pages:
            violations.extend(str(v) for v in csp_violations(page))
        context.close()
    assert not violations, "CSP violations:\n" + "\n".join(violations)


@pytest.fixture
def axe_page(console_browser: Any, console_platform: Platform, console_tenants: Tenants) -> Iterator[Callable[..., Any]]:
    open_page, contexts = _page_factory(console_browser, console_platform, console_tenants, bypass_csp=True,
                                        violations=[])
    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Any, str], Path]:
    return lambda page, name: screenshot(page, name, tmp_path)
