"""The reports page's API: list reports and schedules, run a schedule now and see its outcome, each
scoped to the token (another team's reports, schedules and outcomes are invisible; running its
schedule is 404)."""

from __future__ import annotations

import httpx
import pytest

from actors.scheduler.jobs import generate_report
from cli.demo.slack_recorder import SlackRecorder
from config_service.services import config as config_svc
from config_service.services import nodes
from config_service.services.seed import seed_demo
from config_service.services.tokens import issue_token
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs.runner import NullRunner
from serve_apps.reports_api import create_reports_app


@pytest.fixture
async def world(settings):
    engine = make_async_engine(settings.resolved_database_url())
    sessions = session_factory(engine)
    async with sessions() as s:
        seeded = await seed_demo(s, settings=settings)
        await config_svc.patch_config(s, settings=settings, org_id="demo", node_id="sre", actor="test", patch={
            "integrations": {"slack": {"bot_token": "xoxb-test-0000000000-secret"}},
            "schedules": [{"id": "weekly", "cron": "0 9 * * 1", "kind": "digest"},
                          {"id": "nightly", "cron": "0 3 * * *", "kind": "investigation",
                           "prompt": "check the error budget"}]})
        await nodes.create_node(s, org_id="demo", node_id="payments", parent_id=None, kind="team",
                                name="Payments", actor="t")
        await config_svc.patch_config(s, settings=settings, org_id="demo", node_id="payments", actor="test", patch={
            "schedules": [{"id": "pay-weekly", "cron": "0 9 * * 1", "kind": "health_report"}]})
        other = await issue_token(s, settings=settings, org_id="demo", team_node_id="payments", label="p", actor="t")
        await generate_report(s, org_id="demo", team_id="payments", kind="digest")
        await s.commit()
    recorder = SlackRecorder()   # the reports post to the local Slack recorder
    await recorder.start()
    app = create_reports_app(settings.model_copy(update={"slack_api_url": recorder.url}), runner=NullRunner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield {"recorder": recorder, "client": client, "app": app, "team": {"Authorization": f"Bearer {seeded['team_token']}"},
               "other": {"Authorization": f"Bearer {other['token']}"},
               "admin": {"Authorization": f"Bearer {seeded['org_admin_token']}"}}
    await app.state.schedule_tasks.drain(30)
    await app.state.engine.dispose()
    await engine.dispose()
    await recorder.stop()


async def test_run_now_records_an_outcome_and_a_report(world):
    client, team = world["client"], world["team"]
    listed = (await client.get("/schedules", headers=team)).json()
    assert [(i["schedule_id"], i["kind"], i["last_outcome"]) for i in listed["items"]] == [
        ("weekly", "digest", None), ("nightly", "investigation", None)]
    assert listed["items"][1]["prompt"] == "check the error budget"

    r = await client.post("/schedules/weekly/run", headers=team)
    assert r.status_code == 202, r.text
    claim_id = r.json()["claim_id"]
    await world["app"].state.schedule_tasks.drain(30)
    outcomes = (await client.get("/schedules/outcomes", headers=team)).json()["items"]
    assert [(o["id"], o["schedule_id"], o["status"], o["manual"]) for o in outcomes] == [
        (claim_id, "weekly", "done", True)]
    report_id = outcomes[0]["report_id"]
    posts = world["recorder"].calls_to("chat.postMessage")
    assert posts and "xoxb-test" not in str(outcomes) + str(listed)
    assert report_id and (await client.get(f"/{report_id}", headers=team)).json()["kind"] == "digest"
    reports = (await client.get("/", headers=team)).json()
    assert [x["report_id"] for x in reports["items"]] == [report_id] and "content" not in reports["items"][0]
    again = (await client.get("/schedules", headers=team)).json()["items"]
    assert again[0]["last_outcome"]["report_id"] == report_id and again[1]["last_outcome"] is None

    r = await client.post("/schedules/nightly/run", headers=team)           # an investigation schedule
    await world["app"].state.schedule_tasks.drain(30)
    latest = (await client.get("/schedules/outcomes", params={"schedule_id": "nightly"}, headers=team)).json()
    assert latest["items"][0]["status"] == "done" and latest["items"][0]["run_id"].startswith("run_")


async def test_scoped_to_the_token(world):
    client = world["client"]
    assert [i["schedule_id"] for i in (await client.get("/schedules", headers=world["other"])).json()["items"]] \
        == ["pay-weekly"]
    admin_view = (await client.get("/schedules", headers=world["admin"])).json()["items"]
    assert {i["schedule_id"] for i in admin_view} == {"weekly", "nightly", "pay-weekly"}
    peek = (await client.get("/schedules", params={"team": "sre"}, headers=world["other"])).json()
    assert peek["items"] == []
    assert (await client.get("/", headers=world["team"])).json()["items"] == []   # payments' report only
    assert len((await client.get("/", headers=world["other"])).json()["items"]) == 1

    r = await client.post("/schedules/weekly/run", params={"org": "demo", "team": "sre"}, headers=world["other"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "schedule_not_found"
    r = await client.post("/schedules/nope/run", headers=world["team"])
    assert r.status_code == 404
    r = await client.post("/schedules/weekly/run", headers=world["admin"])          # an admin names the team
    assert r.status_code == 400 and r.json()["error"]["code"] == "team_required"
    r = await client.post("/schedules/weekly/run", params={"org": "demo", "team": "sre"}, headers=world["admin"])
    assert r.status_code == 202
    await world["app"].state.schedule_tasks.drain(30)
    mine = (await client.get("/schedules/outcomes", headers=world["other"])).json()
    assert mine["items"] == []
    assert (await client.get("/schedules")).status_code == 401
