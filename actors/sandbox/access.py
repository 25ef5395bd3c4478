"""Who may drive a team's sandbox from Slack, and who may approve its mutating MCP calls.

Read from the team's effective config (the ``access`` section the config service validates)::

    access:
      sandbox_users: [U0123ABCD, S0789IJKL]   # may open sessions and send turns from Slack
      approvers: [U0456EFGH]                  # may approve mutating MCP calls (and engine tool calls)
      api_approvals: false                    # may a team/impersonation token approve over the API?

Ids are Slack user ids (``U…``/``W…``) or user-group ids (``S…``; membership is read with
``usergroups.users.list`` and the team's bot, bounded, failing closed).

**Default: nobody.** A team that lists no ``sandbox_users`` cannot be driven from Slack at all.
A session runs the team's MCP servers (its Grafana, its cloud) and spends its LLM key, so "anyone
in a channel the team's bot is in" is not an acceptable default: an admin lists the people (or a
user group) who may. Sessions over the API need a team token, which is already a credential.
Approvers follow the engine's rules: an empty ``approvers`` list means no Slack approver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from incidentfox.contracts import Principal

log = logging.getLogger("incidentfox.sandbox.access")
GROUP_LOOKUP_TIMEOUT_S = 5.0
GroupMembers = Callable[[str], Awaitable[frozenset[str]]]


@dataclass(frozen=True)
class SlackIds:
    """Slack users and user groups listed in one ``access`` key."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: Any) -> SlackIds:
        ids = [v.strip() for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []
        return cls(users=frozenset(i for i in ids if not i.startswith("S")),
                   groups=frozenset(i for i in ids if i.startswith("S")))

    @property
    def empty(self) -> bool:
        return not self.users and not self.groups

    def listed(self, user: str) -> bool:
        """Listed directly (no Slack call needed)."""
        return bool(user) and user in self.users

    async def allows(self, user: str, members_of: GroupMembers | None) -> bool:
        """Listed directly or through a listed user group (``members_of`` resolves a group)."""
        if self.listed(user):
            return True
        if not user or not self.groups or members_of is None:
            return False
        for group in sorted(self.groups):
            if user in await members_of(group):
                return True
        return False


@dataclass(frozen=True)
class SandboxAccess:
    sandbox_users: SlackIds = SlackIds()
    approvers: SlackIds = SlackIds()
    api_approvals: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> SandboxAccess:
        access = (cfg or {}).get("access")
        if not isinstance(access, Mapping):
            return cls()
        return cls(sandbox_users=SlackIds.parse(access.get("sandbox_users")),
                   approvers=SlackIds.parse(access.get("approvers")),
                   api_approvals=access.get("api_approvals") is True)


def api_may_approve(principal: Principal, access: SandboxAccess) -> bool:
    """May this API principal decide an approval of a session it can see? The platform's and the
    org's admins may; a team or impersonation token only with ``access.api_approvals``."""
    if principal.auth_kind in ("global_admin", "org_admin"):
        return True
    return access.api_approvals


def slack_group_members(*, bot_token: str, base_url: str) -> GroupMembers:
    """``usergroups.users.list`` with the team's bot; a failed lookup is an empty group (refusal)."""
    from slack_sdk.errors import SlackApiError

    from actors.slack.client import slack_client

    async def members_of(group: str) -> frozenset[str]:
        try:
            async with asyncio.timeout(GROUP_LOOKUP_TIMEOUT_S), \
                    slack_client(token=bot_token, base_url=base_url, rate_limit_retries=0) as client:
                resp = await client.usergroups_users_list(usergroup=group)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.warning("user-group lookup failed; treating as not a member: %s", type(exc).__name__)
            return frozenset()
        return frozenset(u for u in resp.get("users") or () if isinstance(u, str))

    return members_of
