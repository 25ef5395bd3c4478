"""A revert pull request's merge: the human approval of the revert itself, recorded once.

IncidentFox opens the revert pull request only after an allowed approver approved the proposed fix
(:mod:`actors.engine.actions`, tool ``github_open_revert_pr``); the PR's body carries the marker line
``incidentfox-action: <action id>``. Merging it is what actually changes the default branch, and
only a human with merge rights on the repository can do it. When GitHub's ``pull_request``
``closed`` + ``merged`` delivery for such a PR arrives (routed, signed), :func:`record_merge`, inside
the intake transaction:

* finds the action (``tool_approvals`` row ``executed``, tool ``github_open_revert_pr``), on a run of
  the routed team, whose ``repo`` argument is the PR's repository and whose recorded result names
  this PR's URL (a copy of the marker in another PR is not the revert); anything else changes nothing;
* moves it ``executed → merged`` by compare-and-set, so a redelivery (or a forged second body) does
  nothing new;
* appends a run event and an ``action.merged`` audit entry naming the GitHub login that merged it and
  whether that login is an allowed approver (team config ``access.github_approvers``, a list of
  GitHub logins, compared case-insensitively). A merge by anyone else is still recorded, as
  ``merged by a non-approver`` (GitHub's own branch protection decides who may merge);

and after the commit the gateway posts :func:`merge_text` into the run's Slack thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from actors.engine import approvals
from actors.tools.github_revert import TOOL, action_marker
from incidentfox.contracts import Trigger
from incidentfox.runs import store
from incidentfox.runs.models import Run, RunEvent, ToolApproval

MERGED = "merged"
MERGE_EVENT_KIND = "pull_request.merged"


@dataclass(frozen=True)
class MergedRevert:
    """What a merged-PR delivery says, read from the trigger (pure)."""

    action_id: str
    repo: str
    merged_by: str
    url: str


@dataclass(frozen=True)
class MergeRecord:
    run_id: str
    action_id: str
    merged_by: str
    by_approver: bool
    url: str


def merged_revert(trigger: Trigger) -> MergedRevert | None:
    """The revert PR merge ``trigger`` reports (GitHub ``pull_request.merged`` with the marker), or None."""
    if trigger.source != "github" or trigger.event_kind != MERGE_EVENT_KIND:
        return None
    action_id = action_marker(trigger.text)
    repo = trigger.identifiers.get("github_repo") or ""
    if action_id is None or not repo:
        return None
    return MergedRevert(action_id=action_id, repo=repo, merged_by=(trigger.actor or "unknown")[:100],
                        url=trigger.external_ref or "")


def github_approvers(doc: Mapping[str, Any] | None) -> frozenset[str]:
    access = (doc or {}).get("access")
    logins = access.get("github_approvers") if isinstance(access, Mapping) else None
    return frozenset(v.strip().lower() for v in logins or () if isinstance(v, str) and v.strip()) \
        if isinstance(logins, list) else frozenset()


async def record_merge(session: AsyncSession, *, trigger: Trigger, org_id: str | None,
                       team_id: str | None) -> MergeRecord | None:
    """Record the merge once (see the module doc); None when this delivery records nothing new."""
    merge = merged_revert(trigger)
    if merge is None or not org_id or not team_id:
        return None
    row = await session.get(ToolApproval, merge.action_id)
    if row is None or row.tool != TOOL or row.status != "executed":
        return None
    run = await store.get_run(session, row.run_id)
    repo = str((row.arguments or {}).get("repo") or "")
    if run is None or (run.org_id, run.team_id) != (org_id, team_id) or repo.lower() != merge.repo.lower():
        return None
    if not merge.url or not await _opened(session, run.id, merge.action_id, merge.url):
        return None
    res = await session.execute(update(ToolApproval)
                                .where(ToolApproval.id == merge.action_id, ToolApproval.status == "executed")
                                .values(status=MERGED).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return None
    cfg = await approvals.team_config(session, org_id=run.org_id, team_id=run.team_id)
    ok = merge.merged_by.lower() in github_approvers(cfg)
    by = f"github:{merge.merged_by}"
    await store.append_event(session, run_id=run.id, kind="note", data={
        "action": merge.action_id, "status": MERGED, "tool": TOOL, "merged_by": by, "by_approver": ok,
        "pull_request": merge.url, "approved_by": by if ok else None})
    approvals.audit(session, run=run, approval_id=merge.action_id, tool=TOOL, by=by, action="action.merged",
                    detail={"pull_request": merge.url[:300], "by_approver": ok})
    return MergeRecord(run_id=run.id, action_id=merge.action_id, merged_by=merge.merged_by, by_approver=ok,
                       url=merge.url)


async def _opened(session: AsyncSession, run_id: str, action_id: str, url: str) -> bool:
    """Whether ``url`` is the pull request the action's execution opened (its recorded result names it):
    another PR carrying a copy of the marker is not the revert."""
    events = await session.scalars(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.kind == "note")
                                   .order_by(RunEvent.seq.desc()).limit(200))
    return any((e.data or {}).get("action") == action_id and (e.data or {}).get("status") == "executed"
               and f"({url})" in str((e.data or {}).get("summary") or "") for e in events)


async def merge_of(session: AsyncSession, run: Run, action_id: str) -> dict[str, Any] | None:
    """The recorded merge event of ``action_id`` on ``run`` (for posting it), or None."""
    events = await session.scalars(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.kind == "note")
                                   .order_by(RunEvent.seq.desc()).limit(200))
    for ev in events:
        data = ev.data or {}
        if data.get("action") == action_id and data.get("status") == MERGED:
            return dict(data)
    return None


def merge_text(merge: Mapping[str, Any]) -> str:
    who = str(merge.get("merged_by") or "unknown").removeprefix("github:")
    pr = merge.get("pull_request") or "the revert pull request"
    if merge.get("by_approver"):
        return f"✅ Revert merged: {pr} was merged by {who}, an allowed approver (access.github_approvers)."
    return (f"⚠️ Revert merged by a non-approver: {pr} was merged by {who}, who is not in the team's "
            "access.github_approvers. Recorded as merged, not as approved.")
