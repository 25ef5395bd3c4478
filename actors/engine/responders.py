"""Who may talk to an investigation in its Slack thread: the team's ``access.responders``.

::

    access:
      responders: [U0123ABCD, S0789IJKL]   # Slack users (U…/W…) and user groups (S…)
      non_responder_replies: refuse        # refuse (ephemeral note) | ignore

A reply from a listed user (directly, or through a listed user group resolved with
``usergroups.users.list`` and the team's bot, bounded and failing closed) is a turn of the
investigation (:mod:`incidentfox.runs.turns`). An empty list lets anyone in the team's channel
converse: the channel is the team's (routing claims), and a turn can only steer read-only
investigation; mutating tool calls still need ``access.approvers``. Anyone else gets a polite
ephemeral refusal, or nothing when the team set ``ignore``; the reply is recorded either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from actors.engine.approvals import GroupMembers, bot_token, listed, slack_group_members, team_config
from incidentfox.background import BackgroundTasks
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.responders")

REFUSAL_TIMEOUT_S = 5.0
# Refusals are posted after the webhook is answered; tests drain this.
RESPONDER_REFUSALS = BackgroundTasks()
REFUSAL_TEXT = ("Thanks. Only this team's responders can steer this investigation from its thread "
                "(team config `access.responders`), so I have not acted on your message. "
                "Ask one of them, or an admin to add you.")


class ResponderVerdict(StrEnum):
    ALLOWED = "allowed"
    NOT_A_RESPONDER = "not_a_responder"


@dataclass(frozen=True)
class Responders:
    """The ``access`` section's responder part, read from a team's effective config."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    refuse: bool = True       # non_responder_replies: refuse (True) | ignore

    @classmethod
    def from_config(cls, doc: Mapping[str, Any] | None) -> Responders:
        access = (doc or {}).get("access")
        if not isinstance(access, Mapping):
            return cls()
        raw = access.get("responders")
        ids = [v.strip() for v in raw if isinstance(v, str) and v.strip()] if isinstance(raw, list) else []
        return cls(users=frozenset(i for i in ids if not i.startswith("S")),
                   groups=frozenset(i for i in ids if i.startswith("S")),
                   refuse=access.get("non_responder_replies") != "ignore")

    @property
    def open(self) -> bool:
        """Nobody listed: anyone in the team's channel may converse."""
        return not self.users and not self.groups


async def check_responder(responders: Responders, *, user: str | None,
                          members_of: GroupMembers | None = None) -> ResponderVerdict:
    if responders.open or await listed(user, users=responders.users, groups=responders.groups,
                                       members_of=members_of):
        return ResponderVerdict.ALLOWED
    return ResponderVerdict.NOT_A_RESPONDER


async def authorize_turn(session: AsyncSession, *, org_id: str, team_id: str, user: str | None,
                         channel: str | None, thread_ts: str | None,
                         settings: Settings | None = None) -> ResponderVerdict:
    """The thread-reply check, inside the intake transaction. On refusal (unless the team chose
    ``ignore``) an ephemeral note to ``user`` in the thread is posted in the background."""
    settings = settings or Settings()
    responders = Responders.from_config(await team_config(session, org_id=org_id, team_id=team_id))
    secrets: dict[str, Any] | None = None
    members_of: GroupMembers | None = None
    if responders.groups and user not in responders.users:
        secrets = await team_config(session, org_id=org_id, team_id=team_id, settings=settings)
        token = bot_token(secrets)
        members_of = slack_group_members(bot_token=token, base_url=settings.slack_api_url) if token else None
    verdict = await check_responder(responders, user=user, members_of=members_of)
    if verdict is ResponderVerdict.ALLOWED or not responders.refuse or not (channel and user):
        return verdict
    if secrets is None:
        secrets = await team_config(session, org_id=org_id, team_id=team_id, settings=settings)
    token = bot_token(secrets)
    if token:
        RESPONDER_REFUSALS.spawn(_post_refusal(token=token, base_url=settings.slack_api_url, channel=channel,
                                               thread_ts=thread_ts, user=user))
    return verdict


async def _post_refusal(*, token: str, base_url: str, channel: str, thread_ts: str | None, user: str) -> None:
    from slack_sdk.errors import SlackApiError

    from actors.slack.client import slack_client

    try:
        async with asyncio.timeout(REFUSAL_TIMEOUT_S):
            async with slack_client(token=token, base_url=base_url, rate_limit_retries=0) as client:
                await client.chat_postEphemeral(channel=channel, user=user, text=REFUSAL_TEXT,
                                                thread_ts=thread_ts)
    except (SlackApiError, TimeoutError, OSError) as exc:   # the refusal itself already holds
        log.warning("ephemeral responder refusal not delivered", extra={"reason": type(exc).__name__})
