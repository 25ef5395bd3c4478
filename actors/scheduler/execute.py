"""Running one claimed job to completion and recording the outcome on its claim row.

Before anything is posted or started, the job's Slack channel is checked again against the team's
channels (:func:`config_service.team_has_channel`, read now, not when the schedule was saved or
claimed: a routing claim can have moved since). A channel that is not the team's is refused: the
claim is recorded ``refused`` with ``channel_not_claimed``; a report is still generated and stored
(readable at ``GET /api/v1/reports/{id}``, the refusal as its ``post_error``) but not posted, and a
scheduled investigation is not started (its messages would go to that channel)."""

from __future__ import annotations

import logging
from typing import Any

from actors.scheduler.claims import finish_claim
from actors.scheduler.jobs import channel_refusal, run_report_job, start_scheduled_investigation
from actors.scheduler.models import ClaimStatus
from actors.scheduler.service import ClaimedJob
from incidentfox import metrics
from incidentfox.db import make_async_engine, session_factory
from incidentfox.errors import failure_reason
from incidentfox.runs.runner import RunnerFactory

log = logging.getLogger("incidentfox.scheduler")


async def execute_claimed(claimed: ClaimedJob, *, database_url: str, slack_api_url: str,
                          runner: RunnerFactory, public_url: str = "") -> dict[str, Any]:
    """Run one claimed job; an ``investigation`` schedule's run goes to ``runner(database_url=…)``.
    A posted report links its full report under ``public_url`` (no link when empty)."""
    engine = make_async_engine(database_url)
    sessions = session_factory(engine)
    sch = claimed.job.schedule
    try:
        try:
            refused = await channel_refusal(sessions, org_id=sch.org_id, team_id=sch.team_id, channel=sch.channel,
                                            what=f"schedule {sch.id!r}")
            if refused:
                log.warning("schedule %s refused: %s", sch.key, refused)
            if sch.kind == "investigation":
                if refused:
                    outcome = {"status": ClaimStatus.REFUSED, "error": refused}
                else:
                    run_id = await start_scheduled_investigation(sessions, claimed.job)
                    await runner(database_url=database_url).submit(run_id=run_id, org_id=sch.org_id,
                                                                   team_id=sch.team_id)
                    outcome = {"status": ClaimStatus.DONE, "run_id": run_id}
            else:
                token = ((claimed.config.get("integrations") or {}).get("slack") or {}).get("bot_token")
                report = await run_report_job(sessions, org_id=sch.org_id, team_id=sch.team_id, kind=sch.kind,
                                              channel=sch.channel or None, bot_token=token,
                                              slack_api_url=slack_api_url, schedule_id=sch.id,
                                              public_url=public_url, refused=refused)
                status = ClaimStatus.REFUSED if refused else (
                    ClaimStatus.FAILED if report.post_error else ClaimStatus.DONE)
                outcome = {"status": status, "report_id": report.id, "error": report.post_error}
        except Exception as exc:  # noqa: BLE001 - recorded on the claim; the batch goes on
            outcome = {"status": ClaimStatus.FAILED, "error": failure_reason(exc)}
        outcome["status"] = ClaimStatus(outcome["status"]).value
        metrics.REPORT_JOBS_TOTAL.inc(status=outcome["status"])
        async with sessions() as s:
            await finish_claim(s, claimed.claim_id, status=outcome["status"], report_id=outcome.get("report_id"),
                               run_id=outcome.get("run_id"), error=outcome.get("error"))
            await s.commit()
        return {"schedule": sch.key, "scheduled_for": claimed.job.scheduled_for.isoformat(), **outcome}
    finally:
        await engine.dispose()
