"""The webhook gateway: verify → parse → route → record once → answer → dispatch after.

Order of operations for every ``POST /webhooks/<source>`` and its per-org (``…/o/<org>``) and
per-team (``…/o/<org>/t/<team>``) URLs (issues 3 and 12):

0. Rate limits per sender address (:mod:`incidentfox.http_rate_limit`): over them, 429 with
   ``Retry-After`` before anything is read, verified or recorded.
1. The body is read with a 1 MiB cap (``Content-Length`` first, then the streamed size): 413.
2. An unsigned request is refused (401 ``missing_signature``) before any lookup or decrypt; then the
   secret is chosen by the URL alone (:mod:`serve_apps.webhook_secrets`: the environment's on the
   shared URL, the org's or team's own on its URL) and the signature verified: 401, with the reason
   (``stale_timestamp`` says so). NOTHING is recorded or dispatched before this succeeds.
3. The body is parsed into a ``ParseResult`` whose delivery id (the dedupe key) comes from signed
   content only, prefixed with the org/team scope; 400 when malformed; ``response`` (Slack
   ``url_verification``, slash-command usage) is answered as is; ``ignored`` answers
   ``200 {"ignored": true}`` and records nothing.
4. The trigger is routed (Router deployment, memoised here for ``route_memo_s``; a team URL routes
   to its team; an org URL's delivery never leaves its org, see :meth:`GatewayCore._route`), then
   :func:`serve_apps.deliveries.intake` records it (an alert with its team's
   ``investigation.correlation_window_s``, read through ``config_service.TeamConfigReader``) and
   decides what it does in one transaction (on
   SQLite through :class:`serve_apps.deliveries.batch.IntakeBatcher`: concurrent webhooks share one
   transaction, the single writer's group commit): the run it starts or joins, or - for
   ``/incidentfox sandbox …`` and replies in a sandbox session's thread - the sandbox work it hands off.
5. The sender gets 200 with ``run_id`` (``duplicate: true`` on a redelivery). The hand-off happens
   after, as a task on this replica's loop: to the :class:`~incidentfox.runs.runner.Runner` for runs,
   to the :class:`~incidentfox.runs.runner.SandboxRunner` for sandbox traffic (opens and turns run on
   the sandbox side, :mod:`actors.sandbox.slack_actor`, never here). A lost hand-off is repaired by
   the sweep (:class:`Sweeper`), for both.

Everything here is async; the only blocking work is HMAC and JSON on small bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config_service import DEFAULT_CORRELATION_WINDOW_S, TeamConfigError
from incidentfox import metrics
from incidentfox.background import BackgroundTasks
from incidentfox.contracts import DeliveryOutcome, Trigger, TriggerAction
from incidentfox.errors import BadRequest, NotFound, PayloadTooLarge, error_response, install_error_handlers
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.runs.runner import Runner, SandboxRunner
from incidentfox.settings import Settings, get_settings
from incidentfox.sqlite_writer import single_writer
from serve_apps import deliveries
from serve_apps.deliveries import Route
from serve_apps.deliveries.batch import IntakeBatcher
from serve_apps.webhook_secrets import SourceSpec, WebhookSecrets, source_spec
from serve_apps.webhooks.errors import WebhookError
from serve_apps.webhooks.scope import SHARED, Scope, scoped_trigger

log = logging.getLogger("incidentfox.gateway")

MAX_BODY = 1024 * 1024
CONFIG_READ_TIMEOUT_S = 2.0   # a team's correlation window, read before the ack
ENDPOINTS: dict[str, str] = {
    "/slack/events": "slack",
    "/slack/commands": "slack",
    "/slack/interactions": "slack",
    "/github": "github",
    "/pagerduty": "pagerduty",
    "/incidentio": "incidentio",
    "/alertmanager": "alertmanager",
    "/grafana": "grafana",
}
ResolveFn = Callable[[Mapping[str, str]], Awaitable[Route]]


class MemoResolver:
    """Memoises a resolver's answers for ``ttl_s`` (fresh answers only; stale ones are re-asked),
    so the hot path makes no handle hop for a channel seen in the last second."""

    def __init__(self, resolve: ResolveFn, *, ttl_s: float = 1.0, max_entries: int = 10_000) -> None:
        self._resolve, self._ttl, self._max = resolve, ttl_s, max_entries
        self._memo: dict[tuple[tuple[str, str], ...], tuple[float, Route]] = {}

    async def __call__(self, identifiers: Mapping[str, str]) -> Route:
        key = tuple(sorted(identifiers.items()))
        now = time.monotonic()
        hit = self._memo.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        route = await self._resolve(identifiers)
        if not route.stale and self._ttl > 0:
            if len(self._memo) >= self._max:
                self._memo.clear()
            self._memo[key] = (now, route)
        return route


@dataclass
class GatewayCore:
    """The gateway's behaviour, independent of Serve (tests drive it through :func:`create_gateway_app`)."""

    sessions: async_sessionmaker[AsyncSession]
    runner: Runner
    resolve: ResolveFn
    secrets: WebhookSecrets
    # The teams' configs (config_service.TeamConfigSource): each team's alert-storm window,
    # investigation.correlation_window_s. None: every team gets the default.
    team_configs: Any = None
    max_body: int = MAX_BODY
    clock: Callable[[], float] = time.time
    store_payload: bool = True
    counters: dict[str, int] = field(default_factory=dict)
    _tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    _marks: deliveries.DispatchMarks | None = None

    # Where sandbox deliveries are handed off; None: they stay recorded, undispatched, for a sweep
    # that has one.
    sandbox: SandboxRunner | None = None
    # Runs a proposed fix a Slack approver just approved (actors.engine.actions.ActionRunner); None:
    # it stays approved, for the API's approve to run.
    actions: Any = None
    _batcher: IntakeBatcher | None = None

    def __post_init__(self) -> None:
        self._marks = deliveries.DispatchMarks(self.sessions)
        if single_writer(self.sessions):
            self._batcher = IntakeBatcher(self.sessions)   # group commit: see serve_apps.deliveries.batch

    async def _intake(self, **kw: Any) -> deliveries.IntakeResult:
        if self._batcher is not None:
            return await self._batcher.intake(**kw)
        return await deliveries.intake(self.sessions, **kw)

    def _count(self, source: str, outcome: str) -> None:
        key = f"{source}:{outcome}"
        self.counters[key] = self.counters.get(key, 0) + 1
        metrics.WEBHOOKS_TOTAL.inc(source=source, outcome=outcome)

    async def handle(self, *, endpoint: str, headers: Mapping[str, str], body: bytes,
                     scope: Scope = SHARED) -> JSONResponse:
        started = time.perf_counter()
        spec = source_spec(ENDPOINTS[endpoint])
        try:
            response = await self._handle(spec, endpoint=endpoint, headers=headers, body=body, scope=scope)
        except WebhookError as exc:
            self._count(spec.name, "rejected")
            log.info("webhook rejected", extra={"source": spec.name, "reason": exc.reason})
            raise
        metrics.WEBHOOK_ACK_SECONDS.observe(time.perf_counter() - started)
        return response

    async def _handle(self, spec: SourceSpec, *, endpoint: str, headers: Mapping[str, str],
                      body: bytes, scope: Scope) -> JSONResponse:
        now = self.clock()
        await self.secrets.verify(spec, scope, headers=headers, body=body, now=now)
        result = spec.parse(headers=headers, body=body, now=now)
        if result.response is not None:
            self._count(spec.name, "answered")
            return JSONResponse(result.response)
        if result.ignored or result.trigger is None:
            self._count(spec.name, "ignored")
            return JSONResponse({"ignored": True, "reason": result.reason})
        trigger = scoped_trigger(result.trigger, scope)
        route = await self._route(trigger, scope)
        # Stored as text: undecodable bytes and NULs (PostgreSQL stores none) become U+FFFD.
        payload = body.decode("utf-8", "replace").replace("\x00", "\ufffd") if self.store_payload else ""
        outcome = await self._intake(trigger=trigger, route=route, payload=payload,
                                     correlation_window_s=await self._correlation_window(trigger, route))
        self._count(spec.name, "duplicate" if outcome.duplicate else outcome.outcome)
        if outcome.action_id and outcome.run_id and self.actions is not None and not outcome.duplicate:
            self._spawn(self.actions.run(run_id=outcome.run_id, action_id=outcome.action_id))
        if outcome.dispatch is not None:
            self._spawn(deliveries.dispatch(self.sessions, self.runner, delivery_pk=outcome.delivery_pk,
                                            plan=outcome.dispatch, trigger=trigger, marks=self._marks,
                                            sandbox=self.sandbox))
        return JSONResponse(self._answer(endpoint, trigger, outcome, route))

    async def _correlation_window(self, trigger: Trigger, route: Route) -> float:
        """The routed team's ``investigation.correlation_window_s`` (0: never correlate) for an alert
        that may correlate. A config that cannot be read gives the default: the alert is recorded
        either way, and correlation only decides whether it joins a running incident."""
        if (self.team_configs is None or not trigger.is_alert or trigger.human or not route.found
                or not route.org_id or not route.team_id):
            return DEFAULT_CORRELATION_WINDOW_S
        try:
            return (await self.team_configs.read(route.org_id, route.team_id)).correlation_window_s
        except (TeamConfigError, NotFound) as exc:
            log.warning("correlation window of %s/%s unreadable (%s); using the default",
                        route.org_id, route.team_id, exc.code)
            return DEFAULT_CORRELATION_WINDOW_S

    async def _route(self, trigger: Trigger, scope: Scope) -> Route:
        """The router's answer, bounded by the signed scope: a team URL's delivery goes to that
        team; an org URL's goes to the team of that org its identifiers name, else nowhere."""
        bound = {"verified_org": scope.org_id, "verified_team": scope.team_id}
        if scope.team_id:
            return Route(found=True, org_id=scope.org_id, team_id=scope.team_id, matched_by="webhook_url",
                         matched_value=scope.label, **bound)
        if trigger.action is TriggerAction.INTERACTION and not trigger.identifiers:
            return Route(found=False, **bound)
        route = await self.resolve(trigger.identifiers)
        if scope.org_id and route.found and route.org_id != scope.org_id:
            # Signed with org A's secret but routed to org B: never hand A's event to B.
            return Route(found=False, stale=route.stale, **bound)
        return replace(route, **bound)

    @staticmethod
    def _answer(endpoint: str, trigger: Trigger, outcome: deliveries.IntakeResult,
                route: Route) -> dict[str, Any]:
        body = outcome.response()
        if route.stale:
            body["route_stale"] = True
        if endpoint == "/slack/commands":
            if outcome.outcome is DeliveryOutcome.SANDBOX_OPENED:
                text = ("🧪 Sandbox session opened for: " + trigger.title[:200]
                        + ". Its progress follows in a thread in this channel; reply there to continue it.")
            elif outcome.outcome is DeliveryOutcome.UNROUTED:
                text = "No team has claimed this channel in IncidentFox yet, so nothing was started."
            elif outcome.run_id:
                text = f"Investigating: {trigger.title} (run `{outcome.run_id}`)."
            else:
                text = "Received."
            return {"response_type": "ephemeral", "text": text, **body}
        return body

    def _spawn(self, coro: Awaitable[Any]) -> None:
        self._tasks.spawn(coro)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for in-flight dispatches (tests; graceful shutdown)."""
        await self._tasks.drain(timeout_s)
        await self._marks.drain()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes by header and by streamed size."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest("Content-Length is not a number", code="malformed_request")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Sweeper:
    """Runs :func:`serve_apps.deliveries.sweep` every ``interval_s`` on the current loop (and once
    at start); sandbox deliveries too when given ``sandbox``. Started lazily from a request or a
    health check, since Serve constructs replicas outside their serving loop."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], runner: Runner, *,
                 interval_s: float = 10.0, grace_s: float = deliveries.SWEEP_GRACE_S,
                 sandbox: SandboxRunner | None = None) -> None:
        self._sessions, self._runner, self._sandbox = sessions, runner, sandbox
        self._interval, self._grace = interval_s, grace_s
        self._task: asyncio.Task | None = None
        self.swept = 0

    def ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(max(self._interval, 30.0)):
                    self.swept += len(await deliveries.sweep(self._sessions, self._runner,
                                                             sandbox=self._sandbox, grace_s=self._grace))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery sweep failed")
            await asyncio.sleep(self._interval)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def create_gateway_app(core: GatewayCore, *, on_request: Callable[[], None] | None = None,
                       settings: Settings | None = None) -> FastAPI:
    """The gateway's FastAPI app (mounted at ``/webhooks``). ``on_request`` runs before each webhook
    (the Serve deployment uses it to start its sweeper). ``settings`` (default: the environment's)
    give the webhook rate limits: a throttled webhook is answered 429 before its body is read, so
    nothing is verified or recorded and the sender's retry is the delivery."""
    app = FastAPI(title="IncidentFox webhook gateway", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    install_error_handlers(app)
    install_rate_limits(app, surface="webhooks", settings=settings or get_settings())

    @app.exception_handler(OperationalError)
    async def _store_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        # Nothing was recorded (the transaction rolled back): ask the sender to retry, which every
        # source does on 5xx; the retry is deduplicated like any other.
        log.warning("webhook store unavailable: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
        return error_response("store_unavailable", "the webhook store is busy; retry shortly", 503,
                              headers={"Retry-After": "1"})

    def _route(endpoint: str) -> Callable[..., Awaitable[JSONResponse]]:
        async def receive(request: Request) -> JSONResponse:
            if on_request is not None:
                on_request()
            body = await read_body(request, core.max_body)
            # The scope comes from the URL path only: it picks the secret (see webhook_secrets).
            org, team = request.path_params.get("org"), request.path_params.get("team")
            return await core.handle(endpoint=endpoint, headers=request.headers, body=body,
                                     scope=Scope(org_id=org, team_id=team) if org else SHARED)

        receive.__name__ = "receive_" + endpoint.strip("/").replace("/", "_")
        return receive

    for endpoint in ENDPOINTS:
        for suffix, scope in (("", ()), ("/o/{org}", ("org",)), ("/o/{org}/t/{team}", ("org", "team"))):
            # The body is read raw (its signature covers the bytes), so OpenAPI learns the path
            # parameters here rather than from the handler's signature.
            params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"},
                       "description": f"the {p} whose webhook secret signs this URL"} for p in scope]
            app.add_api_route(endpoint + suffix, _route(endpoint), methods=["POST"],
                              openapi_extra={"parameters": params} if params else None)

    return app


# --- Serve deployment -----------------------------------------------------------------------------


@serve.deployment(
    name="Gateway",
    ray_actor_options={"num_cpus": 0},
    max_ongoing_requests=256,
    autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64,
                        "upscale_delay_s": 5, "downscale_delay_s": 60},
    health_check_period_s=5,
)
@serve.ingress()
class Gateway:
    """Serve ingress for ``/webhooks``. Constructed by :func:`serve_apps.builder.build_gateway` with
    validated args; the database URL and secrets come from the environment."""

    async def __init__(self, router: DeploymentHandle, *, runner: str = "investigation",
                 route_memo_s: float = 1.0, sweep_interval_s: float = 10.0,
                 org_secret_overrides: bool = True, store_payload: bool = True) -> None:
        from actors.engine.actions import ActionRunner
        from actors.sandbox.slack_actor import RaySandboxRunner
        from config_service import TeamConfigReader
        from incidentfox.db import make_async_engine, session_factory
        from incidentfox.logs import configure_process_logging
        from serve_apps.router import route_from_dict
        from serve_apps.runners import make_runner
        from serve_apps.webhook_secrets import make_secret_loader

        configure_process_logging()
        settings = self._settings = Settings()
        url = settings.resolved_database_url()
        self._engine = make_async_engine(url)
        sessions = session_factory(self._engine)
        runner_obj = make_runner(runner, database_url=url)

        async def via_router(identifiers: Mapping[str, str]) -> Route:
            return route_from_dict(await router.resolve.remote(dict(identifiers)))

        resolve = MemoResolver(via_router, ttl_s=route_memo_s)
        # org_secret_overrides: per-org/per-team webhook URLs with their own secrets (off → 404).
        load = make_secret_loader(sessions, settings=settings) if org_secret_overrides else None
        sandbox = RaySandboxRunner(settings)
        self._core = GatewayCore(sessions=sessions, runner=runner_obj, resolve=resolve,
                                 secrets=WebhookSecrets(load=load, env=settings.shared_webhook_secrets()),
                                 team_configs=TeamConfigReader(sessions, settings=settings,
                                                               timeout_s=CONFIG_READ_TIMEOUT_S),
                                 store_payload=store_payload, sandbox=sandbox,
                                 actions=ActionRunner(sessions, settings=settings, database_url=url))
        self._sweeper = Sweeper(sessions, runner_obj, interval_s=sweep_interval_s, sandbox=sandbox)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_gateway_app(self._core, on_request=self._sweeper.ensure_started, settings=self._settings)

    async def check_health(self) -> None:
        # Serve calls this periodically on the replica's loop: it starts the recovery sweep even
        # when no webhook has arrived since the replica started.
        self._sweeper.ensure_started()

    async def __del__(self) -> None:
        self._sweeper.stop()
        await self._engine.dispose()
