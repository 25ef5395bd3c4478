"""Approving or denying a mutating tool call over the API: only the run's own team, only once,
recorded as a run event with who decided."""

from __future__ import annotations

import httpx
import pytest
from gateway_kit import seed_tenants, settings_for

from incidentfox.contracts import Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval
from incidentfox.runs.runner import NullRunner
from serve_apps.agent_api import create_agent_app


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    engine = make_async_engine(db_url)
    async with session_factory(engine)() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments",
                                     trigger=Trigger(source="api", delivery_id="d1", event_kind="api"))
        s.add(ToolApproval(id="apr_1", run_id=run.id, tool="kubernetes_restart_deployment",
                           arguments={"name": "checkout"}))
        await s.commit()
    app = create_agent_app(settings=settings, runner=NullRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield client, toks, run.id, session_factory(engine), settings
    await app.state.engine.dispose()
    await engine.dispose()


async def allow_api_approvals(sessions, settings) -> None:
    from config_service.services import config as config_svc

    async with sessions() as s:
        # The test's own settings (their Fernet key): the process-wide ones depend on test order.
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test",
                                      patch={"access": {"api_approvals": True}})
        await s.commit()


async def test_team_approves_once_and_the_decision_is_recorded(api):
    client, toks, run_id, sessions, settings = api
    other = {"Authorization": f"Bearer {toks['acme/search']}"}
    mine = {"Authorization": f"Bearer {toks['acme/payments']}"}
    r = await client.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "approve"}, headers=other)
    assert r.status_code == 404                         # another team cannot even see the run
    r = await client.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "maybe"}, headers=mine)
    assert r.status_code == 422
    r = await client.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "approve"}, headers=mine)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_approver"   # team tokens need opt-in
    await allow_api_approvals(sessions, settings)
    r = await client.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "approve"}, headers=mine)
    assert r.status_code == 200 and r.json()["decision"] == "approve"
    again = await client.post(f"/runs/{run_id}/approvals/apr_1", json={"decision": "deny"}, headers=mine)
    assert again.status_code == 409 and again.json()["error"]["code"] == "approval_not_pending"
    async with sessions() as s:
        row = await s.get(ToolApproval, "apr_1")
        assert row.status == "approved" and row.decided_by
        notes = [e.data for e in await store.list_events(s, run_id=run_id) if e.kind == "note"]
        assert notes[-1]["approval"] == "apr_1" and notes[-1]["decision"] == "approved"
