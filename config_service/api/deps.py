"""FastAPI dependencies: database session, settings and the authenticated principal.

Reusing :data:`PrincipalDep` in another FastAPI app (agent API, sandbox API, reports API)
---------------------------------------------------------------------------------------
The dependencies read two attributes of ``app.state``; set them when building the app::

    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.settings import ensure_local_secrets, get_settings
    from config_service.api.deps import PrincipalDep, install_auth_state

    app = FastAPI()
    install_auth_state(app, settings=ensure_local_secrets(get_settings()))
    #   app.state.settings        -> incidentfox.settings.Settings (token_pepper and, for the
    #                                global admin, admin_token must be set)
    #   app.state.session_factory -> async_sessionmaker[AsyncSession] on the shared database
    #   app.state.engine          -> its AsyncEngine (dispose it on shutdown)

    @app.get("/api/v1/agent/runs")
    async def runs(principal: PrincipalDep): ...

``PrincipalDep`` reads ``Authorization: Bearer <token>`` and calls
:func:`config_service.services.auth.authenticate`: 401 (``missing_token``, ``invalid_token``,
``token_expired``, ``token_revoked``) in the shared error shape when it fails. Authorise with the
returned :class:`incidentfox.contracts.Principal` (``can_access_team`` or
:mod:`config_service.core.authz`) *before* reading the request body, so a forbidden request is 403
whatever it carries. Install :func:`incidentfox.errors.install_error_handlers` so the 401 renders.

Connections: ``PrincipalDep`` authenticates in a session of its own and closes it before the
handler runs, so a request holds at most the connections its handler opens. A handler uses either
:data:`SessionDep` (one session for the request) or ``async with app.state.session_factory()``
blocks, not both at once: a connection held while waiting for another is how concurrent requests
starve the pool. When the pool stays exhausted for its timeout the request is answered 503
``database_busy`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core import authz
from config_service.services.auth import authenticate
from incidentfox.contracts import Principal
from incidentfox.db import make_async_engine, session_factory
from incidentfox.errors import Unauthorized
from incidentfox.settings import Settings


def install_auth_state(app: FastAPI, *, settings: Settings) -> None:
    """Create the engine and session factory for ``settings`` and put them on ``app.state``."""
    engine = make_async_engine(settings.resolved_database_url())
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when absent; 401 if malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", code="invalid_token")
    return token.strip()


async def principal_dependency(request: Request, settings: SettingsDep) -> Principal:
    """Authenticate the request's bearer token (see module docstring).

    The lookup runs in a session of its own, closed (its connection back in the pool) before the
    handler runs. Sharing :data:`SessionDep`, or any session that lives as long as the request,
    would hold a connection for the whole request: N concurrent requests whose handler opens
    another session would hold N connections while waiting for N more, and with N past the pool
    they all wait until the pool times out.
    """
    token = bearer_token(request)
    async with request.app.state.session_factory() as session:
        return await authenticate(session, token=token, settings=settings)


PrincipalDep = Annotated[Principal, Depends(principal_dependency)]


# Authorisation as dependencies: they run before FastAPI validates query parameters, and routes
# read their body only afterwards, so a forbidden request is 403 whatever else is wrong with it.

async def _global_admin(principal: PrincipalDep) -> Principal:
    authz.require_global_admin(principal)
    return principal


async def _org_admin(org: str, principal: PrincipalDep) -> Principal:
    authz.require_org_admin(principal, org)
    return principal


async def _team_reader(org: str, node: str, principal: PrincipalDep) -> Principal:
    authz.require_team_reader(principal, org, node)
    return principal


async def _team_principal(principal: PrincipalDep) -> Principal:
    authz.require_team_principal(principal)
    return principal


GlobalAdminDep = Annotated[Principal, Depends(_global_admin)]
OrgAdminDep = Annotated[Principal, Depends(_org_admin)]          # path must have {org}
TeamReaderDep = Annotated[Principal, Depends(_team_reader)]      # path must have {org} and {node}
TeamPrincipalDep = Annotated[Principal, Depends(_team_principal)]
