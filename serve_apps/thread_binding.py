"""Which Slack channel a run started through the agent API may answer in.

``POST /api/v1/agent/runs`` takes ``thread_channel`` (and ``thread_ts``): the run's messages, its
Approve buttons and the replies it listens to are in that channel, posted with the team's Slack
credentials. A run may only be bound to a channel its team has, by the one rule the scheduler's
destinations follow too (:func:`config_service.team_has_channel`): one it claims in routing
(``routing.slack_channel_ids``, each claimed by one team), or its ``slack.default_channel`` when no
other team claims that channel (a default channel is the org admin's word, not an exclusive
claim). Anything else is 403 ``channel_not_claimed`` before anything is recorded, for every token
(an admin starting a run for a team binds it by the same rule), and before the thread's owner is
looked up, so the answer says nothing about another team's threads in that channel. The sandbox
API's ``slack_channel`` (a session mirrored into a thread) is checked the same way.

Then the thread itself: one another team owns, by a run or a sandbox session
(:func:`actors.sandbox.threads.thread_owner`), is ``404 thread_not_found`` for both APIs, the answer
an unknown thread would get (:func:`check_thread_owner`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from actors.sandbox.threads import thread_not_found, thread_owner
from config_service import CHANNEL_RULE, team_has_channel
from incidentfox.errors import Forbidden


async def check_thread_channel(session: AsyncSession, *, org_id: str, team_id: str, channel: str,
                               field: str = "thread_channel", what: str = "a run") -> None:
    """Return if ``channel`` is one of the team's (see the module docstring); else raise 403
    ``channel_not_claimed`` naming the request's ``field``. A team that does not exist has no channel."""
    if await team_has_channel(session, org_id=org_id, team_id=team_id, channel=channel):
        return
    raise Forbidden(f"{what} can be bound only to {CHANNEL_RULE}", code="channel_not_claimed",
                    details={"field": field, "team": team_id})


async def check_thread_owner(session: AsyncSession, *, org_id: str, team_id: str, channel: str,
                             thread_ts: str) -> None:
    """Return if the thread is unbound or the team's own; else raise :func:`thread_not_found`. A check
    before anything is recorded; the binding's own transaction checks again under the thread's lock
    (:func:`actors.sandbox.threads.claim_thread`, the intake's ``decide``)."""
    owner = await thread_owner(session, channel=channel, thread_ts=thread_ts)
    if owner is not None and owner != (org_id, team_id):
        raise thread_not_found()


__all__ = ["check_thread_channel", "check_thread_owner", "thread_not_found"]
