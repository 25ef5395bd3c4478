"""The sandbox API (mounted at ``/api/v1/sandbox``): interactive agent sessions over HTTP + SSE.

* ``POST /sessions`` (team or impersonation token) → ``201 {session_id, expires_at, ttl_s}``; an
  ``Idempotency-Key`` header makes a retry answer the same session (``duplicate: true``; the same
  key with another title or thread is ``422 idempotency_key_reused``, :mod:`serve_apps.idempotency`);
  ``429 sandbox_session_limit`` (``details.limit = "sandbox.max_open_sessions"``) when the team
  already has that many open.
  Body (all optional): ``title``, ``slack_channel`` / ``slack_thread_ts`` (mirror the session's
  progress into that thread with the team's Slack bot; only a channel the team has, else
  ``403 channel_not_claimed``, and only a thread no other team owns by a run or a session, else
  ``404 thread_not_found``, as the agent API answers: :mod:`serve_apps.thread_binding`).
* ``POST /sessions/{id}/messages`` ``{text}`` → ``text/event-stream``: ``thought``, ``tool_start``,
  ``tool_end`` … then one of ``result`` / ``error`` / ``interrupted``. ``409 turn_in_progress`` while
  a turn runs, ``410 session_expired`` after the TTL.
* ``GET /sessions?status=active|expired&limit=&cursor=``: the sessions the token sees (a team token
  its team's, an org admin its org's), newest first, ``{items, next_cursor}``.
* ``GET /sessions/{id}``: state and transcript. ``DELETE /sessions/{id}``: end it (workspace
  removed, transcript kept). ``POST /sessions/{id}/interrupt``: stop the running turn now.
* ``POST /sessions/{id}/approvals/{approval_id}`` ``{decision: approve|deny}``: decide a mutating
  MCP call the session waits on (global admin, org admin, or a team token with
  ``access.api_approvals``); ``GET /sessions/{id}`` lists them under ``pending_approvals``.
* ``GET /mcp-allowlist`` (any token; command/url only for the global admin, env values never) and
  ``PUT /mcp-allowlist`` ``{servers: [...]}`` (global admin only): the platform MCP allow-list.
* ``GET /health``: ``{status, isolation: {mode, available, reason}}``.

A session of another team answers 404, like the agent API. The model, its base URL and API key come
from the team's effective config (``llm`` section) at every message, so a key rotation applies to
the next turn and the key is never stored with the session.

Wiring: :func:`create_sandbox_app` takes a :class:`~actors.sandbox.client.SandboxBackend` and,
optionally, ``authenticate`` / ``team_config`` / ``scheduling_for`` callables; left out, they use
the config service's library face (``config_service.authenticate`` and
``config_service.TeamConfigReader``: cached, time-bounded, secrets revealed) and the engine's
placement (``actors.engine.placement.scheduling_options``).
:func:`build_app` is what ``serve_apps.builder:build_sandbox`` calls.

The Serve app also starts the sandbox's other entry point, the ``sandbox-slack`` actor
(:mod:`actors.sandbox.slack_actor`), where the gateway hands off Slack sandbox deliveries, so the
first ``/incidentfox sandbox …`` does not wait for it to start.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve import Application
from sse_starlette import EventSourceResponse, ServerSentEvent

from actors.sandbox.access import SandboxAccess, api_may_approve
from actors.sandbox.backends import isolation_status
from actors.sandbox.client import SandboxBackend
from actors.sandbox.config import parse_llm_config, parse_team_sandbox
from actors.sandbox.events import SandboxEvent
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.mcp import McpServerSpec, cipher_from_settings, encrypt_env, public_view
from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.store import SandboxStore
from config_service import bearer_token
from incidentfox.contracts import Principal
from incidentfox.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    install_error_handlers,
)
from incidentfox.http_limits import SANDBOX_MAX_BODY, install_request_limits
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.pagination import Page, PageDep, envelope, page_responses
from incidentfox.settings import Settings
from serve_apps.idempotency import IdempotencyKey
from serve_apps.thread_binding import check_thread_owner

Authenticate = Callable[[str | None], Awaitable[Principal]]
TeamConfig = Callable[[Principal], Awaitable[dict[str, Any]]]
SchedulingFor = Callable[[dict[str, Any], str, str], dict[str, Any]]
CheckChannel = Callable[[str, str, str], Awaitable[None]]   # (org, team, channel): raise if not the team's
SSE_SEP = "\n"   # the framing clients have always seen (sse-starlette's default is CRLF)


class CreateSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=200)
    slack_channel: str | None = Field(default=None, max_length=64)
    slack_thread_ts: str | None = Field(default=None, max_length=64)


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000)


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]


class Allowlist(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: list[McpServerSpec] = Field(default_factory=list, max_length=200)


async def _parse(model: type[BaseModel], request: Request) -> Any:
    """Validate the body *after* authorisation, so a forbidden request is 403 whatever it carries."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequest("request body is not valid JSON", code="malformed_json") from None
        raise Unprocessable("request failed validation", details={"errors": errors}) from None


def _session_view(row: SandboxSessionRow) -> dict[str, Any]:
    return {"session_id": row.id, "org_id": row.org_id, "team_id": row.team_id, "status": row.status,
            "title": row.title, "created_at": row.created_at.isoformat(),
            "last_active_at": row.last_active_at.isoformat(), "expires_at": row.expires_at.isoformat(),
            "ttl_s": row.ttl_s, "turns": row.turns, "busy": row.busy, "end_reason": row.end_reason,
            "slack": {"channel": row.slack_channel, "thread_ts": row.slack_thread_ts} if row.slack_channel else None}


def sse_event(ev: SandboxEvent) -> ServerSentEvent:
    """One Server-Sent Event: ``event: <type>`` and the JSON object (type included) as data."""
    return ServerSentEvent(event=ev.type, data=json.dumps(ev.to_dict(), default=str), sep=SSE_SEP)


def _sse(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            if first is not None:
                yield sse_event(SandboxEvent.from_dict(first))
            async for ev in rest:
                yield sse_event(SandboxEvent.from_dict(ev))
        finally:
            # The turn itself keeps going if the client left; only this reader stops.
            await rest.aclose()  # type: ignore[attr-defined]

    return stream()


def create_sandbox_app(*, backend: SandboxBackend, settings: Settings, store: SandboxStore | None = None,
                       authenticate: Authenticate | None = None, team_config: TeamConfig | None = None,
                       scheduling_for: SchedulingFor | None = None,
                       isolation: Callable[[], IsolationStatus] | None = None,
                       check_channel: CheckChannel | None = None) -> FastAPI:
    """The FastAPI app (routes relative to the ``/api/v1/sandbox`` route prefix)."""
    app = FastAPI(title="IncidentFox sandbox API", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    install_error_handlers(app)
    # Cheap rejection: no token → 401 and an oversized body → 413, before any body is read.
    install_request_limits(app, max_body=SANDBOX_MAX_BODY, public_paths=("/health", "/openapi.json"))
    install_rate_limits(app, surface="api", settings=settings)   # outermost: 429 before anything else
    store = store or SandboxStore(settings.resolved_database_url())
    app.state.sandbox_store = store
    cipher = cipher_from_settings(settings)
    if authenticate is None or team_config is None or check_channel is None:
        from config_service import install_auth_state

        install_auth_state(app, settings=settings)
    if authenticate is None:
        async def authenticate(token: str | None) -> Principal:
            from config_service import authenticate as cs_authenticate

            async with app.state.session_factory() as s:
                return await cs_authenticate(s, token=token, settings=settings)
    if team_config is None:
        from config_service import TeamConfigReader

        reader = TeamConfigReader(app.state.session_factory, settings=settings)

        async def team_config(principal: Principal) -> dict[str, Any]:
            return await reader.read_doc(principal.org_id or "", principal.team_node_id or "")
    if scheduling_for is None:
        def scheduling_for(cfg: dict[str, Any], org_id: str, team_id: str) -> dict[str, Any]:
            from actors.engine.placement import scheduling_options

            return scheduling_options(cfg, org_id=org_id, team_id=team_id)
    if check_channel is None:
        async def check_channel(org_id: str, team_id: str, channel: str) -> None:
            from serve_apps.thread_binding import check_thread_channel

            async with app.state.session_factory() as s:
                await check_thread_channel(s, org_id=org_id, team_id=team_id, channel=channel,
                                           field="slack_channel", what="a sandbox session")
    if isolation is None:
        def isolation() -> IsolationStatus:
            return isolation_status(settings)

    async def principal_dep(request: Request) -> Principal:
        return await authenticate(bearer_token(request))

    PrincipalDep = Annotated[Principal, Depends(principal_dep)]

    async def visible(session_id: str, principal: PrincipalDep) -> SandboxSessionRow:
        row = await store.get_session(session_id=session_id)
        # 404 rather than 403: another tenant's session ids are not disclosed.
        if row is None or row.status == "deleted" or not principal.can_access_team(row.org_id, row.team_id):
            raise NotFound(f"sandbox session {session_id} does not exist", code="session_not_found")
        return row

    RowDep = Annotated[SandboxSessionRow, Depends(visible)]

    def team_of(principal: Principal) -> tuple[str, str]:
        if principal.auth_kind not in ("team", "impersonation") or not principal.team_node_id:
            raise Forbidden("sandbox sessions are opened with a team (or impersonation) token",
                            code="team_token_required")
        return principal.org_id or "", principal.team_node_id

    @app.get("/health")
    async def health() -> dict[str, Any]:
        status = await asyncio.to_thread(isolation)
        return {"status": "ok", "isolation": status.to_dict()}

    @app.post("/sessions", status_code=201)
    async def create(request: Request, principal: PrincipalDep, key: IdempotencyKey) -> dict[str, Any]:
        org_id, team_id = team_of(principal)
        body: CreateSession = await _parse(CreateSession, request)
        if body.slack_channel:   # mirrored with the team's bot: only into a channel the team has,
            await check_channel(org_id, team_id, body.slack_channel)
            if body.slack_thread_ts:   # and only into a thread that is not another team's
                async with store.sessions() as s:
                    await check_thread_owner(s, org_id=org_id, team_id=team_id, channel=body.slack_channel,
                                             thread_ts=body.slack_thread_ts)
        cfg = await team_config(principal)
        parse_llm_config(cfg.get("llm"))  # fail now, not at the first message, if the team has no model
        sandbox = dict(cfg.get("sandbox") or {})
        parse_team_sandbox(sandbox)
        slack = {"channel": body.slack_channel, "thread_ts": body.slack_thread_ts} if body.slack_channel else None
        created = await backend.create_session(
            org_id=org_id, team_id=team_id, created_by=principal.subject or principal.auth_kind,
            title=body.title, sandbox=sandbox, scheduling=scheduling_for(cfg, org_id, team_id), slack=slack, key=key)
        answer = {"session_id": created["session_id"], "expires_at": created["expires_at"], "ttl_s": created["ttl_s"]}
        return {**answer, "duplicate": True} if created.get("duplicate") else answer

    @app.post("/sessions/{session_id}/messages")
    async def message(request: Request, principal: PrincipalDep,
                      row: RowDep) -> EventSourceResponse:
        if principal.team_node_id != row.team_id:
            raise Forbidden("messages are sent with the session team's (or an impersonation) token",
                            code="team_token_required")
        body: SendMessage = await _parse(SendMessage, request)
        cfg = await team_config(principal)
        slack = None
        if row.slack_channel:
            token = ((cfg.get("integrations") or {}).get("slack") or {}).get("bot_token")
            slack = {"channel": row.slack_channel, "thread_ts": row.slack_thread_ts, "bot_token": token}
        events = backend.send_message(row.id, text=body.text, llm=dict(cfg.get("llm") or {}),
                                      sandbox=dict(cfg.get("sandbox") or {}), slack=slack)
        try:  # the first event surfaces typed errors (404/409/410/403) as HTTP statuses, not as a stream
            first = await events.__anext__()
        except StopAsyncIteration:
            first = None
        # sse-starlette frames the events and adds a comment ping every 15 s, so a proxy keeps a long
        # tool run's stream open.
        return EventSourceResponse(_sse(first, events), sep=SSE_SEP)

    @app.get("/sessions", responses=page_responses("SandboxSessionPage"))
    async def list_sessions(principal: PrincipalDep, page: PageDep,
                            status: Literal["active", "expired"] | None = None) -> dict[str, Any]:
        """The sessions the token sees (a team token its team's, an org admin its org's), newest first."""
        org = principal.org_id if principal.auth_kind != "global_admin" else None
        team = principal.team_node_id if principal.auth_kind in ("team", "impersonation") else None
        rows = await store.page_sessions(page=page, org_id=org, team_id=team, status=status)
        return envelope(Page([_session_view(r) for r in rows.items], rows.next_cursor))

    @app.get("/sessions/{session_id}")
    async def get(row: RowDep) -> dict[str, Any]:
        view = _session_view(row)
        view["pending_approvals"] = await backend.pending_approvals(row.id) if row.status == "active" else []
        view["transcript"] = await store.list_messages(session_id=row.id)
        return view

    @app.post("/sessions/{session_id}/approvals/{approval_id}")
    async def decide_approval(request: Request, principal: PrincipalDep, row: RowDep,
                              approval_id: str) -> dict[str, Any]:
        access = SandboxAccess.from_config(await team_config(principal)) \
            if principal.auth_kind not in ("global_admin", "org_admin") else SandboxAccess()
        if not api_may_approve(principal, access):
            raise Forbidden("only the org's admins (or team tokens, when the team sets access.api_approvals) "
                            "may approve sandbox tool calls over the API", code="not_an_approver")
        body: ApprovalDecision = await _parse(ApprovalDecision, request)
        by = principal.subject or principal.auth_kind
        if not await backend.decide_approval(row.id, approval_id, approve=body.decision == "approve", by=by):
            raise Conflict(f"approval {approval_id!r} is not pending in this session", code="approval_not_pending")
        return {"session_id": row.id, "approval_id": approval_id, "decision": body.decision}

    @app.delete("/sessions/{session_id}")
    async def delete(row: RowDep) -> dict[str, Any]:
        await backend.delete_session(row.id)
        return {"session_id": row.id, "deleted": True}

    @app.post("/sessions/{session_id}/interrupt")
    async def interrupt(row: RowDep) -> dict[str, Any]:
        return {"session_id": row.id, "interrupted": await backend.interrupt(row.id)}

    @app.get("/mcp-allowlist")
    async def get_allowlist(principal: PrincipalDep) -> dict[str, Any]:
        full = principal.auth_kind == "global_admin"
        rows = await store.get_allowlist()
        return {"servers": [public_view({"name": r.name, "transport": r.transport, "command": r.command,
                                         "url": r.url, "env": r.env, "description": r.description,
                                         "tool_timeout_s": r.tool_timeout_s}, full=full) for r in rows]}

    @app.put("/mcp-allowlist")
    async def put_allowlist(request: Request, principal: PrincipalDep) -> JSONResponse:
        if principal.auth_kind != "global_admin":  # checked before the body is read
            raise Forbidden("only the platform's global admin may change the MCP allow-list",
                            code="global_admin_required")
        body: Allowlist = await _parse(Allowlist, request)
        names = [s.name for s in body.servers]
        if len(set(names)) != len(names):
            raise Unprocessable("server names must be unique", code="duplicate_name")
        entries = [{**s.model_dump(), "env": encrypt_env(s.env, cipher)} for s in body.servers]
        await store.replace_allowlist(entries=entries, updated_by=principal.subject or "admin")
        return JSONResponse({"servers": [public_view(e, full=True) for e in entries]})

    return app


# --- Serve ------------------------------------------------------------------------------------


class SandboxApiArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(default="incidentfox", min_length=1, max_length=64)
    # Hosts started with the manager, one per scheduling constraint, so creates never wait for an
    # actor to boot. Shared teams' constraint by default (actors.engine.placement).
    prewarm: list[dict[str, Any]] = Field(default_factory=lambda: [{"resources": {"shared": 0.001}}])


@serve.deployment(name="SandboxAPI", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=500,
                  health_check_period_s=10)
@serve.ingress()
class SandboxAPI:
    """Serve ingress for ``/api/v1/sandbox``; settings (database, secrets) from the environment."""

    async def __init__(self, *, namespace: str = "incidentfox", prewarm: list[dict[str, Any]] | None = None) -> None:
        from actors.sandbox.client import RaySandboxBackend
        from actors.sandbox.config import SandboxRuntime
        from actors.sandbox.manager import get_or_create_manager
        from actors.sandbox.slack_actor import get_or_create_slack_actor
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        self._settings = Settings()
        runtime = SandboxRuntime.from_settings(self._settings, namespace=namespace)
        self._manager = get_or_create_manager(runtime, prewarm=prewarm or [])
        await self._manager.start.remote()
        self._backend = RaySandboxBackend(self._manager, namespace=namespace)
        self._slack = get_or_create_slack_actor(self._settings, namespace=namespace, prewarm=prewarm or [])
        await self._slack.ping.remote()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_sandbox_app(backend=self._backend, settings=self._settings)


def build_app(args: dict[str, Any] | SandboxApiArgs) -> Application:
    """``serve_apps.builder:build_sandbox`` delegates here with the app's ``args``."""
    a = args if isinstance(args, SandboxApiArgs) else SandboxApiArgs.model_validate(args or {})
    return SandboxAPI.bind(namespace=a.namespace, prewarm=a.prewarm)
