"""Postmortem drafts of runs: the service behind ``POST /api/v1/agent/runs/{id}/postmortem`` and the
Slack "Postmortem" button.

* :func:`write_postmortem` reads the run, its events (the conversation included: thread replies
  are run events), its tool calls and RCA, writes the offline draft
  (:func:`actors.engine.postmortem.draft_postmortem`) and, when asked and the team has an ``llm``
  configured, the model's richer rewrite (:mod:`actors.engine.postmortem_llm`), falling back to
  the offline draft with a note. A queued or running run has no postmortem yet (409
  ``run_not_finished``).
* :func:`post_postmortem` (after the button's delivery is answered) posts the draft in the run's
  Slack thread with the team's bot, as a Markdown block (cut to Slack's limit, with a link to the
  whole draft in the API when the platform has a public URL).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.engine.postmortem import EventFact, RunFacts, draft_postmortem
from incidentfox.contracts import RCA
from incidentfox.errors import Conflict
from incidentfox.links import run_url
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.postmortem")

SLACK_MARKDOWN_MAX = 11_500      # Slack's markdown block takes 12,000 characters
NOT_FINISHED = ("queued", "running")


def _rca(run: Run) -> RCA | None:
    try:
        return RCA.model_validate(run.result) if run.result else None
    except ValidationError:
        return None


async def write_postmortem(session: AsyncSession, *, run: Run, settings: Settings, use_llm: bool = True,
                           now: datetime | None = None) -> dict[str, Any]:
    """``{run_id, format, source: offline|llm, markdown, notes}`` for a finished ``run``."""
    from actors.engine import approvals

    if run.status in NOT_FINISHED:
        raise Conflict(f"run {run.id!r} is still {run.status}; a postmortem needs a finished run",
                       code="run_not_finished", details={"status": run.status})
    events = [EventFact.of(e) for e in await store.list_events(session, run_id=run.id)]
    calls = len(await store.list_tool_calls(session, run_id=run.id))
    draft = draft_postmortem(RunFacts.of(run), events, _rca(run), tool_calls=calls, now=now or datetime.now(UTC))
    body: dict[str, Any] = {"run_id": run.id, "format": "markdown", "source": "offline", "markdown": draft,
                            "notes": []}
    if not use_llm:
        return body
    from config_service import TeamConfig

    cfg = TeamConfig(await approvals.team_config(session, org_id=run.org_id, team_id=run.team_id,
                                                 settings=settings))
    if cfg.llm is None:
        body["notes"].append("no llm configured for the team: offline draft")
        return body
    from actors.engine.postmortem_llm import refine_postmortem

    refined = await refine_postmortem(draft, cfg.llm)
    body.update(source=refined.source, markdown=refined.markdown)
    if refined.note:
        body["notes"].append(refined.note)
    return body


def _bot_token(config: dict[str, Any]) -> str | None:
    slack = (config.get("integrations") or {}).get("slack") or {}
    token = slack.get("bot_token") if isinstance(slack, dict) else None
    return token if isinstance(token, str) and token and token != "***" else None


async def post_postmortem(sessions: async_sessionmaker[AsyncSession], *, run_id: str, settings: Settings) -> bool:
    """Write the run's draft and post it in the run's thread; False when there is nowhere to post."""
    from actors.engine import approvals
    from actors.slack.client import slack_client

    async with sessions() as s:
        run = await store.get_run(s, run_id)
        if run is None:
            return False
        config = await approvals.team_config(s, org_id=run.org_id, team_id=run.team_id, settings=settings)
        body = await write_postmortem(s, run=run, settings=settings)
        msg = run.slack_message or {}
        channel, ts = msg.get("channel") or run.thread_channel, msg.get("ts") or run.thread_ts
    token = _bot_token(config)
    if not token or not channel:
        log.info("postmortem not posted: no bot token or thread", extra={"run_id": run_id})
        return False
    text = body["markdown"]
    link = run_url(settings.public_url, run_id)
    if len(text) > SLACK_MARKDOWN_MAX:
        text = text[:SLACK_MARKDOWN_MAX] + "\n\n… (cut; the whole draft: `POST /api/v1/agent/runs/" + run_id + \
            "/postmortem`" + (f", run: {link}" if link else "") + ")"
    async with slack_client(token=token, base_url=settings.slack_api_url) as client:
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=f"Postmortem draft for run {run_id}",
                                      blocks=[{"type": "markdown", "text": text}])
    async with sessions() as s:
        await store.append_event(s, run_id=run_id, kind="note",
                                 data={"postmortem": "posted", "source": body["source"]})
        await s.commit()
    return True
