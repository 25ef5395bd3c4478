"""The cross-tenant matrix (issue 12): every HTTP route of every API app, called with

* ``org_a``  - org A's admin token (globex: another org, its strongest token),
* ``team_b`` - a token of org B's other team (acme/search),
* ``none``   - no token,

against org B team X's resources (acme/payments: a run with a pending approval, a report, a
sandbox session, its config node with an integration, routing claims and a schedule that has run,
its org's tokens, its knowledge base). Every cell that must be refused is: 401 without
a token, 403/404 as the API's rules say otherwise, and no row of any table is added or removed.

The route list is read from the apps' route tables, so a new route without an entry in ``MATRIX``
fails :func:`test_every_route_has_a_matrix_entry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from gateway_kit import seed_tenants, settings_for
from sqlalchemy import text

from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.store import SandboxStore
from actors.scheduler.models import Report, ScheduleClaim
from incidentfox.contracts import Trigger
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval
from incidentfox.runs.runner import NullRunner

REFUSED = "refused"       # 401 without a token; 403/404 with another tenant's token; nothing written
PUBLIC = "public"         # no tenant data behind it: answered to anyone (named in the app's public list)
SCOPED = "scoped"         # allowed, but answers only the caller's own scope: checked by `check`
CALLERS = ("org_a", "team_b", "none")


@dataclass(frozen=True)
class Cell:
    kind: str = REFUSED
    body: Any = None
    # For SCOPED cells: what the caller may see, given the response and the victim's ids.
    check: Any = None
    statuses: tuple[int, ...] = (403, 404)
    reason: str = ""


@dataclass(frozen=True)
class Entry:
    """One route: the concrete path (victim ids filled in) and its cell per caller."""

    path: str
    cells: dict[str, Cell] = field(default_factory=dict)
    body: Any = None

    def cell(self, caller: str) -> Cell:
        if caller == "none":
            return self.cells.get("none", Cell())
        return self.cells.get(caller, Cell(body=self.body))


def _no_victim(resp: httpx.Response, ids: dict[str, str]) -> None:
    assert resp.status_code in (200, 403), resp.text
    for value in ids.values():
        assert value not in resp.text, value


def _own_page(resp: httpx.Response, ids: dict[str, str]) -> None:
    # A list scoped to the caller: answered (never a 403 that says the victim exists), without the victim.
    assert resp.status_code == 200, resp.text
    _no_victim(resp, ids)


def _own_stats(resp: httpx.Response, ids: dict[str, str]) -> None:
    # Naming the victim's team answers the caller's view: neither of the callers has a run.
    _own_page(resp, ids)
    body = resp.json()
    assert [(t["org"], t["team"]) for t in body["teams"]] == [], body["teams"]
    assert body["totals"]["runs"] == 0, body["totals"]


MATRIX: dict[tuple[str, str, str], Entry] = {
    # --- agent API (/api/v1/agent) ---
    ("agent", "POST", "/run"): Entry("/run", body={"text": "x", "org": "acme", "team": "payments",
                                                   "thread_channel": "C111", "thread_ts": "1.0"},
                                     cells={"team_b": Cell(body={"text": "x", "thread_channel": "C111",
                                                                 "thread_ts": "1.0"})}),
    ("agent", "POST", "/runs"): Entry("/runs", body={"text": "x", "org": "acme", "team": "payments",
                                                     "thread_channel": "C111", "thread_ts": "1.0"},
                                      cells={"team_b": Cell(body={"text": "x", "thread_channel": "C111",
                                                                  "thread_ts": "1.0"})}),
    ("agent", "GET", "/runs/{run_id}"): Entry("/runs/{run}"),
    ("agent", "GET", "/runs"): Entry("/runs?org=acme&team=payments", cells={
        "org_a": Cell(SCOPED, check=_no_victim), "team_b": Cell(SCOPED, check=_no_victim)}),
    ("agent", "POST", "/runs/{run_id}/cancel"): Entry("/runs/{run}/cancel"),
    ("agent", "POST", "/runs/{run_id}/approvals/{approval_id}"): Entry("/runs/{run}/approvals/apr_victim",
                                                                         body={"decision": "approve"}),
    ("agent", "POST", "/runs/{run_id}/actions/{action_id}/approve"): Entry("/runs/{run}/actions/act_victim/approve"),
    ("agent", "POST", "/runs/{run_id}/actions/{action_id}/deny"): Entry("/runs/{run}/actions/act_victim/deny"),
    ("agent", "POST", "/runs/{run_id}/postmortem"): Entry("/runs/{run}/postmortem", body={"llm": True}),
    ("agent", "GET", "/runs/{run_id}/events"): Entry("/runs/{run}/events"),
    ("agent", "POST", "/runs/{run_id}/rerun"): Entry("/runs/{run}/rerun"),
    ("agent", "GET", "/stats"): Entry("/stats?org=acme&team=payments", cells={
        "org_a": Cell(SCOPED, check=_own_stats), "team_b": Cell(SCOPED, check=_own_stats)}),
    ("agent", "GET", "/deliveries"): Entry("/deliveries", cells={"org_a": Cell(SCOPED, check=_no_victim)}),
    ("agent", "POST", "/deliveries/redrive"): Entry("/deliveries/redrive", body={"ids": None}),
    # --- reports API (/api/v1/reports) ---
    ("reports", "GET", "/{report_id}"): Entry("/{report}"),
    ("reports", "GET", "/"): Entry("/?org=acme&team=payments", cells={
        "org_a": Cell(SCOPED, check=_own_page), "team_b": Cell(SCOPED, check=_own_page)}),
    ("reports", "GET", "/schedules"): Entry("/schedules?org=acme&team=payments", cells={
        "org_a": Cell(SCOPED, check=_own_page), "team_b": Cell(SCOPED, check=_own_page)}),
    ("reports", "GET", "/schedules/outcomes"): Entry("/schedules/outcomes?org=acme&team=payments", cells={
        "org_a": Cell(SCOPED, check=_own_page), "team_b": Cell(SCOPED, check=_own_page)}),
    ("reports", "POST", "/schedules/{schedule_id}/run"): Entry("/schedules/{schedule}/run?org=acme&team=payments"),
    ("reports", "GET", "/{report_id}/chart.png"): Entry("/{report}/chart.png"),
    # --- tools catalogue (/api/v1/tools): the platform's tool list, no tenant data ---
    ("tools", "GET", "/catalog"): Entry("/catalog", cells={c: Cell(PUBLIC) for c in CALLERS}),
    # --- knowledge API (/api/v1/knowledge): acme/payments's documents, named by parameter ---
    ("knowledge", "POST", "/documents"): Entry("/documents?org=acme&team=payments",
                                               body={"name": "x.md", "text": "# x\n\ny"}),
    ("knowledge", "GET", "/documents"): Entry("/documents?org=acme&team=payments"),
    ("knowledge", "DELETE", "/documents/{doc_id}"): Entry("/documents/victimdoc?org=acme&team=payments"),
    ("knowledge", "POST", "/rebuild"): Entry("/rebuild?org=acme&team=payments"),
    ("knowledge", "POST", "/search"): Entry("/search?org=acme&team=payments", body={"query": "checkout"}),
    # --- sandbox API (/api/v1/sandbox) ---
    ("sandbox", "GET", "/health"): Entry("/health", cells={c: Cell(PUBLIC) for c in CALLERS}),
    ("sandbox", "POST", "/sessions"): Entry("/sessions", body={"org": "acme", "team": "payments"}, cells={
        "team_b": Cell(statuses=(422,), body={"org": "acme", "team": "payments"},
                       reason="a session cannot be opened for another team: the body cannot name one")}),
    ("sandbox", "POST", "/sessions/{session_id}/messages"): Entry("/sessions/{session}/messages", body={"text": "x"}),
    ("sandbox", "GET", "/sessions/{session_id}"): Entry("/sessions/{session}"),
    ("sandbox", "GET", "/sessions"): Entry("/sessions", cells={
        "org_a": Cell(SCOPED, check=_own_page), "team_b": Cell(SCOPED, check=_own_page)}),
    ("sandbox", "DELETE", "/sessions/{session_id}"): Entry("/sessions/{session}"),
    ("sandbox", "POST", "/sessions/{session_id}/interrupt"): Entry("/sessions/{session}/interrupt"),
    ("sandbox", "POST", "/sessions/{session_id}/approvals/{approval_id}"): Entry(
        "/sessions/{session}/approvals/sap_victim", body={"decision": "approve"}),
    ("sandbox", "GET", "/mcp-allowlist"): Entry("/mcp-allowlist", cells={
        "org_a": Cell(SCOPED, check=_no_victim), "team_b": Cell(SCOPED, check=_no_victim)}),
    ("sandbox", "PUT", "/mcp-allowlist"): Entry("/mcp-allowlist", body={"servers": []}),
    # --- config service (/) ---
    ("config", "GET", "/health"): Entry("/health", cells={c: Cell(PUBLIC) for c in CALLERS}),
    ("config", "GET", "/api/v1/auth/whoami"): Entry("/api/v1/auth/whoami", cells={
        "org_a": Cell(SCOPED, check=_no_victim), "team_b": Cell(SCOPED, check=_no_victim)}),
    # The team-config JSON Schema: no tenant data, but like every /api route it needs a token.
    ("config", "GET", "/api/v1/config/schema"): Entry("/api/v1/config/schema", cells={
        "org_a": Cell(SCOPED, check=_no_victim), "team_b": Cell(SCOPED, check=_no_victim)}),
    ("config", "POST", "/api/v1/orgs"): Entry("/api/v1/orgs", body={"org_id": "acme", "name": "x"}),
    ("config", "GET", "/api/v1/orgs"): Entry("/api/v1/orgs"),     # the global admin's only
    ("config", "GET", "/api/v1/orgs/{org}"): Entry("/api/v1/orgs/acme", cells={
        "team_b": Cell(SCOPED, check=lambda r, ids: _org_view(r, ids))}),
    ("config", "POST", "/api/v1/orgs/{org}/nodes"): Entry("/api/v1/orgs/acme/nodes", body={
        "node_id": "evil", "parent_id": "payments", "kind": "team", "name": "evil"}),
    ("config", "GET", "/api/v1/orgs/{org}/nodes"): Entry("/api/v1/orgs/acme/nodes"),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}"): Entry("/api/v1/orgs/acme/nodes/payments"),
    ("config", "PATCH", "/api/v1/orgs/{org}/nodes/{node}"): Entry("/api/v1/orgs/acme/nodes/payments",
                                                                  body={"name": "pwned"}),
    ("config", "PATCH", "/api/v1/orgs/{org}/nodes/{node}/config"): Entry(
        "/api/v1/orgs/acme/nodes/payments/config", body={"access": {"approvers": ["U0EVIL"]}}),
    ("config", "DELETE", "/api/v1/orgs/{org}/nodes/{node}"): Entry("/api/v1/orgs/acme/nodes/payments"),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}/integrations"): Entry(
        "/api/v1/orgs/acme/nodes/payments/integrations"),
    ("config", "POST", "/api/v1/orgs/{org}/nodes/{node}/integrations/{name}/test"): Entry(
        "/api/v1/orgs/acme/nodes/payments/integrations/slack/test"),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}/routing-claims"): Entry(
        "/api/v1/orgs/acme/nodes/payments/routing-claims"),
    ("config", "POST", "/api/v1/orgs/{org}/nodes/{node}/routing-claims/check"): Entry(
        "/api/v1/orgs/acme/nodes/payments/routing-claims/check", body={"routing": {"slack_channel_ids": ["C111"]}}),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}/config/raw"): Entry("/api/v1/orgs/acme/nodes/payments/config/raw"),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}/config/effective"): Entry(
        "/api/v1/orgs/acme/nodes/payments/config/effective"),
    ("config", "GET", "/api/v1/orgs/{org}/nodes/{node}/config/history"): Entry(
        "/api/v1/orgs/acme/nodes/payments/config/history"),
    ("config", "POST", "/api/v1/orgs/{org}/nodes/{node}/config/rollback"): Entry(
        "/api/v1/orgs/acme/nodes/payments/config/rollback", body={"version": 1}),
    ("config", "GET", "/api/v1/team/config"): Entry("/api/v1/team/config", cells={
        "org_a": Cell(statuses=(403, 404, 400, 422)),
        "team_b": Cell(SCOPED, check=lambda r, ids: _no_victim_config(r))}),
    ("config", "POST", "/api/v1/orgs/{org}/tokens"): Entry("/api/v1/orgs/acme/tokens", body={}),
    ("config", "POST", "/api/v1/orgs/{org}/teams/{team}/tokens"): Entry("/api/v1/orgs/acme/teams/payments/tokens",
                                                                        body={}),
    ("config", "GET", "/api/v1/orgs/{org}/tokens"): Entry("/api/v1/orgs/acme/tokens"),
    ("config", "POST", "/api/v1/orgs/{org}/tokens/{token_id}/revoke"): Entry("/api/v1/orgs/acme/tokens/{token}/revoke"),
    ("config", "POST", "/api/v1/orgs/{org}/teams/{team}/impersonation-token"): Entry(
        "/api/v1/orgs/acme/teams/payments/impersonation-token", body={}),
    ("config", "POST", "/api/v1/orgs/{org}/teams/{team}/impersonation-tokens"): Entry(
        "/api/v1/orgs/acme/teams/payments/impersonation-tokens", body={}),
    ("config", "POST", "/api/v1/routing/lookup"): Entry("/api/v1/routing/lookup",
                                                        body={"slack_channel_id": "C111"}),
    ("config", "GET", "/api/v1/routing/epoch"): Entry("/api/v1/routing/epoch"),
    ("config", "GET", "/api/v1/routing/table"): Entry("/api/v1/routing/table"),
    ("config", "GET", "/api/v1/orgs/{org}/audit"): Entry("/api/v1/orgs/acme/audit"),
    # --- per-org / per-team webhook secrets: the org's admin (or the global admin) only ---
    ("config", "POST", "/api/v1/orgs/{org}/webhook-secrets/{source}"): Entry(
        "/api/v1/orgs/acme/webhook-secrets/github", body={}),
    ("config", "POST", "/api/v1/orgs/{org}/teams/{team}/webhook-secrets/{source}"): Entry(
        "/api/v1/orgs/acme/teams/payments/webhook-secrets/github", body={}),
    ("config", "GET", "/api/v1/orgs/{org}/webhook-secrets"): Entry("/api/v1/orgs/acme/webhook-secrets"),
    ("config", "GET", "/api/v1/orgs/{org}/teams/{team}/webhook-secrets"): Entry(
        "/api/v1/orgs/acme/teams/payments/webhook-secrets"),
    ("config", "DELETE", "/api/v1/orgs/{org}/webhook-secrets/{source}"): Entry(
        "/api/v1/orgs/acme/webhook-secrets/github"),
    ("config", "DELETE", "/api/v1/orgs/{org}/teams/{team}/webhook-secrets/{source}"): Entry(
        "/api/v1/orgs/acme/teams/payments/webhook-secrets/github"),
    # --- the platform egress allow-list: the global admin only ---
    ("config", "GET", "/api/v1/admin/egress-allowlist"): Entry("/api/v1/admin/egress-allowlist"),
    ("config", "PUT", "/api/v1/admin/egress-allowlist"): Entry(
        "/api/v1/admin/egress-allowlist", body={"entries": [{"entry": "10.0.0.0/8"}]}),
    ("config", "GET", "/api/v1/admin/egress-allowlist/audit"): Entry("/api/v1/admin/egress-allowlist/audit"),
}


def _org_view(resp: httpx.Response, ids: dict[str, str]) -> None:
    # A team token may read its own org's public record, never the org's secrets or other teams' data.
    assert resp.status_code in (200, 403, 404), resp.text
    assert ids["token"] not in resp.text


def _no_victim_config(resp: httpx.Response) -> None:
    assert resp.status_code == 200, resp.text
    assert "U0VICTIM" not in resp.text and "xoxb-victim" not in resp.text


@pytest.fixture
async def world(sqlite_url, tmp_path):
    from knowledge_kit import bases

    from config_service.app import create_app
    from config_service.services import config as config_svc
    from config_service.services import tokens as token_svc
    from serve_apps.agent_api import create_agent_app
    from serve_apps.builder import _tools_asgi_app
    from serve_apps.knowledge_api import create_knowledge_app
    from serve_apps.reports_api import create_reports_app
    from serve_apps.sandbox.api import create_sandbox_app

    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test", patch={
            "access": {"approvers": ["U0VICTIM"], "api_approvals": True},
            "integrations": {"slack": {"bot_token": "xoxb-victim-0123456789"}},
            "schedules": [{"id": "victim-weekly", "cron": "0 9 * * 1", "kind": "digest"}]})
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=Trigger(
            source="api", delivery_id="victim", event_kind="api", thread={"channel": "C111", "ts": "1.0"}))
        s.add(ToolApproval(id="apr_victim", run_id=run.id, tool="kubernetes_restart_deployment", arguments={}))
        # A finished run with a pending proposed fix: the actions and postmortem routes have something
        # real to refuse (not merely an unknown id).
        action = {"id": "act_victim", "kind": "restart", "target": "shop/deployment/checkout",
                  "effect": "restart checkout", "tool": "kubernetes_restart_deployment",
                  "arguments": {"namespace": "shop", "deployment": "checkout"}}
        run.status, run.result = "succeeded", {"summary": "victim rca", "proposed_actions": [action]}
        s.add(ToolApproval(id="act_victim", run_id=run.id, tool="kubernetes_restart_deployment",
                           arguments=action["arguments"]))
        s.add(Report(id="rep_victim", org_id="acme", team_id="payments", kind="weekly", period_start=utcnow(),
                     period_end=utcnow(), content={"runs": 1}, chart_png=b"\x89PNG"))
        # A finished fire time of the victim's schedule: the outcomes list has something to leak.
        s.add(ScheduleClaim(schedule_key="acme:payments:victim-weekly", org_id="acme", team_id="payments",
                            schedule_id="victim-weekly", kind="digest", scheduled_for=utcnow(),
                            claimed_by="scheduler", status="done", report_id="rep_victim"))
        token_id = (await token_svc.list_tokens(s, org_id="acme"))[0]["token_id"]
        await s.commit()
    sandbox_store = SandboxStore(sqlite_url)
    session_row = await sandbox_store.create_session(session_id="sbx_victim", org_id="acme", team_id="payments",
                                                     workspace="/nowhere", ttl_s=3600, uid_base=400_000,
                                                     uid_count=1000, created_by="test")

    class NoBackend:
        """Refused cells must never reach the sandbox backend."""

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the sandbox backend was reached: {name}")

    apps = {
        "agent": create_agent_app(settings=settings, runner=NullRunner()),
        "reports": create_reports_app(settings),
        "config": create_app(settings),
        "tools": _tools_asgi_app(),
        "knowledge": create_knowledge_app(settings, bases=bases(tmp_path)),
        "sandbox": create_sandbox_app(backend=NoBackend(), settings=settings, store=sandbox_store,
                                      scheduling_for=lambda cfg, org, team: {},
                                      isolation=lambda: IsolationStatus(mode="unavailable", reason="matrix test")),
    }
    ids = {"run": run.id, "report": "rep_victim", "session": session_row.id, "token": token_id,
           "schedule": "victim-weekly"}
    callers = {"org_a": toks["globex"], "team_b": toks["acme/search"], "none": None,
               "victim": toks["acme/payments"]}
    yield apps, ids, callers, engine
    for app in apps.values():
        if hasattr(app.state, "engine"):
            await app.state.engine.dispose()
    await sandbox_store.close()
    await engine.dispose()


def routes_of(app) -> list[tuple[str, str]]:
    """``(method, path)`` of every API route, from the app's route table."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            out.extend((m, ctx.path) for m in sorted(ctx.methods - {"HEAD"}))
    return out


async def _row_counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        names = [r[0] for r in (await conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"))).all()]
        return {n: (await conn.execute(text(f'SELECT count(*) FROM "{n}"'))).scalar_one() for n in names}


async def test_every_route_has_a_matrix_entry(world):
    apps, *_ = world
    listed = {(name, m, p) for name, app in apps.items() for m, p in routes_of(app)}
    assert listed, "no routes found"
    assert sorted(listed - set(MATRIX)) == [], "routes without a cross-tenant matrix entry"
    assert sorted(set(MATRIX) - listed) == [], "matrix entries for routes that no longer exist"


@pytest.mark.parametrize("caller", CALLERS)
async def test_cross_tenant_matrix(world, caller):
    apps, ids, callers, engine = world
    token = callers[caller]
    failures: list[str] = []
    for (app_name, method, route), entry in sorted(MATRIX.items()):
        cell = entry.cell(caller)
        path = entry.path.format(**ids)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        before = await _row_counts(engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[app_name]), base_url="http://t") as c:
            body = cell.body if cell.body is not None else entry.body
            resp = await c.request(method, path, json=body, headers=headers) if body is not None \
                else await c.request(method, path, headers=headers)
        where = f"{app_name} {method} {route} as {caller}"
        if cell.kind == PUBLIC:
            if resp.status_code != 200:
                failures.append(f"{where}: public route answered {resp.status_code}")
            continue
        if cell.kind == SCOPED:
            try:
                cell.check(resp, ids)
            except AssertionError as exc:
                failures.append(f"{where}: {exc}")
            continue
        expected = (401,) if caller == "none" else cell.statuses
        if resp.status_code not in expected:
            failures.append(f"{where}: {resp.status_code} not in {expected}: {resp.text[:160]}")
        for value in (ids["run"], ids["session"]):
            if value in resp.text and value not in path:
                failures.append(f"{where}: the answer names the victim's {value}")
        after = await _row_counts(engine)
        changed = {t: (before[t], after.get(t)) for t in before if before[t] != after.get(t)}
        if changed:
            failures.append(f"{where}: rows changed {changed}")
    assert failures == [], "\n".join(failures)


# SCOPED lists whose check must fail for the victim itself: the world gives them something to leak, so
# their cells above cannot pass merely because the victim's data is not there.
VICTIM_SEES = (("agent", "GET", "/runs"), ("agent", "GET", "/stats"), ("reports", "GET", "/"),
               ("reports", "GET", "/schedules"), ("reports", "GET", "/schedules/outcomes"),
               ("sandbox", "GET", "/sessions"))


@pytest.mark.parametrize("key", VICTIM_SEES, ids=lambda k: f"{k[0]} {k[1]} {k[2]}")
async def test_scoped_lists_show_the_victim_its_own_data(world, key):
    apps, ids, callers, _ = world
    entry = MATRIX[key]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[key[0]]), base_url="http://t") as c:
        resp = await c.get(entry.path.format(**ids), headers={"Authorization": f"Bearer {callers['victim']}"})
    assert resp.status_code == 200, resp.text
    with pytest.raises(AssertionError):
        entry.cell("team_b").check(resp, ids)
