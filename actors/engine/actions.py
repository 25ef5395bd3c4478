"""Proposed fixes, from the RCA to a change in a live system: recorded, approved, run once, reported.

A :class:`~incidentfox.contracts.ProposedAction` (the top cause's remedy, :mod:`.remedies`) is one
mutating tool call. Its life, on the approvals machinery of mutating tool calls
(:mod:`actors.engine.approvals`, the ``tool_approvals`` table, whose id is the action's id):

1. :func:`add_proposals`, in the transaction that marks the run succeeded: a ``pending`` row (tool, exact arguments) and an
   ``approval`` run event ``{action_id, kind, target, effect, tool, status: proposed}``. An action
   IncidentFox cannot run (``tool`` None: a revert whose repository or commit is unknown) gets no
   row: it is shown, never approvable.
2. a decision, by an allowed approver only (``access.approvers`` in Slack; admins or, with
   ``access.api_approvals``, team tokens over the API), through :func:`approvals.decide`: the same
   compare-and-set, run event and audit entry as every approval. Slack: the Approve / Deny buttons
   under the RCA (``value`` = ``{"run_id", "approval_id": <action id>}``). API:
   ``POST /api/v1/agent/runs/{id}/actions/{action_id}/approve|deny``.
3. :func:`execute_approved`: ``approved → executing`` by compare-and-set (so it runs at most once,
   and never from any other state), the tool call made through a :data:`CallTool` (in production the
   ToolExecutor's path: the team's allow-list, egress policy and kubeconfig checks,
   ``execute(..., approved=True)``, a ``tool_calls`` row), then ``executed`` or ``failed``, a run
   event, an ``action.executed`` / ``action.failed`` audit entry naming who approved it, and the
   result posted into the run's Slack thread.

Nothing else runs a proposed action: no model output, log line or tool result reaches this module,
which reads only the stored RCA and the approval row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.engine import approvals
from actors.tools.base import ToolResult
from incidentfox.contracts import RCA, ProposedAction, RunStatus
from incidentfox.db import utcnow
from incidentfox.links import run_url
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval
from incidentfox.settings import Settings
from incidentfox.sqlite_writer import retry_locked

log = logging.getLogger("incidentfox.actions")

CallTool = Callable[[Run, ProposedAction], Awaitable[ToolResult]]
PostResult = Callable[[Run, ProposedAction, "ActionOutcome"], Awaitable[None]]
SLACK_TIMEOUT_S = 10.0
EXECUTING, EXECUTED, FAILED = "executing", "executed", "failed"


@dataclass(frozen=True)
class ActionOutcome:
    """What :func:`execute_approved` did. ``ran`` False: nothing was called (``reason`` says why)."""

    ran: bool
    status: str                 # executed | failed | the row's status when it did not run
    summary: str = ""
    approved_by: str | None = None
    reason: str = ""


def is_action_id(approval_id: str) -> bool:
    return approval_id.startswith("act_")


def action_of(run: Run | None, action_id: str) -> ProposedAction | None:
    """The proposed action ``action_id`` of ``run``'s stored RCA, or None."""
    if run is None or not isinstance(run.result, Mapping) or not is_action_id(action_id):
        return None
    for raw in run.result.get("proposed_actions") or ():
        if isinstance(raw, Mapping) and raw.get("id") == action_id:
            return ProposedAction.model_validate(raw)
    return None


async def add_proposals(s: AsyncSession, *, run_id: str, rca: RCA) -> int:
    """Make the RCA's runnable actions approvable (step 1 of the module doc), in the caller's
    transaction: the one that marks the run succeeded, so a succeeded run always has its rows and a
    row never exists for a run that did not succeed. Returns how many rows were added."""
    runnable = [a for a in rca.proposed_actions if a.tool]
    for a in runnable:
        s.add(ToolApproval(id=a.id, run_id=run_id, tool=a.tool, arguments=a.arguments, status="pending",
                           requested_at=utcnow()))
    await s.flush()
    for a in rca.proposed_actions:
        await store.append_event(s, run_id=run_id, kind="approval", data={
            "action_id": a.id, "kind": a.kind, "target": a.target, "effect": a.effect, "tool": a.tool,
            "arguments": a.arguments, "status": "proposed" if a.tool else "not_runnable"})
    return len(runnable)


async def execute_approved(sessions: async_sessionmaker[AsyncSession], *, run_id: str, action_id: str,
                           call_tool: CallTool, post: PostResult | None = None) -> ActionOutcome:
    """Run an approved action once (step 3 of the module doc). Any other state runs nothing."""
    async with sessions() as s:
        run = await store.get_run(s, run_id)
        action = action_of(run, action_id)
        row = await s.get(ToolApproval, action_id) if action is not None else None
        if run is None or action is None or row is None or row.run_id != run_id or row.tool != action.tool:
            return ActionOutcome(False, "unknown", reason="no such proposed action on this run")
        if RunStatus(run.status) is not RunStatus.SUCCEEDED:
            return ActionOutcome(False, row.status, reason="the run did not succeed")
        seen, approved_by = row.status, row.decided_by
        res = await s.execute(update(ToolApproval)
                              .where(ToolApproval.id == action_id, ToolApproval.status == "approved")
                              .values(status=EXECUTING).execution_options(synchronize_session=False))
        if res.rowcount != 1:
            await s.rollback()
            return ActionOutcome(False, seen, approved_by=approved_by, reason=f"the action is {seen}, not approved")
        await s.commit()
    try:
        result = await call_tool(run, action)
    except Exception as exc:  # noqa: BLE001 - recorded as the action's failure, never lost
        result = ToolResult.failure("action_error", f"{type(exc).__name__}")
    status = EXECUTED if result.ok else FAILED
    summary = result.summary or result.message or (result.error or "")
    outcome = ActionOutcome(True, status, summary=summary[:500], approved_by=approved_by)

    async def finish() -> None:
        async with sessions() as s:
            await s.execute(update(ToolApproval).where(ToolApproval.id == action_id)
                            .values(status=status).execution_options(synchronize_session=False))
            await store.append_event(s, run_id=run_id, kind="note", data={
                "action": action_id, "status": status, "tool": action.tool, "summary": outcome.summary,
                "approved_by": approved_by})
            approvals.audit(s, run=run, approval_id=action_id, tool=action.tool, by=approved_by or "unknown",
                            action=f"action.{status}", detail={"kind": action.kind, "target": action.target,
                                                               "summary": outcome.summary[:200]})
            await s.commit()
    await retry_locked(finish)
    if post is not None:
        try:
            async with asyncio.timeout(SLACK_TIMEOUT_S):
                await post(run, action, outcome)
        except Exception as exc:  # noqa: BLE001 - the result is recorded either way
            log.warning("action result not posted to Slack", extra={"reason": type(exc).__name__})
    return outcome


def result_text(action: ProposedAction, outcome: ActionOutcome) -> str:
    icon = "✅" if outcome.status == EXECUTED else "❌"
    who = f" (approved by {outcome.approved_by})" if outcome.approved_by else ""
    return f"{icon} Proposed fix {outcome.status}{who}: {action.effect}\nResult: {outcome.summary}"


class ActionRunner:
    """Production wiring of :func:`execute_approved` for the gateway and the agent API: the team's
    config decrypted for the call only, the call made by an in-process
    :class:`~actors.engine.tool_executor.ToolExecutorCore` (allow-list, egress policy, kubeconfig
    rules, recorded ``tool_calls`` row), the result posted with the team's bot."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, settings: Settings | None = None,
                 database_url: str | None = None) -> None:
        self._sessions, self._settings = sessions, settings or Settings()
        self._url = database_url or self._settings.resolved_database_url()
        self._executor: Any = None

    async def _config(self, run: Run) -> dict[str, Any]:
        async with self._sessions() as s:
            return await approvals.team_config(s, org_id=run.org_id, team_id=run.team_id, settings=self._settings)

    async def call_tool(self, run: Run, action: ProposedAction) -> ToolResult:
        from actors.engine.agents.toolset import allowed_tools
        from actors.engine.tool_executor import ToolCallRequest, ToolExecutorCore
        from config_service import TeamConfig

        if self._executor is None:
            self._executor = ToolExecutorCore(self._url, slack_api_url=self._settings.slack_api_url)
        doc = await self._config(run)
        cfg = TeamConfig(doc, org_id=run.org_id, team_id=run.team_id)
        args = dict(action.arguments)
        if "rca_link" in args and not args["rca_link"]:   # the revert PR links the RCA (public URL only)
            args["rca_link"] = run_url(self._settings.public_url, run.id)
        req = ToolCallRequest(run_id=run.id, org_id=run.org_id, team_id=run.team_id, agent="action",
                              tool=action.tool or "", args=args,
                              integrations=dict(doc.get("integrations") or {}),
                              allowed=frozenset(allowed_tools(cfg)), approved=True, want_data=False,
                              routing=dict(cfg.effective.routing))
        try:
            return (await self._executor.call(req)).result
        finally:
            self._executor.forget(run.id)   # the decrypted credentials live for this call only

    async def post(self, run: Run, action: ProposedAction, outcome: ActionOutcome) -> None:
        await self.post_text(run, result_text(action, outcome))

    async def post_text(self, run: Run, text: str) -> None:
        from actors.slack.client import slack_client

        token = approvals.bot_token(await self._config(run))
        msg = run.slack_message or {}
        channel = msg.get("channel") or run.thread_channel
        if not token or not channel:
            return
        async with slack_client(token=token, base_url=self._settings.slack_api_url) as client:
            await client.chat_postMessage(channel=channel, thread_ts=run.thread_ts or msg.get("ts"), text=text)

    async def run(self, *, run_id: str, action_id: str) -> ActionOutcome:
        """Run an approved action; for a revert whose pull request was just merged
        (:mod:`actors.engine.revert_merge`), post the merge into the run's thread instead."""
        from actors.engine.revert_merge import MERGED, merge_of, merge_text

        async with self._sessions() as s:
            row = await s.get(ToolApproval, action_id)
            run = await store.get_run(s, run_id)
            merge = await merge_of(s, run, action_id) if run and row and row.status == MERGED else None
        if run is not None and merge is not None:
            try:
                async with asyncio.timeout(SLACK_TIMEOUT_S):
                    await self.post_text(run, merge_text(merge))
            except Exception as exc:  # noqa: BLE001 - the merge is recorded either way
                log.warning("revert merge not posted to Slack", extra={"reason": type(exc).__name__})
            return ActionOutcome(False, MERGED, summary=merge_text(merge), approved_by=merge.get("approved_by"),
                                 reason="the revert pull request was merged")
        return await execute_approved(self._sessions, run_id=run_id, action_id=action_id,
                                      call_tool=self.call_tool, post=self.post)
