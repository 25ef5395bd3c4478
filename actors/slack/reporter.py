"""Live run progress in one Slack message, then the final RCA as Block Kit.

A :class:`SlackReporter` posts once ("🔍 Investigating…"), then edits that message with
``chat.update`` as phases finish: a line per sub-agent with its status, tool count and duration.
Edits go through :class:`actors.slack.throttle.ThrottledEditor`: at most one per :data:`DEBOUNCE_S`
per message, state changes in between coalesced into the next edit, and the final edit also waits
out the interval, so Slack never sees two edits of one message closer than that.

The bot token comes from the team config (``integrations.slack.bot_token``) and lives only inside
the client (:func:`actors.slack.client.slack_client`); nothing here puts the token in a payload, a
log line or a run event.

What a reader sees, on the progress message and the final one alike: a header with the incident's
title (the alert title or the mention's first line, cut to Slack's 150 characters), a context line
with the run's status, its start or finish time as a Slack date token (each reader's own zone, a
UTC fallback) and a link to the run (:func:`incidentfox.links.run_url`; none without a public URL).

Buttons carry the run id in ``value``; ``action_id`` says what they do (:data:`ACTION_*`). The
gateway's interaction parser maps them to rerun / cancel / feedback. Cancel is offered only while
the run is active (:data:`ACTIVE_STATUSES`): a finished, failed or cancelled run's message has none.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from actors.slack.citations import seen_before_text, sources_text
from actors.slack.mrkdwn import clip as _clip
from actors.slack.mrkdwn import escape as _escape
from actors.slack.mrkdwn import header_block, link, slack_date
from actors.slack.throttle import MIN_INTERVAL_S, ThrottledEditor
from incidentfox.contracts import RCA

DEBOUNCE_S = MIN_INTERVAL_S

ACTION_RERUN = "incidentfox_rerun"
ACTION_CANCEL = "incidentfox_cancel"
ACTION_FEEDBACK_UP = "incidentfox_feedback_up"
ACTION_FEEDBACK_DOWN = "incidentfox_feedback_down"
ACTION_APPROVE = "incidentfox_approve"      # value: {"run_id", "approval_id"} as JSON
ACTION_DENY = "incidentfox_deny"
ACTION_POSTMORTEM = "incidentfox_postmortem"   # value: run id; the draft is posted in the thread

_STATUS_ICON = {"pending": "⏳", "running": "🔄", "ok": "✅", "succeeded": "✅", "failed": "❌",
                "error": "❌", "timeout": "⌛", "cancelled": "🚫", "skipped": "➖"}
ACTIVE_STATUSES = frozenset({"queued", "running"})   # the only statuses whose message offers Cancel
RUN_LINK_LABEL = "Open run"
MAX_HYPOTHESES = 6                                  # follow-up hypotheses listed in the final message


@dataclass
class AgentLine:
    status: str = "pending"
    tool_count: int = 0
    duration_s: float | None = None


@dataclass
class SlackMessage:
    channel: str
    ts: str


@dataclass
class ProgressState:
    title: str = ""
    phase: str = "starting"
    agents: dict[str, AgentLine] = field(default_factory=dict)
    started_at: datetime | None = None
    run_url: str | None = None


def progress_text(state: ProgressState) -> str:
    lines = [f"🔍 Investigating… {_escape(state.title)}".rstrip(), f"_phase: {state.phase}_"]
    for name, a in state.agents.items():
        dur = f", {a.duration_s:.1f}s" if a.duration_s is not None else ""
        lines.append(f"{_STATUS_ICON.get(a.status, '•')} *{name}*: {a.status}, "
                     f"{a.tool_count} tool call{'s' if a.tool_count != 1 else ''}{dur}")
    return "\n".join(lines)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text, "emoji": True},
                         "action_id": action_id, "value": value}
    if style:
        b["style"] = style
    return b


def _run_context(status: str, *, at_label: str, at: datetime | None, run_url: str | None) -> dict[str, Any]:
    """``Investigation <status> · <at_label> <date> · <Open run>``: what the run is, since when, where."""
    parts = [f"Investigation {status}"]
    if at is not None:
        parts.append(f"{at_label} {slack_date(at)}")
    if run_url:
        parts.append(link(run_url, RUN_LINK_LABEL))
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)}]}


def progress_blocks(state: ProgressState, *, run_id: str) -> list[dict[str, Any]]:
    """Block Kit while the run is active: title header, status line, progress, and Cancel."""
    body = "\n".join(progress_text(state).split("\n")[1:])   # the first line is the header's
    return [
        header_block("🔍", state.title, fallback="Investigating…"),
        _run_context("running", at_label="started", at=state.started_at, run_url=state.run_url),
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(body)}},
        {"type": "actions", "block_id": f"run:{run_id}",
         "elements": [_button("Cancel", ACTION_CANCEL, run_id, "danger")]},
    ]


def rca_text(rca: RCA) -> str:
    """The plain-text fallback (notifications, screen readers) of an RCA."""
    top = rca.root_causes[0] if rca.root_causes else None
    cause = f" Root cause: {top.entity}: {top.description}" if top else ""
    return _clip(f"{rca.summary}{cause}", 3000)


def hypotheses_text(rca: RCA, *, limit: int = MAX_HYPOTHESES) -> str:
    """The follow-ups section: each hypothesis pursued (grouped over its calls, in round order) and
    what its calls found, e.g. ``• R1 pod … is crash-looping → kubernetes_get_pod_logs: 40 lines, 3 errors``."""
    groups: dict[tuple[int, str], list[str]] = {}
    for h in rca.hypotheses:
        groups.setdefault((h.round, h.hypothesis), []).append(
            f"`{_escape(h.tool)}`: {_escape(h.found[:160]) if h.found else 'nothing returned'}")
    rows = [f"• R{n} {_escape(why)} → " + "; ".join(found) for (n, why), found in list(groups.items())[:limit]]
    more = len(groups) - limit
    return "*Follow-ups*\n" + "\n".join(rows) + (f"\n…and {more} more (see the run)" if more > 0 else "")


def rca_blocks(rca: RCA, *, run_id: str, status: str = "succeeded",
               agents: dict[str, AgentLine] | None = None, title: str = "",
               finished_at: datetime | None = None, run_url: str | None = None) -> list[dict[str, Any]]:
    """Block Kit for a finished run: the incident's title, status, finish time and run link, then
    summary, a similar past incident ("seen before", :mod:`actors.slack.citations`), causes with quoted
    evidence, the RCA's notes (⚠️), the follow-up hypotheses pursued and what
    they found, services, timeline, actions, the knowledge-base sources cited, and the
    rerun / 👍 / 👎 buttons (``value`` = run id); Cancel only if ``status`` is still active, Postmortem
    (a draft posted in the thread, :mod:`serve_apps.postmortem`) only once it is not."""
    icon = "✅" if status == "succeeded" else _STATUS_ICON.get(status, "•")
    blocks: list[dict[str, Any]] = [
        header_block(icon, title, fallback=f"Investigation {status}"),
        _run_context(status, at_label="as of" if status in ACTIVE_STATUSES else "finished",
                     at=finished_at, run_url=run_url),
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*Summary*\n{_escape(rca.summary)}")}},
    ]
    if seen := seen_before_text(rca):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": seen}]})
    for i, cause in enumerate(rca.root_causes[:5], 1):
        quotes = "\n".join(f"> {_escape(e.quote)[:300]}" for e in cause.evidence[:3])
        body = (f"*Root cause {i}:* `{_escape(cause.entity)}` (confidence {cause.confidence:.0%})\n"
                f"{_escape(cause.description)}" + (f"\n{quotes}" if quotes else ""))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(body)}})
    if rca.notes:   # caveats (e.g. evidence dropped as unverified) sit right under the causes
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _clip("\n".join(f"⚠️ {_escape(n)}" for n in rca.notes[:5]), 2900)}]})
    if rca.hypotheses:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(hypotheses_text(rca))}})
    if rca.affected_services:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(
            "*Affected services:* " + ", ".join(f"`{_escape(s)}`" for s in rca.affected_services[:20]))}})
    if rca.timeline:
        rows = [f"• {slack_date(e.at, seconds=True) + ' ' if e.at else ''}{_escape(e.event)}"
                for e in rca.timeline[:10]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("*Timeline*\n" + "\n".join(rows))}})
    if rca.recommended_actions:
        rows = [f"• {_escape(a)}" for a in rca.recommended_actions[:8]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _clip("*Recommended actions*\n" + "\n".join(rows))}})
    if sources := sources_text(rca):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": sources}]})
    for action in rca.proposed_actions[:1] if status == "succeeded" else ():
        blocks += proposed_action_blocks(run_id=run_id, action=action)
    if agents:
        st = ProgressState(agents=agents)
        lines = progress_text(st).split("\n")[2:]
        if lines:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(" · ".join(lines), 2900)}]})
    buttons = [_button("Rerun", ACTION_RERUN, run_id, "primary")]
    if status in ACTIVE_STATUSES:
        buttons.append(_button("Cancel", ACTION_CANCEL, run_id))
    buttons += [_button("👍", ACTION_FEEDBACK_UP, run_id), _button("👎", ACTION_FEEDBACK_DOWN, run_id)]
    if status not in ACTIVE_STATUSES:
        buttons.append(_button("Postmortem", ACTION_POSTMORTEM, run_id))
    blocks.append({"type": "actions", "block_id": f"run:{run_id}", "elements": buttons})
    return blocks


def approval_blocks(*, run_id: str, approval_id: str, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    value = json.dumps({"run_id": run_id, "approval_id": approval_id})
    args = _escape(json.dumps(arguments, default=str))[:1500]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"⚠️ The investigation wants to run a *mutating* tool `{_escape(tool)}` with ```{args}```"}},
        {"type": "actions", "block_id": f"approval:{approval_id}", "elements": [
            _button("Approve", ACTION_APPROVE, value, "primary"), _button("Deny", ACTION_DENY, value, "danger")]},
    ]


def proposed_action_blocks(*, run_id: str, action: Any) -> list[dict[str, Any]]:
    """A proposed fix (``incidentfox.contracts.ProposedAction``): its exact effect and tool call, with
    Approve / Deny buttons (the approval buttons; ``approval_id`` = the action's id) when IncidentFox
    can run it; only an allowed approver's click counts (actors/engine/actions.py)."""
    call = (f"\n`{_escape(action.tool)}` ```{_escape(json.dumps(action.arguments, default=str))[:800]}```"
            if action.tool else "\n_IncidentFox cannot run this one yet._")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(
        f"*Proposed fix ({_escape(action.kind)}):* {_escape(action.effect)}{call}")}}]
    if action.tool:
        value = json.dumps({"run_id": run_id, "approval_id": action.id})
        blocks.append({"type": "actions", "block_id": f"action:{action.id}", "elements": [
            _button("Approve fix", ACTION_APPROVE, value, "primary"), _button("Deny", ACTION_DENY, value, "danger")]})
    return blocks


class SlackReporter:
    """One run's Slack presence: the progress post, throttled edits, the final RCA."""

    def __init__(self, client: AsyncWebClient, *, run_id: str, title: str = "", run_url: str | None = None,
                 debounce_s: float = DEBOUNCE_S, now: datetime | None = None) -> None:
        self._client = client
        self.run_id = run_id
        self.state = ProgressState(title=title, started_at=now or datetime.now(UTC), run_url=run_url)
        self.message: SlackMessage | None = None
        self._debounce_s = debounce_s
        self._editor: ThrottledEditor | None = None
        self.thread_ts: str | None = None

    async def start(self, *, channel: str, thread_ts: str | None) -> SlackMessage:
        """Post the first progress message (into the thread when there is one)."""
        resp = await self._client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=progress_text(self.state),
            blocks=progress_blocks(self.state, run_id=self.run_id), unfurl_links=False)
        message = self.message = SlackMessage(channel=resp["channel"], ts=resp["ts"])
        self.thread_ts = thread_ts or message.ts

        async def edit(text: str, blocks: list[dict[str, Any]] | None) -> None:
            await self._client.chat_update(channel=message.channel, ts=message.ts, text=text, blocks=blocks)
        self._editor = ThrottledEditor(edit, min_interval_s=self._debounce_s, last_edit_at=time.monotonic())
        return message

    async def say(self, text: str) -> None:
        """A short reply in the run's thread (an answer to a responder's message), apart from the
        progress message. Nothing before :meth:`start`."""
        if self.message is None:
            return
        await self._client.chat_postMessage(channel=self.message.channel, thread_ts=self.thread_ts,
                                            text=text[:3000], unfurl_links=False)

    def set_phase(self, phase: str) -> None:
        self.state.phase = phase
        self._changed()

    def set_agent(self, name: str, *, status: str, tool_count: int | None = None,
                  duration_s: float | None = None) -> None:
        line = self.state.agents.setdefault(name, AgentLine())
        line.status = status
        if tool_count is not None:
            line.tool_count = tool_count
        if duration_s is not None:
            line.duration_s = duration_s
        self._changed()

    def _changed(self) -> None:
        if self._editor is not None:   # before the post there is nothing to edit: the post carries it
            self._editor.set(progress_text(self.state), progress_blocks(self.state, run_id=self.run_id))

    async def finish(self, rca: RCA, *, status: str, now: datetime | None = None) -> None:
        """Replace the progress message with the final RCA (waits out the interval; raises if the
        edit fails, so the caller can record it and retry)."""
        if self._editor is None:
            return
        blocks = rca_blocks(rca, run_id=self.run_id, status=status, agents=self.state.agents,
                            title=self.state.title, finished_at=now or datetime.now(UTC), run_url=self.state.run_url)
        self._editor.set(rca_text(rca), blocks)
        await self._editor.flush()

    async def aclose(self) -> None:
        if self._editor is not None:
            await self._editor.aclose()
