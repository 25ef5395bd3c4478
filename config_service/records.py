"""Library face for what other packages do in the config service's store *inside their own
transaction*: write an audit entry beside the change it records (an approval, a sandbox open),
read a team's effective config with the caller's session, ask which other team holds a routing
claim (``foreign_claim_owners``), and whether a Slack channel is the team's (``team_has_channel``:
where its runs and schedules may post, :mod:`config_service.services.channels`).
Everything else goes through :class:`config_service.TeamConfigReader`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config_service.services import channels
from config_service.services.audit import record as record_audit
from config_service.services.config import get_effective_config as effective_config_in_session
from config_service.services.routing import find_foreign_owners as foreign_claim_owners
from incidentfox.errors import NotFound


async def team_has_channel(session: AsyncSession, *, org_id: str, team_id: str, channel: str,
                           config: Mapping[str, Any] | None = None) -> bool:
    """Whether ``channel`` is one the team claims (``routing.slack_channel_ids``) or its
    ``slack.default_channel`` while no other team claims it. ``config`` is the team's effective
    config when the caller has it, else it is read in ``session``; a team that does not exist has
    no channel."""
    if config is None:
        try:
            config = await effective_config_in_session(session, org_id=org_id, node_id=team_id)
        except NotFound:
            return False
    return await channels.team_has_channel(session, org_id=org_id, team_id=team_id, channel=channel, config=config)


__all__ = ["effective_config_in_session", "foreign_claim_owners", "record_audit", "team_has_channel"]
