"""The config service as a FastAPI app: ``create_app(settings)``.

Runs alone (``incidentfox config-service --port 8080``, which migrates first) or mounted as a Ray
Serve application (the ``config`` app at ``/``). OpenAPI is at ``/docs`` (``/openapi.json``).
Every error, including 404/405, validation, 401 for a request without a bearer token
(:mod:`incidentfox.http_limits`, before the body is read) and 413 for bodies over 1 MiB, uses the shared shape
``{"error": {"code", "message", "details"}}``.

``create_app`` creates the async engine eagerly (so in-process test clients work without a
lifespan) and disposes it at shutdown. It does not migrate: run ``incidentfox db upgrade`` (or
:func:`incidentfox.db.upgrade`) first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from config_service.api.deps import install_auth_state
from config_service.api.routes import (
    audit,
    auth,
    config,
    egress,
    health,
    integrations,
    nodes,
    orgs,
    routing,
    routing_claims,
    tokens,
    webhook_secrets,
)
from config_service.api.routes.health import HealthCheck
from incidentfox.errors import install_error_handlers
from incidentfox.http_limits import MAX_BODY_BYTES, install_request_limits
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.integration_probe import IntegrationProber
from incidentfox.settings import Settings, ensure_local_secrets, get_settings

API_VERSION = "1"
# Paths that answer without a token (everything else needs ``Authorization: Bearer``).
PUBLIC_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
PLATFORM_OPENAPI_PATH = "/api/openapi.json"


def create_app(settings: Settings | None = None, *, max_body_bytes: int = MAX_BODY_BYTES,
               health_checks: dict[str, HealthCheck] | None = None,
               platform_openapi: Callable[[], dict[str, Any]] | None = None,
               integration_prober: IntegrationProber | None = None) -> FastAPI:
    """Build the app. Missing token pepper / Fernet key are generated into ``settings.home``
    (:func:`incidentfox.settings.ensure_local_secrets`), so a local start needs no setup.

    ``health_checks`` adds named components to ``GET /health`` (the platform passes the sandbox's
    isolation status, so ``/health`` says why sandbox Bash is refused when it is).
    ``platform_openapi`` serves the whole platform's merged OpenAPI document at
    ``GET /api/openapi.json`` (public, like ``/openapi.json``; the Serve builder passes
    ``serve_apps.api_docs.merged_document``). ``integration_prober`` runs "test connection" for
    ``POST …/integrations/{name}/test`` (the Serve builder passes ``actors.tools.probes.prober()``;
    without it every test is 422 ``probe_not_supported``)."""
    settings = ensure_local_secrets(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.engine.dispose()

    app = FastAPI(title="IncidentFox config service", version=API_VERSION, lifespan=lifespan,
                  docs_url="/docs", openapi_url="/openapi.json",
                  description="Org → unit → team config tree with inheritance, tokens, routing and audit.")
    install_auth_state(app, settings=settings)
    app.state.health_checks = dict(health_checks or {})
    app.state.integration_prober = integration_prober
    install_error_handlers(app)
    public = PUBLIC_PATHS
    if platform_openapi is not None:
        public += (PLATFORM_OPENAPI_PATH,)

        async def platform_document(_: Request) -> JSONResponse:
            return JSONResponse(await asyncio.to_thread(platform_openapi))   # built once, off the loop

        app.add_route(PLATFORM_OPENAPI_PATH, platform_document, methods=["GET"], include_in_schema=False)
    # Cheap rejection: no token → 401 and an oversized body → 413, before any body is read.
    install_request_limits(app, max_body=max_body_bytes, public_paths=public)
    # Outermost: per-token and per-IP limits on /api (not /health or the docs pages): 429 first.
    install_rate_limits(app, surface="api", settings=settings, path_prefix="/api/")
    for module in (health, auth, orgs, nodes, config, tokens, routing, routing_claims, integrations, audit,
                   webhook_secrets, egress):
        app.include_router(module.router)
    return app
