"""Proposed fixes over the agent API: only the run's team sees them, only an allowed approver decides,
an approved one runs its tool call through the ToolExecutor path against a local Kubernetes API
server once, and every error is JSON naming the problem."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from gateway_kit import seed_tenants, settings_for
from sqlalchemy import select

from actors.engine.actions import ActionRunner, add_proposals
from actors.engine.offline_planner import rca_from_evidence
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.contracts import RCA, ProposedAction, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval, ToolCall
from incidentfox.runs.runner import NullRunner
from serve_apps.agent_api import create_agent_app
from tests.engine.test_proposed_actions import ALL, TOKEN, T, _deploy_bundle
from tests.kube_api_kit import kube_api
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP


async def _configure(sessions, settings, *, kube_url: str, api_approvals: bool) -> None:
    from config_service.services import config as config_svc

    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test", patch={
            "access": {"api_approvals": api_approvals},
            "tools": {"kubernetes_rollback_deployment": True},
            "integrations": {"slack": {"bot_token": "xoxb-actions-test"},
                             "kubernetes": {"host": kube_url, "token": TOKEN,
                                            "ca_cert": local_pki().ca.cert.decode()}}})
        await s.commit()


@pytest.fixture
async def api(db_url, tmp_path):
    async with kube_api() as kube:
        async for value in _api(db_url, tmp_path, kube):
            yield value


async def _api(db_url, tmp_path, kube: FakeHTTP):
    slack = SlackRecorder()
    await slack.start()
    settings = settings_for(db_url, tmp_path).model_copy(update={"slack_api_url": slack.url})
    toks = await seed_tenants(db_url, settings)
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    await _configure(sessions, settings, kube_url=kube.url, api_approvals=False)
    rca = rca_from_evidence(_deploy_bundle(), now=T + timedelta(minutes=5), allowed=ALL)
    revert = ProposedAction(id="act_revert", kind="revert", target="checkout", effect="revert", tool=None)
    rca.proposed_actions.append(revert)
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments",
                                     trigger=Trigger(source="api", delivery_id="d1", event_kind="api"))
        run.status, run.result = "succeeded", rca.model_dump(mode="json")
        run.thread_channel, run.thread_ts, run.slack_message = "C111", "1.0", {"channel": "C111", "ts": "1.1"}
        await add_proposals(s, run_id=run.id, rca=rca)
        await s.commit()
    app = create_agent_app(settings=settings, runner=NullRunner(),
                           actions=ActionRunner(sessions, settings=settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield client, toks, run.id, rca.proposed_actions[0], sessions, settings, kube, slack
    await app.state.engine.dispose()
    await engine.dispose()
    await slack.stop()


def _patches(kube: FakeHTTP) -> list:
    return [c for c in kube.calls("/apis/apps/v1/namespaces/shop/deployments/checkout") if c.method == "PATCH"]


async def test_only_an_allowed_approver_runs_it_once(api) -> None:
    client, toks, run_id, action, sessions, settings, kube, slack = api
    mine = {"Authorization": f"Bearer {toks['acme/payments']}"}
    other = {"Authorization": f"Bearer {toks['acme/search']}"}
    url = f"/runs/{run_id}/actions/{action.id}"
    r = await client.post(f"{url}/approve", headers=other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"
    r = await client.post(f"/runs/{run_id}/actions/act_nope/approve", headers=mine)
    assert r.status_code == 404 and r.json()["error"]["code"] == "action_not_found"
    r = await client.post(f"/runs/{run_id}/actions/act_revert/approve", headers=mine)
    assert r.status_code == 409 and r.json()["error"]["code"] == "action_not_runnable"
    r = await client.post(f"{url}/approve", headers=mine)   # a team token is no approver by default
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_approver"
    r = await client.post(f"/runs/{run_id}/approvals/{action.id}", json={"decision": "approve"}, headers=mine)
    assert r.status_code == 409 and r.json()["error"]["code"] == "use_actions_route"
    assert _patches(kube) == []
    async with sessions() as s:
        assert (await s.get(ToolApproval, action.id)).status == "pending"

    await _configure(sessions, settings, kube_url=kube.url, api_approvals=True)
    r = await client.post(f"{url}/approve", headers=mine)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "executed" and body["approved_by"] and "to revision 6" in body["result"]
    [patch] = _patches(kube)
    assert patch.json()["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/checkout:v2.13.1"
    again = await client.post(f"{url}/approve", headers=mine)
    assert again.status_code == 409 and again.json()["error"]["code"] == "action_not_pending"
    assert again.json()["error"]["details"]["status"] == "executed" and len(_patches(kube)) == 1
    async with sessions() as s:
        [call] = (await s.scalars(select(ToolCall).where(ToolCall.run_id == run_id))).all()
        assert (call.tool, call.agent, call.status) == ("kubernetes_rollback_deployment", "action", "ok")
    # The result is posted into the run's thread, with who approved it.
    [post] = slack.calls_to("chat.postMessage")
    assert post.args["channel"] == "C111" and post.args["thread_ts"] == "1.0"
    assert "Proposed fix executed (approved by" in post.args["text"] and "to revision 6" in post.args["text"]
    assert TOKEN not in post.args["text"]


async def test_denied_never_runs(api) -> None:
    client, toks, run_id, action, _sessions, _settings, kube, _slack = api
    admin = {"Authorization": f"Bearer {toks['acme']}"}
    url = f"/runs/{run_id}/actions/{action.id}"
    r = await client.post(f"{url}/deny", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "denied"
    r = await client.post(f"{url}/approve", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["details"]["status"] == "denied"
    assert _patches(kube) == []


async def test_a_tool_removed_from_the_allow_list_is_refused_at_run_time(api) -> None:
    client, toks, run_id, action, sessions, settings, kube, _slack = api
    from config_service.services import config as config_svc

    async with sessions() as s:
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test",
                                      patch={"tools": {"kubernetes_rollback_deployment": False}})
        await s.commit()
    r = await client.post(f"/runs/{run_id}/actions/{action.id}/approve", headers={"Authorization": f"Bearer {toks['acme']}"})
    assert r.status_code == 200 and r.json()["status"] == "failed" and "allow-list" in r.json()["result"]
    assert _patches(kube) == []


def test_rca_without_actions_still_parses() -> None:
    assert RCA(summary="x").proposed_actions == []


async def test_an_approved_action_is_called_with_the_teams_routing_claims(api) -> None:
    """ActionRunner hands the tool the run's team's routing (what github_open_revert_pr checks the
    repository against), read from the team's config, never from the action."""
    from types import SimpleNamespace

    from actors.tools.base import ToolResult

    _client, _toks, run_id, action, sessions, settings, _kube, _slack = api
    seen = []

    class Executor:
        async def call(self, req):
            seen.append(req)
            return SimpleNamespace(result=ToolResult.success({}))

        def forget(self, run_id: str) -> None:
            pass

    runner = ActionRunner(sessions, settings=settings)
    runner._executor = Executor()
    async with sessions() as s:
        run = await store.get_run(s, run_id)
    await runner.call_tool(run, action)
    [req] = seen
    assert req.routing["slack_channel_ids"] == ["C111"] and req.routing["pagerduty_service_ids"] == ["PA2P440"]
