"""Where a schedule may post (issue 16's tenant boundary, for scheduled reports and investigations):
only to a Slack channel its team has, by the rule the agent API's ``thread_channel`` follows
(``config_service/services/channels.py``): a channel it claims in ``routing.slack_channel_ids``, or
its ``slack.default_channel`` while no other team claims it.

* At config write time: a team write that points a schedule anywhere else is 422 ``invalid_config``
  naming the schedule's path; nothing is stored.
* At post time: a claim that moved after the schedule was saved (another team claimed the default
  channel) is refused by the scheduler: the claim row says ``refused`` / ``channel_not_claimed``,
  nothing is posted, no run is started; a report is still stored, readable, with the refusal.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from actors.scheduler.claims import claims_for
from actors.scheduler.execute import execute_claimed
from actors.scheduler.models import Report
from actors.scheduler.service import SchedulerService
from actors.scheduler.teams import team_config_provider
from cli.demo.slack_recorder import SlackRecorder
from config_service.testing import config_harness
from incidentfox.runs.models import Run
from incidentfox.runs.runner import NullRunner

WEEKLY = {"id": "weekly", "cron": "0 9 * * 1", "timezone": "UTC", "kind": "health_report"}
CONFIG = "/api/v1/orgs/{org}/nodes/{node}/config"


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        for org in ("acme", "beta"):
            await harness.create_org(org)
        await harness.create_node("acme", "sre", kind="team")
        await harness.create_node("acme", "web", kind="team")
        await harness.create_node("beta", "ops", kind="team")
        for org, team, channel in (("acme", "sre", "C0SRE"), ("acme", "web", "C0WEB"), ("beta", "ops", "C0BETA")):
            r = await harness.patch(org, team, {"routing": {"slack_channel_ids": [channel]}})
            assert r.status_code == 200, r.text
        yield harness


def schedule(**extra) -> dict:
    return {**WEEKLY, **extra}


def refused_paths(r) -> list[str]:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_config"
    return [e["path"] for e in error["details"]["errors"]]


@pytest.mark.parametrize(("patch", "path"), [
    ({"schedules": [schedule(destination={"slack_channel": "C0WEB"})]}, "schedules.0.destination.slack_channel"),
    ({"schedules": [schedule(destination={"slack_channel": "C0BETA"})]}, "schedules.0.destination.slack_channel"),
    ({"schedules": [schedule(destination={"slack_channel": "C0NOBODY"})]}, "schedules.0.destination.slack_channel"),
    ({"schedules": [schedule(), schedule(id="old", channel="C0WEB")]}, "schedules.1.channel"),
    ({"slack": {"default_channel": "C0WEB"}, "schedules": [schedule()]}, "schedules.0"),
], ids=["sibling-team", "other-org", "unclaimed", "legacy-key", "default-claimed-elsewhere"])
async def test_a_schedule_pointing_at_a_channel_the_team_does_not_have_is_refused_at_write(cs, patch, path):
    before = await cs.effective("acme", "sre")
    r = await cs.patch("acme", "sre", patch)
    assert refused_paths(r) == [path]
    assert "routing.slack_channel_ids" in r.json()["error"]["details"]["errors"][0]["message"]
    assert await cs.effective("acme", "sre") == before              # nothing stored


async def test_the_teams_own_channels_are_accepted(cs):
    r = await cs.patch("acme", "sre", {"slack": {"default_channel": "C0FREE"}, "schedules": [
        schedule(destination={"slack_channel": "C0SRE"}),           # claimed by the team
        schedule(id="daily"),                                        # its unclaimed default channel
        schedule(id="new", destination={"slack_channel": "C0NEW"})]})
    assert refused_paths(r) == ["schedules.2.destination.slack_channel"]
    r = await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["C0SRE", "C0NEW"]},   # claim it too
                                       "slack": {"default_channel": "C0FREE"}, "schedules": [
        schedule(destination={"slack_channel": "C0SRE"}), schedule(id="daily"),
        schedule(id="new", destination={"slack_channel": "C0NEW"})]})
    assert r.status_code == 200, r.text
    # Dropping the claim a schedule posts to is refused the same way (the schedule would then be wrong).
    r = await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["C0SRE"]}})
    assert refused_paths(r) == ["schedules.2.destination.slack_channel"]


async def test_hostile_destinations_are_refused_by_shape(cs):
    for dest, path in ((5, "schedules.0.destination"), ({"slack_channel": 5}, "schedules.0.destination.slack_channel"),
                       ({"slack_channel": "  "}, "schedules.0.destination.slack_channel")):
        assert refused_paths(await cs.patch("acme", "sre", {"schedules": [schedule(destination=dest)]})) == [path]


async def test_a_rollback_to_a_version_posting_elsewhere_is_refused(cs):
    r = await cs.patch("acme", "sre", {"slack": {"default_channel": "C0FREE"}, "schedules": [schedule()]})
    assert r.status_code == 200, r.text
    old = r.json()["version"]
    assert (await cs.patch("acme", "sre", {"schedules": []})).status_code == 200
    assert (await cs.patch("acme", "web", {"routing": {"slack_channel_ids": ["C0WEB", "C0FREE"]}})).status_code == 200
    r = await cs.call("POST", CONFIG.format(org="acme", node="sre") + "/rollback", json={"version": old})
    assert refused_paths(r) == ["schedules.0"]


async def test_a_write_that_adds_no_new_problem_is_not_blocked(cs):
    """A claim moved after the schedule was saved: the scheduler refuses it at post time; the team's
    unrelated writes still go through (they do not point anything anywhere new)."""
    r = await cs.patch("acme", "sre", {"slack": {"default_channel": "C0FREE"}, "schedules": [schedule()]})
    assert r.status_code == 200, r.text
    assert (await cs.patch("acme", "web", {"routing": {"slack_channel_ids": ["C0WEB", "C0FREE"]}})).status_code == 200
    assert (await cs.patch("acme", "sre", {"investigation": {"deadline_s": 300}})).status_code == 200
    r = await cs.patch("acme", "sre", {"schedules": [schedule(), schedule(id="more")]})   # a new one there: no
    assert refused_paths(r) == ["schedules.1"]


@pytest.mark.parametrize("kind", ["health_report", "investigation"])
async def test_a_claim_that_moved_after_saving_is_refused_at_post_time(cs, kind):
    app = cs.app
    sessions, settings = app.state.session_factory, cs.settings
    r = await cs.patch("acme", "sre", {"integrations": {"slack": {"bot_token": "xoxb-sre-secret"}},
                                       "slack": {"default_channel": "C0FREE"},
                                       "schedules": [schedule(cron="* * * * *", kind=kind, prompt="check")]})
    assert r.status_code == 200, r.text
    # Later, a sibling team claims the channel the schedule posts to (its default channel).
    assert (await cs.patch("acme", "web", {"routing": {"slack_channel_ids": ["C0WEB", "C0FREE"]}})).status_code == 200
    recorder = SlackRecorder()
    await recorder.start()
    try:
        svc = SchedulerService(database_url=settings.resolved_database_url(), owner="t",
                               team_configs=team_config_provider(sessions, settings))
        (claimed,) = await svc.tick()
        await svc.close()
        outcome = await execute_claimed(claimed, database_url=settings.resolved_database_url(),
                                        slack_api_url=recorder.url, runner=NullRunner)
        assert outcome["status"] == "refused" and outcome["error"].startswith("channel_not_claimed")
        assert recorder.calls == []                                  # nothing posted anywhere
        async with sessions() as s:
            (row,) = await claims_for(s, claimed.job.schedule.key)
            assert (row.status, row.error) == ("refused", outcome["error"])
            assert await s.scalar(select(func.count()).select_from(Run)) == 0   # no run to post there
            reports = list((await s.scalars(select(Report))).all())
        if kind == "health_report":                                  # stored, readable, not posted
            (report,) = reports
            assert row.report_id == report.id and report.posted_at is None
            assert report.post_error.startswith("channel_not_claimed")
        else:
            assert reports == [] and row.run_id is None
    finally:
        await recorder.stop()
