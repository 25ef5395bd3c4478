"""The platform's one OpenAPI document: every HTTP surface, mounted where the Serve config puts it.

:func:`surface_apps` builds each surface's FastAPI app the way its Serve deployment does, but with
inert collaborators (an in-memory SQLite URL, stub runner/backend): a route table needs no live
database, runner or Ray. Mount prefixes are read from ``serve_apps/serve_config.yaml``, so the
document follows the deployed shape. :func:`merged_document` merges their documents
(:func:`serve_apps.openapi_merge.merge_openapi`); the config service serves it at
``GET /api/openapi.json`` (wired in :func:`serve_apps.builder.build_config`), and
``incidentfox docs openapi`` writes it to ``docs/openapi.json`` (a test keeps that file current).
Each surface also serves its own document at ``<prefix>/openapi.json``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from incidentfox.settings import Settings
from serve_apps.openapi_merge import Surface, merge_openapi

DESCRIPTION = ("Every IncidentFox HTTP surface in one document (config service, webhook gateway, agent, "
               "tools, sandbox, reports, knowledge). Each operation's `x-surface` names the Serve application "
               "that serves it. Lists answer `{items, next_cursor}` and take `?limit=&cursor=`; "
               "see docs/api.md.")


def _inert_settings() -> Settings:
    key = base64.urlsafe_b64encode(b"\0" * 32).decode()
    return Settings(database_url="sqlite+aiosqlite:///:memory:", token_pepper=SecretStr("openapi-docs"),
                    secret_key=SecretStr(key), admin_token=None)


class _Inert:
    """Stands in for a runner, sandbox backend or gateway core: building a route table calls none."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the OpenAPI-only app was asked for {name!r}")


def _config(settings: Settings) -> FastAPI:
    from config_service import create_app

    return create_app(settings)


def _gateway(settings: Settings) -> FastAPI:
    from serve_apps.gateway import create_gateway_app

    return create_gateway_app(_Inert())  # type: ignore[arg-type]


def _agent(settings: Settings) -> FastAPI:
    from serve_apps.agent_api import create_agent_app

    return create_agent_app(settings=settings, runner=_Inert())  # type: ignore[arg-type]


def _tools(settings: Settings) -> FastAPI:
    from serve_apps.tools_api import create_tools_app

    return create_tools_app()


def _sandbox(settings: Settings) -> FastAPI:
    from actors.sandbox.isolation import IsolationStatus
    from serve_apps.sandbox.api import create_sandbox_app

    async def no_principal(token: str | None) -> Any:
        raise RuntimeError("the OpenAPI-only app authenticates no one")

    async def no_config(principal: Any) -> dict[str, Any]:
        return {}

    return create_sandbox_app(backend=_Inert(), settings=settings, authenticate=no_principal,  # type: ignore[arg-type]
                              team_config=no_config, scheduling_for=lambda cfg, org, team: {},
                              isolation=lambda: IsolationStatus(mode="unavailable", reason="docs"))


def _reports(settings: Settings) -> FastAPI:
    from serve_apps.reports_api import create_reports_app

    return create_reports_app(settings)


def _knowledge(settings: Settings) -> FastAPI:
    from serve_apps.knowledge_api import create_knowledge_app

    return create_knowledge_app(settings)


# Serve application name (serve_config.yaml) → how to build its FastAPI app.
SURFACES: dict[str, Callable[[Settings], FastAPI]] = {
    "config": _config, "gateway": _gateway, "agent": _agent, "tools": _tools,
    "sandbox": _sandbox, "reports": _reports, "knowledge": _knowledge,
}


def mount_prefixes() -> dict[str, str]:
    """Application name → route prefix, from the committed Serve config, in its order."""
    from serve_apps.builder import load_serve_config

    return {a["name"]: a.get("route_prefix") or "/" for a in load_serve_config()["applications"]}


def surface_apps() -> list[tuple[str, str, FastAPI]]:
    """``(name, prefix, app)`` for every application of the Serve config that has an HTTP face."""
    settings = _inert_settings()
    return [(name, prefix, SURFACES[name](settings)) for name, prefix in mount_prefixes().items()
            if name in SURFACES]


def merge_apps(apps: list[tuple[str, str, FastAPI]]) -> dict[str, Any]:
    return merge_openapi([Surface(name, prefix, app.openapi()) for name, prefix, app in apps],
                         title="IncidentFox API", version="1", description=DESCRIPTION)


@cache
def merged_document() -> dict[str, Any]:
    """The merged document (built once per process)."""
    return merge_apps(surface_apps())


def render() -> str:
    """The merged document as committed to ``docs/openapi.json``."""
    return json.dumps(merged_document(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
