"""The agent API (mounted at ``/api/v1/agent``): start, read, list, cancel and follow runs.

Authorization uses the config service's :data:`config_service.PrincipalDep` (bearer
tokens: global admin, org admin, team, impersonation). Tenant isolation: a run that exists but
belongs to a team the caller cannot see answers **404, not 403**, so a team token cannot probe
another team's run ids; list endpoints are filtered to the caller's scope the same way.

* ``POST /runs`` (and its older alias ``POST /run``; team or impersonation token; an admin names
  ``org`` and ``team`` in the body):
  a ``thread_channel`` must be one of the team's (its routing claims or default channel; else 403
  ``channel_not_claimed``, :mod:`serve_apps.thread_binding`), a thread another team owns (by a run
  or a sandbox session, :mod:`actors.sandbox.threads`) answers 404 ``thread_not_found``;
  records an ``api`` delivery and allocates the run in one transaction (an ``Idempotency-Key``
  header makes retries return the same run; the same key with another request is 422
  ``idempotency_key_reused``), answers ``202 {run_id}``, then hands the run to the runner. The
  investigation never runs inside the request.
* ``GET /runs/{id}``: ``{status, team, trigger, created_at, started_at, finished_at, result?,
  events, tool_calls, …}``.
* ``GET /runs?org=&team=&status=&source=&since=&until=&limit=&cursor=``: newest first, ``{items,
  next_cursor, runs}`` (:mod:`incidentfox.pagination`; ``runs`` is the older key); a team token sees
  only its own team. ``GET /runs/{id}`` also lists its ``approvals`` (pending tool calls, proposed fixes).
* ``POST /runs/{id}/rerun`` and ``GET /stats`` (the overview): :mod:`serve_apps.run_ops_api`.
* ``POST /runs/{id}/cancel``.
* ``POST /runs/{id}/approvals/{approval_id}``: decide a mutating tool call the run waits on.
* ``POST /runs/{id}/actions/{action_id}/approve|deny``: a proposed fix of the RCA
  (:mod:`serve_apps.actions_api`).
* ``POST /runs/{id}/postmortem`` (body optional, ``{"llm": true}``): a Markdown postmortem draft of
  a finished run (:mod:`serve_apps.postmortem`); 409 ``run_not_finished`` while it runs.
* ``GET /runs/{id}/events``: Server-Sent Events, polling the database every ``sse_poll_s``, ending
  with an ``end`` event at a terminal status or after ``sse_max_s``.
* ``GET /deliveries?outcome=unrouted|…&source=&team=&failed=true&limit=&cursor=`` (global admin, or an org admin
  for its org; ``{items, next_cursor, deliveries}``) and ``POST /deliveries/redrive`` (global
  admin): the operator's view of webhook intake.
* ``GET /openapi.json``: this API's OpenAPI document (no token).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from sse_starlette import EventSourceResponse, ServerSentEvent

from config_service import PrincipalDep, install_auth_state
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import SLACK_ID_MAX, Key, Principal, ThreadRef, Trigger, TriggerAction
from incidentfox.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    install_error_handlers,
)
from incidentfox.http_limits import AGENT_MAX_BODY, install_request_limits
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.pagination import MAX_OFFSET, Page, PageDep, envelope, page_responses
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.runs.runner import Runner
from incidentfox.settings import Settings
from serve_apps import deliveries
from serve_apps.actions_api import install_action_routes
from serve_apps.gateway import Sweeper
from serve_apps.idempotency import IdempotencyKey, same_request
from serve_apps.run_ops_api import (
    approvals_of,
    install_run_ops_routes,
    run_scope,
    time_window,
)
from serve_apps.thread_binding import check_thread_channel, check_thread_owner, thread_not_found

TERMINAL = ("succeeded", "failed", "cancelled")
OPENAPI_PATH = "/openapi.json"
SSE_SEP = "\n"   # the framing clients have always seen (sse-starlette's default is CRLF)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Key = Field(min_length=1, max_length=4000)
    title: Key = Field(default="", max_length=500)
    services: list[Annotated[Key, Field(max_length=255)]] = Field(default_factory=list, max_length=20)
    identifiers: dict[Annotated[Key, Field(max_length=64)], Annotated[Key, Field(max_length=255)]] = Field(
        default_factory=dict, max_length=10)
    links: list[Annotated[Key, Field(max_length=2000)]] = Field(default_factory=list, max_length=20)
    thread_channel: Key | None = Field(default=None, max_length=SLACK_ID_MAX)
    thread_ts: Key | None = Field(default=None, max_length=SLACK_ID_MAX)
    org: Key | None = Field(default=None, max_length=64)     # admins only: whose team to run for
    team: Key | None = Field(default=None, max_length=64)


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(default=None, max_length=1000)


class PostmortemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    llm: bool = Field(default=True, description="Let the team's model rewrite the offline draft, if it has one.")


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]


def _target_team(principal: Principal, req: RunRequest) -> tuple[str, str]:
    if principal.auth_kind in ("team", "impersonation"):
        if (req.org and req.org != principal.org_id) or (req.team and req.team != principal.team_node_id):
            raise Forbidden("a team token starts runs for its own team only", code="forbidden")
        return principal.org_id or "", principal.team_node_id or ""
    if not req.org or not req.team:
        raise BadRequest("an admin token must name `org` and `team`", code="team_required")
    if not principal.can_access_team(req.org, req.team):
        raise Forbidden("this token cannot start runs for that team", code="forbidden")
    return req.org, req.team


def _visible(principal: Principal, run: Run | None, run_id: str) -> Run:
    # 404 rather than 403: existence of another tenant's run is not disclosed.
    if run is None or not principal.can_access_team(run.org_id, run.team_id):
        raise NotFound(f"run {run_id!r} not found", code="run_not_found")
    return run


def _tool_call_view(tc: Any) -> dict[str, Any]:
    return {"agent": tc.agent, "tool": tc.tool, "arguments": tc.arguments, "status": tc.status,
            "started_at": tc.started_at.isoformat() if tc.started_at else None,
            "finished_at": tc.finished_at.isoformat() if tc.finished_at else None,
            "result_size": tc.result_size, "error": tc.error}


def _event_view(ev: Any) -> dict[str, Any]:
    return {"seq": ev.seq, "at": ev.at.isoformat() if ev.at else None, "kind": ev.kind, "data": ev.data}


def create_agent_app(*, settings: Settings, runner: Runner, sse_poll_s: float = 0.5,
                     sse_max_s: float = 900.0, on_request: Any = None,
                     max_body: int = AGENT_MAX_BODY, actions: Any = None) -> FastAPI:
    app = FastAPI(title="IncidentFox agent API", docs_url=None, redoc_url=None, openapi_url=OPENAPI_PATH)
    install_error_handlers(app)
    install_auth_state(app, settings=settings)
    # Every route but the OpenAPI document needs a token: 401/413 before the body.
    install_request_limits(app, max_body=max_body, public_paths=(OPENAPI_PATH,))
    install_rate_limits(app, surface="api", settings=settings)   # outermost: 429 before anything else
    sessions = app.state.session_factory
    tasks = app.state.dispatch_tasks = BackgroundTasks()   # tests drain it

    def touch() -> None:
        if on_request is not None:
            on_request()

    @app.post("/runs", status_code=202)
    @app.post("/run", status_code=202, deprecated=True, operation_id="start_run_alias",
              summary="Start Run (older path)")
    async def start_run(principal: PrincipalDep, req: RunRequest, key: IdempotencyKey) -> JSONResponse:
        touch()
        org_id, team_id = _target_team(principal, req)
        did = deliveries.keyed_delivery_id(f"{org_id}:{team_id}", key) if key else deliveries.new_delivery_id()
        thread = ThreadRef(channel=req.thread_channel, ts=req.thread_ts) if req.thread_channel else None
        if thread is not None:   # both checks before anything is recorded
            async with sessions() as s:
                await check_thread_channel(s, org_id=org_id, team_id=team_id, channel=thread.channel)
                if thread.ts:
                    await check_thread_owner(s, org_id=org_id, team_id=team_id, channel=thread.channel,
                                             thread_ts=thread.ts)
        trigger = Trigger(source="api", delivery_id=did, event_kind="api_request",
                          action=TriggerAction.START, title=req.title or req.text.splitlines()[0][:500],
                          text=req.text, services=[s.strip().lower() for s in req.services if s.strip()],
                          identifiers=req.identifiers, links=req.links, thread=thread, human=True,
                          actor=principal.subject or principal.auth_kind)
        result = await deliveries.intake(sessions, trigger=trigger,
                                         route=deliveries.Route(True, org_id, team_id, "token", team_id),
                                         payload="")
        if result.outcome == "rejected":   # lost a race with the thread's owner: same answer
            raise thread_not_found()
        if result.duplicate and key:
            async with sessions() as s:
                if not await same_request(s, delivery_pk=result.delivery_pk, trigger=trigger):
                    raise IdempotencyKeyReused("run")
        if result.dispatch is not None:
            tasks.spawn(deliveries.dispatch(sessions, runner, delivery_pk=result.delivery_pk,
                                            plan=result.dispatch, trigger=trigger))
        body: dict[str, Any] = {"run_id": result.run_id}
        if result.duplicate:
            body["duplicate"] = True
        return JSONResponse(body, status_code=202)

    @app.get("/runs/{run_id}")
    async def get_run(principal: PrincipalDep, run_id: str) -> dict[str, Any]:
        async with sessions() as s:
            run = _visible(principal, await store.get_run(s, run_id), run_id)
            view = store.run_view(run)
            view["events"] = [_event_view(e) for e in await store.list_events(s, run_id=run_id)]
            view["tool_calls"] = [_tool_call_view(t) for t in await store.list_tool_calls(s, run_id=run_id)]
            view["approvals"] = await approvals_of(s, run_id=run_id)
        return view

    @app.get("/runs", responses=page_responses("RunPage", "runs"))
    async def list_runs(principal: PrincipalDep, page: PageDep, org: str | None = None, team: str | None = None,
                        status: str | None = None, source: str | None = Query(None, max_length=32),
                        since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
                        until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
                        offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
        """Newest first, ``{items, next_cursor, runs}`` (``runs``: the same items, the older key)."""
        since, until = time_window(since, until)
        scope = run_scope(principal, org, team)
        if scope is None:   # nothing of another team is visible, not even that it exists
            return envelope(Page([], None), legacy_key="runs")
        async with sessions() as s:
            runs = await store.page_runs(s, org_id=scope[0], team_id=scope[1], status=status, source=source,
                                         since=since, until=until, page=page, offset=offset)
        return envelope(Page([store.run_view(r, include_result=False) for r in runs.items], runs.next_cursor),
                        legacy_key="runs")

    @app.post("/runs/{run_id}/cancel")
    async def cancel_run(principal: PrincipalDep, run_id: str) -> dict[str, Any]:
        async with sessions() as s:
            _visible(principal, await store.get_run(s, run_id), run_id)
            status = await store.request_cancel(s, run_id=run_id)
            await store.append_event(s, run_id=run_id, kind="note",
                                     data={"cancel_requested_by": principal.subject or principal.auth_kind})
            await s.commit()
        if status == "running":
            await asyncio.wait_for(runner.cancel(run_id=run_id), timeout=10)
        return {"run_id": run_id, "status": status, "cancel_requested": True}

    @app.post("/runs/{run_id}/postmortem")
    async def postmortem(principal: PrincipalDep, run_id: str, req: PostmortemRequest | None = None) -> dict[str, Any]:
        """A postmortem draft (Markdown) from the run, its events and conversation, and its RCA:
        ``{run_id, format, source: offline|llm, markdown, notes}``."""
        from serve_apps.postmortem import write_postmortem

        async with sessions() as s:
            run = _visible(principal, await store.get_run(s, run_id), run_id)
            return await write_postmortem(s, run=run, settings=settings, use_llm=(req or PostmortemRequest()).llm)

    @app.post("/runs/{run_id}/approvals/{approval_id}")
    async def decide_approval(principal: PrincipalDep, run_id: str, approval_id: str,
                              req: ApprovalDecision) -> dict[str, Any]:
        """Approve or deny a mutating tool call the run is waiting on. The approver rule is
        :func:`actors.engine.approvals.check_api_approver`: admins, or team tokens when the team's
        ``access.api_approvals`` is true (else 403 ``not_an_approver``). Decisions and refusals are
        audited (config audit log) and the decision is a run event."""
        from actors.engine import approvals

        if approval_id.startswith("act_"):   # one route per concept: a proposed fix is run by its own
            raise Conflict(f"{approval_id!r} is a proposed fix: POST /runs/{{run_id}}/actions/{approval_id}"
                           "/approve or /deny", code="use_actions_route")
        by = principal.subject or principal.auth_kind
        async with sessions() as s:
            run = _visible(principal, await store.get_run(s, run_id), run_id)
            cfg = await approvals.team_config(s, org_id=run.org_id, team_id=run.team_id)
            verdict = approvals.check_api_approver(principal, approvals.Approvers.from_config(cfg))
            if verdict is not approvals.ApproverVerdict.ALLOWED:
                approvals.audit(s, run=run, approval_id=approval_id, by=by, action="approval.refused",
                                tool=await approvals.tool_of(s, run_id=run_id, approval_id=approval_id),
                                detail={"decision": req.decision, "reason": verdict.value})
                await s.commit()
                raise Forbidden("this token may not decide approvals for this team (team config "
                                "access.api_approvals)", code="not_an_approver",
                                details={"reason": verdict.value})
            ok = await approvals.decide(s, run_id=run_id, approval_id=approval_id,
                                        approve=req.decision == "approve", by=by)
            if not ok:
                raise Conflict(f"approval {approval_id!r} is not pending on this run", code="approval_not_pending")
            await s.commit()
        return {"run_id": run_id, "approval_id": approval_id, "decision": req.decision}

    if actions is None:
        from actors.engine.actions import ActionRunner

        actions = ActionRunner(sessions, settings=settings)
    install_action_routes(app, sessions=sessions, actions=actions)
    install_run_ops_routes(app, sessions=sessions, runner=runner, tasks=tasks)

    @app.get("/runs/{run_id}/events")
    async def run_events(principal: PrincipalDep, run_id: str,
                         after: int = Query(0, ge=0, le=MAX_OFFSET)) -> EventSourceResponse:
        async with sessions() as s:
            _visible(principal, await store.get_run(s, run_id), run_id)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            seq, deadline = after, time.monotonic() + sse_max_s
            while True:
                async with sessions() as s:
                    events = await store.list_events(s, run_id=run_id, after_seq=seq)
                    run = await store.get_run(s, run_id)
                for ev in events:
                    seq = ev.seq
                    yield ServerSentEvent(id=str(ev.seq), event=ev.kind, data=json.dumps(_event_view(ev)),
                                          sep=SSE_SEP)
                status = run.status if run is not None else "cancelled"
                if status in TERMINAL and not events:
                    yield ServerSentEvent(event="end", data=json.dumps({"status": status}), sep=SSE_SEP)
                    return
                if time.monotonic() > deadline:
                    yield ServerSentEvent(event="end", data=json.dumps({"status": status, "timeout": True}),
                                          sep=SSE_SEP)
                    return
                await asyncio.sleep(sse_poll_s)

        # sse-starlette frames the events and sends a comment ping every 15 s between them.
        return EventSourceResponse(stream(), sep=SSE_SEP)

    @app.get("/deliveries", responses=page_responses("DeliveryPage", "deliveries"))
    async def list_deliveries(principal: PrincipalDep, page: PageDep, outcome: str | None = None,
                              source: str | None = None, failed: bool = False,
                              team: str | None = Query(None, max_length=64),
                              offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
        """Newest first, ``{items, next_cursor, deliveries}`` (``deliveries``: the older key)."""
        if principal.auth_kind not in ("global_admin", "org_admin"):
            raise Forbidden("listing deliveries needs an admin token", code="forbidden")
        org = principal.org_id if principal.auth_kind == "org_admin" else None
        async with sessions() as s:
            rows = await deliveries.page_deliveries(s, outcome=outcome, source=source, failed=failed,
                                                    org_id=org, team_id=team, page=page, offset=offset)
        return envelope(Page([deliveries.delivery_view(r) for r in rows.items], rows.next_cursor),
                        legacy_key="deliveries")

    @app.post("/deliveries/redrive")
    async def redrive(principal: PrincipalDep, req: RedriveRequest) -> dict[str, Any]:
        if principal.auth_kind != "global_admin":
            raise Forbidden("re-driving deliveries needs the global admin token", code="forbidden")
        done = await deliveries.redrive(sessions, runner, delivery_pks=req.ids)
        return {"redriven": done}

    return app


@serve.deployment(
    name="AgentAPI",
    ray_actor_options={"num_cpus": 0},
    max_ongoing_requests=200,
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 50},
    health_check_period_s=5,
)
@serve.ingress()
class AgentAPI:
    """Serve ingress for ``/api/v1/agent``; settings (database, pepper, admin token) from the env."""

    async def __init__(self, *, runner: str = "investigation", sse_poll_s: float = 0.5,
                       sse_max_s: float = 900.0, sweep_interval_s: float = 10.0) -> None:
        from incidentfox.logs import configure_process_logging
        from serve_apps.runners import make_runner

        configure_process_logging()
        settings = Settings()
        self._runner = make_runner(runner, database_url=settings.resolved_database_url())
        self._settings, self._poll, self._max = settings, sse_poll_s, sse_max_s
        self._sweeper: Sweeper | None = None
        self._sweep_interval = sweep_interval_s

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = create_agent_app(settings=self._settings, runner=self._runner, sse_poll_s=self._poll,
                               sse_max_s=self._max, on_request=self._start_sweeper)
        self._sweeper = Sweeper(app.state.session_factory, self._runner, interval_s=self._sweep_interval)
        return app

    def _start_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.ensure_started()

    async def check_health(self) -> None:
        self._start_sweeper()
