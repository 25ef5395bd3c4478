"""A real run on the engine (Ray, offline planner over the demo world) started by a PagerDuty alert:
the RCA goes to Slack and, with the team's answer-back on, as a note on the PagerDuty incident (a
local server speaking that API); with bad answer-back config the run still succeeds, Slack still
gets the RCA, and the run carries a note naming the config problem."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from engine_support import Engine, demo_config

from actors.answerback.markdown import marker
from incidentfox.contracts import AnswerTarget, Trigger
from tests.answerback_kit import FakePagerDuty
from tests.tools_fakes import FakeHTTP

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def pd_trigger(incident: str) -> Trigger:
    return Trigger(source="pagerduty", delivery_id=uuid.uuid4().hex, event_kind="incident.triggered",
                   title="checkout is returning 500s", text="PagerDuty incident triggered", services=["checkout"],
                   is_alert=True, fingerprint=incident, answer_to=AnswerTarget(source="pagerduty", incident_id=incident))


async def _answer_notes(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """The run's answer-back notes, once written (the answer follows the terminal status and the
    final Slack edit; the database is polled, bounded)."""
    async with asyncio.timeout(60):
        while True:
            notes = [e.data for e in await engine.events(run_id) if e.kind == "note" and "answer_back" in e.data]
            if notes:
                return notes
            await asyncio.sleep(0.1)   # polling the database, bounded by the timeout above


async def _final_slack(engine: Engine, channel: str) -> list[Any]:
    return await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                      and c.args.get("channel") == channel
                                                      and "Root cause 1" in str(c.args.get("blocks"))],
                                       timeout=60)


async def test_a_pagerduty_run_answers_with_a_note_after_slack(engine: Engine) -> None:
    http = FakeHTTP()
    await http.start()
    try:
        pd = FakePagerDuty(http, incident_id="PENG1", token="pd-engine-key-1")
        cfg = demo_config(channel="CPD1")
        cfg["integrations"]["pagerduty"] = {"answer_back": True, "token": "pd-engine-key-1",
                                            "from_email": "bot@acme.example", "api_url": http.url}
        # The incident must be on a service the team claims (actors/answerback/pagerduty.py).
        cfg.setdefault("routing", {})["pagerduty_service_ids"] = [pd.service_id]
        team = await engine.add_team(cfg)
        run_id = await engine.start(team, trigger=pd_trigger("PENG1"))
        run = await engine.wait_terminal(run_id, timeout=120)
        assert run.status == "succeeded", run.error
        await _final_slack(engine, "CPD1")
        notes = await _answer_notes(engine, run_id)
        assert [(n["destination"], n["answer_back"]) for n in notes] == [("pagerduty.note", "posted")], notes
        [note] = pd.notes
        assert marker(run_id) in note["content"] and note["from"] == "bot@acme.example"
        assert "pd-engine-key-1" not in repr(notes)
    finally:
        await http.close()


async def test_bad_answer_back_config_is_a_note_and_slack_still_answers(engine: Engine) -> None:
    cfg = demo_config(channel="CPD2")
    cfg["integrations"]["pagerduty"] = {"answer_back": True, "token": "pd-engine-key-2"}   # no from_email
    team = await engine.add_team(cfg)
    run_id = await engine.start(team, trigger=pd_trigger("PENG2"))
    run = await engine.wait_terminal(run_id, timeout=120)
    assert run.status == "succeeded", run.error
    await _final_slack(engine, "CPD2")
    notes = await _answer_notes(engine, run_id)
    assert len(notes) == 1 and notes[0]["reason"] == "bad_config", notes
    assert "integrations.pagerduty.from_email" in notes[0]["message"]
