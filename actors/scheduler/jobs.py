"""Executing one scheduled job: generate and post a report, or start a fixed-prompt investigation.

Used by the scheduler's batch tasks and by ``incidentfox report run``. A report is stored before it
is posted, so a Slack failure loses nothing: the report stays readable at
``GET /api/v1/reports/{id}`` with ``post_error`` set. The posted message links there ("full
report", :func:`incidentfox.links.report_url`) when the install has a public URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.scheduler import reports
from actors.scheduler.claims import DueJob
from actors.scheduler.models import Report
from actors.scheduler.render import digest_blocks, health_blocks, health_chart_png
from actors.slack.client import slack_client
from config_service import CHANNEL_RULE, team_has_channel
from incidentfox.contracts import ThreadRef, Trigger
from incidentfox.db import utcnow
from incidentfox.links import report_url
from incidentfox.runs import store

Progress = Callable[[str], None]
REPORT_PERIOD = timedelta(days=7)
REPORT_KINDS = ("health_report", "digest")   # what generate_report knows how to build


def new_report_id() -> str:
    return "rep_" + uuid.uuid4().hex


async def generate_report(session: AsyncSession, *, org_id: str, team_id: str, kind: str,
                          schedule_id: str | None = None, channel: str | None = None,
                          period: timedelta = REPORT_PERIOD, now: datetime | None = None,
                          progress: Progress | None = None) -> Report:
    """Compute, render the chart for, and store one report (flushed; the caller commits)."""
    end = now or utcnow()
    start = end - period
    if kind not in REPORT_KINDS:
        raise ValueError(f"not a report kind: {kind!r}")
    step = progress or (lambda _msg: None)
    step("aggregating runs")
    if kind == "health_report":
        content = await reports.health_report(session, org_id=org_id, team_id=team_id, start=start, end=end)
        step("rendering chart")
        chart = health_chart_png(content)
    else:
        content = await reports.digest(session, org_id=org_id, team_id=team_id, start=start, end=end)
        chart = None
    report = Report(id=new_report_id(), org_id=org_id, team_id=team_id, kind=kind, schedule_id=schedule_id,
                    period_start=start, period_end=end, content=content, chart_png=chart, channel=channel,
                    created_at=utcnow())
    session.add(report)
    await session.flush()
    step("stored")
    return report


SLACK_TIMEOUT_S = 15
CHANNEL_NOT_CLAIMED = "channel_not_claimed"


async def channel_refusal(sessions: async_sessionmaker, *, org_id: str, team_id: str, channel: str | None,
                          what: str = "the report") -> str | None:
    """Why the team may not post to ``channel`` now (``channel_not_claimed: …``), or None (its
    channel, or no channel: nothing is posted). Read now: a routing claim can move at any time."""
    if not channel:
        return None
    async with sessions() as s:
        if await team_has_channel(s, org_id=org_id, team_id=team_id, channel=channel):
            return None
    return f"{CHANNEL_NOT_CLAIMED}: {what} posts to {channel!r}, which is not {CHANNEL_RULE}"[:500]


async def post_report(report: Report, *, client: AsyncWebClient, report_url: str | None = None) -> None:
    """Post the report's Block Kit to its channel; upload the chart (``files_upload_v2``) in thread."""
    if not report.channel:
        raise ValueError("report has no destination channel")
    blocks = (health_blocks(report.content, report_url=report_url) if report.kind == "health_report"
              else digest_blocks(report.content, report_url=report_url))
    title = blocks[0]["text"]["text"]
    resp = await client.chat_postMessage(channel=report.channel, text=title, blocks=blocks)
    if report.chart_png:
        await client.files_upload_v2(channel=report.channel, thread_ts=resp["ts"], content=report.chart_png,
                                     filename=f"{report.id}.png", title=title)


async def run_report_job(sessions: async_sessionmaker, *, org_id: str, team_id: str, kind: str,
                         channel: str | None, bot_token: str | None, slack_api_url: str,
                         schedule_id: str | None = None, public_url: str = "",
                         period: timedelta = REPORT_PERIOD, progress: Progress | None = None,
                         refused: str | None = None) -> Report:
    """Generate and store a report, then post it to ``channel`` (if any). ``refused`` says why the
    team may not post there (the scheduler's channel check): the report is stored with it as its
    ``post_error`` and nothing is posted."""
    step = progress or (lambda _msg: None)
    async with sessions() as s:
        report = await generate_report(s, org_id=org_id, team_id=team_id, kind=kind, schedule_id=schedule_id,
                                       channel=channel, period=period, progress=step)
        await s.commit()
    if channel and refused:
        report.post_error = refused[:500]
    elif channel:
        step("posting to Slack")
        try:
            url = report_url(public_url, report.id)
            async with slack_client(token=bot_token, base_url=slack_api_url, timeout_s=SLACK_TIMEOUT_S,
                                    rate_limit_retries=2, connection_retries=1) as client:
                await post_report(report, client=client, report_url=url)
            report.posted_at = utcnow()
        except (SlackApiError, OSError, ValueError) as exc:
            report.post_error = f"{type(exc).__name__}: {exc}"[:500]
    if channel:
        async with sessions() as s:
            await s.merge(report)
            await s.commit()
    step("done")
    return report


async def start_scheduled_investigation(sessions: async_sessionmaker, job: DueJob) -> str:
    """Queue a run for an ``investigation`` schedule; the caller hands it to the runner."""
    sch = job.schedule
    trigger = Trigger(source="schedule", delivery_id=f"{sch.key}@{job.scheduled_for.isoformat()}",
                      event_kind="scheduled_investigation", title=f"Scheduled: {sch.id}",
                      text=sch.prompt or f"Scheduled investigation {sch.id}",
                      thread=ThreadRef(channel=sch.channel) if sch.channel else None, human=True)
    async with sessions() as s:
        run = await store.create_run(s, org_id=sch.org_id, team_id=sch.team_id, trigger=trigger, kind="scheduled")
        await s.commit()
    return run.id


def report_view(report: Report) -> dict[str, Any]:
    return {"report_id": report.id, "org": report.org_id, "team": report.team_id, "kind": report.kind,
            "schedule_id": report.schedule_id, "period_start": report.period_start.isoformat(),
            "period_end": report.period_end.isoformat(), "created_at": report.created_at.isoformat(),
            "channel": report.channel, "posted_at": report.posted_at.isoformat() if report.posted_at else None,
            "post_error": report.post_error, "has_chart": report.chart_png is not None,
            "content": report.content}
