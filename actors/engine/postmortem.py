"""A postmortem draft from a run: pure, offline, Markdown.

:func:`draft_postmortem` takes what the run recorded (its row as :class:`RunFacts`, its events, its
RCA) and writes the sections a postmortem needs: summary, impact window, timeline, root cause,
evidence, actions taken, follow-ups, and the conversation when the run has one. Times are UTC.
Nothing here calls a model or the network; :mod:`actors.engine.postmortem_llm` may rewrite the draft
into richer prose, and falls back to this one.

* **Impact window.** Start: the earliest of the trigger's and the correlated alerts'
  ``occurred_at`` and the RCA timeline's first timestamp (else the time the run was created, said
  so). Detected: the run's creation. Acknowledged / resolved: what the source reported (PagerDuty,
  incident.io updates), else "not recorded".
* **Timeline.** The trigger, the correlated alerts, the RCA's timeline entries, and the run's events
  (status changes, phases, sub-agents finishing, approvals, notes, conversation turns), sorted by
  time. Unknown event kinds are shown generically rather than dropped.
* **Conversation.** The run's thread replies (the ``turn`` events :func:`incidentfox.runs.store.add_turn`
  writes, author in ``data.actor``), and any event that carries a person's text (``data.text`` with
  ``data.user`` or ``data.role``, or kind ``turn``/``message``/``conversation``).
* Every untrusted string (alert titles, quotes, replies) is kept on one line and clipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentfox.contracts import RCA

MAX_TIMELINE = 80
MAX_LINE = 300
CONVERSATION_KINDS = frozenset({"turn", "message", "conversation", "reply"})


@dataclass(frozen=True)
class RunFacts:
    """The parts of a run row a postmortem reads (plain data; :meth:`of` builds it from a row)."""

    run_id: str
    status: str
    trigger: Mapping[str, Any]
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    absorbed: list[Mapping[str, Any]] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, run: Any) -> RunFacts:
        return cls(run_id=run.id, status=run.status, trigger=run.trigger or {}, created_at=run.created_at,
                   started_at=run.started_at, finished_at=run.finished_at,
                   acknowledged_at=getattr(run, "acknowledged_at", None),
                   resolved_at=getattr(run, "resolved_at", None), absorbed=list(run.absorbed or []),
                   error=run.error)


@dataclass(frozen=True)
class EventFact:
    at: datetime | None
    kind: str
    data: Mapping[str, Any]

    @classmethod
    def of(cls, ev: Any) -> EventFact:
        return cls(at=ev.at, kind=ev.kind, data=ev.data or {})


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fmt(at: datetime | None) -> str:
    at = _utc(at)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "time unknown"


def line(text: Any, limit: int = MAX_LINE) -> str:
    """One clipped line of untrusted text, with Markdown's line-level syntax made inert."""
    s = " ".join(str(text or "").split())
    s = s.replace("`", "'")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _title(run: RunFacts, rca: RCA | None) -> str:
    return line(run.trigger.get("title") or (rca.summary if rca else "") or run.trigger.get("text")
                or f"run {run.run_id}", 150)


def impact_window(run: RunFacts, rca: RCA | None) -> list[str]:
    candidates = [(_utc(run.trigger.get("occurred_at")), "the trigger fired")]
    candidates += [(_utc(a.get("occurred_at")), "a correlated alert fired") for a in run.absorbed]
    candidates += [(_utc(e.at), "the first event in the RCA timeline") for e in (rca.timeline if rca else [])]
    known = sorted((at, why) for at, why in candidates if at is not None)
    start, why = known[0] if known else (_utc(run.created_at), "the run started; the source gave no time")
    rows = [f"- **Start:** {fmt(start)} ({why})",
            f"- **Detected:** {fmt(run.created_at)} (IncidentFox received the trigger)"]
    rows.append(f"- **Acknowledged:** {fmt(run.acknowledged_at)}" if run.acknowledged_at
                else "- **Acknowledged:** not recorded")
    if run.resolved_at:
        rows.append(f"- **Resolved:** {fmt(run.resolved_at)}")
        if start is not None:
            minutes = max(0, int((_utc(run.resolved_at) - start).total_seconds() // 60))   # type: ignore[operator]
            rows.append(f"- **Duration:** {minutes // 60} h {minutes % 60} min")
    else:
        rows.append("- **Resolved:** not recorded (ongoing, or the source did not report it)")
    services = (rca.affected_services if rca else []) or list(run.trigger.get("services") or [])
    rows.append("- **Affected services:** " + (", ".join(f"`{line(s, 80)}`" for s in services[:20])
                                                if services else "not determined"))
    return rows


def is_turn(ev: EventFact) -> bool:
    text = ev.data.get("text")
    return isinstance(text, str) and bool(text.strip()) and (
        ev.kind in CONVERSATION_KINDS or "user" in ev.data or "role" in ev.data)


def _speaker(data: Mapping[str, Any]) -> str:
    return line(data.get("user") or data.get("actor") or data.get("role") or data.get("by") or "someone", 60)


def _event_text(ev: EventFact) -> str | None:
    d = ev.data
    if is_turn(ev):
        return f"{_speaker(d)}: {line(d['text'], 200)}"
    if ev.kind == "status":
        extra = f" (rerun of {line(d['rerun_of'], 60)})" if d.get("rerun_of") else ""
        return f"Investigation {line(d.get('status'), 40)}{extra}" if d.get("status") else None
    if ev.kind == "phase":
        phase = d.get("phase")
        if phase == "rca":
            causes = ", ".join(line(c, 80) for c in d.get("root_causes") or []) or "no cause"
            return f"Analysis finished: {causes}"
        if phase == "deadline":
            return "The run's deadline cut the investigation short"
        if phase == "slack_posted":
            return "Progress posted in Slack"
        return f"Phase: {line(phase, 60)}" if phase else None
    if ev.kind == "agent":
        return f"Sub-agent {line(d.get('agent'), 40)} {line(d.get('status'), 20)} ({d.get('tool_count', 0)} tool calls)"
    if ev.kind == "approval":
        by = f" by {line(d.get('by') or d.get('decided_by'), 60)}" if d.get("by") or d.get("decided_by") else ""
        return f"Approval {line(d.get('status'), 20)} for `{line(d.get('tool'), 80)}`{by}"
    if d.get("approval") and d.get("decision"):
        return f"Approval {line(d['decision'], 20)} by {line(d.get('by'), 60)}"
    if ev.kind == "absorbed":
        return f"Correlated alert: {line(d.get('title') or d.get('event_kind'), 150)}"
    if "update" in d:
        return f"{line(d.get('source'), 40)} reported {line(d['update'], 60)}"
    if "cancel_requested_by" in d:
        return f"Cancel requested by {line(d['cancel_requested_by'], 60)}"
    if d.get("slack") or d.get("evidence_check") or d.get("postmortem_requested_by") or d.get("postmortem"):
        return None   # bookkeeping, not part of the incident
    return f"{line(ev.kind, 30)}: {line(', '.join(f'{k}={v}' for k, v in list(d.items())[:4]), 160)}"


def timeline(run: RunFacts, events: Iterable[EventFact], rca: RCA | None) -> list[str]:
    items: list[tuple[datetime, int, str]] = []
    if (at := _utc(run.trigger.get("occurred_at"))) is not None:
        items.append((at, 0, f"Trigger fired ({line(run.trigger.get('source'), 30)}): {_title(run, None)}"))
    if (at := _utc(run.created_at)) is not None:
        items.append((at, 1, f"IncidentFox received the {line(run.trigger.get('source'), 30)} trigger"))
    for a in run.absorbed:
        if (at := _utc(a.get("occurred_at"))) is not None:
            items.append((at, 2, f"Correlated alert: {line(a.get('title'), 150)}"))
    for e in (rca.timeline if rca else []):
        if (at := _utc(e.at)) is not None:
            items.append((at, 3, line(e.event, 200)))
    for ev in events:
        text = _event_text(ev)
        if text and (at := _utc(ev.at)) is not None:
            items.append((at, 4, text))
    items.sort(key=lambda t: (t[0], t[1]))
    rows = [f"- {fmt(at)}: {text}" for at, _, text in items[:MAX_TIMELINE]]
    if len(items) > MAX_TIMELINE:
        rows.append(f"- … {len(items) - MAX_TIMELINE} more events in the run's record")
    return rows or ["- No timestamped events were recorded."]


def _root_cause(run: RunFacts, rca: RCA | None) -> list[str]:
    if rca is None:
        return [f"Not determined: the run {run.status}" + (f" ({line(run.error, 200)})." if run.error else ".")]
    if rca.no_incident or not rca.root_causes:
        return ["No root cause stood out in the evidence the run gathered."]
    return [f"{i}. **`{line(c.entity, 120)}`** (confidence {c.confidence:.0%}): {line(c.description, 500)}"
            for i, c in enumerate(rca.root_causes[:5], 1)]


def _evidence(rca: RCA | None) -> list[str]:
    rows = []
    for c in (rca.root_causes if rca else [])[:5]:
        for e in c.evidence[:5]:
            src = f" from `{line(e.source, 60)}`" if e.source else ""
            when = f" at {fmt(e.at)}" if e.at else ""
            rows.append(f"- {line(e.kind, 20)}{src}{when}: > {line(e.quote, 300)}")
    return rows or ["- No quoted evidence was recorded."]


def _actions(events: list[EventFact], tool_calls: int) -> list[str]:
    rows = []
    tools = {ev.data.get("approval_id"): ev.data.get("tool") for ev in events if ev.kind == "approval"}
    for ev in events:
        if ev.data.get("approval") and ev.data.get("decision") in ("approved", "denied"):   # approvals.decide
            verdict = "ran after approval" if ev.data["decision"] == "approved" else "was denied, not run"
            tool = tools.get(ev.data["approval"]) or "a mutating tool"
            rows.append(f"- `{line(tool, 80)}` {verdict} by {line(ev.data.get('by'), 60)} ({fmt(ev.at)})")
        elif ev.kind == "status" and ev.data.get("rerun_of"):
            rows.append(f"- Investigation re-run by {line(ev.data.get('by'), 60)} ({fmt(ev.at)})")
        elif "cancel_requested_by" in ev.data:
            rows.append(f"- Investigation cancelled by {line(ev.data['cancel_requested_by'], 60)} ({fmt(ev.at)})")
    rows.append(f"- IncidentFox made {tool_calls} tool calls while investigating." if tool_calls
                else "- No diagnostic tool calls were recorded.")
    return rows


def _followups(rca: RCA | None) -> list[str]:
    rows = [f"- [ ] {line(a, 300)}" for a in (rca.recommended_actions if rca else [])[:10]]
    rows += [f"- [ ] Check: {line(n, 300)}" for n in (rca.notes if rca else [])[:5]]
    rows.append("- [ ] Confirm the root cause and the impact window with the responders.")
    return rows


def draft_postmortem(run: RunFacts, events: Iterable[EventFact], rca: RCA | None, *, tool_calls: int = 0,
                     now: datetime | None = None) -> str:
    """The Markdown draft (see the module doc). ``tool_calls``: how many the run made (mutating ones
    appear under actions through their approval events); ``now``: the generation time shown."""
    evs = list(events)
    turns = sorted((ev for ev in evs if is_turn(ev)), key=lambda ev: ev.at or datetime.max.replace(tzinfo=UTC))
    summary = line(rca.summary, 1000) if rca else f"The investigation {run.status} without an analysis."
    parts = [f"# Postmortem draft: {_title(run, rca)}", "",
             (f"_Draft written by IncidentFox from run `{run.run_id}` ({run.status}) at "
              f"{fmt(now or datetime.now(UTC))}. Review every section before sharing._"), "",
             "## Summary", "", summary, "",
             "## Impact window", "", *impact_window(run, rca), "",
             "## Timeline (UTC)", "", *timeline(run, evs, rca), "",
             "## Root cause", "", *_root_cause(run, rca), "",
             "## Evidence", "", *_evidence(rca), "",
             "## Actions taken", "", *_actions(evs, tool_calls), "",
             "## Follow-ups", "", *_followups(rca)]
    if turns:
        parts += ["", "## Conversation", "",
                  *[f"- {fmt(ev.at)} {_speaker(ev.data)}: {line(ev.data['text'], 500)}" for ev in turns[:40]]]
    return "\n".join(parts) + "\n"
