"""Reports and schedules lists, and "run now", on ``/api/v1/reports`` (the console's reports page).

Thin over :mod:`actors.scheduler.catalog`. Every list is scoped to what the token sees (a team
token its team, an org admin its org); naming a team outside that answers an empty page.

* ``GET /?org=&team=&kind=&limit=&cursor=``: stored reports, newest first, ``{items, next_cursor}``
  (each item is the report without its ``content``; ``GET /{id}`` has it).
* ``GET /schedules?org=&team=``: every visible team's schedules with their ``last_outcome``.
* ``GET /schedules/outcomes?org=&team=&schedule_id=&limit=&cursor=``: what fire times did (scheduled,
  caught up or manual), newest first.
* ``POST /schedules/{schedule_id}/run?org=&team=`` → ``202 {claim_id, schedule_id, scheduled_for}``:
  run it now (a team token for its team; an admin names ``org`` and ``team``). The job runs after the
  answer; its outcome appears under ``/schedules/outcomes`` and in the schedule's ``last_outcome``.
  404 ``schedule_not_found`` for a schedule the team does not have (or a team the token cannot see).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from actors.scheduler import catalog
from actors.scheduler.execute import execute_claimed
from actors.scheduler.jobs import report_view
from actors.scheduler.teams import team_config
from config_service import PrincipalDep, TeamConfigError, TeamConfigReader
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import Principal
from incidentfox.errors import BadRequest, Conflict, NotFound
from incidentfox.pagination import Page, PageDep, envelope, page_responses
from incidentfox.runs.runner import RunnerFactory
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.reports")


def _scope(principal: Principal, org: str | None, team: str | None) -> tuple[str | None, str | None] | None:
    if principal.auth_kind in ("team", "impersonation"):
        if (org and org != principal.org_id) or (team and team != principal.team_node_id):
            return None
        return principal.org_id, principal.team_node_id
    if principal.auth_kind == "org_admin":
        return None if org and org != principal.org_id else (principal.org_id, team)
    return org, team


def _target(principal: Principal, org: str | None, team: str | None) -> tuple[str, str]:
    if principal.auth_kind in ("team", "impersonation"):
        org, team = org or principal.org_id, team or principal.team_node_id
    if not org or not team:
        raise BadRequest("an admin token must name `org` and `team`", code="team_required")
    return org, team


def install_schedule_routes(app: FastAPI, *, settings: Settings, runner: RunnerFactory) -> None:
    """Add the routes of the module doc to the reports ``app`` (before its ``/{report_id}``)."""
    sessions = app.state.session_factory
    tasks = app.state.schedule_tasks = BackgroundTasks()   # tests drain it
    reader = TeamConfigReader(sessions, settings=settings)

    @app.get("/", responses=page_responses("ReportPage"))
    async def list_reports(principal: PrincipalDep, page: PageDep, org: str | None = Query(None, max_length=64),
                           team: str | None = Query(None, max_length=64),
                           kind: str | None = Query(None, max_length=32)) -> dict[str, Any]:
        """Stored reports, newest first (without their content)."""
        scope = _scope(principal, org, team)
        if scope is None:
            return envelope(Page([], None))
        async with sessions() as s:
            rows = await catalog.page_reports(s, page=page, org_id=scope[0], team_id=scope[1], kind=kind)
        items = [{k: v for k, v in report_view(r).items() if k != "content"} for r in rows.items]
        return envelope(Page(items, rows.next_cursor))

    @app.get("/schedules", responses=page_responses("SchedulePage"))
    async def list_schedules(principal: PrincipalDep, org: str | None = Query(None, max_length=64),
                             team: str | None = Query(None, max_length=64)) -> dict[str, Any]:
        """Every visible team's schedules, with the newest outcome of each (one page: all of them)."""
        scope = _scope(principal, org, team)
        if scope is None:
            return envelope(Page([], None))
        teams = [(o, t) for o, t in await reader.team_ids()
                 if (scope[0] is None or o == scope[0]) and (scope[1] is None or t == scope[1])
                 and principal.can_access_team(o, t)]
        items: list[dict[str, Any]] = []
        for org_id, team_id in teams:
            try:
                doc = await reader.read_doc(org_id, team_id)
            except (NotFound, TeamConfigError) as exc:   # one unreadable team never hides the others
                log.warning("schedules of %s/%s not listed: %s", org_id, team_id, exc)
                continue
            async with sessions() as s:
                items += await catalog.team_schedules(s, org_id=org_id, team_id=team_id, config=doc)
        return envelope(Page(items, None))

    @app.get("/schedules/outcomes", responses=page_responses("ScheduleOutcomePage"))
    async def list_outcomes(principal: PrincipalDep, page: PageDep, org: str | None = Query(None, max_length=64),
                            team: str | None = Query(None, max_length=64),
                            schedule_id: str | None = Query(None, max_length=64)) -> dict[str, Any]:
        """What each fire time did (scheduled, caught up, or run by hand), newest first."""
        scope = _scope(principal, org, team)
        if scope is None:
            return envelope(Page([], None))
        async with sessions() as s:
            rows = await catalog.page_outcomes(s, page=page, org_id=scope[0], team_id=scope[1],
                                               schedule_id=schedule_id)
        return envelope(Page([catalog.outcome_view(c) for c in rows.items], rows.next_cursor))

    @app.post("/schedules/{schedule_id}/run", status_code=202)
    async def run_now(principal: PrincipalDep, schedule_id: str, org: str | None = Query(None, max_length=64),
                      team: str | None = Query(None, max_length=64)) -> JSONResponse:
        """Run the schedule's job now; its outcome is recorded like a scheduled fire time's."""
        org_id, team_id = _target(principal, org, team)
        missing = NotFound(f"schedule {schedule_id!r} not found", code="schedule_not_found")
        if not principal.can_access_team(org_id, team_id):
            raise missing
        try:
            doc = await team_config(sessions, settings, org_id=org_id, team_id=team_id)
        except NotFound:
            raise missing from None
        async with sessions() as s:
            try:
                claimed = await catalog.claim_now(s, org_id=org_id, team_id=team_id, schedule_id=schedule_id,
                                                  config=doc, by=principal.subject or principal.auth_kind)
            except catalog.ScheduleNotFound:
                raise missing from None
            except catalog.ClaimTaken:
                raise Conflict("this schedule was just started; try again", code="schedule_busy") from None
            await s.commit()
        tasks.spawn(execute_claimed(claimed, database_url=settings.resolved_database_url(),
                                    slack_api_url=settings.slack_api_url, runner=runner,
                                    public_url=settings.public_url))
        return JSONResponse({"claim_id": claimed.claim_id, "schedule_id": schedule_id, "org": org_id,
                             "team": team_id, "scheduled_for": claimed.job.scheduled_for.isoformat()},
                            status_code=202)
