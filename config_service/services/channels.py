"""Which Slack channels a team has: the one rule for where its runs, scheduled reports and scheduled
investigations may post.

A team has a channel it claims in routing (``routing.slack_channel_ids``: each claimed by one team,
across all orgs), and its ``slack.default_channel`` while no other team claims that channel (a
default channel is any org admin's free text, not an exclusive claim). Used by the agent API's
``thread_channel`` (``serve_apps/thread_binding.py``), by config writes that point a schedule at a
channel (:func:`schedule_channel_problems`), and by the scheduler before it posts
(``actors/scheduler/execute.py``): a claim can move after a schedule was saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config_service.services.routing import find_foreign_owners

CHANNEL_RULE = ("a Slack channel the team claims (routing.slack_channel_ids) or its slack.default_channel "
                "while no other team claims it")


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def team_channels(config: Mapping[str, Any]) -> tuple[frozenset[str], str | None]:
    """The channels a team's effective ``config`` names: its routing claims, and its default channel."""
    claimed = _section(config, "routing").get("slack_channel_ids")
    default = _text(_section(config, "slack").get("default_channel"))
    return (frozenset(c for c in map(_text, claimed if isinstance(claimed, list) else []) if c),
            default or None)


def schedule_channel(schedule: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, str]:
    """``(channel, where it came from)`` for one entry of ``schedules``: its
    ``destination.slack_channel``, else its older ``channel`` key, else the team's
    ``slack.default_channel`` (``("", "")`` when none is set: the job posts nowhere)."""
    destination = schedule.get("destination")
    if isinstance(destination, Mapping) and (channel := _text(destination.get("slack_channel"))):
        return channel, "destination.slack_channel"
    if channel := _text(schedule.get("channel")):
        return channel, "channel"
    _, default = team_channels(config)
    return (default, "slack.default_channel") if default else ("", "")


async def team_has_channel(session: AsyncSession, *, org_id: str, team_id: str, channel: str,
                           config: Mapping[str, Any]) -> bool:
    """Whether ``channel`` is one of the team's (module docstring), given its effective ``config``;
    other teams' claims are read from ``routing_claims`` in the caller's transaction."""
    channel = _text(channel)
    claimed, default = team_channels(config)
    if channel in claimed:
        return True
    return bool(channel) and channel == default and not await find_foreign_owners(
        session, org_id=org_id, team_node_id=team_id, claims={("slack_channel_id", channel)})


async def schedule_channel_problems(session: AsyncSession, *, org_id: str, team_id: str,
                                    config: Mapping[str, Any]) -> list[dict[str, str]]:
    """``{"path", "message", "schedule", "channel"}`` for each schedule of the team's effective
    ``config`` whose channel is not the team's (schedules that post nowhere are fine)."""
    out: list[dict[str, str]] = []
    schedules = config.get("schedules")
    for i, raw in enumerate(schedules if isinstance(schedules, list) else []):
        if not isinstance(raw, Mapping):
            continue
        channel, source = schedule_channel(raw, config)
        if not channel or await team_has_channel(session, org_id=org_id, team_id=team_id, channel=channel,
                                                 config=config):
            continue
        path = f"schedules.{i}" + (f".{source}" if source != "slack.default_channel" else "")
        via = " (the team's slack.default_channel, which another team claims)" if source == "slack.default_channel" \
            else ""
        out.append({"path": path, "schedule": str(raw.get("id", i)), "channel": channel,
                    "message": f"a schedule may post only to {CHANNEL_RULE}{via}"})
    return out


__all__ = ["CHANNEL_RULE", "schedule_channel", "schedule_channel_problems", "team_channels", "team_has_channel"]
