"""Where the scheduler reads schedules from: every team's effective config, straight from the
config service's service layer on the shared database (secrets decrypted for Slack posting)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from config_service.db.models import ConfigNode
from config_service.services.config import get_effective_config
from incidentfox.settings import Settings


def team_config_provider(sessions: async_sessionmaker, settings: Settings):
    """An async callable returning ``[(org_id, team_id, effective_config)]`` for teams with schedules."""

    async def provider() -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        async with sessions() as s:
            teams = (await s.execute(select(ConfigNode.org_id, ConfigNode.node_id)
                                     .where(ConfigNode.kind == "team")
                                     .order_by(ConfigNode.org_id, ConfigNode.node_id))).all()
            for org_id, team_id in teams:
                cfg = await get_effective_config(s, org_id=org_id, node_id=team_id, reveal_secrets=True,
                                                 settings=settings)
                if cfg.get("schedules"):
                    out.append((org_id, team_id, cfg))
        return out

    return provider


async def team_config(sessions: async_sessionmaker, settings: Settings, *, org_id: str,
                      team_id: str) -> dict[str, Any]:
    async with sessions() as s:
        return await get_effective_config(s, org_id=org_id, node_id=team_id, reveal_secrets=True,
                                          settings=settings)
