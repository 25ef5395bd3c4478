"""The tools catalogue (mounted at ``/api/v1/tools``): the platform's tool list, no tenant data.

``GET /catalog?limit=&cursor=`` → ``{items, next_cursor, tools}`` (``tools``: the same page, the
older key), in catalogue order (category, then name). Public, like the registry it reads.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from incidentfox.errors import install_error_handlers
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.pagination import LongPageDep, envelope, page_list, page_responses
from incidentfox.settings import Settings

OPENAPI_PATH = "/openapi.json"


def create_tools_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="IncidentFox tools", docs_url=None, redoc_url=None, openapi_url=OPENAPI_PATH)
    install_error_handlers(app)
    install_rate_limits(app, surface="api", settings=settings or Settings())   # outermost: 429 first

    @app.get("/catalog", responses=page_responses("ToolPage", "tools"))
    async def catalog(page: LongPageDep) -> dict[str, Any]:
        """Every tool the agents can call: name, category, description, timeout, mutating."""
        from actors.tools.registry import catalog as tool_catalog

        chosen = page_list(tool_catalog(), page, key=lambda t: (t["category"], t["name"]), kinds=(str, str))
        return envelope(chosen, legacy_key="tools")

    return app
