"""Which Slack channel a run started through the agent API may answer in.

``POST /api/v1/agent/runs`` takes ``thread_channel`` (and ``thread_ts``): the run's messages, its
Approve buttons and the replies it listens to are in that channel, posted with the team's Slack
credentials. A run may only be bound to a channel its team has: one it claims in routing
(``routing.slack_channel_ids``, each claimed by one team), or its ``slack.default_channel`` when no
other team claims that channel (a default channel is the org admin's word, not an exclusive
claim). Anything else is 403 ``channel_not_claimed`` before anything is recorded, for every token
(an admin starting a run for a team binds it by the same rule), and before the thread's owner is
looked up, so the answer says nothing about another team's threads in that channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.errors import Forbidden, NotFound


def team_channels(config: Mapping[str, Any]) -> tuple[frozenset[str], str | None]:
    """The channels a team's effective ``config`` names: its routing claims, and its default channel."""
    routing = config.get("routing") if isinstance(config.get("routing"), Mapping) else {}
    slack = config.get("slack") if isinstance(config.get("slack"), Mapping) else {}
    claimed = routing.get("slack_channel_ids") if isinstance(routing.get("slack_channel_ids"), list) else []
    default = slack.get("default_channel")
    return (frozenset(c.strip() for c in claimed if isinstance(c, str) and c.strip()),
            default.strip() if isinstance(default, str) and default.strip() else None)


async def check_thread_channel(session: AsyncSession, *, org_id: str, team_id: str, channel: str) -> None:
    """Return if ``channel`` is one of the team's (see the module docstring); else raise 403
    ``channel_not_claimed``. A team that does not exist has no channel."""
    from config_service import effective_config_in_session, foreign_claim_owners

    try:
        config = await effective_config_in_session(session, org_id=org_id, node_id=team_id)
    except NotFound:
        config = {}
    channel = channel.strip()
    claimed, default = team_channels(config)
    if channel in claimed:
        return
    if channel == default and not await foreign_claim_owners(session, org_id=org_id, team_node_id=team_id,
                                                             claims={("slack_channel_id", channel)}):
        return
    raise Forbidden("a run can be bound only to a Slack channel its team claims (routing.slack_channel_ids) "
                    "or its slack.default_channel when no other team claims it", code="channel_not_claimed",
                    details={"field": "thread_channel", "team": team_id})


__all__ = ["check_thread_channel", "team_channels"]
