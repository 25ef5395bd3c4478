"""``POST /api/v1/agent/runs/{id}/postmortem`` and the Slack Postmortem button: the team's own runs
only (another team's: 404), JSON errors naming the problem, the offline draft without a model, the
team model's rewrite with one (the real openai-agents SDK against the local scripted LLM server),
and the draft posted in the run's thread (a local Slack recorder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from gateway_kit import seed_tenants, settings_for
from sqlalchemy import update

from actors.slack.reporter import ACTION_POSTMORTEM, rca_blocks
from actors.testing.scripted_llm import ScriptedLLM
from cli.demo.slack_recorder import SlackRecorder
from config_service.services import config as config_svc
from incidentfox.contracts import RCA, ThreadRef, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.runs.runner import NullRunner
from serve_apps.agent_api import create_agent_app
from serve_apps.postmortem import post_postmortem
from serve_apps.webhooks.slack import parse_interaction

BOT = "xoxb-postmortem-bot-token-0123"
RESULT = {"summary": "checkout crash-loops after deploy v2.3.1", "affected_services": ["checkout"],
          "root_causes": [{"entity": "shop/deployment/checkout", "description": "bad deploy", "confidence": 0.8,
                           "evidence": [{"kind": "event", "source": "kubernetes_get_events",
                                         "quote": "Back-off restarting failed container"}]}],
          "recommended_actions": ["roll back checkout"]}
REFINED = ("# Postmortem: checkout outage\n\n## Summary\n\nA bad deploy of checkout v2.3.1 crash-looped.\n\n"
           "## Impact window\n\n12:02 to unknown (UTC)\n\n## Timeline (UTC)\n\n- 12:02 alert\n\n## Root cause\n\n"
           "Bad deploy.\n\n## Evidence\n\n- Back-off\n\n## Actions taken\n\n- none\n\n## Follow-ups\n\n- [ ] roll back\n")


@pytest.fixture
async def api(sqlite_url, tmp_path):
    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        done = await store.create_run(s, org_id="acme", team_id="payments", trigger=Trigger(
            source="pagerduty", delivery_id="d1", event_kind="incident.triggered", title="checkout 5xx",
            occurred_at=datetime(2026, 11, 30, 12, 2, tzinfo=UTC), thread=ThreadRef(channel="C111", ts="1700.1")))
        busy = await store.create_run(s, org_id="acme", team_id="payments",
                                      trigger=Trigger(source="api", delivery_id="d2", event_kind="api"))
        await s.execute(update(Run).where(Run.id == done.id).values(status="succeeded", result=RESULT))
        await store.append_event(s, run_id=done.id, kind="turn", data={"user": "U2", "text": "frontend too?"})
        await s.commit()
    app = create_agent_app(settings=settings, runner=NullRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield {"client": client, "toks": toks, "done": done.id, "busy": busy.id, "sessions": sessions,
               "settings": settings}
    await app.state.engine.dispose()
    await engine.dispose()


def _auth(api, who: str) -> dict:
    return {"Authorization": f"Bearer {api['toks'][who]}"}


async def _configure(api, patch: dict) -> None:
    async with api["sessions"]() as s:
        await config_svc.patch_config(s, settings=api["settings"], org_id="acme", node_id="payments", actor="test",
                                      patch=patch)
        await s.commit()


async def test_offline_draft_for_the_runs_own_team_only(api) -> None:
    c, run_id = api["client"], api["done"]
    r = await c.post(f"/runs/{run_id}/postmortem", headers=_auth(api, "acme/payments"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "offline" and body["format"] == "markdown" and body["run_id"] == run_id
    md = body["markdown"]
    assert md.startswith("# Postmortem draft: checkout 5xx")
    assert "- **Start:** 2026-11-30 12:02:00 UTC (the trigger fired)" in md
    assert "Back-off restarting failed container" in md and "U2: frontend too?" in md
    assert body["notes"] == ["no llm configured for the team: offline draft"]
    for who in ("acme/search", "globex/ops", "globex"):   # other teams and orgs: the run does not exist
        r = await c.post(f"/runs/{run_id}/postmortem", headers=_auth(api, who))
        assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"
    assert (await c.post(f"/runs/{run_id}/postmortem")).status_code == 401
    assert (await c.post(f"/runs/{run_id}/postmortem", json={"llm": False}, headers=_auth(api, "acme"))).json()[
        "notes"] == []


async def test_errors_name_the_problem(api) -> None:
    c = api["client"]
    r = await c.post(f"/runs/{api['busy']}/postmortem", headers=_auth(api, "acme/payments"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "run_not_finished"
    r = await c.post("/runs/run_nope/postmortem", headers=_auth(api, "acme/payments"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"
    r = await c.post(f"/runs/{api['done']}/postmortem", json={"llm": "maybe", "x": 1},
                     headers=_auth(api, "acme/payments"))
    assert r.status_code == 422


@pytest.mark.parametrize("answer", [REFINED, "Sorry, here is a summary without sections."])
async def test_the_team_model_rewrites_the_draft(api, answer: str) -> None:
    llm = ScriptedLLM({"postmortem writer": [{"text": answer}]})
    await llm.start()
    try:
        await _configure(api, {"llm": {"provider": "openai_compatible", "model": "scripted", "base_url": llm.url,
                                       "api_key": "sk-postmortem-secret"}})
        r = await api["client"].post(f"/runs/{api['done']}/postmortem", headers=_auth(api, "acme/payments"))
    finally:
        await llm.stop()
    assert r.status_code == 200, r.text
    body = r.json()
    (req,) = llm.requests
    assert "checkout crash-loops after deploy v2.3.1" in json.dumps(req.body)   # the draft went to the model
    if answer == REFINED:
        assert body["source"] == "llm" and body["markdown"] == REFINED and body["notes"] == []
    else:
        assert body["source"] == "offline" and body["markdown"].startswith("# Postmortem draft:")
        assert body["notes"] == ["the model's answer dropped sections of the draft"]
    assert "sk-postmortem-secret" not in r.text


async def test_slack_button_posts_the_draft_in_the_thread(api) -> None:
    blocks = rca_blocks(RCA.model_validate(RESULT), run_id=api["done"], status="succeeded")
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == ACTION_POSTMORTEM]
    parsed = parse_interaction({"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "t1",
                                "channel": {"id": "C111"}, "message": {"ts": "1700.2", "thread_ts": "1700.1"},
                                "actions": [{"action_id": button["action_id"], "value": button["value"]}]})
    assert parsed.trigger.interaction["action"] == "postmortem"
    assert parsed.trigger.interaction["run_id"] == api["done"]
    assert not any(e["action_id"] == ACTION_POSTMORTEM for b in rca_blocks(RCA(summary="x"), run_id="r",
                                                                            status="running")
                   if b["type"] == "actions" for e in b["elements"])   # not while the run is active

    slack = SlackRecorder()
    await slack.start()
    try:
        await _configure(api, {"integrations": {"slack": {"bot_token": BOT}}})
        settings = api["settings"].model_copy(update={"slack_api_url": slack.url})
        assert await post_postmortem(api["sessions"], run_id=api["done"], settings=settings)
    finally:
        await slack.stop()
    (call,) = slack.calls_to("chat.postMessage")
    args = call.public()["args"] if "args" in call.public() else call.public()
    flat = json.dumps(args)
    assert "C111" in flat and "1700.1" in flat and "Postmortem draft: checkout 5xx" in flat
    async with api["sessions"]() as s:
        events = await store.list_events(s, run_id=api["done"])
    assert events[-1].data == {"postmortem": "posted", "source": "offline"}


async def test_pressing_the_button_posts_after_the_answer(api, sqlite_url, monkeypatch) -> None:
    """The whole path: a signed Slack interaction → the gateway records it and answers → the
    dispatch posts the draft into the run's thread."""
    from urllib.parse import quote

    from gateway_kit import client_for, make_core, signed

    import incidentfox.settings

    slack = SlackRecorder()
    await slack.start()
    settings = api["settings"].model_copy(update={"slack_api_url": slack.url})
    monkeypatch.setattr(incidentfox.settings, "get_settings", lambda: settings)
    await _configure(api, {"integrations": {"slack": {"bot_token": BOT}}})
    core = make_core(sqlite_url)
    payload = {"type": "block_actions", "trigger_id": "tpm1", "user": {"id": "U1"}, "channel": {"id": "C111"},
               "message": {"ts": "1700.2", "thread_ts": "1700.1"},
               "actions": [{"action_id": ACTION_POSTMORTEM, "value": api["done"], "action_ts": "1700000000.1"}]}
    body = ("payload=" + quote(json.dumps(payload))).encode()
    try:
        async with client_for(core) as client:
            r = await client.post("/slack/interactions", content=body, headers=signed("slack", body))
            assert r.status_code == 200 and r.json()["outcome"] == "interaction", r.text
            await core.drain()
    finally:
        await core.engine.dispose()
        await slack.stop()
    (call,) = slack.calls_to("chat.postMessage")
    assert "Postmortem draft: checkout 5xx" in json.dumps(call.args) and call.token == BOT
