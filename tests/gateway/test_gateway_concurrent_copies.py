"""Concurrent senders through the real gateway: nothing lost or run twice when copies race.

Slack delivers one thread reply as ``app_mention`` and ``message`` (two event ids) at once; an alert
storm sends many Alertmanager groups for one service at once. On PostgreSQL these intakes are
concurrent transactions, serialised only by the locks :mod:`serve_apps.deliveries.decide` takes
(the run row for a thread turn, the correlation key for an alert); on SQLite by the group commit.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json

from gateway_kit import load, signed, slack_event
from sqlalchemy import func, select

from incidentfox.contracts import RunStatus
from incidentfox.runs import store
from incidentfox.runs.models import Run, RunEvent


async def _post_slack(client, data: dict):
    body = json.dumps(data).encode()
    return await client.post("/slack/events", content=body, headers=signed("slack", body))


async def _start(client, fixtures_dir, event_id: str) -> tuple[str, str]:
    data = json.loads(slack_event(fixtures_dir, event_id=event_id))
    r = await _post_slack(client, data)
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    return r.json()["run_id"], data["event"]["ts"]


def _reply(fixtures_dir, *, event_id: str, root_ts: str, text: str, ts: str) -> dict:
    """A human reply in the thread ``root_ts`` (Slack's ``message`` event)."""
    data = json.loads(slack_event(fixtures_dir, event_id=event_id))
    data["event"].update(type="message", thread_ts=root_ts, text=text, user="W222", ts=ts)
    return data


def _as_mention(reply: dict, event_id: str) -> dict:
    """Slack's other copy of the same reply: an ``app_mention`` event under its own event id."""
    return {**reply, "event_id": event_id, "event": {**reply["event"], "type": "app_mention"}}


async def _finish(core, run_id: str) -> None:
    async with core.sessions() as s:
        assert await store.claim(s, run_id=run_id, owner="test", lease_s=30)
        assert await store.transition(s, run_id=run_id, to=RunStatus.SUCCEEDED, result={"summary": "done"},
                                      evidence={"trigger": {}, "bundle": {}})
        await s.commit()


async def _run(core, run_id: str) -> Run:
    async with core.sessions() as s:
        return await store.get_run(s, run_id)


async def _count(core, model, *where) -> int:
    async with core.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


def _ok(responses) -> list[dict]:
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json() for r in responses]


async def test_one_reply_under_two_event_ids_starts_one_follow_up(gw, fixtures_dir):
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvCC100")
    await _finish(core, run_id)
    reply = _reply(fixtures_dir, event_id="EvCC101", root_ts=root_ts, text="why payments-db?",
                   ts="1595926999.000101")
    answers = _ok(await asyncio.gather(_post_slack(client, reply), _post_slack(client, _as_mention(reply, "EvCC102"))))
    follow_ups = (await _run(core, run_id)).turns
    assert [t["mode"] for t in follow_ups] == ["follow_up"]
    child = follow_ups[0]["follow_up_run_id"]
    assert {a["run_id"] for a in answers} == {child}
    assert await _count(core, Run, Run.parent_run_id == run_id) == 1
    assert (await _run(core, child)).turns == []          # the follow-up's trigger is the reply: not its turn
    await core.drain()
    assert core.runner.submitted.count(child) == 1 and len(core.runner.submitted) == 2   # the root, the follow-up
    assert core.runner.attached == []
    # Slack's copy arriving later finds the follow-up as the thread's latest run: the same answer.
    late = _ok([await _post_slack(client, _as_mention(reply, "EvCC103"))])[0]
    assert (late["run_id"], late["outcome"]) == (child, "accepted")
    assert (await _run(core, child)).turns == [] and await _count(core, Run) == 2


async def test_one_reply_under_two_event_ids_is_one_turn_of_the_active_run(gw, fixtures_dir):
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvCC200")
    reply = _reply(fixtures_dir, event_id="EvCC201", root_ts=root_ts, text="look at payments",
                   ts="1595926999.000201")
    answers = _ok(await asyncio.gather(_post_slack(client, reply), _post_slack(client, _as_mention(reply, "EvCC202"))))
    assert {a["run_id"] for a in answers} == {run_id}
    assert len((await _run(core, run_id)).turns) == 1
    await core.drain()
    assert len([a for a in core.runner.attached if a[0] == run_id]) == 1


async def test_concurrent_replies_to_an_active_run_are_all_recorded(gw, fixtures_dir):
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvCC300")
    replies = [_reply(fixtures_dir, event_id=f"EvCC31{i}", root_ts=root_ts, text=f"hint {i}",
                      ts=f"1595926999.00031{i}") for i in range(4)]
    answers = _ok(await asyncio.gather(*[_post_slack(client, r) for r in replies]))
    assert [a["outcome"] for a in answers] == ["continued"] * 4
    run = await _run(core, run_id)
    assert sorted(t["text"] for t in run.turns) == [f"hint {i}" for i in range(4)]
    assert await _count(core, RunEvent, RunEvent.run_id == run_id, RunEvent.kind == "turn") == 4
    await core.drain()
    assert len([a for a in core.runner.attached if a[0] == run_id]) == 4


async def test_concurrent_replies_after_the_run_ended_start_one_follow_up(gw, fixtures_dir):
    """As if they had come one after another: the first starts the follow-up, the rest are its turns."""
    core, client = gw
    run_id, root_ts = await _start(client, fixtures_dir, "EvCC400")
    await _finish(core, run_id)
    replies = [_reply(fixtures_dir, event_id=f"EvCC41{i}", root_ts=root_ts, text=f"and {i}?",
                      ts=f"1595926999.00041{i}") for i in range(3)]
    answers = _ok(await asyncio.gather(*[_post_slack(client, r) for r in replies]))
    assert sorted(a["outcome"] for a in answers) == ["accepted", "continued", "continued"]
    assert await _count(core, Run, Run.parent_run_id == run_id) == 1
    child = next(a["run_id"] for a in answers if a["outcome"] == "accepted")
    assert {a["run_id"] for a in answers} == {child}
    assert len((await _run(core, child)).turns) == 2


def _alert_group(fixtures_dir, i: int, *, service: str = "checkout") -> bytes:
    """Alertmanager group ``A<i>``: its own group key and fingerprints, labelled ``service``."""
    data = json.loads(load(fixtures_dir, "alertmanager/webhook.v4.firing.json"))
    data["groupKey"] = f'{{}}/{{}}:{{alertname="A{i}"}}'
    data["commonLabels"]["service"] = service
    for alert in data["alerts"]:
        alert["fingerprint"] = f"fp{i}-{alert['fingerprint']}"
    return json.dumps(data).encode()


async def _alerts(client, bodies: list[bytes]) -> list[dict]:
    return _ok(await asyncio.gather(*[client.post("/alertmanager", content=b, headers=signed("alertmanager", b))
                                      for b in bodies]))


async def test_an_alert_storm_on_one_service_starts_one_run(gw, fixtures_dir):
    core, client = gw
    answers = await _alerts(client, [_alert_group(fixtures_dir, i) for i in range(5)])
    assert sorted(a["outcome"] for a in answers) == ["accepted"] + ["correlated"] * 4
    assert await _count(core, Run) == 1
    run_id = answers[0]["run_id"]
    assert {a["run_id"] for a in answers} == {run_id}
    assert len((await _run(core, run_id)).absorbed) == 4
    await core.drain()
    assert core.runner.submitted == [run_id]


async def test_alerts_correlated_at_once_are_all_absorbed(gw, fixtures_dir):
    """A queued run reads ``runs.absorbed`` when it starts, and ack/resolve find alerts there."""
    core, client = gw
    (first,) = await _alerts(client, [_alert_group(fixtures_dir, 0)])
    answers = await _alerts(client, [_alert_group(fixtures_dir, 10 + i) for i in range(5)])
    assert [a["outcome"] for a in answers] == ["correlated"] * 5
    run = await _run(core, first["run_id"])
    assert run.status == RunStatus.QUEUED.value
    # An Alertmanager group's fingerprint is its group key.
    assert sorted(a["fingerprint"] for a in run.absorbed) == [f'{{}}/{{}}:{{alertname="A1{i}"}}' for i in range(5)]
    assert await _count(core, RunEvent, RunEvent.run_id == run.id, RunEvent.kind == "absorbed") == 5
