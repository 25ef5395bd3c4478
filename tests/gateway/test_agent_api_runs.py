"""The agent API over HTTP (ASGI): start, read, list, cancel and stream runs; tenant isolation;
operators' delivery listing and redrive. Tokens come from the real config service services."""

from __future__ import annotations

import json

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, RecordingRunner, seed_tenants, settings_for
from links_kit import app_and_path

from incidentfox.links import run_url
from incidentfox.runs import store
from incidentfox.runs.runner import CompletingRunner
from serve_apps.agent_api import create_agent_app


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    runner = CompletingRunner(database_url=db_url)
    app = create_agent_app(settings=settings, runner=runner, sse_poll_s=0.05, sse_max_s=5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield app, client, toks
    await app.state.engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _settle(app):
    await app.state.dispatch_tasks.drain(10)


async def test_team_token_starts_a_run_that_the_runner_completes(api):
    app, client, toks = api
    r = await client.post("/run", json={"text": "why is checkout slow?", "services": ["Checkout"]},
                          headers=auth(toks["acme/payments"]))
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    await _settle(app)
    r = await client.get(f"/runs/{run_id}", headers=auth(toks["acme/payments"]))
    assert r.status_code == 200
    view = r.json()
    assert view["status"] == "succeeded" and view["team"] == "payments" and view["result"]["summary"]
    assert view["trigger"]["services"] == ["checkout"] and view["trigger"]["source"] == "api"
    for key in ("created_at", "started_at", "finished_at", "events", "tool_calls"):
        assert key in view


async def test_the_run_link_in_slack_messages_is_served_by_the_agent_api(api):
    app, client, toks = api
    run_id = (await client.post("/run", json={"text": "x"}, headers=auth(toks["acme/payments"]))).json()["run_id"]
    await _settle(app)
    app_name, path = app_and_path(run_url("https://fox.example.com", run_id), public_url="https://fox.example.com")
    assert app_name == "agent"
    r = await client.get(path, headers=auth(toks["acme/payments"]))
    assert r.status_code == 200 and r.json()["run_id"] == run_id


async def test_idempotency_key_returns_the_same_run(api):
    app, client, toks = api
    h = {**auth(toks["acme/payments"]), "Idempotency-Key": "k-1"}
    a = await client.post("/run", json={"text": "x"}, headers=h)
    b = await client.post("/run", json={"text": "x"}, headers=h)
    assert a.json()["run_id"] == b.json()["run_id"] and b.json()["duplicate"] is True
    await _settle(app)


async def test_an_idempotency_key_sent_again_with_another_request_is_422(api):
    """A key is one request: sent again with another body it is the caller's mistake, answered 422
    without the first run's id and without starting anything; the same request (after the same
    normalisation) is still the retry it was."""
    app, client, toks = api
    h = {**auth(toks["acme/payments"]), "Idempotency-Key": "k-2"}
    body = {"text": "checkout is down", "services": ["checkout"]}
    first = await client.post("/runs", json=body, headers=h)
    assert first.status_code == 202, first.text
    for other in ({**body, "text": "payments is down"}, {"text": "checkout is down"}, {**body, "links": ["https://x.example"]},
                  {**body, "title": "another title"}, {**body, "identifiers": {"namespace": "prod"}}):
        r = await client.post("/runs", json=other, headers=h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused", r.text
        assert first.json()["run_id"] not in r.text
    again = await client.post("/runs", json={**body, "services": [" Checkout"]}, headers=h)
    assert again.status_code == 202 and again.json() == {**first.json(), "duplicate": True}
    await _settle(app)
    async with app.state.session_factory() as s:
        assert [r.id for r in await store.list_runs(s, org_id="acme", team_id="payments")] == [first.json()["run_id"]]


async def test_tenant_isolation_is_404_and_lists_are_scoped(api):
    app, client, toks = api
    mine = (await client.post("/run", json={"text": "a"}, headers=auth(toks["acme/payments"]))).json()["run_id"]
    theirs = (await client.post("/run", json={"text": "b"}, headers=auth(toks["globex/ops"]))).json()["run_id"]
    await _settle(app)
    assert (await client.get(f"/runs/{theirs}", headers=auth(toks["acme/payments"]))).status_code == 404
    assert (await client.get(f"/runs/{mine}", headers=auth(toks["acme/search"]))).status_code == 404
    assert (await client.post(f"/runs/{theirs}/cancel", headers=auth(toks["acme/payments"]))).status_code == 404
    assert (await client.get(f"/runs/{theirs}/events", headers=auth(toks["acme/payments"]))).status_code == 404
    listed = (await client.get("/runs", headers=auth(toks["acme/payments"]))).json()["runs"]
    assert [r["run_id"] for r in listed] == [mine]
    sneaky = (await client.get("/runs?org=globex&team=ops", headers=auth(toks["acme/payments"]))).json()
    assert sneaky["runs"] == []
    org_admin = (await client.get("/runs", headers=auth(toks["acme"]))).json()["runs"]
    assert [r["run_id"] for r in org_admin] == [mine]
    everyone = (await client.get("/runs", headers=auth(ADMIN_TOKEN))).json()["runs"]
    assert {r["run_id"] for r in everyone} == {mine, theirs}
    by_team = (await client.get("/runs?org=globex&team=ops", headers=auth(ADMIN_TOKEN))).json()["runs"]
    assert [r["run_id"] for r in by_team] == [theirs]


async def test_auth_is_required_and_checked_before_the_body(api):
    app, client, toks = api
    assert (await client.post("/run", json={"text": "x"})).status_code == 401
    r = await client.post("/run", content=b"{not json", headers=auth("acme.payments.bogus"))
    assert r.status_code == 401
    r = await client.post("/run", json={"text": "x", "org": "globex", "team": "ops"}, headers=auth(toks["acme"]))
    assert r.status_code == 403
    r = await client.post("/run", json={"text": "x"}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 400 and r.json()["error"]["code"] == "team_required"
    r = await client.post("/run", json={"text": "x", "org": "globex", "team": "ops"}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 202
    r = await client.post("/run", json={"text": ""}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 422
    await _settle(app)


async def test_cancel_a_queued_run(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    runner = RecordingRunner()   # leaves runs queued
    app = create_agent_app(settings=settings, runner=runner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        run_id = (await client.post("/run", json={"text": "x"}, headers=auth(toks["acme/payments"]))).json()["run_id"]
        r = await client.post(f"/runs/{run_id}/cancel", headers=auth(toks["acme/payments"]))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await client.get(f"/runs/{run_id}", headers=auth(toks["acme/payments"]))).json()["status"] \
            == "cancelled"
    await app.state.engine.dispose()


async def test_events_stream_as_sse_until_terminal(api):
    app, client, toks = api
    run_id = (await client.post("/run", json={"text": "x"}, headers=auth(toks["acme/payments"]))).json()["run_id"]
    await _settle(app)
    async with app.state.session_factory() as s:
        await store.append_event(s, run_id=run_id, kind="phase", data={"phase": "planning"})
        await s.commit()
    r = await client.get(f"/runs/{run_id}/events", headers=auth(toks["acme/payments"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    text = r.text
    assert "event: status" in text and "event: phase" in text and '"planning"' in text
    assert text.rstrip().endswith('event: end\ndata: {"status": "succeeded"}')
    assert "\r" not in text   # the same LF framing as ever: every event is "id: n\nevent: k\ndata: {...}\n\n"
    for chunk in text.strip().split("\n\n")[:-1]:
        if not chunk.startswith(":"):   # a keep-alive comment
            seq, kind, data = chunk.split("\n")
            assert seq.startswith("id: ") and kind.startswith("event: ") and json.loads(data.removeprefix("data: "))
    r = await client.get(f"/runs/{run_id}/events?after=100", headers=auth(toks["acme/payments"]))
    assert "event: phase" not in r.text and "event: end" in r.text


async def test_operators_list_unrouted_and_failed_deliveries_and_redrive(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    runner = RecordingRunner(fail=True)
    app = create_agent_app(settings=settings, runner=runner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        run_id = (await client.post("/run", json={"text": "x"}, headers=auth(toks["acme/payments"]))).json()["run_id"]
        await _settle(app)
        assert (await client.get("/deliveries?failed=true", headers=auth(toks["acme/payments"]))).status_code == 403
        failed = (await client.get("/deliveries?failed=true", headers=auth(ADMIN_TOKEN))).json()["deliveries"]
        assert [d["run_id"] for d in failed] == [run_id] and "executor unavailable" in failed[0]["dispatch_error"]
        assert (await client.get("/deliveries?failed=true", headers=auth(toks["globex"]))).json()["deliveries"] == []
        assert (await client.post("/deliveries/redrive", json={}, headers=auth(toks["acme"]))).status_code == 403
        runner.fail = False
        r = await client.post("/deliveries/redrive", json={}, headers=auth(ADMIN_TOKEN))
        assert r.status_code == 200 and r.json()["redriven"] == [failed[0]["id"]]
        assert runner.submitted == [run_id]
        unrouted = (await client.get("/deliveries?outcome=unrouted", headers=auth(ADMIN_TOKEN))).json()
        assert unrouted["deliveries"] == []
    await app.state.engine.dispose()
