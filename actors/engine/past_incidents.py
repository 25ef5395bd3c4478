"""Every finished investigation as a past-incident document of its team's knowledge base.

:func:`incident_document` renders one run (pure): its trigger, how it ended, the RCA's summary and
root causes, the evidence quoted, the actions taken (proposed fixes and what became of them,
recommended actions) and the responders' 👍/👎 feedback. A **failed or cancelled** run is remembered
too: its title says so (``(failed run)``/``(cancelled run)``, so every hit of it does), its
"Outcome" section says why it stopped, and "What was found so far" lists the tool calls it made (what
they returned, in a line each); whatever it found is never offered as a fix: ``metadata.fixed_by`` is
set only for a succeeded run with a root cause (``metadata.status`` holds the run's status).
:func:`remember_run` reads the run's rows and writes the document (``incident/<run_id>``, one per
run: writing it again replaces it) into the team's scope; it is called when a run ends, however it
ends (:mod:`actors.engine.knowledge_use`), and again when feedback arrives (the gateway's
after-commit dispatch, ``serve_apps/deliveries``), so the document always says what the responders
thought. Writing marks the team's scope dirty; the knowledge app's sweep rebuilds it
(:class:`actors.tools.knowledge_bases.RebuildSweep`, once the scope has settled and at most once per
``knowledge.rebuild_interval_s``), never a run, so a burst of runs costs one rebuild after it, none
on a run's path.

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
from incidentfox.runs.models import Run, RunFeedback, ToolApproval, ToolCall

log = logging.getLogger(__name__)

MAX_TEXT = 2000        # characters of the trigger's text kept
MAX_QUOTES = 8         # evidence lines kept
MAX_FINDINGS = 12      # tool calls listed for a run that did not finish
REMEMBERED = ("succeeded", "failed", "cancelled")    # the terminal statuses: every finished run
_ENDED = {"failed": "The investigation failed before it finished", "cancelled": "The investigation was cancelled "
          "before it finished"}


def fixed_by(status: str, rca: RCA | None, actions: list[dict[str, str]]) -> str:
    """What fixed the incident, for a succeeded run with a root cause only (else ""): the executed
    proposed fix, else the first recommended action. A run that failed or was cancelled fixed nothing."""
    if status != "succeeded" or rca is None or not rca.root_causes:
        return ""
    done = [a["effect"] for a in actions if a["status"] == "executed"]
    if done:
        return done[0]
    return rca.recommended_actions[0] if rca.recommended_actions else ""


def _outcome(run: Run, rca: RCA | None, findings: list[str]) -> list[str]:
    if run.status == "succeeded":
        return ["## Outcome", "", "Succeeded.", ""]
    why = " ".join(str(run.error or "no reason recorded").split())[:500]
    ended = f"{_ENDED.get(run.status, run.status)}: {why}. Nothing below is a confirmed root cause or a fix."
    lines = ["## Outcome", "", ended, ""]
    if rca is None:
        lines += ["## What was found so far", "", *(findings or ["- nothing recorded"]), ""]
    return lines


def incident_document(run: Run, *, rca: RCA | None, feedback: tuple[int, int], actions: list[dict[str, str]],
                      url: str | None, scope: Any, findings: list[str] | None = None,
                      now: datetime | None = None) -> Any:
    """The past-incident :class:`~incidentfox.knowledge.Document` of ``run`` (see the module docstring).
    ``rca`` None: the run ended without one (failed, cancelled); ``feedback`` is (👍 count, 👎 count);
    ``actions`` the run's proposed fixes ``{effect, status}``; ``findings`` lines of what a run that did
    not finish had found (its tool calls)."""
    from incidentfox.knowledge import Document

    trigger = run.trigger or {}
    first_line = (str(trigger.get("text") or "").strip().split("\n") or [""])[0][:120]
    title = " ".join(str(trigger.get("title") or "").split())[:300] or first_line or f"Incident {run.id}"
    if run.status != "succeeded":
        title = f"{title} ({run.status} run)"
    when = run.created_at.isoformat() if run.created_at else ""
    up, down = feedback
    lines = [f"# {title}", "", f"Investigated {when} (run {run.id}, {run.status}).", "", "## Trigger", ""]
    services = ", ".join(str(s) for s in trigger.get("services") or [])
    lines += [f"Source: {trigger.get('source') or 'unknown'}" + (f"; services: {services}" if services else ""), ""]
    if trigger.get("text"):
        lines += [str(trigger["text"])[:MAX_TEXT], ""]
    lines += _outcome(run, rca, findings or [])
    if rca is not None:
        lines += ["## Root cause" if run.status == "succeeded" else "## Partial analysis", "", rca.summary, ""]
        lines += [f"- {c.entity}: {c.description} (confidence {c.confidence:.2f})" for c in rca.root_causes]
        quotes = [e.quote for c in rca.root_causes for e in c.evidence if e.quote][:MAX_QUOTES]
        if quotes:
            lines += ["", "## Evidence", "", *(f"- {q[:300]}" for q in quotes)]
        lines.append("")
    recommended = rca.recommended_actions[:5] if rca is not None else []
    lines += ["## Actions taken", "", *(f"- {a['effect']} ({a['status']})" for a in actions),
              *(f"- Recommended: {a}" for a in recommended)]
    if not actions and not recommended:
        lines.append("- none recorded")
    verdict = "helpful" if up > down else "not helpful" if down > up else "no verdict"
    lines += ["", "## Feedback", "", f"👍 {up} · 👎 {down} ({verdict})", ""]
    return Document(
        scope=scope, source=f"incident/{run.id}", title=title[:512], kind="incident",
        media_type="text/markdown", text="\n".join(lines), url=url,
        metadata={"run_id": run.id, "when": when, "status": run.status,
                  "fixed_by": fixed_by(run.status, rca, actions)[:300], "feedback_up": str(up),
                  "feedback_down": str(down),
                  "root_cause": rca.root_causes[0].entity if rca is not None and rca.root_causes else ""},
        updated_at=now or utcnow())


def _finding(call: ToolCall) -> str:
    summary = (call.result or {}).get("summary") if isinstance(call.result, dict) else None
    said = " ".join(str(summary or call.error or "").split())[:200]
    return f"- {call.agent}: {call.tool} ({call.status})" + (f": {said}" if said else "")


async def _facts(session: AsyncSession, run_id: str) -> tuple[Run | None, tuple[int, int], list[dict[str, str]],
                                                              list[str]]:
    run = await store.get_run(session, run_id)
    if run is None:
        return None, (0, 0), [], []
    values = (await session.execute(select(RunFeedback.value).where(RunFeedback.run_id == run_id))).scalars().all()
    feedback = (sum(1 for v in values if v > 0), sum(1 for v in values if v < 0))
    rows = (await session.execute(select(ToolApproval.id, ToolApproval.status)
                                  .where(ToolApproval.run_id == run_id, ToolApproval.id.like("act_%")))).all()
    proposed = {a.id: a for a in RCA.model_validate(run.result).proposed_actions} if run.result else {}
    actions = [{"effect": proposed[i].effect if i in proposed else i, "status": str(status)} for i, status in rows]
    findings: list[str] = []
    if run.status != "succeeded":
        calls = (await session.execute(select(ToolCall).where(ToolCall.run_id == run_id)
                                       .order_by(ToolCall.id).limit(MAX_FINDINGS))).scalars().all()
        findings = [_finding(c) for c in calls]
    return run, feedback, actions, findings


async def _present(kb: Any, doc: Any) -> bool:
    try:
        await kb.get_document(doc.scope, doc.doc_id)
    except Exception:  # noqa: BLE001 - DocumentNotFound (or a store error): not rewritten
        return False
    return True


async def remember_run(sessions: async_sessionmaker[AsyncSession], bases: Any, *, run_id: str,
                       public_url: str = "", team: Any = None, only_if_present: bool = False) -> bool:
    """Write (or rewrite) ``run_id``'s past-incident document into its team's scope. Every finished
    run is remembered (succeeded, failed or cancelled; a run still queued or running is not), only
    when the team's ``knowledge.past_incidents`` is on
    (``team``: its :class:`~actors.tools.knowledge_bases.TeamKnowledge`; None: on, default embedder).
    ``only_if_present``: rewrite only a document written before (the feedback path, which does not
    read the team's config: a team that turned past incidents off has none). Never raises: returns
    whether it was written."""
    from actors.tools.knowledge_bases import TeamKnowledge
    from incidentfox.links import run_url

    try:
        async with sessions() as session:
            run, feedback, actions, findings = await _facts(session, run_id)
        if run is None or run.status not in REMEMBERED:
            return False
        team = team or TeamKnowledge(org_id=run.org_id, team_id=run.team_id)
        if not team.enabled or not team.past_incidents or (team.org_id, team.team_id) != (run.org_id, run.team_id):
            return False
        rca = RCA.model_validate(run.result) if run.result else None
        doc = incident_document(run, rca=rca, feedback=feedback, actions=actions, findings=findings,
                                url=run_url(public_url, run.id), scope=team.own_scope())
        kb = bases.for_team(team)
        if only_if_present and not await _present(kb, doc):
            return False
        await kb.put_document(doc)
        return True
    except Exception as exc:  # noqa: BLE001 - remembering is best effort; the run's result stands
        log.warning("past-incident document of run %s not written: %s", run_id, type(exc).__name__)
        return False
