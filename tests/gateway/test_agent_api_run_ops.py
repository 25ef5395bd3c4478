"""What the console's runs pages read and do over the agent API: the runs list filtered by source
and time, a run's approvals, rerun (a new run with the same trigger, linked, scoped like starting
one), and the overview statistics, each scoped to what the token may see."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, RecordingRunner, seed_tenants, settings_for
from sqlalchemy import select, update

from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Delivery, Run, ToolApproval
from serve_apps.agent_api import create_agent_app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    runner = RecordingRunner()
    app = create_agent_app(settings=settings, runner=runner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield app, client, toks, runner
    await app.state.dispatch_tasks.drain(10)
    await app.state.engine.dispose()


async def start(client, token: str, text: str = "why is checkout slow?") -> str:
    r = await client.post("/runs", json={"text": text, "services": ["checkout"]}, headers=auth(token))
    assert r.status_code == 202, r.text
    return r.json()["run_id"]


async def set_run(app, run_id: str, **values) -> None:
    async with app.state.session_factory() as s:
        await s.execute(update(Run).where(Run.id == run_id).values(**values))
        await s.commit()


async def test_runs_filter_by_source_and_time(api):
    app, client, toks, _ = api
    old, new = await start(client, toks["acme/payments"]), await start(client, toks["acme/payments"])
    now = utcnow()
    await set_run(app, old, created_at=now - timedelta(days=3), source="pagerduty")
    pay = toks["acme/payments"]

    by_source = (await client.get("/runs", params={"source": "pagerduty"}, headers=auth(pay))).json()
    assert [r["run_id"] for r in by_source["items"]] == [old]
    since = (now - timedelta(days=1)).isoformat()
    recent = (await client.get("/runs", params={"since": since}, headers=auth(pay))).json()
    assert [r["run_id"] for r in recent["items"]] == [new]
    until = (now - timedelta(days=1)).replace(tzinfo=None).isoformat()    # naive: read as UTC
    older = (await client.get("/runs", params={"until": until}, headers=auth(pay))).json()
    assert [r["run_id"] for r in older["items"]] == [old]
    bad = await client.get("/runs", params={"since": now.isoformat(), "until": since}, headers=auth(pay))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_window"
    assert (await client.get("/runs", params={"since": "yesterday"}, headers=auth(pay))).status_code == 422
    # another team's filter is an empty page, not an error
    other = (await client.get("/runs", params={"team": "payments"}, headers=auth(toks["acme/search"]))).json()
    assert other["items"] == [] and other["next_cursor"] is None


async def test_get_run_lists_its_approvals(api):
    app, client, toks, _ = api
    run_id = await start(client, toks["acme/payments"])
    async with app.state.session_factory() as s:
        s.add(ToolApproval(id="apr_1", run_id=run_id, tool="kubernetes_rollout_restart",
                           arguments={"deployment": "checkout"}, status="pending", requested_at=utcnow()))
        s.add(ToolApproval(id="act_1", run_id=run_id, tool="github_open_revert_pr", arguments={},
                           status="denied", requested_at=utcnow() + timedelta(seconds=1), decided_by="ops"))
        await s.commit()
    view = (await client.get(f"/runs/{run_id}", headers=auth(toks["acme/payments"]))).json()
    assert [(a["approval_id"], a["kind"], a["status"]) for a in view["approvals"]] == [
        ("apr_1", "tool_call", "pending"), ("act_1", "action", "denied")]
    assert view["approvals"][0]["arguments"] == {"deployment": "checkout"}


async def test_rerun_starts_the_same_trigger_linked_and_dispatched(api):
    app, client, toks, runner = api
    original = await start(client, toks["acme/payments"], "checkout p99 doubled")
    await app.state.dispatch_tasks.drain(10)
    await set_run(app, original, status="failed", finished_at=utcnow())

    r = await client.post(f"/runs/{original}/rerun", headers={**auth(toks["acme/payments"]),
                                                                "Idempotency-Key": "k1"})
    assert r.status_code == 202, r.text
    new = r.json()["run_id"]
    assert new != original and r.json()["rerun_of"] == original
    again = await client.post(f"/runs/{original}/rerun", headers={**auth(toks["acme/payments"]),
                                                                    "Idempotency-Key": "k1"})
    assert again.json() == {"run_id": new, "rerun_of": original, "duplicate": True}
    await app.state.dispatch_tasks.drain(10)
    assert runner.submitted == [original, new]

    view = (await client.get(f"/runs/{new}", headers=auth(toks["acme/payments"]))).json()
    first = (await client.get(f"/runs/{original}", headers=auth(toks["acme/payments"]))).json()
    assert view["status"] == "queued" and view["trigger"]["text"] == first["trigger"]["text"]
    assert view["events"][0]["data"]["rerun_of"] == original
    async with app.state.session_factory() as s:   # recorded as a delivery: the sweep can repair it
        row = (await s.scalars(select(Delivery).where(Delivery.run_id == new))).one()
        assert row.dispatched_at is not None and row.outcome == "interaction"

    # admins over the team may; another team or org sees no such run
    assert (await client.post(f"/runs/{original}/rerun", headers=auth(toks["acme"]))).status_code == 202
    for token in (toks["acme/search"], toks["globex"], toks["globex/ops"]):
        denied = await client.post(f"/runs/{original}/rerun", headers=auth(token))
        assert denied.status_code == 404 and denied.json()["error"]["code"] == "run_not_found"
    assert (await client.post("/runs/run_nope/rerun", headers=auth(ADMIN_TOKEN))).status_code == 404
    async with app.state.session_factory() as s:
        assert len(await store.list_runs(s, org_id="acme", team_id="payments")) == 3


async def test_stats_per_team_and_scoped(api):
    app, client, toks, _ = api
    now = utcnow()
    pay = [await start(client, toks["acme/payments"]) for _ in range(3)]
    search = await start(client, toks["acme/search"])
    glob = await start(client, toks["globex/ops"])
    await set_run(app, pay[0], status="succeeded", first_message_at=now + timedelta(seconds=2),
                  created_at=now, finished_at=now + timedelta(seconds=40))
    await set_run(app, pay[1], status="succeeded", first_message_at=now + timedelta(seconds=4),
                  created_at=now, finished_at=now + timedelta(seconds=60))
    await set_run(app, pay[2], status="failed", created_at=now - timedelta(days=2), finished_at=now)
    await set_run(app, search, status="cancelled")
    await set_run(app, glob, status="succeeded", created_at=now, finished_at=now + timedelta(seconds=5))

    body = (await client.get("/stats", params={"since": (now - timedelta(days=6)).isoformat(),
                                               "until": (now + timedelta(hours=1)).isoformat()},
                             headers=auth(toks["acme"]))).json()
    teams = {t["team"]: t for t in body["teams"]}
    assert set(teams) == {"payments", "search"}          # the org admin sees its org only
    p = teams["payments"]
    assert (p["runs"], p["succeeded"], p["failed"], p["success_rate"]) == (3, 2, 1, 0.6667)
    assert p["time_to_first_message_s"] == {"p50": 3.0, "mean": 3.0, "samples": 2}
    assert p["time_to_rca_s"] == {"p50": 50.0, "mean": 50.0, "samples": 2}
    assert len(p["daily"]) == len(body["days"]) and sum(d["runs"] for d in p["daily"]) == 3
    today = next(d for d in p["daily"] if d["day"] == now.date().isoformat())
    assert today["succeeded"] == 2
    assert teams["search"]["success_rate"] is None and teams["search"]["cancelled"] == 1
    assert body["totals"]["runs"] == 4

    own = (await client.get("/stats", headers=auth(toks["acme/search"]))).json()
    assert [t["team"] for t in own["teams"]] == ["search"]
    peek = (await client.get("/stats", params={"org": "globex"}, headers=auth(toks["acme/search"]))).json()
    assert peek["teams"] == [] and peek["totals"]["runs"] == 0
    everyone = (await client.get("/stats", headers=auth(ADMIN_TOKEN))).json()
    assert {(t["org"], t["team"]) for t in everyone["teams"]} == {("acme", "payments"), ("acme", "search"),
                                                                   ("globex", "ops")}
    too_long = await client.get("/stats", params={"since": (now - timedelta(days=200)).isoformat()},
                                headers=auth(ADMIN_TOKEN))
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_window"
    assert (await client.get("/stats")).status_code == 401


async def test_deliveries_filter_by_team(api):
    _, client, toks, _ = api
    await start(client, toks["acme/payments"])
    search = await start(client, toks["acme/search"])
    rows = (await client.get("/deliveries", params={"team": "search"}, headers=auth(toks["acme"]))).json()
    assert [d["run_id"] for d in rows["items"]] == [search]
    assert (await client.get("/deliveries", params={"team": "search"},
                             headers=auth(toks["globex"]))).json()["items"] == []
