"""Approval of mutating tool calls (restart, scale, rollback): nothing changes without a human's yes.

When an agent calls a tool declared ``mutating`` (and the team's allow-list enables it at all), the
ToolExecutor does not run it. :func:`await_approval` instead:

1. inserts a ``tool_approvals`` row (``pending``, arguments masked) and a run event
   ``approval`` ``{approval_id, tool, arguments, status: pending}``;
2. posts Approve / Deny buttons into the run's Slack thread (``value`` carries run and approval id;
   the gateway's interaction handler records the decision and who made it, as an audited run event);
3. waits, bounded by the run's remaining time, for the row to leave ``pending``. A row still pending
   at the end is marked ``expired``.

Only ``approved`` lets the call run (``execute(..., approved=True)``). :func:`decide` is the same
compare-and-set decision the Slack button makes, for the API and tests.

Who may decide (issue 12): the team-config section ``access``::

    access:
      approvers: [U0123ABCD, W0456EFGH, S0789IJKL]   # Slack user ids (U…/W…) and user-group ids (S…)
      api_approvals: false                          # may team/impersonation tokens approve over the API?

* **Slack** (the Approve / Deny buttons): the clicking user must be listed in ``access.approvers``,
  directly or through a listed user group (resolved with ``usergroups.users.list`` and the team's
  bot, bounded and failing closed). A team that lists nobody has no Slack approvers. Everyone else
  gets an ephemeral refusal (``chat.postEphemeral`` with the team's bot) and nothing changes.
* **API** (``POST /api/v1/agent/runs/{id}/approvals/{approval_id}``): the global admin and the run's
  org admin may decide; a team or impersonation token only when ``access.api_approvals`` is true (a
  team token is a shared machine credential, not a person). Others get 403 ``not_an_approver``.

Every decision and every refusal is written to the config service's audit log (``approval.approved``,
``approval.denied``, ``approval.refused``: who, which run, which tool call) in the transaction of the
decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.background import BackgroundTasks
from incidentfox.contracts import Principal
from incidentfox.db import utcnow
from incidentfox.errors import NotFound
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval
from incidentfox.settings import Settings
from incidentfox.sqlite_writer import retry_locked

log = logging.getLogger("incidentfox.approvals")

POLL_S = 0.5
GROUP_LOOKUP_TIMEOUT_S = 2.0      # inside the interaction's transaction: short, and fail closed
REFUSAL_TIMEOUT_S = 5.0
GroupMembers = Callable[[str], Awaitable[frozenset[str]]]
# Ephemeral refusals are posted after the interaction is answered; tests drain this.
REFUSALS = BackgroundTasks()


class ApproverVerdict(StrEnum):
    ALLOWED = "allowed"
    NOT_AN_APPROVER = "not_an_approver"          # not listed in access.approvers (nor in a listed group)
    NO_APPROVERS = "no_approvers_configured"     # the team lists nobody
    API_APPROVALS_DISABLED = "api_approvals_disabled"   # team token, access.api_approvals is not true


@dataclass(frozen=True)
class Approvers:
    """The ``access`` section's approver part, read from a team's effective config."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    api_approvals: bool = False

    @classmethod
    def from_config(cls, doc: Mapping[str, Any] | None) -> Approvers:
        access = (doc or {}).get("access")
        if not isinstance(access, Mapping):
            return cls()
        ids = [v.strip() for v in access.get("approvers") or () if isinstance(v, str) and v.strip()] \
            if isinstance(access.get("approvers"), list) else []
        return cls(users=frozenset(i for i in ids if not i.startswith("S")),
                   groups=frozenset(i for i in ids if i.startswith("S")),
                   api_approvals=access.get("api_approvals") is True)


def check_api_approver(principal: Principal, approvers: Approvers) -> ApproverVerdict:
    """May this API token decide? (The caller has already checked it can see the run.)"""
    if principal.auth_kind in ("global_admin", "org_admin"):
        return ApproverVerdict.ALLOWED
    return ApproverVerdict.ALLOWED if approvers.api_approvals else ApproverVerdict.API_APPROVALS_DISABLED


async def listed(user: str | None, *, users: Collection[str], groups: Collection[str],
                 members_of: GroupMembers | None) -> bool:
    """Is Slack user ``user`` named in ``users``, or a member of one of ``groups`` (looked up with
    ``members_of``)? The one membership rule of approvers and responders."""
    if not user:
        return False
    if user in users:
        return True
    if groups and members_of is not None:
        for group in sorted(groups):
            if user in await members_of(group):
                return True
    return False


async def check_slack_approver(approvers: Approvers, *, user: str,
                               members_of: GroupMembers | None = None) -> ApproverVerdict:
    """May Slack user ``user`` decide? Listed directly, or a member of a listed user group."""
    if not approvers.users and not approvers.groups:
        return ApproverVerdict.NO_APPROVERS
    if await listed(user, users=approvers.users, groups=approvers.groups, members_of=members_of):
        return ApproverVerdict.ALLOWED
    return ApproverVerdict.NOT_AN_APPROVER


def slack_group_members(*, bot_token: str, base_url: str) -> GroupMembers:
    """``usergroups.users.list`` with the team's bot, each bounded by :data:`GROUP_LOOKUP_TIMEOUT_S`.
    A failed lookup (Slack down, missing scope, timeout) is an empty group: refusal, never approval."""
    from slack_sdk.errors import SlackApiError

    from actors.slack.client import slack_client

    async def members_of(group: str) -> frozenset[str]:
        try:
            async with asyncio.timeout(GROUP_LOOKUP_TIMEOUT_S):
                async with slack_client(token=bot_token, base_url=base_url, rate_limit_retries=0) as client:
                    resp = await client.usergroups_users_list(usergroup=group)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.warning("user-group lookup failed; treating as not a member",
                        extra={"reason": type(exc).__name__})
            return frozenset()
        return frozenset(u for u in resp.get("users") or () if isinstance(u, str))

    return members_of


async def team_config(session: AsyncSession, *, org_id: str, team_id: str,
                      settings: Settings | None = None) -> dict[str, Any]:
    """The team's effective config: secrets masked, or decrypted with ``settings`` when given; ``{}``
    for a team that no longer exists (it then has no approvers)."""
    from config_service import effective_config_in_session

    try:
        return await effective_config_in_session(session, org_id=org_id, node_id=team_id,
                                          reveal_secrets=settings is not None, settings=settings)
    except NotFound:
        return {}


def audit(session: AsyncSession, *, run: Run, approval_id: str, tool: str | None, by: str, action: str,
          detail: Mapping[str, Any] | None = None) -> None:
    """An ``approval.*`` entry in the config service's audit log, in the caller's transaction."""
    from config_service import record_audit

    record_audit(session, org_id=run.org_id, actor=by, action=action, target=f"run:{run.id}",
                     diff={"team": run.team_id, "approval_id": approval_id[:64], "tool": tool,
                           **dict(detail or {})})


async def tool_of(session: AsyncSession, *, run_id: str, approval_id: str) -> str | None:
    row = await session.get(ToolApproval, approval_id) if approval_id else None
    return row.tool if row is not None and row.run_id == run_id else None


async def decide(session: AsyncSession, *, run_id: str, approval_id: str, approve: bool, by: str) -> bool:
    """pending → approved|denied, recorded with who decided (a run event and an audit entry).
    False if not pending. Whether ``by`` may decide is the caller's check (see the module doc)."""
    status = "approved" if approve else "denied"
    res = await session.execute(
        update(ToolApproval).where(ToolApproval.id == approval_id, ToolApproval.run_id == run_id,
                                   ToolApproval.status == "pending")
        .values(status=status, decided_at=utcnow(), decided_by=by[:128])
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    await store.append_event(session, run_id=run_id, kind="note",
                             data={"approval": approval_id, "decision": status, "by": by[:128]})
    run = await store.get_run(session, run_id)
    audit(session, run=run, approval_id=approval_id, by=by,
          tool=await tool_of(session, run_id=run_id, approval_id=approval_id), action=f"approval.{status}")
    return True


async def authorize_slack(session: AsyncSession, *, run: Run, approval_id: str, user: str, decision: str,
                          channel: str | None, settings: Settings | None = None) -> bool:
    """The Slack button's approver check (``deliveries._interaction``). On refusal: an audit entry,
    and an ephemeral message to ``user`` in ``channel`` posted in the background; returns False.
    ``settings`` (default: this process's environment) decrypt the team's bot token and say where
    Slack is (``INCIDENTFOX_SLACK_API_URL``)."""
    settings = settings or Settings()
    approvers = Approvers.from_config(await team_config(session, org_id=run.org_id, team_id=run.team_id))
    secrets: dict[str, Any] | None = None
    base_url = settings.slack_api_url
    members_of: GroupMembers | None = None
    if approvers.groups and user not in approvers.users:
        secrets = await team_config(session, org_id=run.org_id, team_id=run.team_id, settings=settings)
        token = bot_token(secrets)
        members_of = slack_group_members(bot_token=token, base_url=base_url) if token else None
    verdict = await check_slack_approver(approvers, user=user, members_of=members_of)
    if verdict is ApproverVerdict.ALLOWED:
        return True
    audit(session, run=run, approval_id=approval_id, by=f"slack:{user}"[:128],
          tool=await tool_of(session, run_id=run.id, approval_id=approval_id), action="approval.refused",
          detail={"decision": decision, "reason": verdict.value})
    if channel and user:
        if secrets is None:
            secrets = await team_config(session, org_id=run.org_id, team_id=run.team_id, settings=settings)
        token = bot_token(secrets)
        if token:
            REFUSALS.spawn(_post_refusal(token=token, base_url=base_url, channel=channel, user=user,
                                         verdict=verdict))
    return False


def bot_token(config: Mapping[str, Any]) -> str | None:
    slack = ((config.get("integrations") or {}).get("slack") or {}) if isinstance(config, Mapping) else {}
    token = slack.get("bot_token") if isinstance(slack, Mapping) else None
    return token if isinstance(token, str) and token and token != "***" else None




REFUSAL_TEXT = {
    ApproverVerdict.NOT_AN_APPROVER: "You are not an approver for this team's tool calls, so nothing was "
                                     "changed. Approvers are listed in the team config (access.approvers).",
    ApproverVerdict.NO_APPROVERS: "This team has no approvers configured (access.approvers), so mutating "
                                  "tool calls cannot be approved from Slack. Nothing was changed.",
}


async def _post_refusal(*, token: str, base_url: str, channel: str, user: str, verdict: ApproverVerdict) -> None:
    from slack_sdk.errors import SlackApiError

    from actors.slack.client import slack_client

    text = REFUSAL_TEXT.get(verdict, REFUSAL_TEXT[ApproverVerdict.NOT_AN_APPROVER])
    try:
        async with asyncio.timeout(REFUSAL_TIMEOUT_S):
            async with slack_client(token=token, base_url=base_url, rate_limit_retries=0) as client:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
    except (SlackApiError, TimeoutError, OSError) as exc:   # the refusal itself already holds
        log.warning("ephemeral approval refusal not delivered", extra={"reason": type(exc).__name__})


async def await_approval(sessions: async_sessionmaker[AsyncSession], *, run_id: str, tool: str,
                         arguments: dict[str, Any], timeout_s: float,
                         post: Callable[[str], Awaitable[None]] | None = None) -> str:
    """Request approval and wait for it; returns ``approved`` | ``denied`` | ``expired``."""
    approval_id = "apr_" + uuid.uuid4().hex

    async def create() -> None:
        async with sessions() as s:
            s.add(ToolApproval(id=approval_id, run_id=run_id, tool=tool, arguments=arguments, status="pending",
                               requested_at=utcnow()))
            await s.flush()
            await store.append_event(s, run_id=run_id, kind="approval",
                                     data={"approval_id": approval_id, "tool": tool, "arguments": arguments,
                                           "status": "pending"})
            await s.commit()
    await retry_locked(create)
    if post is not None:
        with contextlib.suppress(Exception):    # the API can still approve; the wait below is bounded
            await post(approval_id)
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        async with sessions() as s:
            row = await s.get(ToolApproval, approval_id, populate_existing=True)
            status = row.status if row else "expired"
        if status != "pending":
            return status
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))   # waiting on a human

    async def expire() -> bool:
        async with sessions() as s:
            res = await s.execute(update(ToolApproval).where(ToolApproval.id == approval_id,
                                                             ToolApproval.status == "pending")
                                  .values(status="expired", decided_at=utcnow())
                                  .execution_options(synchronize_session=False))
            await s.commit()
            return res.rowcount == 1
    if await retry_locked(expire):
        return "expired"
    async with sessions() as s:   # decided in the last instant
        row = await s.get(ToolApproval, approval_id, populate_existing=True)
        return row.status if row else "expired"
