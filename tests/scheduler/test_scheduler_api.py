"""Reports end to end without Ray: a scheduled tick generates, stores and posts a health report
(Block Kit + chart via files_upload_v2 to the local Slack recorder), the reports API serves it to
the owning team only (also through the message's "full report" link), and `incidentfox report run`
works from the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from links_kit import app_and_path
from typer.testing import CliRunner

from actors.scheduler.execute import execute_claimed
from actors.scheduler.service import SchedulerService
from actors.scheduler.teams import team_config_provider
from cli.demo.slack_recorder import SlackRecorder
from config_service.services import config as config_svc
from config_service.services.seed import seed_demo
from config_service.services.tokens import issue_token
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.runs.models import Run
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
            "routing": {"slack_channel_ids": ["C0DEMO0001", "C0REPORTS"]},   # the channel it reports in
            "schedules": [{"id": "weekly", "cron": "* * * * *", "timezone": "Europe/Berlin",
                           "kind": "health_report", "destination": {"slack_channel": "C0REPORTS"}}]})
        now = utcnow()
        s.add_all([Run(id=f"run_seed{i}", org_id="demo", team_id="sre", status=st, source="pagerduty",
                       trigger={"title": "High latency", "services": ["checkout"], "is_alert": True},
                       created_at=now - timedelta(days=1, hours=i), acknowledged_at=now - timedelta(days=1, hours=i) +
                       timedelta(seconds=60)) for i, st in enumerate(["succeeded", "succeeded", "failed"])])
        await s.commit()
    yield {"sessions": sessions, "seeded": seeded}
    await engine.dispose()


async def test_tick_generates_posts_and_serves_a_report(settings, world):
    recorder = SlackRecorder()
    await recorder.start()
    try:
        svc = SchedulerService(database_url=settings.resolved_database_url(), owner="t",
                               team_configs=team_config_provider(world["sessions"], settings))
        claimed = await svc.tick()
        await svc.close()
        assert [c.job.schedule.key for c in claimed] == ["demo:sre:weekly"]
        outcome = await execute_claimed(claimed[0], database_url=settings.resolved_database_url(),
                                        slack_api_url=recorder.url, runner=NullRunner,
                                        public_url="https://fox.example.com/")
        assert outcome["status"] == "done", outcome
        posts = recorder.calls_to("chat.postMessage")
        assert posts and posts[0].args["channel"] == "C0REPORTS"
        assert "3 investigations" in str(posts[0].args["blocks"])
        # A scheduled report covers the last seven days, and its title says so.
        assert posts[0].args["blocks"][0]["text"]["text"].startswith("Weekly health report · sre · ")
        full = re.findall(r"<([^|<>]+)\|full report>", str(posts[0].args["blocks"]))
        assert len(full) == 1
        assert recorder.calls_to("files.completeUploadExternal"), "chart was not uploaded"
        assert any(f["content"].startswith(b"\x89PNG") for f in recorder.files.values())
        # The bot token authenticated the calls and never reached a message body.
        assert all("xoxb-test" not in str(c.args) for c in recorder.calls)

        app = create_reports_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            team = {"Authorization": f"Bearer {world['seeded']['team_token']}"}
            r = await client.get(f"/{outcome['report_id']}", headers=team)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["content"]["runs"]["total"] == 3 and body["posted_at"] and body["has_chart"]
            assert body["content"]["by_source"]["pagerduty"]["mtta_s"] == 60.0
            chart = await client.get(f"/{outcome['report_id']}/chart.png", headers=team)
            assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
            assert (await client.get(f"/{outcome['report_id']}")).status_code == 401
            # The message's "full report" link reaches this app and serves the report.
            app_name, path = app_and_path(full[0], public_url="https://fox.example.com")
            assert (app_name, path) == ("reports", f"/{outcome['report_id']}")
            linked = await client.get(path, headers=team)
            assert linked.status_code == 200 and linked.json()["report_id"] == outcome["report_id"]
            missing = await client.get("/rep_nope", headers=team)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "report_not_found"
        await app.state.engine.dispose()
    finally:
        await recorder.stop()


async def test_another_team_cannot_read_the_report(settings, world):
    async with world["sessions"]() as s:
        from config_service.services import nodes

        await nodes.create_node(s, org_id="demo", node_id="payments", parent_id=None, kind="team",
                                name="Payments", actor="t")
        other = await issue_token(s, settings=settings, org_id="demo", team_node_id="payments", label="p",
                                  actor="t")
        from actors.scheduler.jobs import generate_report

        report = await generate_report(s, org_id="demo", team_id="sre", kind="digest")
        await s.commit()
    app = create_reports_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get(f"/{report.id}", headers={"Authorization": f"Bearer {other['token']}"})
        assert r.status_code == 404
        r = await client.get(f"/{report.id}", headers={"Authorization": f"Bearer {world['seeded']['org_admin_token']}"})
        assert r.status_code == 200 and r.json()["kind"] == "digest"
    await app.state.engine.dispose()


def test_report_run_cli(settings, world, monkeypatch):
    from cli.main import app

    monkeypatch.setenv("INCIDENTFOX_TOKEN_PEPPER", settings.token_pepper.get_secret_value())
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", settings.secret_key.get_secret_value())
    result = CliRunner().invoke(app, ["report", "run", "--org", "demo", "--team", "sre", "--no-post",
                                      "--database-url", settings.resolved_database_url()])
    assert result.exit_code == 0, result.output
    assert "runs: 3" in result.output and "pagerduty: 3 runs, MTTA 60.0 s" in result.output
    bad = CliRunner().invoke(app, ["report", "run", "--org", "demo", "--team", "nope", "--no-post",
                                   "--database-url", settings.resolved_database_url()])
    assert bad.exit_code == 1 and "nope" in bad.stderr          # unknown team: a runtime failure


def test_report_run_cli_posts_only_in_a_channel_the_team_has(settings, world, monkeypatch):
    """``report run --channel`` posts with the team's bot, so by the same rule as a schedule: another
    channel is refused (the report is stored, "not posted: channel_not_claimed"), nothing is sent."""
    from cli.main import app

    monkeypatch.setenv("INCIDENTFOX_TOKEN_PEPPER", settings.token_pepper.get_secret_value())
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("INCIDENTFOX_SLACK_API_URL", "http://127.0.0.1:9/api/")   # nothing listens there
    result = CliRunner().invoke(app, ["report", "run", "--org", "demo", "--team", "sre", "--channel", "C0ELSEWHERE",
                                      "--database-url", settings.resolved_database_url()])
    assert result.exit_code == 0, result.output
    assert "not posted: channel_not_claimed: the report posts to 'C0ELSEWHERE'" in result.output
