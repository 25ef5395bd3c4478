"""Proposed fixes over the agent API: ``POST /runs/{run_id}/actions/{action_id}/approve`` and ``…/deny``.

Thin: authorise, decide (:func:`actors.engine.approvals.decide`), run
(:func:`actors.engine.actions.execute_approved` through an ``ActionRunner``), map to a status.

* 404 ``run_not_found`` (also for another tenant's run), 404 ``action_not_found``;
* 409 ``action_not_runnable``: IncidentFox cannot run this action (a revert whose repository or commit
  the evidence does not name);
* 403 ``not_an_approver``: the API approver rule (admins; team and impersonation tokens only with
  the team's ``access.api_approvals``), audited as ``approval.refused``;
* 409 ``action_not_pending``: already denied, expired, executed or failed (its ``status`` in
  ``details``). An action approved in Slack whose run was lost (the gateway died after the commit)
  is run by the next ``approve`` instead;
* 200 ``{run_id, action_id, decision, status, result, approved_by}``: ``status`` ``executed`` or
  ``failed`` after the call, ``denied`` after a denial. The tool call is bounded by its timeout.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config_service import PrincipalDep
from incidentfox.contracts import Principal
from incidentfox.errors import Conflict, Forbidden, NotFound
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval


class RunsActions(Protocol):
    async def run(self, *, run_id: str, action_id: str) -> Any: ...


def _visible(principal: Principal, run: Run | None, run_id: str) -> Run:
    if run is None or not principal.can_access_team(run.org_id, run.team_id):
        raise NotFound(f"run {run_id!r} not found", code="run_not_found")
    return run


def install_action_routes(app: FastAPI, *, sessions: async_sessionmaker[AsyncSession],
                          actions: RunsActions) -> None:
    """Add the two routes (see the module doc) to the agent API ``app``."""
    from actors.engine import approvals
    from actors.engine.actions import action_of

    async def decide(principal: Principal, run_id: str, action_id: str,
                     decision: Literal["approve", "deny"]) -> dict[str, Any]:
        by = principal.subject or principal.auth_kind
        async with sessions() as s:
            run = _visible(principal, await store.get_run(s, run_id), run_id)
            action = action_of(run, action_id)
            if action is None:
                raise NotFound(f"run {run_id!r} proposes no action {action_id!r}", code="action_not_found")
            if action.tool is None:
                raise Conflict(f"IncidentFox cannot run a {action.kind} action yet; carry it out by hand",
                               code="action_not_runnable")
            cfg = await approvals.team_config(s, org_id=run.org_id, team_id=run.team_id)
            verdict = approvals.check_api_approver(principal, approvals.Approvers.from_config(cfg))
            if verdict is not approvals.ApproverVerdict.ALLOWED:
                approvals.audit(s, run=run, approval_id=action_id, by=by, action="approval.refused",
                                tool=action.tool, detail={"decision": decision, "reason": verdict.value})
                await s.commit()
                raise Forbidden("this token may not approve this team's actions (team config "
                                "access.api_approvals)", code="not_an_approver", details={"reason": verdict.value})
            decided = await approvals.decide(s, run_id=run_id, approval_id=action_id,
                                             approve=decision == "approve", by=by)
            row = await s.get(ToolApproval, action_id, populate_existing=True)
            status = row.status if row is not None else "unknown"
            if not decided and not (decision == "approve" and status == "approved"):
                raise Conflict(f"action {action_id!r} is {status}, not pending", code="action_not_pending",
                               details={"status": status})
            await s.commit()
        body: dict[str, Any] = {"run_id": run_id, "action_id": action_id, "decision": decision}
        if decision == "deny":
            return body | {"status": "denied", "result": "", "approved_by": None}
        outcome = await actions.run(run_id=run_id, action_id=action_id)
        if not outcome.ran:
            raise Conflict(f"action {action_id!r} did not run: {outcome.reason}", code="action_not_pending",
                           details={"status": outcome.status})
        return body | {"status": outcome.status, "result": outcome.summary, "approved_by": outcome.approved_by}

    @app.post("/runs/{run_id}/actions/{action_id}/approve")
    async def approve_action(principal: PrincipalDep, run_id: str, action_id: str) -> dict[str, Any]:
        """Approve a proposed fix of the run's RCA and run its tool call now (see the module doc)."""
        return await decide(principal, run_id, action_id, "approve")

    @app.post("/runs/{run_id}/actions/{action_id}/deny")
    async def deny_action(principal: PrincipalDep, run_id: str, action_id: str) -> dict[str, Any]:
        """Deny a proposed fix: it never runs."""
        return await decide(principal, run_id, action_id, "deny")
