"""Every finished investigation as a past-incident document of its team's knowledge base.

:func:`incident_document` renders one run (pure): its trigger, the RCA's summary and root causes, the
evidence quoted, the actions taken (proposed fixes and what became of them, recommended actions) and
the responders' 👍/👎 feedback. :func:`remember_run` reads the run's rows and writes the document
(``incident/<run_id>``, one per run: writing it again replaces it) into the team's scope; it is
called when a run succeeds (:mod:`actors.engine.knowledge_use`) and again when feedback arrives (the
gateway's after-commit dispatch, ``serve_apps/deliveries``), so the document always says what the
responders thought. Writing marks the team's scope dirty; the knowledge app's sweep rebuilds it
(:class:`actors.tools.knowledge_bases.RebuildSweep`, at most once per ``knowledge.rebuild_interval_s``),
never a run, so a burst of runs costs a few rebuilds, none of them on a run's path.

Failure to write never fails anything: :func:`remember_run` logs the error's type (never the run's
text or a credential) and returns False.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.contracts import RCA
from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Run, RunFeedback, ToolApproval

log = logging.getLogger(__name__)

MAX_TEXT = 2000        # characters of the trigger's text kept
MAX_QUOTES = 8         # evidence lines kept


def _fixed_by(rca: RCA, actions: list[dict[str, str]]) -> str:
    done = [a["effect"] for a in actions if a["status"] == "executed"]
    if done:
        return done[0]
    return rca.recommended_actions[0] if rca.recommended_actions else ""


def incident_document(run: Run, *, rca: RCA, feedback: tuple[int, int], actions: list[dict[str, str]],
                      url: str | None, scope: Any, now: datetime | None = None) -> Any:
    """The past-incident :class:`~incidentfox.knowledge.Document` of ``run`` (see the module docstring).
    ``feedback`` is (👍 count, 👎 count); ``actions`` the run's proposed fixes ``{effect, status}``."""
    from incidentfox.knowledge import Document

    trigger = run.trigger or {}
    first_line = (str(trigger.get("text") or "").strip().split("\n") or [""])[0][:120]
    title = " ".join(str(trigger.get("title") or "").split())[:300] or first_line or f"Incident {run.id}"
    when = run.created_at.isoformat() if run.created_at else ""
    up, down = feedback
    lines = [f"# {title}", "", f"Investigated {when} (run {run.id}).", "", "## Trigger", ""]
    services = ", ".join(str(s) for s in trigger.get("services") or [])
    lines += [f"Source: {trigger.get('source') or 'unknown'}" + (f"; services: {services}" if services else ""), ""]
    if trigger.get("text"):
        lines += [str(trigger["text"])[:MAX_TEXT], ""]
    lines += ["## Root cause", "", rca.summary, ""]
    for cause in rca.root_causes:
        lines.append(f"- {cause.entity}: {cause.description} (confidence {cause.confidence:.2f})")
    quotes = [e.quote for c in rca.root_causes for e in c.evidence if e.quote][:MAX_QUOTES]
    if quotes:
        lines += ["", "## Evidence", "", *(f"- {q[:300]}" for q in quotes)]
    lines += ["", "## Actions taken", ""]
    lines += [f"- {a['effect']} ({a['status']})" for a in actions]
    lines += [f"- Recommended: {a}" for a in rca.recommended_actions[:5]]
    if not actions and not rca.recommended_actions:
        lines.append("- none recorded")
    verdict = "helpful" if up > down else "not helpful" if down > up else "no verdict"
    lines += ["", "## Feedback", "", f"👍 {up} · 👎 {down} ({verdict})", ""]
    fixed_by = _fixed_by(rca, actions)
    return Document(
        scope=scope, source=f"incident/{run.id}", title=title, kind="incident",
        media_type="text/markdown", text="\n".join(lines), url=url,
        metadata={"run_id": run.id, "when": when, "fixed_by": fixed_by[:300], "feedback_up": str(up),
                  "feedback_down": str(down), "root_cause": rca.root_causes[0].entity if rca.root_causes else ""},
        updated_at=now or utcnow())


async def _facts(session: AsyncSession, run_id: str) -> tuple[Run | None, tuple[int, int], list[dict[str, str]]]:
    run = await store.get_run(session, run_id)
    if run is None:
        return None, (0, 0), []
    values = (await session.execute(select(RunFeedback.value).where(RunFeedback.run_id == run_id))).scalars().all()
    feedback = (sum(1 for v in values if v > 0), sum(1 for v in values if v < 0))
    rows = (await session.execute(select(ToolApproval.id, ToolApproval.status)
                                  .where(ToolApproval.run_id == run_id, ToolApproval.id.like("act_%")))).all()
    proposed = {a.id: a for a in RCA.model_validate(run.result).proposed_actions} if run.result else {}
    actions = [{"effect": proposed[i].effect if i in proposed else i, "status": str(status)} for i, status in rows]
    return run, feedback, actions


async def _present(kb: Any, doc: Any) -> bool:
    try:
        await kb.get_document(doc.scope, doc.doc_id)
    except Exception:  # noqa: BLE001 - DocumentNotFound (or a store error): not rewritten
        return False
    return True


async def remember_run(sessions: async_sessionmaker[AsyncSession], bases: Any, *, run_id: str,
                       public_url: str = "", team: Any = None, only_if_present: bool = False) -> bool:
    """Write (or rewrite) ``run_id``'s past-incident document into its team's scope. Only succeeded
    runs with an RCA are remembered, and only when the team's ``knowledge.past_incidents`` is on
    (``team``: its :class:`~actors.tools.knowledge_bases.TeamKnowledge`; None: on, default embedder).
    ``only_if_present``: rewrite only a document written before (the feedback path, which does not
    read the team's config: a team that turned past incidents off has none). Never raises: returns
    whether it was written."""
    from actors.tools.knowledge_bases import TeamKnowledge
    from incidentfox.links import run_url

    try:
        async with sessions() as session:
            run, feedback, actions = await _facts(session, run_id)
        if run is None or run.status != "succeeded" or not run.result:
            return False
        team = team or TeamKnowledge(org_id=run.org_id, team_id=run.team_id)
        if not team.enabled or not team.past_incidents or (team.org_id, team.team_id) != (run.org_id, run.team_id):
            return False
        rca = RCA.model_validate(run.result)
        doc = incident_document(run, rca=rca, feedback=feedback, actions=actions,
                                url=run_url(public_url, run.id), scope=team.own_scope())
        kb = bases.for_team(team)
        if only_if_present and not await _present(kb, doc):
            return False
        await kb.put_document(doc)
        return True
    except Exception as exc:  # noqa: BLE001 - remembering is best effort; the run's result stands
        log.warning("past-incident document of run %s not written: %s", run_id, type(exc).__name__)
        return False
