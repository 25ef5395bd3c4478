"""Approvers (issue 12, point 5): approving a mutating tool call needs an approver allowed by the
team's ``access`` config, over the API and from Slack; everyone else is refused (403 / an ephemeral
message) and nothing changes; decisions and refusals land in the config service's audit log.

Slack is a local aiohttp server speaking ``usergroups.users.list`` and ``chat.postEphemeral``.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiohttp import web
from gateway_kit import ADMIN_TOKEN, make_core, seed_tenants, settings_for
from sqlalchemy import select

from config_service.db.models import AuditEvent
from config_service.services import config as config_svc
from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval
from incidentfox.runs.runner import NullRunner
from serve_apps import deliveries
from serve_apps.agent_api import create_agent_app

BOT = "xoxb-team-bot-token-0123456789"


class FakeSlack:
    """``usergroups.users.list`` from ``groups``; records ``chat.postEphemeral`` calls."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.ephemeral = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = {**dict(request.query), **dict(await request.post())}
        self.calls.append((method, {k: str(v) for k, v in args.items()}, request.headers.get("Authorization", "")))
        if method == "usergroups.users.list":
            users = self.groups.get(str(args.get("usergroup")))
            return web.json_response({"ok": True, "users": users} if users is not None
                                     else {"ok": False, "error": "no_such_subteam"})
        if method == "chat.postEphemeral":
            self.ephemeral.set()
            return web.json_response({"ok": True, "message_ts": "1.1"})
        return web.json_response({"ok": False, "error": "unknown_method"})


@pytest.fixture
async def slack(monkeypatch):
    fake = FakeSlack({"S0ONCALL": ["U0CAROL"]})
    app = web.Application()
    app.router.add_route("*", "/api/{method}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    monkeypatch.setenv("INCIDENTFOX_SLACK_API_URL", f"http://127.0.0.1:{port}/api/")
    yield fake
    await runner.cleanup()


@pytest.fixture
async def world(sqlite_url, tmp_path):
    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test", patch={
            "access": {"approvers": ["U0ALICE", "S0ONCALL"]}, "integrations": {"slack": {"bot_token": BOT}}})
        run = await store.create_run(s, org_id="acme", team_id="payments",
                                     trigger=Trigger(source="api", delivery_id="d1", event_kind="api"))
        for i in range(1, 6):
            s.add(ToolApproval(id=f"apr_{i}", run_id=run.id, tool="kubernetes_restart_deployment",
                               arguments={"name": "checkout"}))
        await s.commit()
    yield settings, toks, sessions, run.id
    await engine.dispose()


async def _audit(sessions, action_prefix: str = "approval.") -> list[AuditEvent]:
    async with sessions() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(action_prefix))
                                     .order_by(AuditEvent.id))).all())


async def _status(sessions, approval_id: str) -> str:
    async with sessions() as s:
        return (await s.get(ToolApproval, approval_id, populate_existing=True)).status


async def test_api_team_tokens_need_opt_in_admins_may_and_all_is_audited(world):
    settings, toks, sessions, run_id = world
    app = create_agent_app(settings=settings, runner=NullRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        def post(token, apr, decision="approve"):
            return c.post(f"/runs/{run_id}/approvals/{apr}", json={"decision": decision},
                          headers={"Authorization": f"Bearer {token}"})

        r = await post(toks["acme/payments"], "apr_1")
        assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "api_approvals_disabled"
        assert await _status(sessions, "apr_1") == "pending"
        assert (await post(toks["globex"], "apr_1")).status_code == 404          # other org: not even there
        assert (await post(toks["acme/search"], "apr_1")).status_code == 404     # other team: same
        r = await post(toks["acme"], "apr_1")                                     # the run's org admin
        assert r.status_code == 200 and await _status(sessions, "apr_1") == "approved"
        r = await post(ADMIN_TOKEN, "apr_2", "deny")
        assert r.status_code == 200 and await _status(sessions, "apr_2") == "denied"
        async with sessions() as s:
            await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test",
                                          patch={"access": {"api_approvals": True}})
            await s.commit()
        assert (await post(toks["acme/payments"], "apr_3")).status_code == 200
    await app.state.engine.dispose()
    entries = [(e.action, e.actor, e.target, e.org_id, e.diff.get("approval_id"), e.diff.get("tool"))
               for e in await _audit(sessions)]
    tool = "kubernetes_restart_deployment"
    assert entries[0][0] == "approval.refused" and entries[0][2:] == (f"run:{run_id}", "acme", "apr_1", tool)
    assert entries[1:] == [("approval.approved", entries[1][1], f"run:{run_id}", "acme", "apr_1", tool),
                           ("approval.denied", "admin", f"run:{run_id}", "acme", "apr_2", tool),
                           ("approval.approved", entries[3][1], f"run:{run_id}", "acme", "apr_3", tool)]
    assert entries[1][1].startswith("token:") and entries[3][1].startswith("token:")


def _press(run_id: str, approval_id: str, user: str, verb: str = "approve", n: int = 0) -> Trigger:
    return Trigger(source="slack", delivery_id=f"press-{approval_id}-{user}-{n}", event_kind="block_actions",
                   action=TriggerAction.INTERACTION, human=True, actor=user,
                   thread={"channel": "C111", "ts": "1.0"},
                   interaction={"action": verb, "user": user, "run_id": run_id, "data": {"approval_id": approval_id}})


ROUTE = deliveries.Route(True, "acme", "payments")


async def test_slack_non_approver_gets_an_ephemeral_refusal_and_nothing_changes(world, slack, sqlite_url):
    _, _, sessions, run_id = world
    core = make_core(sqlite_url)
    result = await deliveries.intake(core.sessions, trigger=_press(run_id, "apr_1", "U0MALLORY"), route=ROUTE,
                                     payload="")
    assert result.outcome == "rejected" and await _status(sessions, "apr_1") == "pending"
    await asyncio.wait_for(slack.ephemeral.wait(), 10)
    from actors.engine.approvals import REFUSALS

    await REFUSALS.drain(10)
    (_method, args, auth), = [c for c in slack.calls if c[0] == "chat.postEphemeral"]
    assert args["user"] == "U0MALLORY" and args["channel"] == "C111" and auth == f"Bearer {BOT}"
    assert "not an approver" in args["text"] and BOT not in args["text"]
    (entry,) = await _audit(sessions)
    assert (entry.action, entry.actor, entry.diff["reason"], entry.diff["decision"]) == \
        ("approval.refused", "slack:U0MALLORY", "not_an_approver", "approve")
    async with sessions() as s:
        notes = [e for e in await store.list_events(s, run_id=run_id) if e.kind == "note"]
        assert notes == []
    await core.engine.dispose()


async def test_slack_listed_user_and_user_group_member_may_decide(world, slack, sqlite_url):
    _, _, sessions, run_id = world
    core = make_core(sqlite_url)
    ok = await deliveries.intake(core.sessions, trigger=_press(run_id, "apr_1", "U0ALICE"), route=ROUTE, payload="")
    assert ok.outcome == "interaction" and await _status(sessions, "apr_1") == "approved"
    via_group = await deliveries.intake(core.sessions, trigger=_press(run_id, "apr_2", "U0CAROL", "deny"),
                                        route=ROUTE, payload="")
    assert via_group.outcome == "interaction" and await _status(sessions, "apr_2") == "denied"
    lookups = [c for c in slack.calls if c[0] == "usergroups.users.list"]
    assert [c[1]["usergroup"] for c in lookups] == ["S0ONCALL"]      # Alice is listed directly: no lookup
    assert [(e.action, e.actor) for e in await _audit(sessions)] == [
        ("approval.approved", "slack:U0ALICE"), ("approval.denied", "slack:U0CAROL")]
    await core.engine.dispose()


async def test_slack_team_without_approvers_refuses_everyone(world, slack, sqlite_url):
    settings, _, sessions, run_id = world
    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test",
                                      patch={"access": {"approvers": []}})
        await s.commit()
    core = make_core(sqlite_url)
    result = await deliveries.intake(core.sessions, trigger=_press(run_id, "apr_1", "U0ALICE"), route=ROUTE,
                                     payload="")
    assert result.outcome == "rejected" and await _status(sessions, "apr_1") == "pending"
    await asyncio.wait_for(slack.ephemeral.wait(), 10)
    (entry,) = await _audit(sessions)
    assert entry.diff["reason"] == "no_approvers_configured"
    await core.engine.dispose()


async def test_group_lookup_failure_fails_closed():
    from actors.engine.approvals import Approvers, ApproverVerdict, check_slack_approver, slack_group_members

    members_of = slack_group_members(bot_token=BOT, base_url="http://127.0.0.1:9/api/")   # nothing listens
    verdict = await check_slack_approver(Approvers(groups=frozenset({"S0ONCALL"})), user="U0CAROL",
                                         members_of=members_of)
    assert verdict is ApproverVerdict.NOT_AN_APPROVER


def test_access_section_parsing_is_total():
    from actors.engine.approvals import Approvers

    assert Approvers.from_config(None) == Approvers()
    assert Approvers.from_config({"access": "x"}) == Approvers()
    assert Approvers.from_config({"access": {"approvers": "U1"}}) == Approvers()
    a = Approvers.from_config({"access": {"approvers": ["U1", " S2 ", 3, "", "W3"], "api_approvals": "yes"}})
    assert a == Approvers(users=frozenset({"U1", "W3"}), groups=frozenset({"S2"}), api_approvals=False)


async def test_an_approver_of_another_team_decides_nothing_on_this_teams_run(world, slack, sqlite_url):
    """Approvers are the run's team's, never the approver's own team's: a user who approves for
    acme/search (and that team's token, with api_approvals on) cannot decide acme/payments'
    approvals, whether the press arrives in search's channel or payments', nor by naming search's
    own run with payments' approval id. Nothing changes."""
    settings, toks, sessions, run_id = world
    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="search", actor="test", patch={
            "access": {"approvers": ["U0SEARCHER"], "api_approvals": True},
            "routing": {"slack_channel_ids": ["CSEARCH"]}, "integrations": {"slack": {"bot_token": BOT}}})
        own = await store.create_run(s, org_id="acme", team_id="search",
                                     trigger=Trigger(source="api", delivery_id="d-search", event_kind="api"))
        await s.commit()
    core = make_core(sqlite_url)
    for n, route in enumerate((deliveries.Route(True, "acme", "search"), ROUTE)):
        result = await deliveries.intake(core.sessions, trigger=_press(run_id, "apr_1", "U0SEARCHER", n=n),
                                         route=route, payload="")
        assert result.outcome == "rejected", result
    crossed = await deliveries.intake(core.sessions, trigger=_press(own.id, "apr_1", "U0SEARCHER", n=99),
                                      route=deliveries.Route(True, "acme", "search"), payload="")
    assert crossed.outcome == "rejected" and crossed.run_id != run_id
    app = create_agent_app(settings=settings, runner=NullRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        hdr = {"Authorization": f"Bearer {toks['acme/search']}"}
        r = await c.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "approve"}, headers=hdr)
        assert r.status_code == 404
        r = await c.post(f"/runs/{own.id}/approvals/apr_1", json={"decision": "approve"}, headers=hdr)
        assert r.status_code == 409 and r.json()["error"]["code"] == "approval_not_pending"
    await app.state.engine.dispose()
    assert await _status(sessions, "apr_1") == "pending"
    assert [e.action for e in await _audit(sessions) if e.action != "approval.refused"] == []
    await core.engine.dispose()
