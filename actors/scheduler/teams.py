"""Where the scheduler reads schedules from: every team's effective config, through the config
service's reader (:class:`config_service.TeamConfigReader`: cached, time-bounded, secrets revealed
for Slack posting)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from config_service import TeamConfigError, TeamConfigReader
from incidentfox.errors import NotFound
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.scheduler")


def team_config_provider(sessions: async_sessionmaker, settings: Settings):
    """An async callable returning ``[(org_id, team_id, effective_config)]`` for teams with schedules.

    A team whose config cannot be read (deleted meanwhile, unparseable, the read timed out) is
    skipped with a warning, so one team never stops the others' schedules."""
    reader = TeamConfigReader(sessions, settings=settings)

    async def provider() -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for org_id, team_id in await reader.team_ids():
            try:
                cfg = await reader.read(org_id, team_id)
            except NotFound:
                continue
            except TeamConfigError as exc:
                log.warning("schedules of %s/%s skipped: %s (%s)", org_id, team_id, exc.message, exc.code)
                continue
            if cfg.effective.schedules:
                out.append((org_id, team_id, cfg.doc))
        return out

    return provider


async def team_config(sessions: async_sessionmaker, settings: Settings, *, org_id: str,
                      team_id: str) -> dict[str, Any]:
    """One team's effective config (secrets revealed); :class:`incidentfox.errors.NotFound` if unknown."""
    return await TeamConfigReader(sessions, settings=settings).read_doc(org_id, team_id)
