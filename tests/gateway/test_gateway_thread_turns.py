"""Thread conversations through the real intake (issue 16): Slack fixture payloads, signed, into the
gateway. A reply while the run is active is a turn handed to it; a reply after it ended starts a
follow-up run linked by ``parent_run_id`` in the same thread; a non-responder is refused and
recorded; bot messages, edits and Slack's second copy of one message are never turns twice.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from urllib.parse import quote

from gateway_kit import client_for, make_core, seed_team_config, signed, slack_event

from cli.demo.slack_recorder import SlackRecorder
from incidentfox.contracts import RunStatus
from incidentfox.runs import store


async def _post(client, data: dict) -> dict:
    body = json.dumps(data).encode()
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    return r.json()


def _reply(fixtures_dir, *, event_id: str, root_ts: str, text: str, user: str = "W222", ts: str = "") -> dict:
    data = json.loads(slack_event(fixtures_dir, event_id=event_id))
    data["event"].update(type="message", thread_ts=root_ts, text=text, user=user,
                         ts=ts or f"{root_ts.split('.')[0]}.9{event_id[-3:]}")
    return data


async def _start(client, fixtures_dir, event_id: str) -> tuple[str, str]:
    data = json.loads(slack_event(fixtures_dir, event_id=event_id))
    first = await _post(client, data)
    assert first["outcome"] == "accepted"
    return first["run_id"], data["event"]["ts"]


async def _run(core, run_id: str):
    async with core.sessions() as s:
        return await store.get_run(s, run_id)


async def _finish(core, run_id: str) -> None:
    async with core.sessions() as s:
        assert await store.claim(s, run_id=run_id, owner="test", lease_s=30)
        assert await store.transition(s, run_id=run_id, to=RunStatus.SUCCEEDED, result={"summary": "done"},
                                      evidence={"trigger": {}, "bundle": {}})
        await s.commit()


async def test_reply_while_running_is_a_turn_of_the_run_once(gw, fixtures_dir):
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvT100")
    reply = _reply(fixtures_dir, event_id="EvT101", root_ts=root_ts,
                   text="ignore checkout, look at payments", ts="1595926999.000101")
    answer = await _post(client, reply)
    assert answer == {"ok": True, "run_id": run_id, "outcome": "continued"}
    # Slack's retry (same event id) and a second event id for the same message: no second turn.
    again = await _post(client, reply)
    assert again["duplicate"] is True and again["run_id"] == run_id
    other_copy = {**reply, "event_id": "EvT102"}
    assert (await _post(client, other_copy))["run_id"] == run_id
    # An edit and a bot's own message in the thread are not turns.
    edit = _reply(fixtures_dir, event_id="EvT103", root_ts=root_ts, text="edited")
    edit["event"]["subtype"] = "message_changed"
    bot = _reply(fixtures_dir, event_id="EvT104", root_ts=root_ts, text="🔍 Investigating…")
    bot["event"]["bot_id"] = "B111"
    for body in (edit, bot):
        assert (await _post(client, body))["ignored"] is True
    await core.drain()
    run = await _run(core, run_id)
    (turn,) = run.turns
    assert (turn["mode"], turn["text"], turn["actor"], turn["message_ts"]) == \
        ("redirect", "ignore checkout, look at payments", "W222", "1595926999.000101")
    assert core.runner.attached == [(run_id, "EvT101")]
    view = store.run_view(run)
    assert view["turns"] == run.turns and view["parent_run_id"] is None


async def test_reply_after_the_run_ended_starts_a_linked_follow_up(gw, fixtures_dir):
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvT200")
    await _finish(core, run_id)
    answer = await _post(client, _reply(fixtures_dir, event_id="EvT201", root_ts=root_ts,
                                        text="why payments-db?"))
    assert answer["outcome"] == "accepted" and answer["run_id"] != run_id
    child_id = answer["run_id"]
    await core.drain()
    assert child_id in core.runner.submitted
    child, parent = await _run(core, child_id), await _run(core, run_id)
    assert child.parent_run_id == run_id and child.status == "queued"
    assert (child.thread_channel, child.thread_ts) == ("C111", root_ts)        # answers in the same thread
    assert child.trigger["event_kind"] == "thread_reply" and child.trigger["text"] == "why payments-db?"
    (turn,) = parent.turns
    assert turn["mode"] == "follow_up" and turn["follow_up_run_id"] == child_id
    assert store.run_view(child)["parent_run_id"] == run_id
    # The next reply goes to the follow-up (the thread's newest run), still queued: a turn of it.
    nxt = await _post(client, _reply(fixtures_dir, event_id="EvT202", root_ts=root_ts, text="look at redis"))
    assert nxt == {"ok": True, "run_id": child_id, "outcome": "continued"}
    # Rerun on the follow-up's result is that follow-up again: same reply, same parent.
    press = json.loads((fixtures_dir / "slack/block_actions.json").read_text())
    press["trigger_id"] = "tThread1"
    press["actions"][0].update(action_id="incidentfox_rerun", value=child_id)
    body = ("payload=" + quote(json.dumps(press))).encode()
    r = await client.post("/slack/interactions", content=body, headers=signed("slack", body))
    rerun = await _run(core, r.json()["run_id"])
    assert rerun.parent_run_id == run_id and rerun.trigger["text"] == "why payments-db?"


async def test_reply_in_a_thread_with_no_run_is_unmatched(gw, fixtures_dir):
    _core, client = gw
    answer = await _post(client, _reply(fixtures_dir, event_id="EvT300", root_ts="1500000000.000100",
                                        text="what about the database?"))
    assert answer["outcome"] == "unmatched" and answer["run_id"] is None


async def test_non_responder_is_refused_politely_and_recorded(db_url, fixtures_dir, tmp_path, monkeypatch):
    from actors.engine.responders import RESPONDER_REFUSALS

    recorder = SlackRecorder()
    monkeypatch.setenv("INCIDENTFOX_SLACK_API_URL", await recorder.start())
    await seed_team_config(db_url, tmp_path, org="acme", team="payments", patch={
        "access": {"responders": ["W333"]}, "integrations": {"slack": {"bot_token": "xoxb-thread-test-bot"}}})
    core = make_core(db_url)
    try:
        async with client_for(core) as client:
            run_id, root_ts = await _start(client, fixtures_dir, "EvT400")
            refused = await _post(client, _reply(fixtures_dir, event_id="EvT401", root_ts=root_ts,
                                                 text="scale checkout to zero", user="W999"))
            assert refused == {"ok": True, "run_id": run_id, "outcome": "rejected"}
            allowed = await _post(client, _reply(fixtures_dir, event_id="EvT402", root_ts=root_ts,
                                                 text="look at payments", user="W333"))
            assert allowed["outcome"] == "continued"
        await core.drain()
        await RESPONDER_REFUSALS.drain(10)
        run = await _run(core, run_id)
        assert [(t["mode"], t["actor"]) for t in run.turns] == [("refused", "W999"), ("redirect", "W333")]
        assert run.turns[0]["reason"] == "not_a_responder"
        assert core.runner.attached == [(run_id, "EvT402")]
        (note,) = recorder.calls_to("chat.postEphemeral")
        assert (note.args["user"], note.args["channel"], note.args["thread_ts"]) == ("W999", "C111", root_ts)
        assert "access.responders" in note.args["text"] and "xoxb" not in note.args["text"]
    finally:
        await core.engine.dispose()
        await recorder.stop()


async def test_non_responder_ignored_when_the_team_says_so(db_url, fixtures_dir, tmp_path, monkeypatch):
    from actors.engine.responders import RESPONDER_REFUSALS

    recorder = SlackRecorder()
    monkeypatch.setenv("INCIDENTFOX_SLACK_API_URL", await recorder.start())
    await seed_team_config(db_url, tmp_path, org="acme", team="payments", patch={
        "access": {"responders": ["W333"], "non_responder_replies": "ignore"},
        "integrations": {"slack": {"bot_token": "xoxb-thread-test-bot"}}})
    core = make_core(db_url)
    try:
        async with client_for(core) as client:
            run_id, root_ts = await _start(client, fixtures_dir, "EvT500")
            await _finish(core, run_id)
            refused = await _post(client, _reply(fixtures_dir, event_id="EvT501", root_ts=root_ts,
                                                 text="rerun", user="W999"))
            assert refused["outcome"] == "rejected" and refused["run_id"] == run_id
        await core.drain()
        await RESPONDER_REFUSALS.drain(10)
        assert recorder.calls_to("chat.postEphemeral") == [] and core.runner.submitted == [run_id]
        assert [t["mode"] for t in (await _run(core, run_id)).turns] == ["refused"]
    finally:
        await core.engine.dispose()
        await recorder.stop()
