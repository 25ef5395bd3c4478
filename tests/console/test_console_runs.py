"""The console's operating pages in Chromium against one real `incidentfox up` running the engine
(the `investigation` runner, the offline planner over the demo world save one local scripted model; no real API key): a demo
run goes live to its RCA on the run page, its proposed fix is approved there, a pending tool call of an
LLM-planned run (a local scripted model) is approved there too, a run is rerun, a failed
delivery hand-off is re-driven, the overview draws its charts, a schedule runs now, and a team token
sees nothing of another team on any of these pages. Every page passes axe-core (no serious or critical
violation) and reports no CSP violation; the screenshots of docs/console.md are taken here.

It runs on the shared `console_platform` (one `incidentfox up` for every console test, with the
`investigation` runner) with tenants of its own, so its config and runs never meet the other modules'.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from actors.testing.scripted_llm import ScriptedLLM
from serve_apps.deliveries import MAX_DISPATCH_ATTEMPTS
from tests.console_kit import (
    Platform,
    Tenants,
    check_axe,
    csp_violations,
    screenshot,
    seed_tenants,
    watch_csp,
)

pytestmark = [pytest.mark.platform, pytest.mark.slow]

RCA_TIMEOUT_MS = 300_000   # a loaded 2-core machine: the demo run takes up to a few minutes
QUESTION = "checkout latency doubled after the last deploy, why?"


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code in (200, 201, 202), r.text
    return r.json()


RUNS_TENANTS = {"org": "hooli", "team": "tpsreports", "other_team": "quasar", "other_org": "vandelay",
                    "other_org_team": "zephyr"}   # ids no page prints by chance (cross-tenant checks grep the text)


@pytest.fixture(scope="module")
def world(console_platform: Platform) -> tuple[Platform, Tenants]:
    platform = console_platform
    tenants = seed_tenants(platform, Tenants(**RUNS_TENANTS))
    with platform.api() as c:
        ok(c.patch(f"/api/v1/orgs/{tenants.org}/nodes/{tenants.team}/config", json={
            "integrations": {"demo": {"enabled": True, "scenario": "bad_deploy"}},
            "routing": {"services": ["checkout", "payments"]},
            "access": {"api_approvals": True},
            "tools": {"kubernetes_rollback_deployment": True},   # the rollback the RCA proposes
            "schedules": [{"id": "weekly-digest", "cron": "0 9 * * 1", "kind": "digest"}]}))
    return platform, tenants


@pytest.fixture(scope="module")
def browser(console_browser: Any) -> Any:
    return console_browser


@pytest.fixture
def open_page(browser, world) -> Iterator[Callable[..., Any]]:
    """``open_page(kind, path, axe=False)``: a page signed in with that token kind at ``/ui{path}``.
    CSP violations fail the test (pages opened with ``axe=True`` bypass the CSP to inject axe-core)."""
    platform, tenants = world
    violations: list[str] = []
    contexts: list[Any] = []

    def open_(kind: str, path: str = "/", axe: bool = False) -> Any:
        context = browser.new_context(bypass_csp=axe, viewport={"width": 1360, "height": 900})
        contexts.append((context, axe))
        if not axe:
            watch_csp(context, violations)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(platform.ui.rstrip("/") + path)
        page.get_by_label("Token").fill(tenants.tokens[kind])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_test_id("auth-kind").wait_for()
        return page

    yield open_
    for context, axe in contexts:
        if not axe:
            for page in context.pages:
                violations.extend(str(v) for v in csp_violations(page))
        context.close()
    assert not violations, "CSP violations:\n" + "\n".join(violations)


@pytest.fixture
def shot(tmp_path) -> Callable[[Any, str], Any]:
    return lambda page, name: screenshot(page, name, tmp_path)


def start_run(platform: Platform, token: str, text: str = QUESTION) -> str:
    with platform.api(token) as c:
        return ok(c.post("/api/v1/agent/runs", json={"text": text, "services": ["checkout"]}))["run_id"]


def get_run(platform: Platform, run_id: str, token: str | None = None) -> dict[str, Any]:
    with platform.api(token) as c:
        return ok(c.get(f"/api/v1/agent/runs/{run_id}"))


@pytest.fixture(scope="module")
def finished_run(world) -> str:
    """One demo run of the team, finished (the live test below watches its own)."""
    platform, tenants = world
    run_id = start_run(platform, tenants.tokens["team"])
    deadline = time.monotonic() + RCA_TIMEOUT_MS / 1000
    while get_run(platform, run_id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the demo run did not finish"
        time.sleep(1)
    return run_id


def test_a_demo_run_goes_live_to_its_rca_and_its_fix_is_approved(world, open_page, shot):
    platform, tenants = world
    run_id = start_run(platform, tenants.tokens["team"])
    page = open_page("team", f"/runs/view/?id={run_id}")
    assert tenants.tokens["team"] not in page.url
    rca = page.get_by_test_id("rca")
    rca.wait_for(timeout=RCA_TIMEOUT_MS)
    assert "checkout" in rca.inner_text()
    assert page.get_by_role("table", name="Sub-agents").get_by_test_id("agent-row").count() >= 1  # from the SSE stream
    assert page.get_by_role("table", name="Tool calls").get_by_test_id("tool-call-row").count() >= 1  # with timings
    assert page.get_by_role("list", name="Run events").get_by_text("phase: rca").count() == 1
    assert page.get_by_test_id("live").count() == 0               # the stream ended with the run
    shot(page, "run")

    view = get_run(platform, run_id)
    pending = [a for a in view["approvals"] if a["status"] == "pending"]
    assert pending, f"the demo world's RCA proposes a fix: {view['approvals']}"
    action = pending[0]["approval_id"]
    page.get_by_role("button", name=f"Approve {action}").click()
    row = page.locator(f"[data-testid=approval][data-id={action}]")
    row.locator("[data-status]").filter(has_not_text="pending").wait_for()
    decided = {a["approval_id"]: a for a in get_run(platform, run_id)["approvals"]}[action]
    assert decided["status"] != "pending" and decided["decided_by"]


ROLLBACK = {"name": "kubernetes_rollback_deployment",
            "arguments": {"namespace": "shop", "deployment": "checkout", "to_revision": None, "expected_revision": None}}
ROLLBACK_RCA = {"summary": "checkout v2.3.1 crash-loops since its deploy; rolled back",
                "root_causes": [{"entity": "shop/deployment/checkout", "description": "bad deploy", "confidence": 0.8,
                                 "evidence": ["Back-off restarting failed container"]}],
                "affected_services": ["checkout"], "timeline": ["deploy", "errors", "rollback"],
                "recommended_actions": ["watch checkout after the rollback"], "no_incident": False}


@contextmanager
def scripted_llm(script: dict[str, list[dict[str, Any]]]) -> Iterator[ScriptedLLM]:
    """A local scripted OpenAI-compatible server (actors.testing.scripted_llm) on its own event loop
    thread, so the platform's real SDK calls it while this synchronous test drives the browser."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ScriptedLLM(script)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_a_pending_tool_call_is_approved_on_the_run_page(world, open_page):
    """A real pending tool-call approval (``apr_…``, not a proposed fix): a team of its own whose `llm`
    is a local scripted model has the LLM planner ask the kubernetes specialist, which calls the
    mutating ``kubernetes_rollback_deployment`` (the demo integration, enabled by the team's `tools`);
    the tool executor parks the call on a ToolApproval and the run waits. The call is approved from the
    run page; the API then shows it approved by the signed-in token, and the run finishes with the
    rollback run."""
    platform, tenants = world
    team = "rollbacks"
    with scripted_llm({
        "lead SRE": [{"tool_calls": [{"name": "ask_kubernetes_agent", "arguments": {"input": "roll back checkout"}}]},
                     {"json": ROLLBACK_RCA}],
        "kubernetes specialist": [{"tool_calls": [ROLLBACK]}, {"text": "checkout rolled back"}],
    }) as llm, platform.api() as c:
        ok(c.post(f"/api/v1/orgs/{tenants.org}/nodes", json={"node_id": team, "kind": "team", "parent_id": "eng",
                                                             "name": "Rollbacks"}))
        tenants.tokens[team] = ok(c.post(f"/api/v1/orgs/{tenants.org}/teams/{team}/tokens",
                                         json={"label": team}))["token"]
        ok(c.patch(f"/api/v1/orgs/{tenants.org}/nodes/{team}/config", json={
            "integrations": {"demo": {"enabled": True, "scenario": "bad_deploy"}},
            "access": {"api_approvals": True},
            "tools": {"kubernetes_rollback_deployment": True},
            "investigation": {"deadline_s": RCA_TIMEOUT_MS / 1000},   # the call may wait this long on a human
            "subagents": {"metrics": False, "logs": False, "changes": False, "cloud": False},
            "llm": {"provider": "openai_compatible", "model": "scripted", "base_url": llm.url,
                    "api_key": "sk-console-approval-test"}}))
        run_id = start_run(platform, tenants.tokens[team], "checkout is crash-looping, roll it back")
        deadline = time.monotonic() + RCA_TIMEOUT_MS / 1000
        while not (pending := [a for a in get_run(platform, run_id)["approvals"]
                               if a["status"] == "pending" and a["approval_id"].startswith("apr_")]):
            view = get_run(platform, run_id)
            assert view["status"] in ("queued", "running"), f"the run ended without asking: {view}"
            assert time.monotonic() < deadline, "the rollback never waited on an approval"
            time.sleep(1)
        approval = pending[0]["approval_id"]
        assert get_run(platform, run_id)["status"] == "running"   # really waiting on the human

        page = open_page(team, f"/runs/view/?id={run_id}")
        row = page.locator(f"[data-testid=approval][data-id={approval}]")
        row.wait_for()
        assert "kubernetes_rollback_deployment" in row.inner_text()
        page.get_by_role("button", name=f"Approve {approval}").click()
        row.locator("[data-status]").filter(has_not_text="pending").wait_for()
        decided = {a["approval_id"]: a for a in get_run(platform, run_id)["approvals"]}[approval]
        assert decided["status"] == "approved" and decided["decided_by"], decided
        while (view := get_run(platform, run_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, "the approved run did not finish"
            time.sleep(1)
        assert view["status"] == "succeeded", view
        assert [(t["tool"], t["status"]) for t in view["tool_calls"]] == [("kubernetes_rollback_deployment", "ok")]
        assert "sk-console-approval-test" not in str(view)
        assert any(r.agent == "kubernetes specialist" for r in llm.requests)


def test_runs_list_filters_and_rerun(world, finished_run, open_page, shot):
    platform = world[0]
    page = open_page("team", "/runs/")
    table = page.get_by_role("table", name="Runs")
    table.get_by_role("link").first.wait_for()
    assert table.locator(f"a[href*='{finished_run}']").count() == 1
    shot(page, "runs")
    page.goto(f"{platform.ui}runs/?status=failed&range=1h")
    page.get_by_role("table", name="Runs").get_by_text("No run matches these filters.").wait_for()
    assert page.get_by_role("combobox", name="Status").inner_text() == "failed"

    page.goto(f"{platform.ui}runs/view/?id={finished_run}")
    page.get_by_test_id("rca").wait_for()
    page.get_by_role("button", name="Rerun").click()
    page.wait_for_url(re.compile(r"id=run_(?!" + finished_run[4:] + r")"))
    new_id = page.url.split("id=")[1]
    assert get_run(platform, new_id)["events"][0]["data"]["rerun_of"] == finished_run
    page.get_by_role("link", name=finished_run).wait_for()   # "Rerun of" links back


def test_a_failed_delivery_hand_off_is_redriven(world, open_page, shot):
    platform, tenants = world
    run_id = f"run_{uuid.uuid4().hex}"
    db = sqlite3.connect(platform.home / "incidentfox.db", timeout=30)
    try:   # a run whose hand-off failed after it was recorded (the executor was down)
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
        trigger = '{"source": "api", "delivery_id": "redrive-test", "event_kind": "api_request", "text": "' \
                  + QUESTION + '", "services": ["checkout"], "human": true}'
        db.execute("INSERT INTO runs (id, org_id, team_id, status, kind, source, trigger, created_at, attempts, "
                   "cancel_requested, absorbed, turns) VALUES (?, ?, ?, 'queued', 'investigation', "
                   "'api', ?, ?, 0, 0, '[]', '[]')", (run_id, tenants.org, tenants.team, trigger, now))
        db.execute("INSERT INTO webhook_deliveries (source, delivery_id, received_at, event_kind, action, outcome, "
                   "org_id, team_id, run_id, route_stale, trigger, payload, dispatch_attempts, dispatch_error) "
                   "VALUES ('api', ?, ?, 'api_request', 'start', 'accepted', ?, ?, ?, 0, ?, '', ?, "
                   "'RuntimeError: executor unavailable')",
                   (f"redrive-{run_id}", now, tenants.org, tenants.team, run_id, trigger, MAX_DISPATCH_ATTEMPTS))   # the sweep gave up
        db.commit()
    finally:
        db.close()
    page = open_page("global_admin", "/deliveries/")
    page.get_by_text("failed hand-offs only").click()
    button = page.get_by_role("button", name=re.compile(r"^Re-drive delivery \d+$"))
    button.first.wait_for()
    assert button.count() == 1
    shot(page, "deliveries")
    button.click()
    page.get_by_role("status").filter(has_text="Re-driven: 1 delivery").wait_for()
    deadline = time.monotonic() + 60
    while get_run(platform, run_id)["status"] == "queued":   # handed to the engine this time
        assert time.monotonic() < deadline, "the re-driven run was never picked up"
        time.sleep(0.5)


def test_overview_draws_charts_per_team(world, finished_run, open_page, shot):
    page = open_page("org_admin", "/")
    charts = page.get_by_test_id("charts")
    charts.wait_for()
    charts.locator(".recharts-bar-rectangle path").first.wait_for()   # a drawn bar (empty days have none)
    assert page.get_by_role("table", name="Per team").get_by_test_id("team-stats").filter(
        has_text=f"{world[1].org}/{world[1].team}").count() == 1
    page.mouse.move(0, 0)   # no chart tooltip in the screenshot
    shot(page, "overview")


def test_a_schedule_runs_now_and_shows_its_outcome(world, open_page, shot):
    page = open_page("team", "/reports/")
    page.get_by_role("button", name="Run weekly-digest now").click()
    outcomes = page.get_by_role("table", name="Schedule outcomes")
    outcomes.get_by_text("run now").wait_for()
    outcomes.locator("[data-status=done]").first.wait_for(timeout=60_000)
    page.get_by_role("table", name="Reports").get_by_role("button", name=re.compile("^Open report")).first.wait_for()
    shot(page, "reports")


def test_a_sandbox_session_chats_with_streamed_tool_events_and_is_deleted(world, open_page, shot):
    """globex/web's sandbox talks to a scripted Anthropic-compatible server (a model for that team
    only: the acme team's runs keep the offline planner)."""
    from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse

    platform, tenants = world
    with ScriptedAnthropicServer() as model:
        model.add(Reply([Text("Looking."), ToolUse("Bash", {"command": "echo hello from the sandbox"})]),
                  Reply([Text("The sandbox says hello.")]))
        with platform.api() as c:
            ok(c.patch(f"/api/v1/orgs/{tenants.other_org}/nodes/{tenants.other_org_team}/config", json={
                "llm": {"provider": "anthropic", "model": "claude-test", "base_url": model.url,
                        "api_key": "sk-console-test"}}))
        page = open_page("other_org_team", "/sandbox/")
        page.get_by_label("Title").fill("console chat")
        page.get_by_role("button", name="Open a session").click()
        page.get_by_label("Message").fill("say hello")   # the opened session is selected
        page.get_by_role("button", name="Send").click()
        chat = page.get_by_role("log", name="Conversation")
        chat.get_by_text("The sandbox says hello.").wait_for(timeout=120_000)
        tool = chat.get_by_test_id("chat-tool")
        assert tool.count() == 1 and "Bash" in tool.inner_text()
        # The command's own output when this node can isolate Bash (the platform's data dir is in a
        # 0700 test folder: the workspace root must still be reachable), else the reason it cannot.
        with platform.api() as c:
            isolation = ok(c.get("/api/v1/sandbox/health"))["isolation"]
        if isolation["available"]:
            assert "hello from the sandbox" in tool.inner_text(), (isolation, tool.inner_text())
        else:
            assert "Bash is disabled on this node" in tool.inner_text(), (isolation, tool.inner_text())
        assert "sk-console-test" not in page.content()
        shot(page, "sandbox-chat")
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("table", name="Sandbox sessions").get_by_text("No session yet.").wait_for()


def test_a_team_token_sees_nothing_of_another_team(world, finished_run, open_page):
    platform, tenants = world
    page = open_page("other_team", "/runs/")
    page.get_by_role("table", name="Runs").get_by_text("No run matches these filters.").wait_for()
    page.goto(f"{platform.ui}runs/?team={tenants.team}")
    page.get_by_role("table", name="Runs").get_by_text("No run matches these filters.").wait_for()
    page.goto(f"{platform.ui}runs/view/?id={finished_run}")
    page.get_by_role("alert").filter(has_text="run_not_found").wait_for()
    assert page.get_by_test_id("rca").count() == 0
    page.goto(f"{platform.ui}")
    page.get_by_text("No run in this window.").wait_for()
    assert page.get_by_test_id("team-stats").count() == 0
    page.goto(f"{platform.ui}reports/")
    page.get_by_role("table", name="Schedules").get_by_text("No schedule").wait_for()
    assert page.get_by_text("weekly-digest").count() == 0
    page.goto(f"{platform.ui}sandbox/")
    page.get_by_role("table", name="Sandbox sessions").get_by_text("No session yet.").wait_for()
    page.goto(f"{platform.ui}deliveries/")
    page.get_by_role("alert").filter(has_text="cannot open this page").wait_for()


@pytest.mark.parametrize(("kind", "path", "ready"), [
    ("team", "/runs/", "Runs"), ("global_admin", "/deliveries/", "Webhook deliveries"),
    ("org_admin", "/", "Per team"), ("team", "/reports/", "Schedules"), ("team", "/sandbox/", "Sandbox sessions")])
def test_pages_pass_axe(world, open_page, shot, kind, path, ready):
    page = open_page(kind, path, axe=True)
    page.get_by_role("table", name=ready).wait_for(timeout=90_000)
    page.wait_for_load_state("networkidle")
    page.mouse.move(0, 0)   # no hover state (a chart tooltip) in what axe sees
    check_axe(page)
    if path == "/sandbox/":
        shot(page, "sandbox")


def test_the_run_page_passes_axe(world, finished_run, open_page):
    page = open_page("team", f"/runs/view/?id={finished_run}", axe=True)
    page.get_by_test_id("rca").wait_for()
    check_axe(page)
