"""Rerun a run and the runs overview over the agent API (what the web console's runs pages need).

Thin: authorise, call the owner of the concept, answer.

* ``POST /runs/{run_id}/rerun`` → ``202 {run_id, rerun_of}``: a new run with the same trigger,
  linked to the original by its first event (``status`` ``{rerun_of, by}``), exactly like Slack's
  Rerun button: it is recorded as an ``api`` delivery whose interaction is ``rerun`` and decided by
  :mod:`serve_apps.deliveries.decide` in the intake transaction, so a lost hand-off is repaired by
  the sweep. Who may: whoever may start a run for the run's team (the team's token or impersonation,
  an admin over it); any other caller gets 404 ``run_not_found``. An ``Idempotency-Key`` header
  makes a retried rerun answer the same new run.
* ``GET /stats?since=&until=&org=&team=`` → runs per day, success rate, time to first message and
  time to RCA per team (:mod:`incidentfox.runs.stats`), over the teams the token may see: a team
  token its own team, an org admin its org; naming a team outside that answers an empty overview
  (nothing of another tenant, not even whether it exists). Default window: the last 14 days.
  422 ``invalid_window`` for an empty, reversed or over-long window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config_service import PrincipalDep
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import Principal, Trigger, TriggerAction
from incidentfox.db import utcnow
from incidentfox.errors import NotFound, Unprocessable
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval
from incidentfox.runs.runner import Runner
from incidentfox.runs.stats import StatsWindowError, run_stats
from serve_apps import deliveries
from serve_apps.idempotency import IdempotencyKey

DEFAULT_WINDOW = timedelta(days=14)


def run_scope(principal: Principal, org: str | None, team: str | None) -> tuple[str | None, str | None] | None:
    """The ``(org, team)`` filter a list may use for ``principal``, or None when what was asked for
    lies outside what the token sees (the caller answers an empty result, never a 403)."""
    if principal.auth_kind in ("team", "impersonation"):
        if (org and org != principal.org_id) or (team and team != principal.team_node_id):
            return None
        return principal.org_id, principal.team_node_id
    if principal.auth_kind == "org_admin":
        if org and org != principal.org_id:
            return None
        return principal.org_id, team
    return org, team


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:   # e.g. 0001-01-01T00:00:00+05:00: a moment before year 1 in UTC
        raise Unprocessable(f"`{name}` is outside the years 1 to 9999 in UTC", code="invalid_window") from None


def time_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``since``/``until`` query values as aware UTC datetimes (a naive value is read as UTC)."""
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise Unprocessable("`since` must be before `until`", code="invalid_window")
    return since, until


def default_since(until: datetime) -> datetime:
    """:data:`DEFAULT_WINDOW` before ``until``, or the earliest moment when that is before year 1."""
    floor = datetime.min.replace(tzinfo=UTC)
    return until - DEFAULT_WINDOW if until - floor > DEFAULT_WINDOW else floor


async def approvals_of(session: AsyncSession, *, run_id: str) -> list[dict[str, Any]]:
    """The run's tool-call approvals and proposed fixes with their states (oldest first)."""
    rows = (await session.scalars(select(ToolApproval).where(ToolApproval.run_id == run_id)
                                  .order_by(ToolApproval.requested_at, ToolApproval.id))).all()
    return [{"approval_id": r.id, "tool": r.tool, "arguments": r.arguments, "status": r.status,
             "kind": "action" if r.id.startswith("act_") else "tool_call",
             "requested_at": r.requested_at.isoformat() if r.requested_at else None,
             "decided_at": r.decided_at.isoformat() if r.decided_at else None, "decided_by": r.decided_by}
            for r in rows]


def install_run_ops_routes(app: FastAPI, *, sessions: async_sessionmaker[AsyncSession], runner: Runner,
                           tasks: BackgroundTasks) -> None:
    """Add ``/runs/{id}/rerun`` and ``/stats`` (see the module doc) to the agent API ``app``."""

    @app.post("/runs/{run_id}/rerun", status_code=202)
    async def rerun(principal: PrincipalDep, run_id: str, key: IdempotencyKey) -> JSONResponse:
        """Start the run's trigger again as a new run linked to this one (see the module doc)."""
        async with sessions() as s:
            run = await store.get_run(s, run_id)
        if run is None or not principal.can_access_team(run.org_id, run.team_id):
            raise NotFound(f"run {run_id!r} not found", code="run_not_found")
        by = principal.subject or principal.auth_kind
        # The key is this run's: the same key on another run is another rerun, not this one's answer.
        did = deliveries.keyed_delivery_id(f"rerun:{run.id}", key) if key else deliveries.new_delivery_id("rerun")
        trigger = Trigger(source="api", delivery_id=did, event_kind="api_rerun",
                          action=TriggerAction.INTERACTION, title=f"rerun of {run_id}", human=True, actor=by,
                          interaction={"action": "rerun", "run_id": run_id, "user": by})
        # The run's own org and team verify it: the interaction may act only inside them.
        route = deliveries.Route(True, run.org_id, run.team_id, "token", run.team_id,
                                 verified_org=run.org_id, verified_team=run.team_id)
        result = await deliveries.intake(sessions, trigger=trigger, route=route, payload="")
        if result.run_id is None or result.run_id == run_id:
            raise NotFound(f"run {run_id!r} not found", code="run_not_found")
        if result.dispatch is not None:
            tasks.spawn(deliveries.dispatch(sessions, runner, delivery_pk=result.delivery_pk,
                                            plan=result.dispatch, trigger=trigger))
        body: dict[str, Any] = {"run_id": result.run_id, "rerun_of": run_id}
        if result.duplicate:
            body["duplicate"] = True
        return JSONResponse(body, status_code=202)

    @app.get("/stats")
    async def stats(principal: PrincipalDep, org: str | None = Query(None, max_length=64),
                    team: str | None = Query(None, max_length=64),
                    since: Annotated[datetime | None, Query(description="ISO 8601; default 14 days before `until`")] = None,
                    until: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None) -> dict[str, Any]:
        """Runs per day, success rate, time to first message and time to RCA, per team the token sees."""
        since, until = time_window(since, until)
        until = until or utcnow()
        since = since or default_since(until)
        scope = run_scope(principal, org, team)
        try:
            async with sessions() as s:
                if scope is None:   # outside the token's view: the same shape, nothing in it
                    return await run_stats(s, since=since, until=until, org_id="", team_id="")
                return await run_stats(s, since=since, until=until, org_id=scope[0], team_id=scope[1])
        except StatsWindowError as exc:
            raise Unprocessable(str(exc), code="invalid_window") from None
